"""The few bpf(2) commands ktrace needs, through ctypes: maps, program load, tracepoint attach.

Enough to load a compiled probe without bcc or LLVM (see cache.py). Each command passes only the
leading fields of ``union bpf_attr`` it uses: the kernel zero-fills the rest.
"""

from __future__ import annotations

import ctypes
import errno
import os
import platform
from collections.abc import Iterator
from functools import cache
from typing import Any

# Commands (linux/bpf.h enum bpf_cmd).
MAP_CREATE = 0
MAP_LOOKUP_ELEM = 1
MAP_UPDATE_ELEM = 2
MAP_DELETE_ELEM = 3
MAP_GET_NEXT_KEY = 4
PROG_LOAD = 5
OBJ_GET_INFO_BY_FD = 15
RAW_TRACEPOINT_OPEN = 17

PROG_TYPE_TRACEPOINT = 5
PROG_TYPE_RAW_TRACEPOINT = 17
# Map types whose values are one slot per possible CPU.
PERCPU_TYPES = frozenset({5, 6, 10})  # PERCPU_HASH, PERCPU_ARRAY, LRU_PERCPU_HASH

OBJ_NAME_LEN = 16
_NR_BPF = {"x86_64": 321, "aarch64": 280}
_NR_PERF_EVENT_OPEN = {"x86_64": 298, "aarch64": 241}
PERF_TYPE_TRACEPOINT = 2
PERF_FLAG_FD_CLOEXEC = 8
PERF_EVENT_IOC_ENABLE = 0x2400
PERF_EVENT_IOC_SET_BPF = 0x40042408
LOG_BYTES = 4 << 20  # verifier log kept when a load fails; the kernel keeps its tail


class _MapCreate(ctypes.Structure):
    _fields_ = [
        ("map_type", ctypes.c_uint32),
        ("key_size", ctypes.c_uint32),
        ("value_size", ctypes.c_uint32),
        ("max_entries", ctypes.c_uint32),
        ("map_flags", ctypes.c_uint32),
        ("inner_map_fd", ctypes.c_uint32),
        ("numa_node", ctypes.c_uint32),
        ("map_name", ctypes.c_char * OBJ_NAME_LEN),
    ]


class _MapElem(ctypes.Structure):
    _fields_ = [
        ("map_fd", ctypes.c_uint32),
        ("key", ctypes.c_uint64),
        ("value", ctypes.c_uint64),  # next_key for MAP_GET_NEXT_KEY
        ("flags", ctypes.c_uint64),
    ]


class _ProgLoad(ctypes.Structure):
    _fields_ = [
        ("prog_type", ctypes.c_uint32),
        ("insn_cnt", ctypes.c_uint32),
        ("insns", ctypes.c_uint64),
        ("license", ctypes.c_uint64),
        ("log_level", ctypes.c_uint32),
        ("log_size", ctypes.c_uint32),
        ("log_buf", ctypes.c_uint64),
        ("kern_version", ctypes.c_uint32),
        ("prog_flags", ctypes.c_uint32),
        ("prog_name", ctypes.c_char * OBJ_NAME_LEN),
    ]


class _RawTracepointOpen(ctypes.Structure):
    _fields_ = [("name", ctypes.c_uint64), ("prog_fd", ctypes.c_uint32)]


class _InfoByFd(ctypes.Structure):
    _fields_ = [("bpf_fd", ctypes.c_uint32), ("info_len", ctypes.c_uint32), ("info", ctypes.c_uint64)]


class MapInfo(ctypes.Structure):
    """The head of ``struct bpf_map_info``."""

    _fields_ = [
        ("type", ctypes.c_uint32),
        ("id", ctypes.c_uint32),
        ("key_size", ctypes.c_uint32),
        ("value_size", ctypes.c_uint32),
        ("max_entries", ctypes.c_uint32),
        ("map_flags", ctypes.c_uint32),
        ("name", ctypes.c_char * OBJ_NAME_LEN),
    ]


@cache
def _syscall() -> tuple[Any, int]:
    nr = _NR_BPF.get(platform.machine())
    if nr is None:
        raise OSError(errno.ENOSYS, f"bpf(2) number unknown on {platform.machine()}")
    fn = ctypes.CDLL(None, use_errno=True).syscall
    fn.restype = ctypes.c_long
    return fn, nr


def bpf(cmd: int, attr: ctypes.Structure) -> int:
    """bpf(cmd, &attr, sizeof attr); raises OSError with the kernel's errno."""
    fn, nr = _syscall()
    r = int(fn(ctypes.c_long(nr), ctypes.c_long(cmd), ctypes.byref(attr), ctypes.c_long(ctypes.sizeof(attr))))
    if r < 0:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e))
    return r


def _addr(buf: ctypes.Array[ctypes.c_char]) -> int:
    return ctypes.addressof(buf)


def map_create(map_type: int, key_size: int, value_size: int, max_entries: int, flags: int, name: str) -> int:
    attr = _MapCreate(map_type, key_size, value_size, max_entries, flags, 0, 0, name.encode()[: OBJ_NAME_LEN - 1])
    return bpf(MAP_CREATE, attr)


def map_info(fd: int) -> MapInfo:
    info = MapInfo()
    attr = _InfoByFd(fd, ctypes.sizeof(info), ctypes.addressof(info))
    bpf(OBJ_GET_INFO_BY_FD, attr)
    return info


def prog_load(prog_type: int, insns: bytes, license: str, name: str) -> int:
    """Load a program; a refusal raises ProgLoadError with the verifier's log."""
    code = ctypes.create_string_buffer(insns, len(insns))
    lic = ctypes.create_string_buffer(license.encode())
    attr = _ProgLoad(prog_type, len(insns) // 8, _addr(code), _addr(lic))
    attr.prog_name = name.encode()[: OBJ_NAME_LEN - 1]
    try:
        return bpf(PROG_LOAD, attr)
    except OSError as first:
        # Load again for the log only now: logging slows the verifier down.
        log = ctypes.create_string_buffer(LOG_BYTES)
        attr.log_level, attr.log_size, attr.log_buf = 1, LOG_BYTES, _addr(log)
        try:
            return bpf(PROG_LOAD, attr)
        except OSError as e:
            text = log.value.decode(errors="replace")
            raise ProgLoadError(e.errno or first.errno or errno.EINVAL, f"{name}: {e.strerror}", text) from None


class ProgLoadError(OSError):
    """The kernel refused a program; ``log`` is the verifier's log (its tail when it was long)."""

    def __init__(self, err: int, what: str, log: str) -> None:
        super().__init__(err, what)
        self.log = log


def raw_tracepoint_open(tracepoint: str, prog_fd: int) -> int:
    """Attach ``prog_fd`` to raw tracepoint ``tracepoint``; closing the returned fd detaches it."""
    name = ctypes.create_string_buffer(tracepoint.encode())
    return bpf(RAW_TRACEPOINT_OPEN, _RawTracepointOpen(_addr(name), prog_fd))


class _PerfEventAttr(ctypes.Structure):  # PERF_ATTR_SIZE_VER0: the kernel zero-fills the rest
    _fields_ = [
        ("type", ctypes.c_uint32),
        ("size", ctypes.c_uint32),
        ("config", ctypes.c_uint64),
        ("sample_period", ctypes.c_uint64),
        ("sample_type", ctypes.c_uint64),
        ("read_format", ctypes.c_uint64),
        ("flags", ctypes.c_uint64),
        ("wakeup_events", ctypes.c_uint32),
        ("bp_type", ctypes.c_uint32),
        ("config1", ctypes.c_uint64),
    ]


def tracepoint_attach(tracepoint_id: int, prog_fd: int) -> int:
    """Attach ``prog_fd`` to the regular tracepoint with tracefs id ``tracepoint_id``, as bcc does:
    one perf event (any pid, CPU 0) carries the program, which then runs on every CPU. Closing
    the returned fd detaches it."""
    import fcntl

    fn, _ = _syscall()
    attr = _PerfEventAttr(type=PERF_TYPE_TRACEPOINT, size=ctypes.sizeof(_PerfEventAttr), config=tracepoint_id,
                          sample_period=1, wakeup_events=1)
    fd = int(fn(ctypes.c_long(_NR_PERF_EVENT_OPEN[platform.machine()]), ctypes.byref(attr), ctypes.c_long(-1),
                ctypes.c_long(0), ctypes.c_long(-1), ctypes.c_long(PERF_FLAG_FD_CLOEXEC)))
    if fd < 0:
        err = ctypes.get_errno()
        raise OSError(err, f"perf_event_open(tracepoint {tracepoint_id}): {os.strerror(err)}")
    try:
        fcntl.ioctl(fd, PERF_EVENT_IOC_SET_BPF, prog_fd)
        fcntl.ioctl(fd, PERF_EVENT_IOC_ENABLE, 0)
    except OSError:
        os.close(fd)
        raise
    return fd


@cache
def possible_cpus() -> int:
    """Slots in a per-CPU map value: the kernel sizes them by possible, not online, CPUs."""
    with open("/sys/devices/system/cpu/possible") as f:
        text = f.read().strip()
    n = 0
    for part in text.split(","):
        lo, _, hi = part.partition("-")
        n = max(n, int(hi or lo) + 1)
    return n


class Map:
    """One BPF map by fd: raw-bytes update, lookup, delete and key iteration."""

    def __init__(self, fd: int, name: str, map_type: int, key_size: int, value_size: int) -> None:
        self.fd = fd
        self.name = name
        self.type = map_type
        self.key_size = key_size
        self.value_size = value_size
        # Per-CPU values come back as one 8-byte aligned slot per possible CPU.
        self.slot = (value_size + 7) & ~7
        self.read_size = self.slot * possible_cpus() if map_type in PERCPU_TYPES else value_size

    def _elem(self, cmd: int, key: bytes | None, value: ctypes.Array[ctypes.c_char] | None, flags: int = 0) -> None:
        if key is not None and len(key) != self.key_size:
            raise ValueError(f"{self.name}: key of {len(key)} bytes, want {self.key_size}")
        k = ctypes.create_string_buffer(key, self.key_size) if key is not None else None
        bpf(cmd, _MapElem(self.fd, _addr(k) if k is not None else 0, _addr(value) if value is not None else 0,
                          flags))

    def update(self, key: bytes, value: bytes, flags: int = 0) -> None:
        """Set ``key`` (raises OSError: E2BIG when a hash map is full)."""
        if len(value) != self.value_size:
            raise ValueError(f"{self.name}: value of {len(value)} bytes, want {self.value_size}")
        self._elem(MAP_UPDATE_ELEM, key, ctypes.create_string_buffer(value, len(value)), flags)

    def lookup(self, key: bytes) -> bytes | None:
        """The value (every CPU's slot, concatenated, for per-CPU maps), or None."""
        out = ctypes.create_string_buffer(self.read_size)
        try:
            self._elem(MAP_LOOKUP_ELEM, key, out)
        except OSError as e:
            if e.errno == errno.ENOENT:
                return None
            raise
        return out.raw

    def delete(self, key: bytes) -> bool:
        """Remove ``key``; False if it was not there."""
        try:
            self._elem(MAP_DELETE_ELEM, key, None)
        except OSError as e:
            if e.errno == errno.ENOENT:
                return False
            raise
        return True

    def keys(self) -> Iterator[bytes]:
        """Every key (a snapshot may miss or repeat keys changed meanwhile, as with any BPF map)."""
        key: bytes | None = None
        while True:
            nxt = ctypes.create_string_buffer(self.key_size)
            try:
                self._elem(MAP_GET_NEXT_KEY, key, nxt)
            except OSError as e:
                if e.errno == errno.ENOENT:
                    return
                raise
            key = nxt.raw
            yield key

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1
