"""The index: C and pure tallies agree; the overview's numbers equal ktrace's chisels and output
lines over the same capture; the cache is reused while the capture is unchanged and redone after."""

from __future__ import annotations

import os
from array import array
from pathlib import Path

import pytest
from inspectkit import CAPTURES, copy_captures, expected

from tracer._pure import tally as pure_tally
from tracer.capture import EventBlock
from tracer.capture.files import read_captures
from tracer.engine import tally
from tracer.inspect.index import BUCKET_NS, CATEGORIES, FAILS, MAX_BUCKETS, build, category_table, load_or_build
from tracer.inspect.summary import TILES, totals
from tracer.schema.events import INTERNAL_EVENTS, event_name

SAMPLES = sorted(p.name for p in CAPTURES.glob("*.kcap"))


def _overview(idx, first: int = 0, last: int | None = None) -> dict[str, int]:
    last = idx.nbuckets - 1 if last is None else last
    return {t.id: totals(t, idx.tiles.get(t.id, {}), first, last)[0] for t in TILES}


@pytest.mark.parametrize("name", SAMPLES)
def test_tiles_equal_the_chisels(name: str) -> None:
    files = [CAPTURES / name]
    idx = build([str(f) for f in files])
    got = _overview(idx)
    want = expected(files)
    for k in ("procs", "containers", "syscalls", "connections", "net_in", "net_out", "files", "file_in", "file_out",
              "errors"):
        assert got[k] == want[k], (k, got[k], want[k])
    assert got["net_in"] + got["net_out"] == want["net_total"]  # topprocs_net
    assert got["file_in"] + got["file_out"] == want["file_total"]  # fdbytes_by fd.name


def test_a_time_range_is_a_merge_of_buckets() -> None:
    files = [CAPTURES / "01-webserver.kcap"]
    idx = build([str(files[0])])
    assert idx.nbuckets >= 10
    first, last = 1, idx.nbuckets // 2
    start, end = idx.t0 + first * idx.bucket_ns, idx.t0 + (last + 1) * idx.bucket_ns
    got = _overview(idx, first, last)
    want = expected(files, f"evt.rawtime >= {start} and evt.rawtime < {end}")
    for k in ("procs", "syscalls", "connections", "net_in", "net_out", "files", "file_in", "file_out", "errors"):
        assert got[k] == want[k], (k, got[k], want[k])
    assert got["syscalls"] < _overview(idx)["syscalls"]


@pytest.mark.parametrize("name", SAMPLES)
def test_tally_engines_agree_with_a_count_of_records(name: str) -> None:
    cats = category_table()
    n = len(CATEGORIES)
    counts_c: array[int] = array("Q")
    counts_py: array[int] = array("Q")
    by_cat = [0] * n
    t0 = 0
    skip = CATEGORIES.index("internal")
    pids_c: set[int] = set()
    pids_py: set[int] = set()
    pairs: set[int] = set()
    failed_c: array[int] = array("Q")
    failed_py: array[int] = array("Q")
    nfailed = 0
    for item in read_captures([CAPTURES / name]):
        if isinstance(item, EventBlock) and item.count:
            t0 = t0 or item.first_ts
            assert tally.tally(item.raw, cats, t0, BUCKET_NS, n, MAX_BUCKETS - 1, counts_c, failed_c, pids_c,
                               skip) == item.count
            assert pure_tally.tally(item.raw, cats, t0, BUCKET_NS, n, MAX_BUCKETS - 1, counts_py, failed_py,
                                    pids_py, skip) == item.count
            off = 0
            while off < len(item.raw):  # the independent count: walk the records by their length field
                evt = int.from_bytes(item.raw[off + 16:off + 18], "little")
                ts = int.from_bytes(item.raw[off:off + 8], "little")
                pid = int.from_bytes(item.raw[off + 12:off + 16], "little")
                if not item.raw[off + 84] & 8:  # hidden: state only, not counted
                    cat = cats[evt] & 0x7F
                    by_cat[cat] += 1
                    if cat != skip:
                        pairs.add(max(0, ts - t0) // BUCKET_NS << 32 | pid)
                    if cats[evt] & FAILS and int.from_bytes(item.raw[off + 24:off + 32], "little", signed=True) < 0:
                        nfailed += 1
                off += int.from_bytes(item.raw[off + 20:off + 24], "little")
    assert counts_c == counts_py
    assert [sum(counts_c[i::n]) for i in range(n)] == by_cat
    assert pids_c == pids_py == pairs
    assert failed_c == failed_py and sum(failed_c) == nfailed


def test_categories_follow_the_schema() -> None:
    cats = category_table()
    assert CATEGORIES[cats[next(iter(INTERNAL_EVENTS))]] == "internal"
    read_exit = next(e for e in range(1, 1024, 2) if event_name(e) == "read")
    assert CATEGORIES[cats[read_exit] & 0x7F] == "io" and cats[read_exit] & FAILS


def test_tally_refuses_a_bad_record_length() -> None:
    bad = bytes(88)  # length field 0
    for impl in (tally, pure_tally):
        with pytest.raises(ValueError, match="bad record length"):
            impl.tally(bad, category_table(), 0, BUCKET_NS, len(CATEGORIES), 10, array("Q"), array("Q"), set(), 0)


def test_index_is_cached_beside_the_capture_and_redone_when_it_changes(tmp_path: Path) -> None:
    (cap,) = copy_captures(tmp_path, ["05-failing-service.kcap"])
    idx, where = load_or_build([str(cap)])
    assert where == str(cap) + ".kidx" and os.path.exists(where)
    mtime = os.stat(where).st_mtime_ns
    again, where2 = load_or_build([str(cap)])
    assert where2 == where and os.stat(where).st_mtime_ns == mtime and again.counts == idx.counts
    os.utime(cap, ns=(1, 1))  # the capture changed: a new index
    _, where3 = load_or_build([str(cap)])
    assert os.stat(where3).st_mtime_ns != mtime


def test_index_goes_to_the_cache_dir_when_it_cannot_be_written_beside(tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    (cap,) = copy_captures(tmp_path, ["05-failing-service.kcap"])
    (tmp_path / (cap.name + ".kidx")).mkdir()  # in the way, even for root
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    idx, where = load_or_build([str(cap)])
    assert where.startswith(str(tmp_path / "cache" / "ktrace" / "inspect"))
    again, where2 = load_or_build([str(cap)])
    assert where2 == where and again.tiles == idx.tiles
