"""The blocks of a .scap file as bytes: the inverse of ``blocks`` and ``events``, in the block
versions sysdig 0.29's libscap reads (section 1.2, MI, IL_V2, UL_V2, PL_V9, FDL_V2, EV_V2, EVF_V2).

Entries of the V2/V9 tables carry their own length, so a reader skips what it does not know;
strings are u16-length-prefixed without a NUL; every block is padded to 4 bytes and ends with its
length again.
"""

from __future__ import annotations

import functools
import ipaddress
import struct
from collections.abc import Iterable, Sequence
from typing import Final

from . import blocks as B
from .table import PPM_FLAGS

SECTION_VERSION: Final = (1, 2)
_BLOCK_HEAD = B.BLOCK_HEAD
_U32 = struct.Struct("<I")
_EV_HEAD = struct.Struct("<HQQIHI")  # cpu, ts, tid, event length, type, nparams
_EVF_HEAD = struct.Struct("<HIQQIHI")  # cpu, dump flags, then the same
EV_HEAD_LEN: Final = 26  # ts, tid, len, type, nparams: what an event's length counts beside its params
_PAD = (b"", b"\0\0\0", b"\0\0", b"\0")

# ktrace's fd.type names -> scap_fd_type (files as SCAP_FD_FILE_V2, which carries open flags).
# Kinds libscap 0.29 has no code for (bpf, memfd, ones ktrace could not type) are written as
# SCAP_FD_UNSUPPORTED, as its /proc scan lists such fds: libsinsp keeps them, typed <NA>.
FD_KINDS: Final = {"file": 16, "directory": 2, "ipv4": 3, "ipv6": 4, "pipe": 7, "unix": 8, "event": 9,
                   "signalfd": 11, "eventpoll": 12, "inotify": 13, "timerfd": 14, "netlink": 15,
                   "bpf": 10, "memfd": 10, "unknown": 10}
L4_CODES: Final = {name: code for code, name in B.L4PROTOS.items()}


def block(btype: int, *parts: bytes) -> bytes:
    """One block: head, body, padding, trailing length."""
    n = sum(len(p) for p in parts)
    total = 12 + n + (-n & 3)
    return b"".join((_BLOCK_HEAD.pack(btype, total), *parts, _PAD[n & 3], _U32.pack(total)))


# libscap refuses a table whose strings are longer than its buffers: paths (exe, cwd, root, an
# fd's name) SCAP_MAX_PATH_SIZE, args, env and cgroups SCAP_MAX_ARGS_SIZE/ENV/CGROUPS, user and
# group names MAX_CREDENTIALS_STR_LEN. Longer ones are cut, lists at an item's end.
MAX_PATH: Final = 1024
MAX_LIST: Final = 4096
MAX_CREDENTIAL: Final = 256


def s16(raw: bytes, limit: int = MAX_PATH) -> bytes:
    raw = raw[:limit - 1]
    return struct.pack("<H", len(raw)) + raw


def nul_list(items: Iterable[str], limit: int = MAX_LIST) -> bytes:
    """NUL-terminated items, as many whole ones as fit in ``limit`` bytes."""
    out = b""
    for item in items:
        raw = item.encode()[:limit - 1] + b"\0"
        if len(out) + len(raw) > limit - 1:
            break
        out += raw
    return out


def shb() -> bytes:
    """The section header: format 1.2, section length unknown (-1)."""
    return block(B.SHB, struct.pack("<IHHq", B.SHB_MAGIC, *SECTION_VERSION, -1))


def mi(hostname: str, cpus: int, memory: int, max_pid: int, boot_ts: int) -> bytes:
    """Machine info; the boot time goes in the first reserved word, where newer libscap reads it."""
    name = hostname.encode()[:127].ljust(128, b"\0")
    return block(B.MI, struct.pack("<IQQ", cpus, memory, max_pid), name, struct.pack("<4Q", boot_ts, 0, 0, 0))


@functools.lru_cache(maxsize=4096)  # an export names the same few addresses on every event
def _packed_ip(ip: str, size: int) -> bytes:
    try:
        a = ipaddress.ip_address(ip)
    except ValueError:
        return b"\0" * size
    if size == 16 and a.version == 4:
        return ipaddress.IPv6Address("::ffff:" + ip).packed
    return a.packed if len(a.packed) == size else b"\0" * size


def iflist(entries: Iterable[Sequence[str]]) -> bytes:
    """IL_V2 from ktrace's header rows ``[name, family, address, netmask]``."""
    out = []
    for e in entries:
        name, fam, addr = str(e[0]), str(e[1]), str(e[2])
        mask = str(e[3]) if len(e) > 3 and e[3] else ""
        size = 4 if fam == "ipv4" else 16
        kind = 1 if size == 4 else 2
        raw = name.encode()
        a, m = _packed_ip(addr, size), _packed_ip(mask, size) if mask else b"\0" * size
        body = struct.pack("<HH", kind, len(raw)) + a + m + a + struct.pack("<Q", 0) + raw
        out.append(_U32.pack(len(body)) + body)
    return block(B.IL_V2, *out)


def userlist(users: Iterable[Sequence[object]], groups: Iterable[Sequence[object]]) -> bytes:
    """UL_V2 from ktrace's rows ``[uid, name, home, shell]`` and ``[gid, name]``."""
    out = []
    for uid, name, home, shell in (tuple(u)[:4] for u in users):
        body = struct.pack("<BII", 0, int(str(uid)) & 0xFFFFFFFF, 0) + s16(str(name).encode(), MAX_CREDENTIAL) \
            + s16(str(home or "").encode(), MAX_CREDENTIAL) + s16(str(shell or "").encode(), MAX_CREDENTIAL)
        out.append(_U32.pack(len(body) + 4) + body)
    for gid, name in (tuple(g)[:2] for g in groups):
        body = struct.pack("<BI", 1, int(str(gid)) & 0xFFFFFFFF) + s16(str(name).encode(), MAX_CREDENTIAL)
        out.append(_U32.pack(len(body) + 4) + body)
    return block(B.UL_V2, *out)


def thread_entry(t: B.ScapThread) -> bytes:
    """One PL_V9 entry (its length, itself included, first)."""
    args = nul_list(t.args)
    cg = nul_list(f"{k}={v}" for k, v in t.cgroups)
    body = b"".join((
        struct.pack("<QQQqq", t.tid, t.pid, t.ptid & 0xFFFFFFFFFFFFFFFF, t.sid, t.vpgid),
        s16(t.comm.encode()), s16(t.exe.encode()), s16(t.exepath.encode()), s16(args, MAX_LIST + 1),
        s16(t.cwd.encode()),
        struct.pack("<QIIIIIIQQ", t.fdlimit & 0xFFFFFFFFFFFFFFFF, t.flags, t.uid & 0xFFFFFFFF, t.gid & 0xFFFFFFFF,
                    t.vmsize_kb, t.vmrss_kb, t.vmswap_kb, t.pfmajor, t.pfminor),
        s16(t.env, MAX_LIST), struct.pack("<qq", t.vtid, t.vpid), s16(cg, MAX_LIST + 1), s16(t.root.encode()),
        struct.pack("<i", t.loginuid if -(1 << 31) <= t.loginuid < (1 << 31) else -1),
    ))
    return _U32.pack(len(body) + 4) + body


def proclist(threads: Iterable[B.ScapThread]) -> bytes:
    return block(B.PL_V9, *(thread_entry(t) for t in threads))


def fd_entry(f: B.ScapFd) -> bytes:
    """One FDL_V2 entry: fd, inode, kind, then the kind's fields."""
    k = f.kind
    head = struct.pack("<qQB", f.fd, f.ino, k)
    proto = L4_CODES.get(f.l4proto, 0)
    if k == 3:
        rest = _packed_ip(f.cip, 4) + _packed_ip(f.sip, 4) + struct.pack("<HHB", f.cport, f.sport, proto)
    elif k == 4:
        rest = _packed_ip(f.cip, 16) + _packed_ip(f.sip, 16) + struct.pack("<HHB", f.cport, f.sport, proto)
    elif k in (5, 6):
        rest = _packed_ip(f.sip, 4 if k == 5 else 16) + struct.pack("<HB", f.sport, proto)
    elif k == 8:
        rest = b"\0" * 16 + s16(f.name.encode())
    elif k == 16:
        rest = _U32.pack(f.open_flags) + s16(f.name.encode())
    elif k == 0:
        rest = b""
    else:
        rest = s16(f.name.encode())
    body = head + rest
    return _U32.pack(len(body) + 4) + body


def fdlist(tid: int, fds: Iterable[B.ScapFd]) -> bytes:
    return block(B.FDL_V2, struct.pack("<Q", tid), *(fd_entry(f) for f in fds))


def event(cpu: int, ts: int, tid: int, etype: int, params: Sequence[bytes], dump_flags: int | None = None) -> bytes:
    """An EV_V2 block (EVF_V2 when ``dump_flags`` is given) holding one event."""
    n = len(params)
    lens = struct.pack(f"<{n}H", *(len(p) for p in params))
    length = EV_HEAD_LEN + 2 * n + sum(len(p) for p in params)
    if dump_flags is None:
        head = _EV_HEAD.pack(cpu, ts, tid & 0xFFFFFFFFFFFFFFFF, length, etype, n)
        return block(B.EV_V2, head, lens, *params)
    head = _EVF_HEAD.pack(cpu, dump_flags, ts, tid & 0xFFFFFFFFFFFFFFFF, length, etype, n)
    return block(B.EVF_V2, head, lens, *params)


# --- parameter values ------------------------------------------------------------------------------

def sockaddr(fam: str, ip: str, port: int) -> bytes:
    """A PPM sockaddr: u8 family, address, u16 port (host order); unix: the path."""
    if fam == "ipv4":
        return b"\x02" + _packed_ip(ip, 4) + struct.pack("<H", port)
    if fam == "ipv6":
        return b"\x0a" + _packed_ip(ip, 16) + struct.pack("<H", port)
    if fam == "unix":
        return b"\x01" + ip.encode() + b"\0"
    return b""


def socktuple(fam: str, sip: str, sport: int, dip: str, dport: int) -> bytes:
    """A PPM socket tuple, source (this end) first."""
    if fam == "ipv4":
        return b"\x02" + _packed_ip(sip, 4) + struct.pack("<H", sport) + _packed_ip(dip, 4) + struct.pack("<H", dport)
    if fam == "ipv6":
        return (b"\x0a" + _packed_ip(sip, 16) + struct.pack("<H", sport) + _packed_ip(dip, 16)
                + struct.pack("<H", dport))
    return b""


def unix_tuple(path: str) -> bytes:
    return b"\x01" + b"\0" * 16 + path.encode() + b"\0"


def ppm_flags(ppm_table: str, linux_table: dict[str, int], value: int) -> int:
    """A Linux flags value in PPM's encoding, matched by the names both tables share."""
    out = 0
    for name, bit in PPM_FLAGS.get(ppm_table, ()):
        lb = linux_table.get(name)
        if bit and lb and value & lb == lb:
            out |= bit
    return out
