"""The binary record every event travels in: kernel -> ring buffer -> batches -> capture blocks.

One layout for all events, little-endian, 8-byte aligned:

    offset size field
    0      8    ts     u64  nanoseconds since the epoch (the consumer adds the boot offset)
    8      4    tid    u32  thread id (kernel pid)
    12     4    pid    u32  process id (kernel tgid)
    16     2    evt    u16  event id: syscalls are nr*2 + dir (dir 0 = enter '>', 1 = exit '<');
                            other events start at EVT_BASE_OTHER
    18     2    cpu    u16
    20     4    len    u32  whole record length, payload and padding included
    24     8    ret    s64  return value (exit records)
    32     48   args   u64[6] the syscall's argument registers
    80     2    l0     u16  length of payload segment 0
    82     2    l1     u16  length of payload segment 1
    84     4    flags  u32  RF_* bits
    88     l0+l1        payload: segment 0 then segment 1, then padding to 8 bytes

Internal events made in user space (thread info, socket tuples, CPU samples, container metadata)
use the same 88-byte head and carry a msgpack document as segment 0.
"""

from __future__ import annotations

import struct
from typing import Final

REC_HEAD: Final = 24
REC_FIXED: Final = 88
ARGS_OFF: Final = 32
HEAD_FMT: Final = "<QIIHHI"
FIXED_FMT: Final = "<QIIHHIq6QHHI"
assert struct.calcsize(HEAD_FMT) == REC_HEAD
assert struct.calcsize(FIXED_FMT) == REC_FIXED

OFF_TS: Final = 0
OFF_TID: Final = 8
OFF_PID: Final = 12
OFF_EVT: Final = 16
OFF_CPU: Final = 18
OFF_LEN: Final = 20
OFF_RET: Final = 24
OFF_ARGS: Final = 32
OFF_L0: Final = 80
OFF_L1: Final = 82
OFF_FLAGS: Final = 84

# Record flags.
RF_TRUNC0: Final = 1  # segment 0 was cut to its capture limit
RF_TRUNC1: Final = 2
RF_FAULT: Final = 4  # a user-memory read failed; the segment is empty
RF_HIDDEN: Final = 8  # kept only for state (-F): never printed, never given to chisels
RF_PPM: Final = 16  # read from a .scap file: the PPM event follows the segments (capture/scap/translate.py)

# Event ids. Syscalls occupy [0, 2 * NSYSCALLS); the rest follow.
NSYSCALLS: Final = 512
EVT_BASE_OTHER: Final = 2 * NSYSCALLS
EVT_PROCEXIT: Final = EVT_BASE_OTHER + 0  # kernel: sched_process_exit
EVT_CONNECTED: Final = EVT_BASE_OTHER + 1  # kernel: a client TCP connection established (both ends)
EVT_SWITCH: Final = EVT_BASE_OTHER + 2  # a context switch (read from .scap captures)
EVT_PPM: Final = EVT_BASE_OTHER + 3  # a .scap event ktrace has no counterpart for, kept hidden for evt.num
EVT_THREADINFO: Final = EVT_BASE_OTHER + 16  # user space: /proc facts about one thread
EVT_FDINFO: Final = EVT_BASE_OTHER + 17  # user space: a socket's resolved tuple
EVT_PROCINFO: Final = EVT_BASE_OTHER + 18  # user space: CPU sample of one thread
EVT_CONTAINER: Final = EVT_BASE_OTHER + 19  # user space: container metadata
EVT_DROPS: Final = EVT_BASE_OTHER + 20  # user space: drop counters at that moment
EVT_MAX: Final = EVT_BASE_OTHER + 32

DIR_ENTER: Final = 0
DIR_EXIT: Final = 1


def syscall_evt(nr: int, direction: int) -> int:
    return nr * 2 + direction


def padded(n: int) -> int:
    """Record length rounded up to the 8-byte alignment every record keeps."""
    return (n + 7) & ~7


def pack_record(
    ts: int,
    tid: int,
    pid: int,
    evt: int,
    cpu: int = 0,
    ret: int = 0,
    args: tuple[int, ...] = (0, 0, 0, 0, 0, 0),
    seg0: bytes = b"",
    seg1: bytes = b"",
    flags: int = 0,
) -> bytes:
    """Build one record; used by user-space internal events and by the synthetic source."""
    body = seg0 + seg1
    total = padded(REC_FIXED + len(body))
    a = tuple(a & 0xFFFFFFFFFFFFFFFF for a in args) + (0,) * (6 - len(args))
    head = struct.pack(FIXED_FMT, ts, tid, pid, evt, cpu, total, ret, *a, len(seg0), len(seg1), flags)
    return head + body + b"\0" * (total - REC_FIXED - len(body))
