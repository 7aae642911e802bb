"""The ring-buffer consumer, both twins, on a real BPF ring buffer fed by a tiny program of our own:
records come out with their timestamps moved to the epoch, and a record too short to be one stops
the drain with an error instead of being copied (or read past its end).
"""

from __future__ import annotations

import errno
import importlib
import os
import struct
from collections.abc import Iterator
from types import ModuleType

import pytest

from tracer.schema import record as R

pytestmark = pytest.mark.live

# getppid (110) writes a record of REC_FIXED bytes, ts 1000; getpgrp (111) four bytes.
PROGRAM = """
BPF_RINGBUF_OUTPUT(out, 1);

struct rec { u64 ts; u32 tid; u32 pid; u16 evt; u16 cpu; u32 len; u8 rest[64]; };

TRACEPOINT_PROBE(raw_syscalls, sys_enter) {
    if ((bpf_get_current_pid_tgid() >> 32) != PID)
        return 0;
    if (args->id == 110) {
        struct rec r = {};
        r.ts = 1000;
        r.len = sizeof(r);
        out.ringbuf_output(&r, sizeof(r), 0);
    } else if (args->id == 111) {
        u32 v = 7;
        out.ringbuf_output(&v, sizeof(v), 0);
    }
    return 0;
}
"""


@pytest.fixture(scope="module")
def ring_fd() -> Iterator[int]:
    from bcc import BPF

    b = BPF(text=PROGRAM.replace("PID", str(os.getpid())).encode())
    try:
        yield b[b"out"].map_fd
    finally:
        b.cleanup()


def _twins() -> list[ModuleType]:
    """Both rings; the Cython one may be missing only in a pure-Python run."""
    twins = [importlib.import_module("tracer._pure.ring")]
    try:
        twins.append(importlib.import_module("tracer._ext.ring"))
    except ImportError:
        if os.environ.get("KTRACE_PUREPYTHON") != "1":
            raise
    return twins


@pytest.mark.parametrize("mod", _twins(), ids=lambda m: m.__name__)
def test_records_come_out_with_the_offset_added(ring_fd: int, mod: ModuleType) -> None:
    ring = mod.Ring(ring_fd, 5)
    try:
        assert ring.drain() == b""
        os.getppid()
        os.getppid()
        out = ring.drain()
        assert len(out) == 2 * R.REC_FIXED and ring.count == 2
        assert [struct.unpack_from("<Q", out, off + R.OFF_TS)[0] for off in (0, R.REC_FIXED)] == [1005, 1005]
        assert struct.unpack_from("<I", out, R.OFF_LEN)[0] == R.REC_FIXED
    finally:
        ring.close()


@pytest.mark.parametrize("mod", _twins(), ids=lambda m: m.__name__)
def test_a_record_too_short_stops_the_drain_with_an_error(ring_fd: int, mod: ModuleType) -> None:
    ring = mod.Ring(ring_fd, 5)
    try:
        os.getppid()
        os.getpgrp()
        os.getppid()
        with pytest.raises(OSError) as e:
            ring.drain()
        assert e.value.errno == errno.EBADMSG
        assert str(e.value) == f"[Errno {errno.EBADMSG}] a ring buffer record of 4 bytes, shorter than a record " \
                               f"head ({R.REC_HEAD})"
        # libbpf stopped at it: the record after it waits for the next drain.
        out = ring.drain()
        assert len(out) == R.REC_FIXED and struct.unpack_from("<Q", out)[0] == 1005
        assert ring.drain() == b""
    finally:
        ring.close()
