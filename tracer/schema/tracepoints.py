"""Kernel tracepoints the probe reads through their tracefs layout rather than as raw tracepoints.

A regular tracepoint hands its program a record laid out as its tracefs ``format`` file says:
fields the kernel fills itself, so no kernel struct is read. Each layout is declared once here;
``gen.py`` turns it into a C struct in the probe's header, and the loader compares it with the
running kernel's format file before attaching, leaving the program out when they differ.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

COMMON_BYTES: Final = 8  # common_type, common_flags, common_preempt_count, common_pid
TRACEFS: Final = ("/sys/kernel/tracing", "/sys/kernel/debug/tracing")  # where tracefs is mounted


@dataclass(frozen=True)
class Field:
    name: str
    offset: int
    size: int
    ctype: str  # the C declaration's type; arrays as "u8[16]"


@dataclass(frozen=True)
class Tracepoint:
    category: str
    name: str
    fields: tuple[Field, ...]

    @property
    def path(self) -> str:
        """Relative to tracefs' events/ directory."""
        return f"{self.category}/{self.name}"

    @property
    def struct(self) -> str:
        return f"kt_tp_{self.name}"


# TCP state changes: a connection's move to ESTABLISHED carries both of its ends, read by the kernel
# at that moment. The probe turns a client's (from SYN_SENT) into EVT_CONNECTED for the connecting
# fd, and keeps a server's (from SYN_RECV) until an accept() returns that socket (EVT_ACCEPTED).
SOCK_STATE: Final = Tracepoint("sock", "inet_sock_set_state", (
    Field("skaddr", 8, 8, "u64"),
    Field("oldstate", 16, 4, "s32"),
    Field("newstate", 20, 4, "s32"),
    Field("sport", 24, 2, "u16"),
    Field("dport", 26, 2, "u16"),
    Field("family", 28, 2, "u16"),
    Field("protocol", 30, 2, "u16"),
    Field("saddr", 32, 4, "u8[4]"),
    Field("daddr", 36, 4, "u8[4]"),
    Field("saddr_v6", 40, 16, "u8[16]"),
    Field("daddr_v6", 56, 16, "u8[16]"),
))
TRACEPOINTS: Final = (SOCK_STATE,)

# Raw tracepoints fired inside a syscall that sends or receives on a socket (Linux 6.3 and later),
# whose first argument is that socket: the probe uses its address as a key only, to name an
# accepted connection's fd by the ends SOCK_STATE gave it (EVT_ACCEPTED). Left out, with a -v note,
# by kernels without them.
SOCK_IO: Final = ("sock_send_length", "sock_recv_length")
# Syscalls whose first argument is the fd of the socket those fire for: the fd EVT_ACCEPTED names.
SOCK_IO_SYSCALLS: Final = ("read", "write", "readv", "writev", "sendfile", "sendto", "recvfrom", "sendmsg",
                           "recvmsg", "sendmmsg", "recvmmsg")

# Values of those fields (include/net/tcp_states.h, linux/socket.h, linux/in.h): kernel ABI.
TCP_ESTABLISHED: Final = 1
TCP_SYN_SENT: Final = 2
TCP_SYN_RECV: Final = 3
TCP_CLOSE: Final = 7
AF_INET: Final = 2
AF_INET6: Final = 10
IPPROTO_TCP: Final = 6

# EVT_CONNECTED's and EVT_ACCEPTED's record: a0 = fd, a1 = family, a2 = local port, a3 = remote
# port; payload = the local address then the remote one, ADDR_BYTES each (an IPv4 address in the
# first 4). An accepted socket's local end is the server's.
ADDR_BYTES: Final = 16


def parse_format(text: str) -> dict[str, tuple[int, int]]:
    """name -> (offset, size) of the fields of a tracefs ``format`` file."""
    out = {}
    for line in text.splitlines():
        line = line.strip()
        if not line.startswith("field:"):
            continue
        parts = dict(p.strip().split(":", 1) for p in line.split(";") if ":" in p)
        decl = parts["field"].split("[")[0].split()
        if decl:
            out[decl[-1]] = (int(parts["offset"]), int(parts["size"]))
    return out


def mismatch(tp: Tracepoint, fmt: dict[str, tuple[int, int]]) -> str | None:
    """Why the kernel's layout ``fmt`` is not the declared one, or None when it is."""
    for f in tp.fields:
        got = fmt.get(f.name)
        if got != (f.offset, f.size):
            return f"{tp.path}: field {f.name} is {got or 'missing'}, expected {(f.offset, f.size)}"
    return None


def locate(tp: Tracepoint, tracefs: Iterable[str] = TRACEFS) -> tuple[int | None, str]:
    """The tracefs id of ``tp`` when the kernel lays its record out as declared, looked for under
    each of ``tracefs`` in turn; else None and why not."""
    dirs = list(tracefs)
    for base in dirs:
        d = os.path.join(base, "events", tp.path)
        try:
            with open(os.path.join(d, "format")) as f:
                fmt = parse_format(f.read())
            with open(os.path.join(d, "id")) as f:
                tp_id = int(f.read())
        except (OSError, ValueError):
            continue
        why = mismatch(tp, fmt)
        return (None, why) if why else (tp_id, "")
    return None, f"no {tp.path} in tracefs ({' or '.join(dirs)})"


def c_struct(tp: Tracepoint) -> list[str]:
    """The C declaration of ``tp``'s record, padded to the declared offsets."""
    lines = [f"struct {tp.struct} {{", f"    u8 common[{COMMON_BYTES}];"]
    at = COMMON_BYTES
    for f in sorted(tp.fields, key=lambda f: f.offset):
        if f.offset > at:
            lines.append(f"    u8 pad_{at}[{f.offset - at}];")
        base, _, n = f.ctype.partition("[")
        lines.append(f"    {base} {f.name}{'[' + n if n else ''};")
        at = f.offset + f.size
    lines.append("};")
    return lines
