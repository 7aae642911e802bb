"""ScapWriter: ktrace's records out as .scap files sysdig 0.29 reads (``ktrace -w FILE.scap``).

The same surface as CaptureWriter (``write_events``, ``write_table``, ``write_stats``, ``close``,
``finished``, ``stats``, ``files``), so the session drives either. Each file, rotated ones too,
opens with the section header, the machine info, the interfaces, users and groups, the thread
table (PL_V9), one fd table (FDL_V2) per process and one container event per container, all as
the state stands when the file starts, then the events (EV_V2; hidden ones, kept for state only,
as EVF_V2). ``gzip`` compresses the whole file, as ``sysdig -z`` does. Rotation follows the
RotatePolicy exactly as for .kcap files (tracer/capture/rotate.py); ``-C`` counts bytes written.

Writing is done in the caller's thread: converting a record costs more than writing it.
"""

from __future__ import annotations

import fcntl
import gzip
import os
import socket
import struct
import time
from collections.abc import Iterable
from types import TracebackType
from typing import IO, Any, Final

from tracer.capture.rotate import RotatePolicy, Rotation
from tracer.capture.writer import machine_info
from tracer.errors import CaptureError
from tracer.state.state import State

from . import blocks as B
from . import encode as E
from .export import Exporter, cgroup_pairs, container_block
from .recipe import compile_plan

SCAP_SUFFIXES: Final = (".scap", ".scap.gz")
# PPM_CL_CLONE_THREAD | PPM_CL_CLONE_FILES: what libscap's /proc scan gives every thread that is
# not its process's main one; libsinsp shares the main thread's fd table by CLONE_FILES.
_PL_THREAD_FLAGS: Final = 0x2000 | 0x1
_EV_TS: Final = 10  # an EV_V2 block's timestamp: after its type, its length and the cpu


def wants_scap(path: str, fmt: str | None) -> bool:
    """Whether ``-w path`` writes .scap: ``--format scap``, or the file's extension."""
    if fmt is not None:
        return fmt == "scap"
    return path.lower().endswith(SCAP_SUFFIXES)


class _Counting:
    """A file object that counts the bytes written through it (for -C on a gzip stream)."""

    def __init__(self, f: IO[bytes]) -> None:
        self.f = f
        self.n = 0

    def write(self, b: bytes) -> int:
        self.f.write(b)
        self.n += len(b)
        return len(b)


class ScapWriter:
    """Write ktrace records as a .scap capture (or a rotated set of them)."""

    def __init__(self, path: str | os.PathLike[str], meta: dict[str, Any], *, rotate: RotatePolicy | None = None,
                 compress: bool = False) -> None:
        self._meta = dict(meta)
        self._machine = self._meta.get("machine") or machine_info()
        self._policy = rotate if rotate is not None and rotate.rotates else None
        self._rot = Rotation(os.fspath(path), self._policy, time.time())
        self._compress = compress
        self.exporter = Exporter(State(), compile_plan(state_changes=self._policy is None))
        self._counters: dict[str, Any] = {"events": 0, "blocks": 0, "bytes": 0, "files": 0,
                                          "dropped_after_finish": 0}
        self._files: list[str] = []
        self._raw: IO[bytes] | None = None
        self._out: Any = None  # the counting file, or a GzipFile over it
        self._count: _Counting | None = None
        self._file_events = 0
        self._prologue_done = False
        self._finished = False
        self._closed = False
        self._interfaces = local_interfaces()
        self._first_ts = 0
        try:
            self._open(self._rot.name)
        except OSError as e:
            raise CaptureError(f"cannot write capture {self._rot.name}: {e.strerror or e}") from None

    # --- CaptureWriter's surface -----------------------------------------------------------------
    @property
    def finished(self) -> bool:
        return self._finished

    @property
    def stats(self) -> dict[str, Any]:
        return dict(self._counters)

    @property
    def files(self) -> list[str]:
        return list(self._files)

    def write_table(self, kind: str, rows: list[Any]) -> None:
        """A state table: it seeds the state of the first file; later ones are the state the
        events already keep, so they are not needed."""
        if not self._prologue_done and not self.exporter.events:
            self.exporter.state.load_table(kind, rows)

    def write_stats(self, stats: dict[str, Any]) -> None:
        """scap files have no place for ktrace's counters: nothing to write."""

    def write_events(self, batch: bytes, count: int, first_ts: int, last_ts: int) -> None:
        if self._closed:
            raise CaptureError("capture writer is closed")
        if not self._prologue_done:
            self._first_ts = first_ts
            self._prologue()  # the tables as they stand before the first event
        try:
            self.exporter.feed(batch, out=self)
        except OSError as e:
            raise CaptureError(f"cannot write capture: {e.strerror or e}") from None

    def flush(self, timeout: float | None = None) -> bool:
        if self._out is not None:
            self._out.flush()
        return True

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            self.exporter.finish(out=self)
            if not self._prologue_done and self._out is not None:
                self._prologue()
            self._end()
        except OSError as e:
            raise CaptureError(f"cannot write capture: {e.strerror or e}") from None

    def __enter__(self) -> ScapWriter:
        return self

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    # --- files ---------------------------------------------------------------------------------
    def _open(self, name: str) -> None:
        fd = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
        raw = os.fdopen(fd, "wb", buffering=1 << 20)
        self._raw = raw
        self._count = _Counting(raw)
        self._out = gzip.GzipFile(fileobj=self._count, mode="wb",  # type: ignore[call-overload]
                                  compresslevel=6) if self._compress else self._count
        self._files.append(name)
        self._counters["files"] += 1
        self._file_events = 0
        self._prologue_done = False

    def _end(self) -> None:
        if self._out is not None and self._out is not self._count:
            self._out.close()
        if self._raw is not None:
            self._raw.flush()
            self._counters["bytes"] += self._count.n if self._count is not None else 0
            self._raw.close()
        self._raw = self._out = self._count = None

    def _switch(self, name: str) -> None:
        self._end()
        self._open(name)

    def _put(self, b: bytes) -> None:
        assert self._out is not None
        self._out.write(b)
        self._counters["blocks"] += 1

    def _prologue(self) -> None:
        """The header blocks and the state tables as they stand now."""
        self._prologue_done = True
        m = self._machine
        st = self.exporter.state
        self._put(E.shb())
        self._put(E.mi(str(m.get("hostname") or ""), int(m.get("cpus") or 0), int(m.get("memory") or 0),
                       _max_pid(), int(m.get("boot_time") or 0)))
        self._put(E.iflist(self._interfaces))
        self._put(E.userlist([[u.uid, u.name, u.home, u.shell] for u in st.users.values()],
                             [[g.gid, g.name] for g in st.groups.values()]))
        self._put(E.proclist(scap_thread(t) for t in st.threads.values()))
        self.exporter.told.update(st.threads)
        leaders = {t.pid: t.tid for t in st.threads.values() if t.tid == t.pid}
        for pid, table in st.fds.items():
            fds = [scap_fd(f) for f in table.values()]
            if fds:
                self._put(E.fdlist(leaders.get(pid, pid), fds))
        ts = self.exporter.last_ts or self._first_ts or time.time_ns()
        for doc in st.containers.values():
            self._put(container_block(doc, ts))

    def extend(self, blocks: Iterable[bytes]) -> None:
        for b in blocks:
            self.append(b)

    def append_run(self, blocks: bytes, count: int) -> None:
        """``count`` event blocks from the exporter's recipes: written at once when no rotation
        rule needs to look at each."""
        if self._policy is not None or self._finished or not self._prologue_done or self._out is None:
            from .export import split_blocks

            for b in split_blocks(blocks):
                # A file begun at this block dates its container events by it, as it would had the
                # exporter made this one block alone.
                self.exporter.last_ts = int.from_bytes(b[_EV_TS:_EV_TS + 8], "little")
                self.append(b)
            return
        self._out.write(blocks)
        self._counters["blocks"] += count
        self._file_events += count
        self._counters["events"] += count

    def append(self, b: bytes) -> None:
        """One block from the exporter (the state is as its event left it)."""
        if self._finished:
            self._counters["dropped_after_finish"] += 1
            return
        policy = self._policy
        if policy is not None:
            at = 10 if int.from_bytes(b[:4], "little") == B.EV_V2 else 14  # after cpu (and flags)
            ts = int.from_bytes(b[at:at + 8], "little")
            if ts and self._rot.time_due(ts):  # the first call starts the first slice's timer
                name = self._rot.next_slice(ts)
                if name is None:
                    self._finished = True
                    self._counters["dropped_after_finish"] += 1
                    return
                self._switch(name)
            elif policy.events is not None and self._file_events >= policy.events:
                self._switch(self._rot.next_part())
            elif policy.size_limit is not None and self._count is not None and \
                    self._count.n > policy.size_limit and self._file_events:
                self._switch(self._rot.next_part())
        if not self._prologue_done:
            self._prologue()
        self._put(b)
        self._file_events += 1
        self._counters["events"] += 1


def scap_thread(t: Any) -> B.ScapThread:
    """ktrace's Thread as a process-list entry."""
    return B.ScapThread(
        tid=t.tid, pid=t.pid, ptid=t.ptid, sid=t.sid, vpgid=t.pid, comm=t.comm, exe=t.exe or t.comm,
        exepath=t.exepath, args=list(t.args), cwd=t.cwd, fdlimit=t.fdlimit,
        flags=_PL_THREAD_FLAGS if t.tid != t.pid else 0, uid=t.uid, gid=t.gid,
        vmsize_kb=t.vmsize_kb, vmrss_kb=t.vmrss_kb, vtid=t.vtid if t.vtid >= 0 else t.tid,
        vpid=t.vpid if t.vpid >= 0 else t.pid, cgroups=cgroup_pairs(t.cgroups), root="/", loginuid=t.loginuid)


def scap_fd(f: Any) -> B.ScapFd:
    """ktrace's Fd as an fd-table entry (sockets as libscap lists them: this end first)."""
    from .export import linux_to_ppm_flags

    kind = E.FD_KINDS.get(f.type, 0)
    out = B.ScapFd(f.num, f.ino, kind, f.name, f.l4proto or "")
    if kind in (3, 4):
        if f.is_server and not f.cport:
            out.kind = 5 if kind == 3 else 6
            out.sip, out.sport = f.sip, f.sport
        else:
            out.cip, out.cport, out.sip, out.sport = f.cip, f.cport, f.sip, f.sport
    elif kind == 16:
        out.open_flags = linux_to_ppm_flags("file_flags", f.flags)
    return out


def _max_pid() -> int:
    try:
        with open("/proc/sys/kernel/pid_max") as f:
            return int(f.read())
    except (OSError, ValueError):
        return 4194304


def local_interfaces() -> list[list[str]]:
    """This host's IPv4 and IPv6 addresses as ``[name, family, address, netmask]`` rows."""
    out: list[list[str]] = []
    try:
        names = [n for _, n in socket.if_nameindex()]
    except OSError:
        names = []
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        for name in names:
            req = struct.pack("256s", name.encode()[:15])
            try:
                addr = fcntl.ioctl(s.fileno(), 0x8915, req)[20:24]  # SIOCGIFADDR
                mask = fcntl.ioctl(s.fileno(), 0x891B, req)[20:24]  # SIOCGIFNETMASK
            except OSError:
                continue
            out.append([name, "ipv4", socket.inet_ntoa(addr), socket.inet_ntoa(mask)])
    try:
        with open("/proc/net/if_inet6") as f:
            for line in f:
                p = line.split()
                if len(p) >= 6:
                    out.append([p[5], "ipv6", socket.inet_ntop(socket.AF_INET6, bytes.fromhex(p[0])), ""])
    except OSError:
        pass
    return out
