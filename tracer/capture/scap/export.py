"""ktrace records as PPM events: the inverse of ``translate``, for writing .scap files.

Each syscall record becomes the PPM event of the same name and direction, the newest one sysdig
0.29 knows (``SYSDIG_EVENT_MAX``); a syscall PPM has no event for becomes a generic event (its
PPM syscall code and native number). Parameters are filled by name from the record, and what PPM
events carry beyond a record (the socket tuple of a connect or accept, the process facts of an
execve or clone exit) from ktrace's own state, kept here as a replay keeps it: a record is turned
into its event once the records live mode inserted right after it (thread and socket info) are
applied, as the pipeline applies them before showing it. ktrace's internal records change only
that state, except procexit, switch, CPU samples and container metadata, which have PPM events.
A record read from a .scap file still holds its PPM event (``translate.read_annex``): that one is
written back as it was.
"""

from __future__ import annotations

import functools
import json
import struct
from collections.abc import Callable, Iterable
from typing import Any, Final, Protocol

import msgpack

from tracer.engine import scapwrite
from tracer.event import Event, s64
from tracer.schema import flags as KF
from tracer.schema import record as R
from tracer.schema.events import SYSCALL_NR, SYSCALLS
from tracer.schema.syscalls_x86_64 import SYSCALLS_X86_64
from tracer.state.state import State
from tracer.state.tables import Fd, Thread

from . import encode as E
from .blocks import BLOCK_HEAD
from .events import INT_FORMATS
from .table import PPM_EVENTS, PPM_FLAGS, PT, PEvent, PParam
from .table import SYSCALLS as PPM_SC
from .translate import FLAG_TABLES, INTERNAL, NAME_ALIASES, read_annex

SYSDIG_EVENT_MAX: Final = 336  # event types sysdig 0.29's libscap knows (0..335)
GENERIC_E, GENERIC_X = 0, 1
_DF_STATE_ONLY = 1
_FOLLOWERS: Final = frozenset({R.EVT_THREADINFO, R.EVT_FDINFO})
_INT_STRUCTS: Final = {t: struct.Struct(f) for t, f in INT_FORMATS.items()}
_STRINGS: Final = frozenset({PT.CHARBUF, PT.FSPATH, PT.FSRELPATH})
_INET_PROTO: Final = {1: 6, 2: 17}  # SOCK_STREAM: IPPROTO_TCP, SOCK_DGRAM: IPPROTO_UDP
_THREAD_FLAGS: Final = 0x10F00  # Linux CLONE_VM | CLONE_FS | CLONE_FILES | CLONE_SIGHAND | CLONE_THREAD
_PPM_SC_CODE: Final = {name: i for i, name in enumerate(PPM_SC)}
_CONTAINER_TYPES: Final = {"docker": 0, "lxc": 1, "libvirt-lxc": 2, "mesos": 3, "rkt": 4, "custom": 5,
                           "cri": 6, "containerd": 7, "cri-o": 8, "bpm": 9, "static": 10, "podman": 11}
# PPM parameter name -> ktrace parameter names that hold its value.
_ALIASES: Final = {"name": ("name", "path", "pathname", "filename"), "path": ("path", "name"),
                   "filename": ("filename", "path", "name"), "pathname": ("pathname", "filename"),
                   "exe": ("filename", "pathname"), "len": ("length", "size", "len"), "length": ("length", "len"),
                   "initval": ("initval",), "maxevents": ("maxevents",), "out_fd": ("out_fd",)}
_PROCESS_EXITS: Final = frozenset({"execve", "execveat", "clone", "clone3", "fork", "vfork"})
_PROCESS_EXIT_EVTS: Final = frozenset(R.syscall_evt(SYSCALL_NR[n], 1) for n in _PROCESS_EXITS)


def _choose_ids() -> dict[tuple[str, int], int]:
    """(ktrace syscall name, direction) -> the PPM event type written for it."""
    by_name: dict[tuple[str, int], PEvent] = {}
    aliased: dict[tuple[str, int], PEvent] = {}
    for e in PPM_EVENTS[:SYSDIG_EVENT_MAX]:
        if e is None or "unused" in e.flags or e.category == "internal" or e.id < 2:
            continue
        # An event of the syscall's own name first; one of another name (pread for pread64) only
        # where there is none (mmap stays mmap, not mmap2).
        table = aliased if e.name in NAME_ALIASES else by_name
        key = (NAME_ALIASES.get(e.name, e.name), e.direction)
        old = table.get(key)
        # The newest current event; an old_version one only where there is nothing newer.
        if old is None or ("old_version" in old.flags) >= ("old_version" in e.flags):
            table[key] = e
    return {k: e.id for k, e in {**aliased, **by_name}.items()}


# Syscalls PPM writes as an event of another syscall's (as the kernel driver of sysdig 0.29 did):
# the event carries what libsinsp needs (an accepted socket's tuple, dup's new fd, pipe's ends).
WRITTEN_AS: Final = {"accept4": "accept", "dup2": "dup", "dup3": "dup", "pipe2": "pipe"}
PPM_IDS: Final = _choose_ids()
PPM_IDS.update({(k, d): PPM_IDS[(v, d)] for k, v in WRITTEN_AS.items() for d in (0, 1) if k != "accept4"})
PPM_IDS.update({("accept4", 0): 248, ("accept4", 1): 249})  # PPME_SOCKET_ACCEPT4_5: named accept
INTERNAL_IDS: Final = {R.EVT_PROCEXIT: 186, R.EVT_SWITCH: 152, R.EVT_PROCINFO: 234}
CONTAINER_JSON: Final = 272
CLONE_X: Final = 223  # PPME_SYSCALL_CLONE_20_X
EXECVE_X: Final = 293  # PPME_SYSCALL_EXECVE_19_X
_CLONE_NR, _EXECVE_NR = 56, 59
SETRESUID_E, SETRESGID_E = 192, 194  # PPME_SYSCALL_SETRESUID_E, PPME_SYSCALL_SETRESGID_E
assert all(PPM_EVENTS[i] is not None and PPM_EVENTS[i].name == n  # type: ignore[union-attr]
           for n, e in INTERNAL.items() for k, i in INTERNAL_IDS.items() if k == e)


def _enter_from_exit() -> frozenset[int]:
    """Enters whose PPM event has arguments ktrace's record keeps for the exit (open's path)."""
    out = set()
    for (name, direction), etype in PPM_IDS.items():
        info = PPM_EVENTS[etype]
        nr = SYSCALL_NR.get(name)
        if direction or info is None or nr is None or SYSCALLS[nr] is None:
            continue
        kinfo = SYSCALLS[nr]
        assert kinfo is not None
        have = {p.name for p in kinfo.enter}
        later = {p.name for p in kinfo.exit if p.src != "ret"}
        if any(p.name not in have and p.name in later for p in info.params):
            out.add(R.syscall_evt(nr, 0))
    return frozenset(out)


ENTER_FROM_EXIT: Final = _enter_from_exit()
# Enters of PPM events whose exit libsinsp reads with the enter's fd.
_FD_ENTERS: Final = frozenset(
    R.syscall_evt(SYSCALL_NR[name], 0) for (name, d), etype in PPM_IDS.items()
    if d == 0 and name in SYSCALL_NR and "uses_fd" in PPM_EVENTS[etype].flags)  # type: ignore[union-attr]


def _exit_after(buf: bytes, off: int, ev: Event, state: State) -> Event | None:
    """The next record of ``ev``'s thread in ``buf`` from ``off``, if it is ``ev``'s exit."""
    n = len(buf)
    while off + R.REC_FIXED <= n:
        length = int.from_bytes(buf[off + R.OFF_LEN:off + R.OFF_LEN + 4], "little")
        if length < R.REC_FIXED:
            return None
        if int.from_bytes(buf[off + R.OFF_TID:off + R.OFF_TID + 4], "little") == ev.tid:
            if int.from_bytes(buf[off + R.OFF_EVT:off + R.OFF_EVT + 2], "little") != ev.evt + 1:
                return None
            return Event(buf, off, 0, state)
        off += length
    return None


def _last_of_thread(buf: bytes, off: int, tid: int) -> bool:
    """Whether no record of ``tid`` follows ``off`` in ``buf``."""
    n = len(buf)
    while off + R.REC_FIXED <= n:
        if int.from_bytes(buf[off + R.OFF_TID:off + R.OFF_TID + 4], "little") == tid:
            return False
        length = int.from_bytes(buf[off + R.OFF_LEN:off + R.OFF_LEN + 4], "little")
        if length < R.REC_FIXED:
            return True
        off += length
    return True


def encode_value(p: PParam, v: Any) -> bytes:
    """One parameter's bytes: numbers at the type's width, strings NUL-terminated, buffers as is."""
    st = _INT_STRUCTS.get(p.type)
    if st is not None:
        n = int(v or 0)
        fmt = st.format
        bits = st.size * 8
        n &= (1 << bits) - 1
        if fmt[-1].islower() and n >= 1 << (bits - 1):
            n -= 1 << bits
        return st.pack(n)
    if v is None:
        v = b""
    if isinstance(v, str):
        v = v.encode()
    if p.type in _STRINGS:
        return bytes(v).split(b"\0", 1)[0] + b"\0"
    if p.type == PT.FDLIST:
        return b"\0\0"
    if p.type == PT.DYN:
        return b"\0" + struct.pack("<q", 0)
    return bytes(v)


@functools.lru_cache(maxsize=4096)  # open flags and modes repeat: an export asks for the same few
def linux_to_ppm_flags(ppm_table: str, value: int) -> int:
    """The inverse of translate.to_linux_flags: Linux's bits as PPM's, by their shared names."""
    ktable = FLAG_TABLES.get(ppm_table)
    if ktable is None:
        return value
    by_name = {n: b for b, n in KF.FLAGS.get(ktable, ())}
    out = E.ppm_flags(ppm_table, by_name, value)
    if ppm_table == "file_flags":
        out = (out & ~3) | {0: 1, 1: 2, 2: 3}.get(value & 3, 0)
    return out


_TABLED: Final = frozenset({PT.FLAGS8, PT.FLAGS16, PT.FLAGS32, PT.ENUMFLAGS8, PT.ENUMFLAGS16, PT.ENUMFLAGS32})


def ppm_value(ppm_table: str, ktable: str, value: int) -> int:
    """A flags or enum value from ktrace's table (Linux's values) in PPM's table, by name."""
    if ppm_table in FLAG_TABLES:
        return linux_to_ppm_flags(ppm_table, value)
    ppm = PPM_FLAGS.get(ppm_table)
    if not ppm:
        return value
    enum = KF.ENUMS.get(ktable)
    if enum is not None:  # its one name
        name = enum.get(value)
        return next((v for n, v in ppm if n == name), value) if name is not None else value
    table = KF.FLAGS.get(ktable)
    return E.ppm_flags(ppm_table, {n: b for b, n in table}, value) if table is not None else value


def ppm_sockaddr(raw: bytes) -> bytes:
    """A Linux struct sockaddr (as ktrace's segments hold it) in PPM's encoding."""
    from tracer.event import sockaddr_parts

    parts = sockaddr_parts(raw)
    return E.sockaddr(*parts) if parts is not None else b""


def fd_tuple(fd: Fd | None) -> bytes:
    """The socket tuple libsinsp names a socket fd by (source = client for an accepted one); none
    for a server's socket named by its own address only (a bound UDP one), which keeps its name."""
    if fd is None:
        return b""
    if fd.type in ("ipv4", "ipv6") and (fd.cport or fd.sport) and not (fd.is_server and not fd.cport):
        return E.socktuple(fd.type, fd.cip, fd.cport, fd.sip, fd.sport)
    if fd.type == "unix" and fd.name:
        return E.unix_tuple(fd.name)
    return b""


def cgroup_pairs(text: str) -> list[tuple[str, str]]:
    """/proc/PID/cgroup text as scap's (subsystem, path) pairs; cgroup v2's single line under the
    controllers libsinsp's container matchers look at."""
    out: list[tuple[str, str]] = []
    for line in text.splitlines():
        parts = line.split(":", 2)
        if len(parts) < 3:
            continue
        subs, path = parts[1], parts[2]
        if not subs:
            out.extend((s, path) for s in ("cpuset", "cpu", "memory"))
        else:
            out.extend((s, path) for s in subs.split(",") if s)
    return out


class Sink(Protocol):
    """Where blocks go, one by one."""

    def append(self, block: bytes, /) -> None: ...

    def extend(self, blocks: Iterable[bytes], /) -> None: ...


class Exporter:
    """Turns batches of ktrace records into PPM event blocks, keeping the state they need."""

    def __init__(self, state: State | None = None, plan: Any = None) -> None:
        self.state = state if state is not None else State()
        # ``plan``: the compiled recipes (recipe.compile_plan), which write the events that need no
        # state; without it every event is written here, the reference the recipes are tested against.
        self._plan: Any = plan
        self._held: Event | None = None  # an event waiting for the records that follow it
        self._peek: Event | None = None  # the exit of the enter being written, read ahead
        self._carry = b""  # a batch's tail from an enter whose exit it did not hold
        self._enters = scapwrite.Enters()  # per thread: the enter last written for it, its fd
        self._retold: Event | None = None  # thread info that followed the held event
        # Threads libsinsp has the facts of: from the thread table or a process event written.
        self.told: set[int] = set()
        self.events = 0
        self._fast_off = 0
        # Socket tuples by (pid << 32 | fd), as the recipes asked for them: good while only the
        # recipes' run changes the state (which forgets the fds it changes); emptied when
        # anything else may have (the state's version moved).
        self._tuples: dict[int, bytes] = {}
        self._tuples_at = -1
        self.first_ts = 0
        self.last_ts = 0
        self._sources: dict[str, Callable[[Event, PParam, dict[str, Any]], Any]] = {
            "res": lambda ev, p, kv: s64(ev.ret), "tuple": self._tuple, "data": _data,
        }

    def feed(self, batch: bytes | memoryview, final: bool = False, out: Sink | None = None) -> Sink:
        """The blocks of the records in ``batch``; its last events may wait for the next batch
        (the last exit for what follows it, an open's enter for its exit) unless ``final``. Each
        block goes to ``out`` (a new list by default) as soon as it is made: the state is then as
        the block's event left it, so a file begun there starts with the right tables."""
        if out is None:
            out = []
        state = self.state
        off, n = 0, len(batch)
        buf = bytes(batch)
        carried = self._carry
        if carried:  # the last batch's tail, from an enter whose exit it did not hold
            buf = carried + buf
            n = len(buf)
            self._carry = b""
        plan = self._plan
        while off + R.REC_FIXED <= n:
            if plan is not None and self._fast_run(plan, buf, off, out):
                off = self._fast_off
                continue
            length = int.from_bytes(buf[off + R.OFF_LEN:off + R.OFF_LEN + 4], "little")
            if length < R.REC_FIXED or off + length > n:
                break
            ev = Event(buf, off, 0, state)
            if ev.evt in ENTER_FROM_EXIT and not final and not (carried and off == 0) \
                    and _last_of_thread(buf, off + length, ev.tid):
                self._carry = buf[off:]  # its exit may open the next batch: wait for it, in order
                break
            off += length
            held = self._held
            if ev.evt in _FOLLOWERS and held is not None and ev.tid == held.tid:
                state.apply(ev)  # what live mode learned about the held event: before it is written
                if ev.evt == R.EVT_THREADINFO and held.evt not in _PROCESS_EXIT_EVTS:
                    self._retold = ev  # a rename (prctl): told with the held event
                continue
            self._release(out)
            state.apply(ev)
            if ev.evt == R.EVT_THREADINFO:
                out.append(self._thread_block(ev, ev.tid in self.told))
                continue
            if ev.evt in _FOLLOWERS or ev.evt in (R.EVT_CONNECTED, R.EVT_DROPS):
                continue
            if ev.evt == R.EVT_CONTAINER:
                out.extend(self._container(ev))
                continue
            if ev.flags & R.RF_HIDDEN and ev.tid not in state.threads:
                # A state-only record of a thread nobody knows (a filtered capture keeps every exec
                # enter): nothing libsinsp could use, and it would make a nameless thread of it.
                continue
            if ev.evt < R.EVT_BASE_OTHER and ev.evt & 1:
                self._held = ev  # an exit: its followers may come next
            else:
                if ev.evt in ENTER_FROM_EXIT:
                    self._peek = _exit_after(buf, off, ev, state)
                out.append(self._block(ev))
                self._peek = None
        state.reap()
        return out

    def _fast_run(self, plan: Any, buf: bytes, off: int, out: Sink) -> bool:
        """Write the records from ``off`` that have a recipe, as many as follow each other;
        whether there was one (``_fast_off`` is then the offset after them)."""
        held = self._held
        if held is not None:
            evt = int.from_bytes(buf[off + R.OFF_EVT:off + R.OFF_EVT + 2], "little")
            length = int.from_bytes(buf[off + R.OFF_LEN:off + R.OFF_LEN + 4], "little")
            if evt >= len(plan.flags) or not plan.flags[evt] or off + length > len(buf):
                return False
            self._release(out)  # as for any record that is not the held event's follower
        state = self.state
        if state.version != self._tuples_at:
            self._tuples.clear()
        end, count, first, last, blocks = plan.run(buf, off, self._enters, state, self._tuples, self._tuple_of,
                                                    self._apply_at)
        self._tuples_at = state.version
        if end == off:
            return False
        self._fast_off = end
        if not count:
            return True  # hidden enters only noted
        self.events += count
        if not self.first_ts:
            self.first_ts = first
        self.last_ts = last
        put = getattr(out, "append_run", None)
        if put is not None:
            put(blocks, count)
        else:
            out.extend(split_blocks(blocks))
        return True

    def finish(self, out: Sink | None = None) -> Sink:
        if out is None:
            out = []
        if self._carry:
            tail, self._carry = self._carry, b""
            self.feed(tail, final=True, out=out)
        self._release(out)
        return out

    def _release(self, out: Sink) -> None:
        if self._held is not None:
            ev, self._held = self._held, None
            if self._retold is not None:
                # Before the event: ktrace shows a prctl rename's exit with the new name.
                out.append(self._thread_block(self._retold, True))
                self._retold = None
            out.append(self._block(ev))

    # --- one event -------------------------------------------------------------------------
    def _block(self, ev: Event) -> bytes:
        self.events += 1
        if not self.first_ts:
            self.first_ts = ev.ts
        self.last_ts = ev.ts
        flags = _DF_STATE_ONLY if ev.flags & R.RF_HIDDEN else None
        if ev.ppm is not None:
            etype, params = ev.ppm
            return E.event(ev.cpu, ev.ts, ev.tid, etype, params, flags)
        evt = ev.evt
        missed = b""
        if evt < R.EVT_BASE_OTHER:
            if not evt & 1:
                self._enters.enter(ev.tid, evt)
            elif self._enters.exit(ev.tid) != evt - 1 and evt - 1 in _FD_ENTERS:
                # An exit whose enter the capture does not hold (it began before the capture):
                # libsinsp takes the fd from the enter, so the enter goes first, state-only, made
                # from the registers the exit record keeps.
                enter = Event(R.pack_record(ev.ts, ev.tid, ev.pid, evt - 1, ev.cpu, 0, ev.args), 0, 0, self.state)
                et, ps = self.ppm_event(enter)
                missed = E.event(ev.cpu, ev.ts, ev.tid, et, ps, _DF_STATE_ONLY)
        etype, params = self.ppm_event(ev)
        return missed + E.event(ev.cpu, ev.ts, ev.tid, etype, params, flags)

    def ppm_event(self, ev: Event) -> tuple[int, list[bytes]]:
        """(PPM type, parameter values) of one record."""
        evt = ev.evt
        if evt >= R.EVT_BASE_OTHER:
            return self._internal(ev)
        direction = evt & 1
        nr = evt >> 1
        kinfo = SYSCALLS[nr]
        name = kinfo.name if kinfo is not None else SYSCALLS_X86_64.get(nr, "") if isinstance(
            SYSCALLS_X86_64, dict) else (SYSCALLS_X86_64[nr] if nr < len(SYSCALLS_X86_64) else "")
        if not direction:
            fd = ev.fd_num()
            self._enters.set_enter_fd(ev.tid, fd if fd is not None else -1)
        etype = PPM_IDS.get((name, direction))
        if etype is None:
            code = _PPM_SC_CODE.get(name, 0)
            if direction:
                return GENERIC_X, [struct.pack("<H", code)]
            return GENERIC_E, [struct.pack("<H", code), struct.pack("<H", nr)]
        info = PPM_EVENTS[etype]
        assert info is not None
        kv: dict[str, Any] = {}
        if kinfo is not None:
            for kp in kinfo.params(direction):
                kv[kp.name] = (kp, ev.raw(kp))
            peek = self._peek
            if peek is not None:
                # libsinsp names a file opened by openat from its enter: the exit's arguments.
                for kp in kinfo.params(1):
                    if kp.name not in kv and kp.src != "ret":
                        kv[kp.name] = (kp, peek.raw(kp))
        if direction and name in _PROCESS_EXITS:
            self.told.add(ev.tid)
            return etype, self._process_exit(ev, info, kv)
        return etype, [encode_value(p, self._value(ev, p, kv, direction)) for p in info.params]

    def _value(self, ev: Event, p: PParam, kv: dict[str, Any], direction: int) -> Any:
        if p.name == "proto" and "type" in kv and not kv.get("proto", (None, 0))[1]:
            # libsinsp tells TCP from UDP by the protocol, or by a type without its flag bits:
            # the protocol the kernel chose for protocol 0.
            return _INET_PROTO.get(int(kv["type"][1]) & 0xF, 0)
        src = self._sources.get(p.name)
        if src is not None and (p.name != "res" or direction):
            return src(ev, p, kv)
        if p.type in (PT.FD, PT.FD32) and p.name == "fd":
            if direction and "fd" in kv and kv["fd"][0].src == "ret":
                return s64(ev.ret)
            if "fd" in kv:
                return kv["fd"][1]
            return self._enters.enter_fd(ev.tid) if direction else ev.fd_num()
        for alias in _ALIASES.get(p.name, (p.name,)):
            found = kv.get(alias)
            if found is None:
                continue
            kp, v = found
            if p.type == PT.SOCKADDR:
                return ppm_sockaddr(v) if isinstance(v, bytes) else b""
            if isinstance(v, int) and p.table and p.type in _TABLED:
                return ppm_value(p.table, kp.fmt, v)
            if p.type in _STRINGS and isinstance(v, bytes):
                return v
            if isinstance(v, (bytes, str)) and p.type in _INT_STRUCTS:
                return 0
            return v
        if p.name in ("fd1", "fd2") and "fds" in kv and isinstance(kv["fds"][1], bytes) and len(kv["fds"][1]) >= 8:
            return struct.unpack_from("<2i", kv["fds"][1])[p.name == "fd2"]
        if p.name == "size" and direction:
            return max(s64(ev.ret), 0)
        if p.name == "dirfd" and p.type in (PT.FD, PT.FD32):
            return -100  # AT_FDCWD: ktrace's open and creat have no dirfd
        return None

    def _tuple(self, ev: Event, p: PParam, kv: dict[str, Any]) -> bytes:
        return fd_tuple(ev.fd)

    def _apply_at(self, buf: bytes, off: int) -> None:
        """The recipes' way to have the state see a record that changes it."""
        self.state.apply(Event(buf, off, 0, self.state))
        self._tuples.clear()

    def _tuple_of(self, pid: int, num: int) -> bytes:
        """The recipes' socket tuple: ``_tuple`` of fd ``num`` (-1: none) of process ``pid``."""
        return fd_tuple(self.state.fd(pid, num)) if num >= 0 else b""

    def _process_exit(self, ev: Event, info: PEvent, kv: dict[str, Any]) -> list[bytes]:
        """execve and clone exits: the process facts libsinsp builds its thread from."""
        t = self.state.threads.get(ev.tid) or Thread(ev.tid, ev.pid)
        res = s64(ev.ret)
        comm = t.comm
        if "comm" in kv and isinstance(kv["comm"][1], bytes) and kv["comm"][1] and res == 0:
            comm = kv["comm"][1].split(b"\0", 1)[0].decode(errors="replace") or comm
        flags = kv["flags"][1] if "flags" in kv else 0
        if isinstance(flags, bytes):  # clone3's, read from its struct clone_args
            flags = int.from_bytes(flags[:8], "little") if len(flags) >= 8 else 0
        if not kv and t.tid != t.pid:
            flags = _THREAD_FLAGS  # a thread told of on its own: libsinsp makes it one by these
        values: dict[str, Any] = {
            "res": res, "exe": t.exe or comm, "args": b"".join(a.encode() + b"\0" for a in t.args),
            "tid": t.tid, "pid": t.pid, "ptid": t.ptid, "cwd": t.cwd, "fdlimit": t.fdlimit,
            "vm_size": t.vmsize_kb, "vm_rss": t.vmrss_kb, "comm": comm,
            "cgroups": b"".join(f"{k}={v}".encode() + b"\0" for k, v in cgroup_pairs(t.cgroups)),
            "flags": linux_to_ppm_flags("clone_flags", flags), "uid": t.uid, "gid": t.gid,
            "vtid": t.vtid if t.vtid >= 0 else t.tid, "vpid": t.vpid if t.vpid >= 0 else t.pid,
            "tty": t.tty, "pgid": t.pid, "loginuid": t.loginuid, "env": b"",
        }
        if info.name != "execve" and info.name != "execveat" and res > 0:
            # The parent's side of a clone: libsinsp takes the child's ids from the result.
            values.update(tid=ev.tid, pid=ev.pid)
        return [encode_value(p, values.get(p.name)) for p in info.params]

    def _thread_block(self, ev: Event, known: bool) -> bytes:
        """What ktrace learned of a thread on its own, as a state-only event libsinsp takes it
        from: for a thread new to it (a filtered capture's first event of it), a clone exit on the
        thread's side (it gets its parent's fds, as from any clone); for a known one (renamed by
        prctl, which PPM has no event for), an execve exit with its facts (its fds stay)."""
        etype, nr = (EXECVE_X, _EXECVE_NR) if known else (CLONE_X, _CLONE_NR)
        self.told.add(ev.tid)
        info = PPM_EVENTS[etype]
        assert info is not None
        rec = Event(R.pack_record(ev.ts, ev.tid, ev.pid, R.syscall_evt(nr, 1)), 0, 0, self.state)
        params = self._process_exit(rec, info, {})
        t = self.state.threads.get(ev.tid)
        # libsinsp starts a thread's clock (proc.duration) at the clone exit that makes it: at
        # the thread's start, when ktrace knows it from /proc.
        ts = t.start_ts if not known and t is not None and 0 < t.start_ts < ev.ts else ev.ts
        out = [E.event(ev.cpu, ts, ev.tid, etype, params, _DF_STATE_ONLY)]
        if t is not None and t.uid >= 0:
            # An execve exit has no user, libsinsp takes a clone child's from its parent: told by
            # a setresuid/setresgid that succeeded.
            for etype, v in ((SETRESUID_E, t.uid), (SETRESGID_E, t.gid)):
                if v >= 0:
                    out.append(E.event(ev.cpu, ev.ts, ev.tid, etype, [struct.pack("<I", v)] * 3, _DF_STATE_ONLY))
                    out.append(E.event(ev.cpu, ev.ts, ev.tid, etype + 1, [struct.pack("<q", 0)], _DF_STATE_ONLY))
        return b"".join(out)

    def _internal(self, ev: Event) -> tuple[int, list[bytes]]:
        etype = INTERNAL_IDS[ev.evt] if ev.evt in INTERNAL_IDS else GENERIC_E
        info = PPM_EVENTS[etype]
        assert info is not None
        values: dict[str, Any] = {}
        if ev.evt == R.EVT_PROCEXIT:
            status = ev.args[0] & 0xFFFFFFFF
            values = {"status": status, "ret": status >> 8 & 0xFF, "sig": status & 0x7F,
                      "core": 1 if status & 0x80 else 0}
        elif ev.evt == R.EVT_SWITCH:
            values = {"next": ev.args[0]}
        elif ev.evt == R.EVT_PROCINFO:
            try:
                doc = msgpack.unpackb(ev.seg0) if ev.seg0 else {}
            except (ValueError, msgpack.ExtraData):
                doc = {}
            if isinstance(doc, dict):
                values = {"cpu_usr": doc.get("u", 0), "cpu_sys": doc.get("s", 0)}
        return etype, [encode_value(p, values.get(p.name)) for p in info.params]

    def _container(self, ev: Event) -> list[bytes]:
        try:
            doc = msgpack.unpackb(ev.seg0) if ev.seg0 else {}
        except (ValueError, msgpack.ExtraData):
            return []
        if not isinstance(doc, dict) or "id" not in doc:
            return []
        return [container_block(doc, ev.ts)]


def split_blocks(blocks: bytes) -> list[bytes]:
    """Consecutive blocks, one by one (each holds its length after its type)."""
    out, off = [], 0
    while off < len(blocks):
        _btype, total = BLOCK_HEAD.unpack_from(blocks, off)
        out.append(blocks[off:off + total])
        off += total
    return out


def container_json(doc: dict[str, Any]) -> bytes:
    """ktrace's container row as the JSON of a PPM container event (libsinsp's keys)."""
    ctype = doc.get("type")
    body: dict[str, Any] = {
        "id": doc.get("id"), "type": _CONTAINER_TYPES.get(str(ctype), 0) if not isinstance(ctype, int) else ctype,
        "name": doc.get("name") or "", "image": doc.get("image") or "", "imageid": doc.get("image_id") or "",
        "imagerepo": doc.get("image_repository") or "", "imagetag": doc.get("image_tag") or "",
        "imagedigest": doc.get("image_digest") or "", "privileged": bool(doc.get("privileged")),
        "labels": doc.get("labels") or {}, "Mounts": [], "is_pod_sandbox": False, "lookup_state": 1,
    }
    return json.dumps({"container": body}, separators=(",", ":")).encode()


def container_block(doc: dict[str, Any], ts: int) -> bytes:
    info = PPM_EVENTS[CONTAINER_JSON]
    assert info is not None and info.params[0].name == "json"
    # State only: ktrace shows no line for container metadata, and no chisel counts it as a call.
    return E.event(0, ts, -1, CONTAINER_JSON, [container_json(doc) + b"\0"], _DF_STATE_ONLY)


def _data(ev: Event, p: PParam, kv: dict[str, Any]) -> bytes:
    found = kv.get("data")
    return found[1] if found is not None and isinstance(found[1], bytes) else b""


__all__ = ["Exporter", "PPM_IDS", "container_block", "encode_value", "read_annex"]
