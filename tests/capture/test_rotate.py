"""Rotation: -C, -G (strftime), -W, -e; names, counts, and every file standing alone."""

from __future__ import annotations

import os
import time
from typing import Any

import pytest

from tracer.capture import CaptureReader, CaptureWriter, EventBlock, RotatePolicy, TableBlock, capture_name
from tracer.capture.blockcodec import CODEC_NONE
from tracer.errors import UsageError

START = time.mktime((2024, 3, 5, 14, 7, 9, 0, 0, -1))  # local time 2024-03-05 14:07:09


@pytest.mark.parametrize(
    "base, policy, slice_no, part_no, expected",
    [
        ("cap.kcap", None, 0, 0, "cap.kcap"),
        ("cap.kcap", RotatePolicy(size_mb=100), 0, 0, "cap.kcap0"),
        ("cap.kcap", RotatePolicy(size_mb=100), 0, 12, "cap.kcap12"),
        ("cap.kcap", RotatePolicy(size_mb=100, files=3), 0, 4, "cap.kcap1"),
        ("cap.kcap", RotatePolicy(size_mb=1, files=10), 0, 3, "cap.kcap03"),
        ("cap.kcap", RotatePolicy(size_mb=1, files=10), 0, 13, "cap.kcap03"),
        ("cap.kcap", RotatePolicy(size_mb=1, files=100), 0, 7, "cap.kcap007"),
        ("cap.kcap", RotatePolicy(events=1000), 0, 5, "cap.kcap5"),
        ("cap.kcap", RotatePolicy(events=1000, files=10), 0, 13, "cap.kcap3"),
        ("cap.kcap", RotatePolicy(seconds=60), 0, 0, "cap.kcap0"),
        ("cap.kcap", RotatePolicy(seconds=60), 4, 0, "cap.kcap4"),
        ("cap.kcap", RotatePolicy(seconds=60, files=5), 4, 0, "cap.kcap4"),
        ("cap-%Y%m%d-%H%M%S.kcap", RotatePolicy(seconds=60), 3, 0, "cap-20240305-140709.kcap"),
        ("cap-%H%M.kcap", RotatePolicy(seconds=60, size_mb=5), 1, 2, "cap-1407.kcap2"),
        ("cap-%H%M.kcap", RotatePolicy(seconds=60, size_mb=5, files=20), 1, 21, "cap-1407.kcap01"),
        ("cap-%%-%H.kcap", RotatePolicy(seconds=1), 0, 0, "cap-%-14.kcap"),
        ("cap-%H.kcap", RotatePolicy(size_mb=1), 0, 1, "cap-%H.kcap1"),
    ],
)
def test_capture_name(base: str, policy: RotatePolicy | None, slice_no: int, part_no: int, expected: str) -> None:
    assert capture_name(base, policy, slice_no, part_no, START) == expected


@pytest.mark.parametrize(
    "kw, message",
    [
        ({"files": 3}, "-W needs -C, -G or -e"),
        ({"size_mb": 0}, "-C needs a positive"),
        ({"seconds": -1}, "-G needs a positive"),
        ({"events": 0}, "-e needs a positive"),
        ({"size_mb": 1, "files": 0}, "-W needs a positive"),
    ],
)
def test_policy_validation(kw: dict[str, int], message: str) -> None:
    with pytest.raises(UsageError, match=message):
        RotatePolicy(**kw)


def read_file(path: str) -> tuple[CaptureReader, list[Any]]:
    r = CaptureReader(path)
    return r, list(r)


def events_in(path: str) -> int:
    return sum(i.count for i in CaptureReader(path) if isinstance(i, EventBlock))


def stands_alone(path: str, kit: Any, threads: list[Any]) -> None:
    """The file reads cleanly and starts with the latest tables."""
    r, got = read_file(path)
    assert r.notes == [] and r.complete, (path, r.notes)
    assert r.header["machine"] and "start_time" in r.header
    latest: dict[str, list[Any]] = {}
    for i in got:
        if isinstance(i, EventBlock):
            break
        assert isinstance(i, TableBlock)
        latest[i.kind] = i.rows
    assert latest == {"threads": threads, "containers": kit.CONTAINERS}


def write(path: str, kit: Any, nbatches: int, per: int, policy: RotatePolicy, **kw: Any) -> CaptureWriter:
    kw.setdefault("block_size", 1)
    w = CaptureWriter(path, {}, rotate=policy, **kw)
    w.write_table("threads", [{"tid": 0}])
    w.write_table("threads", kit.THREADS)  # the latest replaces the first
    w.write_table("containers", kit.CONTAINERS)
    for b in kit.batches(nbatches, per):
        w.write_events(b.raw, b.count, b.first_ts, b.last_ts)
    w.close()
    return w


def test_size_rotation(tmp_path: Any, kit: Any) -> None:
    base = os.fspath(tmp_path / "cap.kcap")
    # Uncompressed blocks of ~92 kB: 1 MB holds 11 of them.
    w = write(base, kit, 40, 1000, RotatePolicy(size_mb=1), codec=CODEC_NONE)
    names = [f"{base}{i}" for i in range(4)]
    assert w.files == names
    assert sorted(os.listdir(tmp_path)) == sorted(os.path.basename(n) for n in names)
    assert sum(events_in(n) for n in names) == 40_000
    block = 1000 * 92 + 44
    for n in names[:-1]:
        assert 1_000_000 < os.path.getsize(n) <= 1_000_000 + block + 4096
    for n in names:
        stands_alone(n, kit, kit.THREADS)
    assert [CaptureReader(n).header["file_seq"] for n in names] == [0, 1, 2, 3]


def test_size_ring(tmp_path: Any, kit: Any) -> None:
    base = os.fspath(tmp_path / "cap.kcap")
    w = write(base, kit, 40, 1000, RotatePolicy(size_mb=1, files=2), codec=CODEC_NONE)
    assert w.files == [f"{base}{i}" for i in (0, 1, 0, 1)]
    assert sorted(os.listdir(tmp_path)) == ["cap.kcap0", "cap.kcap1"]
    # Files 3 and 4 of the run survive: 40 000 events less the first two files' 11 blocks each.
    assert events_in(base + "0") + events_in(base + "1") == 40_000 - 22_000
    assert CaptureReader(base + "0").header["file_seq"] == 2


def test_size_ring_padding(tmp_path: Any, kit: Any) -> None:
    base = os.fspath(tmp_path / "cap.kcap")
    w = write(base, kit, 25, 1000, RotatePolicy(size_mb=1, files=10), codec=CODEC_NONE)
    assert w.files == [f"{base}00", f"{base}01", f"{base}02"]


@pytest.mark.parametrize("per", [1000, 999, 2500, 7000])
def test_event_rotation_exact(tmp_path: Any, kit: Any, per: int) -> None:
    base = os.fspath(tmp_path / "cap.kcap")
    total = 10 * per
    w = write(base, kit, 10, per, RotatePolicy(events=2500))
    nfiles = -(-total // 2500)
    assert w.files == [f"{base}{i}" for i in range(nfiles)]
    counts = [events_in(n) for n in w.files]
    assert counts == [2500] * (nfiles - 1) + [total - 2500 * (nfiles - 1)]
    # Cut batches keep their records whole and their timestamps right.
    allraw = b"".join(b.raw for b in kit.batches(10, per))
    got = b""
    for n in w.files:
        stands_alone(n, kit, kit.THREADS)
        for i in CaptureReader(n):
            if isinstance(i, EventBlock):
                assert int.from_bytes(i.raw[:8], "little") == i.first_ts
                got += i.raw
    assert got == allraw


def test_event_ring(tmp_path: Any, kit: Any) -> None:
    base = os.fspath(tmp_path / "cap.kcap")
    w = write(base, kit, 10, 1000, RotatePolicy(events=3000, files=2))
    assert w.files == [f"{base}{i}" for i in (0, 1, 0, 1)]
    assert [events_in(base + "0"), events_in(base + "1")] == [3000, 1000]


def timed_batches(kit: Any, seconds: list[float]) -> list[Any]:
    return [kit.make_batch(10, kit.T0 + int(s * 1e9)) for s in seconds]


def test_time_rotation_strftime(tmp_path: Any, kit: Any) -> None:
    base = os.fspath(tmp_path / "cap-%Y%m%d-%H%M%S.kcap")
    w = CaptureWriter(base, {}, rotate=RotatePolicy(seconds=2), block_size=1)
    w.write_table("threads", kit.THREADS)
    w.write_table("containers", kit.CONTAINERS)
    offsets = [0, 0.5, 1.9, 2.0, 3.5, 7.2, 7.3]
    for b in timed_batches(kit, offsets):
        w.write_events(b.raw, b.count, b.first_ts, b.last_ts)
    w.close()
    t0 = kit.T0 // 10**9
    later = [time.strftime(base, time.localtime(t0 + s)) for s in (2, 7)]
    assert len(w.files) == 3 and w.files[1:] == later
    assert [events_in(n) for n in w.files] == [30, 20, 20]
    for n in w.files:
        stands_alone(n, kit, kit.THREADS)


def test_time_rotation_counter_names(tmp_path: Any, kit: Any) -> None:
    base = os.fspath(tmp_path / "cap.kcap")
    w = CaptureWriter(base, {}, rotate=RotatePolicy(seconds=1), block_size=1)
    for b in timed_batches(kit, [0, 1, 2.5, 3]):
        w.write_events(b.raw, b.count, b.first_ts, b.last_ts)
    w.close()
    assert w.files == [f"{base}{i}" for i in range(4)]


def test_time_rotation_stops_after_w_files(tmp_path: Any, kit: Any) -> None:
    base = os.fspath(tmp_path / "cap.kcap")
    w = CaptureWriter(base, {}, rotate=RotatePolicy(seconds=1, files=2), block_size=1)
    assert not w.finished
    for b in timed_batches(kit, [0, 0.5, 1.1, 2.2, 3.3]):
        w.write_events(b.raw, b.count, b.first_ts, b.last_ts)
    w.flush()
    assert w.finished
    w.close()
    assert w.files == [base + "0", base + "1"]
    assert [events_in(n) for n in w.files] == [20, 10]
    assert w.stats["dropped_after_finish"] == 20


def test_time_and_size_cycle_per_slice(tmp_path: Any, kit: Any) -> None:
    base = os.fspath(tmp_path / "cap.kcap")
    w = CaptureWriter(base, {}, rotate=RotatePolicy(seconds=10, size_mb=1, files=2), block_size=1, codec=CODEC_NONE)
    ts = kit.T0
    for k in range(30):
        if k == 15:
            ts += 11 * 10**9
        b = kit.make_batch(1000, ts)
        ts = b.last_ts + 250
        w.write_events(b.raw, b.count, b.first_ts, b.last_ts)
    w.close()
    assert w.files == [base + n for n in ("00", "01", "10", "11")]
