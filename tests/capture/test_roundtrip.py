"""What the writer writes, the reader reads: events, tables, stats, header, versions, modes."""

from __future__ import annotations

import os
import struct
import time
import zlib
from typing import Any

import msgpack
import pytest

from tracer.capture import (
    CaptureReader,
    CaptureWriter,
    EventBlock,
    FileStart,
    StatsBlock,
    TableBlock,
    Upgrade,
)
from tracer.capture import format as fmt
from tracer.capture.blockcodec import (
    CODEC_LZ4,
    CODEC_LZ4_64K,
    CODEC_NONE,
    CODEC_ZSTD,
    CODEC_ZSTD_T8,
    BlockError,
    decode_block,
    encode_block,
)
from tracer.capture.files import read_captures
from tracer.errors import CaptureError


def items(path: str) -> tuple[CaptureReader, list[Any]]:
    r = CaptureReader(path)
    return r, list(r)


def test_round_trip_items_in_order(capture: Any, kit: Any) -> None:
    r, got = items(capture.path)
    assert r.notes == [] and r.complete and not r.damaged
    assert [type(i).__name__ for i in got] == ["TableBlock"] * 2 + ["EventBlock"] * 6 + ["StatsBlock"] * 2
    assert got[0] == TableBlock("threads", kit.THREADS, got[0].offset)
    assert got[1] == TableBlock("containers", kit.CONTAINERS, got[1].offset)
    evs = [i for i in got if isinstance(i, EventBlock)]
    for e, b in zip(evs, capture.batches, strict=True):
        assert (e.raw, e.count, e.first_ts, e.last_ts) == (b.raw, b.count, b.first_ts, b.last_ts)
    stats = [i for i in got if isinstance(i, StatsBlock)]
    assert stats[0].stats["drops"] == {"ringbuf_full": 7, "filtered": 0}
    assert stats[0].stats["events"] == capture.events
    # The closing STATS block repeats the caller's latest counters with the writer's final ones.
    assert stats[-1].stats["drops"] == {"ringbuf_full": 7, "filtered": 0}
    assert stats[-1].stats["writer"]["events"] == capture.events
    assert r.events == capture.events


def test_header_fields(tmp_path: Any, kit: Any) -> None:
    p = os.fspath(tmp_path / "h.kcap")
    before = time.time_ns()
    meta = {"snaplen": 2000, "schema_version": 3, "cmdline": ["ktrace", "-w", p], "filter": "proc.name=dd"}
    with CaptureWriter(p, meta) as w:
        b = kit.make_batch(10, kit.T0)
        w.write_events(b.raw, b.count, b.first_ts, b.last_ts)
    after = time.time_ns()
    r = CaptureReader(p)
    h = r.header
    assert r.version == (fmt.FORMAT_MAJOR, fmt.FORMAT_MINOR)
    assert set(h["machine"]) == {"hostname", "kernel", "boot_time", "cpus"}
    assert h["machine"]["hostname"] and h["machine"]["kernel"] == os.uname().release
    assert h["machine"]["cpus"] == os.cpu_count()
    assert 0 < h["machine"]["boot_time"] < before
    assert before <= h["start_time"] <= after
    assert h["snaplen"] == 2000 and h["schema_version"] == 3
    assert h["cmdline"] == ["ktrace", "-w", p] and h["filter"] == "proc.name=dd" and h["file_seq"] == 0


def test_index_lists_event_blocks(capture: Any) -> None:
    r, got = items(capture.path)
    evs = [i for i in got if isinstance(i, EventBlock)]
    assert r.index is not None
    assert [(e.offset, e.first_ts, e.last_ts, e.count) for e in r.index] == [
        (e.offset, e.first_ts, e.last_ts, e.count) for e in evs
    ]


@pytest.mark.parametrize("codec", [CODEC_NONE, CODEC_ZSTD, CODEC_ZSTD_T8, CODEC_LZ4, CODEC_LZ4_64K])
def test_codecs_round_trip(make_capture: Any, codec: int) -> None:
    c = make_capture("c.kcap", 3, 101, codec=codec)
    r, got = items(c.path)
    assert b"".join(i.raw for i in got if isinstance(i, EventBlock)) == b"".join(b.raw for b in c.batches)
    assert r.notes == []


@pytest.mark.parametrize("n", [0, 1, 7, 8, 9, 4095, 65535, 65536, 65537, 70001, 3 << 16])
def test_block_codecs_exact(n: int) -> None:
    raw = bytes((i * 7 + i // 256) & 0xFF for i in range(n))
    for codec in (CODEC_NONE, CODEC_ZSTD, CODEC_ZSTD_T8, CODEC_LZ4, CODEC_LZ4_64K):
        assert decode_block(encode_block(raw, codec), codec, n) == raw


def test_lz4_64k_layout() -> None:
    """As format.py documents it: 64 KiB chunks, each a plain LZ4 block after its u32 length."""
    import lz4.block

    raw = bytes((i * 7 + i // 256) & 0xFF for i in range(200_000))
    stored = encode_block(raw, CODEC_LZ4_64K)
    parts, pos = [], 0
    while pos < len(stored):
        (n,) = struct.unpack_from("<I", stored, pos)
        parts.append(lz4.block.decompress(stored[pos + 4:pos + 4 + n], uncompressed_size=65536))
        pos += 4 + n
    assert [len(p) for p in parts] == [65536, 65536, 65536, 200_000 - 3 * 65536]
    assert b"".join(parts) == raw


def test_lz4_64k_damage_is_a_block_error() -> None:
    raw = bytes((i * 7 + i // 256) & 0xFF for i in range(3 << 16))
    stored = encode_block(raw, CODEC_LZ4_64K)
    (first,) = struct.unpack_from("<I", stored)
    for bad, says in ((stored[:-1], "cut short"), (stored[: 4 + first], "missing"),
                      (stored + b"\0", "after the last chunk"),
                      (struct.pack("<I", first + 1) + stored[4:], "")):
        with pytest.raises(BlockError, match="^lz4-64k: .*" + says):
            decode_block(bad, CODEC_LZ4_64K, len(raw))


def test_joins_batches_only_up_to_the_block_size(tmp_path: Any, kit: Any) -> None:
    """Two batches that together pass the block size are two blocks: joining copies both."""
    p = os.fspath(tmp_path / "j.kcap")
    bs = kit.batches(6, 200)
    size = len(bs[0].raw) * 3 // 2
    with CaptureWriter(p, {}, block_size=size) as w:
        for b in bs:
            w.write_events(b.raw, b.count, b.first_ts, b.last_ts)
    _, got = items(p)
    assert [e.raw for e in got if isinstance(e, EventBlock)] == [b.raw for b in bs]


def test_coalesces_small_batches(tmp_path: Any, kit: Any) -> None:
    p = os.fspath(tmp_path / "c.kcap")
    bs = kit.batches(50, 40)
    with CaptureWriter(p, {}, block_size=1 << 20) as w:
        for b in bs:
            w.write_events(b.raw, b.count, b.first_ts, b.last_ts)
    _, got = items(p)
    evs = [i for i in got if isinstance(i, EventBlock)]
    assert len(evs) < 5
    assert b"".join(e.raw for e in evs) == b"".join(b.raw for b in bs)
    assert (evs[0].first_ts, evs[-1].last_ts, sum(e.count for e in evs)) == (
        bs[0].first_ts,
        bs[-1].last_ts,
        2000,
    )


def test_flush_interval_writes_without_close(tmp_path: Any, kit: Any) -> None:
    p = os.fspath(tmp_path / "c.kcap")
    w = CaptureWriter(p, {}, flush_interval=0.2)
    try:
        b = kit.make_batch(30, kit.T0)
        w.write_events(b.raw, b.count, b.first_ts, b.last_ts)
        deadline = time.monotonic() + 5
        while True:
            r, got = items(p)
            if got or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        assert [i.raw for i in got] == [b.raw]
        assert not r.complete and r.notes[-1].startswith("capture truncated: recovered 30 events in 1 blocks")
    finally:
        w.close()


def test_flush_and_stats_property(tmp_path: Any, kit: Any) -> None:
    p = os.fspath(tmp_path / "c.kcap")
    with CaptureWriter(p, {}, flush_interval=60) as w:
        b = kit.make_batch(20, kit.T0)
        w.write_events(b.raw, b.count, b.first_ts, b.last_ts)
        assert w.flush(5)
        assert w.stats["events"] == 20 and w.stats["blocks"] == 1
        assert [i.count for i in CaptureReader(p) if isinstance(i, EventBlock)] == [20]


def test_stalls_are_counted(tmp_path: Any, kit: Any, monkeypatch: Any) -> None:
    from tracer.capture import blockcodec

    real = blockcodec.encode_block

    def slow(raw: bytes, codec: int = 1, level: int = 1) -> bytes:
        time.sleep(0.02)
        return real(raw, codec, level)

    monkeypatch.setattr(blockcodec, "encode_block", slow)
    p = os.fspath(tmp_path / "c.kcap")
    bs = kit.batches(10, 100)
    with CaptureWriter(p, {}, block_size=1, queue_limit=1) as w:
        for b in bs:
            w.write_events(b.raw, b.count, b.first_ts, b.last_ts)
        w.write_stats({"drops": {}})
    assert w.stats["stalls"] >= 5 and w.stats["stall_seconds"] > 0
    stats = [i for i in CaptureReader(p) if isinstance(i, StatsBlock)]
    assert stats[-1].stats["writer"]["stalls"] == w.stats["stalls"]
    assert sum(i.count for i in CaptureReader(p) if isinstance(i, EventBlock)) == 1000


def test_file_mode_0600(tmp_path: Any, kit: Any) -> None:
    old = os.umask(0)
    try:
        p = tmp_path / "c.kcap"
        p.write_bytes(b"old")
        os.chmod(p, 0o666)
        with CaptureWriter(os.fspath(p), {}):
            pass
        assert os.stat(p).st_mode & 0o777 == 0o600
        q = tmp_path / "new.kcap"
        with CaptureWriter(os.fspath(q), {}):
            pass
        assert os.stat(q).st_mode & 0o777 == 0o600
    finally:
        os.umask(old)


def test_write_errors_are_capture_errors(tmp_path: Any, kit: Any) -> None:
    with pytest.raises(CaptureError, match="cannot write capture"):
        CaptureWriter(os.fspath(tmp_path / "missing" / "c.kcap"), {})
    w = CaptureWriter(os.fspath(tmp_path / "c.kcap"), {})
    w.close()
    w.close()  # idempotent
    b = kit.make_batch(2, kit.T0)
    with pytest.raises(CaptureError, match="closed"):
        w.write_events(b.raw, b.count, b.first_ts, b.last_ts)


def test_empty_capture(tmp_path: Any) -> None:
    p = os.fspath(tmp_path / "c.kcap")
    with CaptureWriter(p, {}):
        pass
    r, got = items(p)
    assert [type(i) for i in got] == [StatsBlock] and r.complete and r.notes == [] and r.index == []


def write_versioned(path: str, major: int, minor: int, *, blocks: bytes = b"") -> None:
    with open(path, "wb") as f:
        f.write(fmt.pack_file_header({"start_time": 1, "old": True}, major, minor) + blocks)


def footer_less_blocks(kit: Any) -> bytes:
    b = kit.make_batch(4, kit.T0)
    stored = encode_block(b.raw)
    ev = fmt.pack_block_head(fmt.KIND_EVENTS, CODEC_ZSTD, stored, len(b.raw), 4, b.first_ts, b.last_ts) + stored
    doc: bytes = msgpack.packb({"drops": {"x": 1}})
    st = fmt.pack_block_head(fmt.KIND_STATS, CODEC_NONE, doc, len(doc)) + doc
    return ev + st


def test_newer_major_refused(tmp_path: Any) -> None:
    p = os.fspath(tmp_path / "new.kcap")
    write_versioned(p, fmt.FORMAT_MAJOR + 1, 3)
    with pytest.raises(CaptureError) as e:
        CaptureReader(p)
    assert f"{fmt.FORMAT_MAJOR + 1}.3" in str(e.value) and f"{fmt.FORMAT_MAJOR}.{fmt.FORMAT_MINOR}" in str(e.value)
    assert e.value.exit_code == 2


def test_newer_minor_and_unknown_kind_readable(tmp_path: Any, kit: Any) -> None:
    p = os.fspath(tmp_path / "m.kcap")
    odd = b"future"
    unknown = fmt.pack_block_head(99, CODEC_NONE, odd, len(odd)) + odd
    write_versioned(p, fmt.FORMAT_MAJOR, fmt.FORMAT_MINOR + 5, blocks=unknown + footer_less_blocks(kit))
    r, got = items(p)
    assert r.version == (fmt.FORMAT_MAJOR, fmt.FORMAT_MINOR + 5)
    assert [type(i) for i in got] == [EventBlock, StatsBlock]
    assert any("unknown kind 99" in n for n in r.notes)


def test_older_version_upgrade_hook(tmp_path: Any, kit: Any, monkeypatch: Any) -> None:
    p = os.fspath(tmp_path / "old.kcap")
    write_versioned(p, 0, 9, blocks=footer_less_blocks(kit))
    with pytest.raises(CaptureError, match=r"0\.9 is too old"):
        CaptureReader(p)
    monkeypatch.setattr(fmt, "UPGRADES", {})
    fmt.register_upgrade(
        Upgrade(
            (0, 9),
            (1, 0),
            header=lambda h: {**h, "upgraded": True},
            item=lambda i: None if isinstance(i, StatsBlock) else i,
        )
    )
    r, got = items(p)
    assert r.header["upgraded"] and r.header["old"]
    assert [type(i) for i in got] == [EventBlock]


@pytest.mark.parametrize(
    "content, why",
    [
        (b"", "empty file"),
        (b"hello world, not a capture at all", "starts with"),
        (b"\x1f\x8b\x08\x00rest", "gzip"),
        (b"\x0a\x0d\x0d\x0a\x00\x00\x00\x00", "sysdig .scap"),
        (b"KCA", "too short"),
        (b"KCAP\x01\x00", "too short"),
    ],
)
def test_not_a_capture(tmp_path: Any, content: bytes, why: str) -> None:
    p = tmp_path / "x.kcap"
    p.write_bytes(content)
    with pytest.raises(CaptureError, match=f"is not a ktrace capture \\(.*{why}"):
        CaptureReader(p)


def test_directory_and_missing(tmp_path: Any) -> None:
    with pytest.raises(CaptureError, match="is not a ktrace capture"):
        CaptureReader(tmp_path)
    with pytest.raises(CaptureError, match="cannot read"):
        CaptureReader(tmp_path / "nope.kcap")


@pytest.mark.parametrize("where", ["meta", "length", "crc"])
def test_damaged_header(capture: Any, tmp_path: Any, where: str) -> None:
    data = bytearray(capture.raw)
    if where == "meta":
        data[20] ^= 0x10
    elif where == "length":
        struct.pack_into("<I", data, 8, 0xFFFFFFF0)
    else:
        struct.pack_into("<I", data, 12, zlib.crc32(b"other"))
    p = tmp_path / "d.kcap"
    p.write_bytes(bytes(data))
    with pytest.raises(CaptureError, match="damaged capture header"):
        CaptureReader(p)


def test_header_cut_short(capture: Any, tmp_path: Any) -> None:
    p = tmp_path / "d.kcap"
    p.write_bytes(capture.raw[:30])
    with pytest.raises(CaptureError, match="cut short"):
        CaptureReader(p)


def test_read_captures_in_sequence(make_capture: Any) -> None:
    a = make_capture("a.kcap", 2, 10)
    b = make_capture("b.kcap", 3, 10, tables=False)
    notes: list[str] = []
    got = list(read_captures([a.path, b.path], on_note=notes.append))
    starts = [i for i in got if isinstance(i, FileStart)]
    assert [s.path for s in starts] == [a.path, b.path]
    assert isinstance(got[0], FileStart) and got[0].header["file_seq"] == 0
    assert sum(i.count for i in got if isinstance(i, EventBlock)) == 50
    assert notes == []
    with open(b.path, "r+b") as f:
        f.truncate(b.event_blocks()[-1][0] + 5)
    list(read_captures([a.path, b.path], on_note=notes.append))
    assert len(notes) == 1 and notes[0].startswith(f"{b.path}: capture truncated: recovered 20 events")


def test_disk_full_is_reported(tmp_path: Any, kit: Any, monkeypatch: Any) -> None:
    import errno

    from tracer.capture import writer as wmod

    real = wmod._write_all
    calls = [0]

    def failing(fd: int, *parts: bytes) -> None:
        calls[0] += 1
        if calls[0] > 3:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real(fd, *parts)

    monkeypatch.setattr(wmod, "_write_all", failing)
    w = CaptureWriter(os.fspath(tmp_path / "c.kcap"), {}, block_size=1)
    b = kit.make_batch(10, kit.T0)
    with pytest.raises(CaptureError, match="No space left on device"):
        for _ in range(100):
            w.write_events(b.raw, b.count, b.first_ts, b.last_ts)
            w.flush(5)
    with pytest.raises(CaptureError, match="No space left on device"):
        w.close()
    # What reached the disk reads back.
    r = CaptureReader(tmp_path / "c.kcap")
    assert sum(i.count for i in r if isinstance(i, EventBlock)) == 20
    assert r.notes[-1].startswith("capture truncated: recovered 20 events in 2 blocks")


def test_dev_null_keeps_its_mode(kit: Any) -> None:
    before = os.stat("/dev/null").st_mode
    with CaptureWriter("/dev/null", {}) as w:
        b = kit.make_batch(10, kit.T0)
        w.write_events(b.raw, b.count, b.first_ts, b.last_ts)
    assert os.stat("/dev/null").st_mode == before


def test_iterating_twice_gives_the_same(capture: Any, tmp_path: Any) -> None:
    p = tmp_path / "t.kcap"
    p.write_bytes(capture.raw[: capture.event_blocks()[2][0] + 9])
    r = CaptureReader(p)
    first = (list(r), list(r.notes), r.events)
    assert (list(r), r.notes, r.events) == first and r.events == 400
