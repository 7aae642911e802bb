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

# Offsets of the fields of the fixed part (the table above); no other file spells them as numbers.
# ext/record.pxi carries the same names to Cython (written by tracer/schema/gen.py).
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
REC_HEAD: Final = 24  # ts to len: what a walker reads to step from record to record
REC_FIXED: Final = 88  # the whole fixed part; the payload starts here
REC_NARGS: Final = 6  # argument registers, 8 bytes each from OFF_ARGS
REC_ALIGN: Final = 8  # every record's length is a multiple of it
HEAD_FMT: Final = "<QIIHHI"
FIXED_FMT: Final = "<QIIHHIq6QHHI"
assert struct.calcsize(HEAD_FMT) == REC_HEAD == OFF_LEN + 4
assert struct.calcsize(FIXED_FMT) == REC_FIXED == OFF_FLAGS + 4
assert [struct.calcsize(FIXED_FMT[:i]) for i in (1, 2, 3, 4, 5, 6, 7, 8, 10, 11, 12)] == [
    OFF_TS, OFF_TID, OFF_PID, OFF_EVT, OFF_CPU, OFF_LEN, OFF_RET, OFF_ARGS, OFF_L0, OFF_L1, OFF_FLAGS]
assert OFF_ARGS + 8 * REC_NARGS == OFF_L0

# Record flags.
RF_TRUNC0: Final = 1  # segment 0 was cut to its capture limit
RF_TRUNC1: Final = 2
RF_FAULT: Final = 4  # a user-memory read failed; the segment is empty
RF_HIDDEN: Final = 8  # kept only for state (-F): never printed, never given to chisels
RF_PPM: Final = 16  # read from a .scap file: the PPM event follows the segments (capture/scap/translate.py)

# What the scanner (ext/scan.pyx, tracer/_pure/scan.py) says of a record it selects: the third
# value of each (index, offset, why) triple of its selection.
SEL_STATE: Final = 1  # the event changes the state
SEL_MATCH: Final = 2  # the event may pass the filter
SEL_EXACT: Final = 4  # with SEL_MATCH: every check the scanner made gave a definite answer
SEL_FAST: Final = 8  # with SEL_STATE: a fast-path fd event for Python to apply, in order (Scanner.apply)
# A run: exact matches of one thread, back to back, as one triple (the offset of its last record,
# that of its first, and SEL_RUN | records << RUN_COUNT_SHIFT | bytes << RUN_BYTES_SHIFT).
SEL_RUN: Final = 16
RUN_COUNT_SHIFT: Final = 8
RUN_BYTES_SHIFT: Final = 32
RUN_COUNT_MASK: Final = (1 << (RUN_BYTES_SHIFT - RUN_COUNT_SHIFT)) - 1

# The scanner's fast-path codes (its fast_mask, by event id): how it applies an fd event itself.
FAST_CLOSE: Final = 1  # close(fd=arg0) returning 0
FAST_OPEN_A1: Final = 2  # open-like returning an fd; path in segment 0, flags in arg1
FAST_OPEN_A2: Final = 3  # flags in arg2 (openat)
FAST_OPEN_SEG1: Final = 4  # flags in segment 1's first 8 bytes (openat2's open_how)
FAST_CREAT: Final = 5  # flags O_CREAT|O_WRONLY|O_TRUNC
FAST_DUP: Final = 6  # dup, dup2: arg0 copied to the fd returned, close-on-exec off
FAST_DUP3: Final = 7  # close-on-exec from arg2's O_CLOEXEC

# Event ids. Syscalls occupy [0, 2 * NSYSCALLS); the rest follow.
NSYSCALLS: Final = 512
EVT_BASE_OTHER: Final = 2 * NSYSCALLS
EVT_PROCEXIT: Final = EVT_BASE_OTHER + 0  # kernel: sched_process_exit
EVT_CONNECTED: Final = EVT_BASE_OTHER + 1  # kernel: a client TCP connection established (both ends)
EVT_ACCEPTED: Final = EVT_BASE_OTHER + 2  # kernel: the ends of the TCP connection an accept returned
EVT_SWITCH: Final = EVT_BASE_OTHER + 3  # a context switch (read from .scap captures)
EVT_PPM: Final = EVT_BASE_OTHER + 4  # a .scap event ktrace has no counterpart for, kept hidden for evt.num
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
    return (n + REC_ALIGN - 1) & ~(REC_ALIGN - 1)


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
