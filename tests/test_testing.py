"""The synthetic source itself: records laid out the way the probe's capture specs (the rows the
loader gives the kernel) say, cut to the probe's limits, and the helpers around it.
"""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

from tracer.capture import CaptureReader, EventBlock, TableBlock
from tracer.schema import gen
from tracer.schema import record as R
from tracer.schema.events import SYSCALLS, EventInfo
from tracer.schema.types import CK
from tracer.testing import (
    PATHMAX,
    Synth,
    SyntheticSource,
    sockaddr,
    split,
    state_from,
    tables,
    thread_row,
    write_capture,
)

CAPTURING = [i for i in SYSCALLS if i is not None and i.captures]
FIXED = struct.Struct(R.FIXED_FMT)


def head(rec: bytes) -> tuple[int, ...]:
    return FIXED.unpack_from(rec)


@pytest.mark.parametrize("info", CAPTURING, ids=lambda i: i.name)
def test_segments_land_where_the_probe_puts_them(info: EventInfo) -> None:
    specs = gen.capture_specs()
    s = Synth(pid=9)
    has1 = any(c.seg == 1 or c.kind in (CK.MSG, CK.MMSG) for c in info.captures)
    s.syscall(info.name, ret=8, seg0=b"\x02\x00abcdefgh", seg1=b"\x01\x00zz" if has1 else b"")
    enter, exit_ = split(s.batch())
    for rec, direction in ((enter, 0), (exit_, 1)):
        ts, tid, pid, evt, cpu, length, ret, *args, l0, l1, flags = head(rec)
        assert evt == R.syscall_evt(info.nr, direction) and (tid, pid) == (9, 9)
        assert length == len(rec) == R.padded(R.REC_FIXED + l0 + l1)
        row = specs.get(evt)
        kinds = (row[2], row[7]) if row else (0, 0)
        msg = kinds[0] in (int(CK.MSG), int(CK.MMSG))
        assert bool(l0) == bool(kinds[0]), "segment 0 on the wrong side"
        assert bool(l1) == (bool(kinds[1]) or msg), "segment 1 on the wrong side"
        if row:
            for k, reg in ((0, row[3]), (1, row[8])):
                if kinds[k]:
                    assert args[reg] != 0, "the capture's pointer register holds a pointer"
    assert head(enter)[7:13] == head(exit_)[7:13]  # the same registers on both sides
    assert head(enter)[6] == 0 and head(exit_)[6] == 8


@pytest.mark.parametrize(
    ("snaplen", "n", "kept", "trunc"),
    [(80, 10, 10, False), (80, 80, 80, False), (80, 81, 80, True), (16, 100, 16, True), (0, 3, 0, True)],
)
def test_data_cut_to_snaplen(snaplen: int, n: int, kept: int, trunc: bool) -> None:
    rec = split(Synth(snaplen=snaplen).write(1, b"x" * n).batch())[1]
    *_, l0, l1, flags = head(rec)
    assert (l0, l1, bool(flags & R.RF_TRUNC0), head(rec)[6]) == (kept, 0, trunc, n)


def test_data_cut_to_the_return_value() -> None:
    rec = split(Synth().read(3, b"abcdef", ret=2).batch())[1]
    assert rec[R.REC_FIXED:R.REC_FIXED + 2] == b"ab" and head(rec)[-3] == 2


def test_strings_cut_like_bpf_probe_read_user_str() -> None:
    rec = split(Synth().open("/" + "a" * 5000, 3).batch())[1]
    assert head(rec)[-3] == PATHMAX - 1
    rec = split(Synth().open(b"/etc\0junk", 3).batch())[1]
    assert rec[R.REC_FIXED:R.REC_FIXED + head(rec)[-3]] == b"/etc"


def test_comm_is_sixteen_padded_bytes() -> None:
    rec = split(Synth().execve("/usr/bin/python3.11-config", None).batch())[1]
    assert rec[R.REC_FIXED:R.REC_FIXED + 16] == b"python3.11-conf\0"


def test_sockaddr_layout() -> None:
    assert sockaddr(("127.0.0.1", 80)) == b"\x02\x00\x00\x50\x7f\x00\x00\x01" + bytes(8)
    assert len(sockaddr(("::1", 80))) == 28
    assert sockaddr("/run/x") == b"\x01\x00/run/x\x00"
    assert sockaddr("@abs") == b"\x01\x00\x00abs"


def test_views_share_clock_and_batch() -> None:
    s = Synth(start_ts=1000, pid=5, step=10)
    s.on(6).close(3)
    s.close(4)
    recs = split(s.batch())
    assert [(head(r)[0], head(r)[1]) for r in recs] == [(1000, 6), (1010, 6), (1020, 5), (1030, 5)]
    assert s.count == 4 and s.batch() == b""


def test_unknown_syscall_or_segment_refused() -> None:
    with pytest.raises(ValueError):
        Synth().syscall("nosuchcall")
    with pytest.raises(ValueError):
        Synth().syscall("close", seg0=b"x")
    with pytest.raises(ValueError):
        Synth().syscall("read", {"nosuch": 1})
    with pytest.raises(ValueError):
        Synth().execve("/x", None, ret=-2)  # a failed exec needs the old comm


def test_args_by_name() -> None:
    rec = split(Synth().syscall("lseek", {"fd": 3, "offset": 10, "whence": 2}).batch())[0]
    assert head(rec)[7:10] == (3, 10, 2)


def test_capture_and_source(tmp_path: Path) -> None:
    s = Synth(pid=7).open("/a", 3)
    b1 = s.batch()
    b2 = s.close(3).batch()
    tabs = tables(threads=[thread_row(7, comm="x")])
    path = write_capture(tmp_path / "c.kcap", b1, b2, tabs=tabs)
    with CaptureReader(path) as r:
        items = list(r)
    assert [i.rows for i in items if isinstance(i, TableBlock)] == [tabs["threads"], [], [], [], []]
    assert b"".join(i.raw for i in items if isinstance(i, EventBlock)) == b1 + b2
    src = SyntheticSource([b1, b2], tabs)
    assert list(src.batches()) == [b1, b2] and src.stats()["events"] == 4 and not src.live
    assert state_from(src.tables).threads[7].comm == "x"
