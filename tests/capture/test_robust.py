"""Damaged captures: cut short, bit flips, zeroed ranges, garbage, lying lengths, fuzz."""

from __future__ import annotations

import os
import random
import re
import struct
import tracemalloc
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tracer.capture import CaptureReader, EventBlock, StatsBlock, TableBlock
from tracer.capture import format as fmt
from tracer.capture.blockcodec import CODEC_LZ4, CODEC_LZ4_64K, CODEC_ZSTD, encode_block
from tracer.errors import CaptureError

TRUNC = re.compile(r"capture truncated: recovered (\d+) events in (\d+) blocks, lost the tail after byte (\d+)")


def read_all(path: str) -> tuple[CaptureReader | None, list[Any]]:
    """Read everything; (None, []) when the reader refuses the file (CaptureError)."""
    try:
        r = CaptureReader(path)
    except CaptureError:
        return None, []
    with r:
        return r, list(r)


def check_events_are_originals(cap: Any, got: list[Any]) -> None:
    """Every EventBlock read is one the test wrote, whole, at its own offset."""
    by_off = {off: b for (off, _, _), b in zip(cap.event_blocks(), cap.batches, strict=True)}
    for i in got:
        if isinstance(i, EventBlock):
            b = by_off[i.offset]
            assert (i.raw, i.count, i.first_ts, i.last_ts) == (b.raw, b.count, b.first_ts, b.last_ts)


def cut_points(cap: Any) -> list[int]:
    pts = set()
    for off, end, _ in cap.blocks:
        pts.update({off, off + 1, off + 4, off + 20, off + fmt.BLOCK_HEAD_SIZE - 1, off + fmt.BLOCK_HEAD_SIZE})
        pts.update({off + fmt.BLOCK_HEAD_SIZE + 1, (off + end) // 2, end - 1})
    return sorted(p for p in pts if cap.data_start <= p < len(cap.raw))


def test_truncation_everywhere(capture: Any, tmp_path: Any) -> None:
    p = os.fspath(tmp_path / "t.kcap")
    for cut in cut_points(capture):
        with open(p, "wb") as f:
            f.write(capture.raw[:cut])
        r, got = read_all(p)
        assert r is not None and not r.complete, cut
        whole = [(o, e, k) for o, e, k in capture.blocks if e <= cut]
        good_end = whole[-1][1] if whole else capture.data_start
        ev_whole = [b for b in whole if b[2] == fmt.KIND_EVENTS]
        expect_events = sum(b.count for b, _ in zip(capture.batches, ev_whole, strict=False))
        assert sum(i.count for i in got if isinstance(i, EventBlock)) == expect_events
        check_events_are_originals(capture, got)
        m = TRUNC.fullmatch(r.notes[-1])
        assert m is not None, r.notes
        assert (int(m[1]), int(m[2]), int(m[3])) == (expect_events, len(ev_whole), good_end), cut
        assert len(r.notes) == 1, r.notes
        # Exit-ready: tables read before the cut are there for the state.
        assert [i.kind for i in got if isinstance(i, TableBlock)] == ["threads", "containers"][
            : len([b for b in whole if b[2] == fmt.KIND_TABLE])
        ]


def test_truncated_inside_header_area_is_refused(capture: Any, tmp_path: Any) -> None:
    p = tmp_path / "t.kcap"
    for cut in (1, 4, 15, 16, capture.data_start - 1):
        p.write_bytes(capture.raw[:cut])
        with pytest.raises(CaptureError):
            CaptureReader(p)


@pytest.mark.parametrize("seed", range(4))
def test_bit_flips_in_blocks(capture: Any, tmp_path: Any, seed: int) -> None:
    rnd = random.Random(seed)
    p = os.fspath(tmp_path / "f.kcap")
    for _ in range(60):
        data = bytearray(capture.raw)
        pos = rnd.randrange(capture.data_start, len(data))
        data[pos] ^= 1 << rnd.randrange(8)
        with open(p, "wb") as f:
            f.write(data)
        r, got = read_all(p)
        assert r is not None
        check_events_are_originals(capture, got)
        hit = next(b for b in capture.blocks if b[0] <= pos < b[1])
        n = sum(i.count for i in got if isinstance(i, EventBlock))
        if hit[2] == fmt.KIND_EVENTS:
            lost = capture.batches[capture.event_blocks().index(hit)].count
            assert n == capture.events - lost, (pos, r.notes)
            assert any("damaged block" in x or "unreadable data" in x for x in r.notes)
        elif hit[2] != fmt.KIND_FOOTER:
            assert n == capture.events, (pos, r.notes)
            assert r.notes
        else:
            assert n == capture.events


def test_every_single_byte_in_one_event_block(capture: Any, tmp_path: Any) -> None:
    off, end, _ = capture.event_blocks()[2]
    p = os.fspath(tmp_path / "f.kcap")
    for pos in range(off, min(end, off + 120)):
        data = bytearray(capture.raw)
        data[pos] ^= 0xFF
        with open(p, "wb") as f:
            f.write(data)
        r, got = read_all(p)
        assert r is not None and r.damaged
        check_events_are_originals(capture, got)
        assert sum(i.count for i in got if isinstance(i, EventBlock)) == capture.events - capture.batches[2].count


@pytest.mark.parametrize("span", [(0, 1), (1, 3), (2, 4)])
def test_zeroed_ranges(capture: Any, tmp_path: Any, span: tuple[int, int]) -> None:
    ev = capture.event_blocks()
    a, b = ev[span[0]][0] + 10, ev[span[1] - 1][1] - 3
    data = bytearray(capture.raw)
    data[a:b] = bytes(b - a)
    p = os.fspath(tmp_path / "z.kcap")
    with open(p, "wb") as f:
        f.write(data)
    r, got = read_all(p)
    assert r is not None and r.damaged
    check_events_are_originals(capture, got)
    kept = [i for i in got if isinstance(i, EventBlock)]
    assert len(kept) == len(ev) - (span[1] - span[0])
    assert any(n.startswith("unreadable data at bytes") or n.startswith("damaged block") for n in r.notes)
    assert isinstance(got[-1], StatsBlock)


@pytest.mark.parametrize("tail", [b"\0" * 5000, os.urandom(3000), fmt.SYNC * 50, b"x"])
def test_garbage_after_footer(capture: Any, tmp_path: Any, tail: bytes) -> None:
    p = os.fspath(tmp_path / "g.kcap")
    with open(p, "wb") as f:
        f.write(capture.raw + tail)
    r, got = read_all(p)
    assert r is not None and r.complete
    assert sum(i.count for i in got if isinstance(i, EventBlock)) == capture.events
    assert r.notes == [f"ignored {len(tail)} bytes after the end of the capture at byte {len(capture.raw)}"]


def test_garbage_after_cut(capture: Any, tmp_path: Any) -> None:
    off, _, _ = capture.event_blocks()[3]
    p = os.fspath(tmp_path / "g.kcap")
    with open(p, "wb") as f:
        f.write(capture.raw[: off + 30] + os.urandom(5000))
    r, got = read_all(p)
    assert r is not None and not r.complete
    assert sum(i.count for i in got if isinstance(i, EventBlock)) == sum(b.count for b in capture.batches[:3])
    assert r.notes[0] == f"unreadable data at bytes {off}-{off + 30 + 5000}: skipped"
    assert TRUNC.fullmatch(r.notes[-1])


def block_with(kind: int, stored: bytes, stored_len: int, raw_len: int, count: int = 0) -> bytes:
    """A block header that checks out but claims the given lengths."""
    head = struct.pack(fmt.BLOCK_HEAD_FMT, fmt.SYNC, kind, CODEC_ZSTD, 0, stored_len, raw_len, count, 0, 0, 0)
    import zlib

    return head + struct.pack("<I", zlib.crc32(head)) + stored


@pytest.mark.parametrize(
    "stored_len, raw_len",
    [(0xFFFFFFFF, 100), (100, 0xFFFFFFFF), (fmt.MAX_BLOCK + 1, 10), (10, fmt.MAX_BLOCK + 1)],
)
def test_huge_claimed_length_does_not_allocate(capture: Any, tmp_path: Any, stored_len: int, raw_len: int) -> None:
    ev = capture.event_blocks()[1]
    liar = block_with(fmt.KIND_EVENTS, b"\0" * 64, stored_len, raw_len, 5)
    data = capture.raw[: ev[0]] + liar + capture.raw[ev[0] :]
    p = os.fspath(tmp_path / "h.kcap")
    with open(p, "wb") as f:
        f.write(data)
    tracemalloc.start()
    try:
        r, got = read_all(p)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 8 << 20
    assert r is not None
    assert sum(i.count for i in got if isinstance(i, EventBlock)) == capture.events
    assert any(n.startswith(f"unreadable data at bytes {ev[0]}-") for n in r.notes)


@pytest.mark.parametrize(("codec", "says"), [(CODEC_ZSTD, "zstd frame holds"), (CODEC_LZ4, "lz4:"),
                                           (CODEC_LZ4_64K, "lz4-64k:")])
def test_frame_claiming_more_than_header_says(capture: Any, tmp_path: Any, codec: int, says: str) -> None:
    """A sound header over compressed data that decodes to more than raw_len: skipped, bounded."""
    big = encode_block(b"\0" * (32 << 20), codec)
    import zlib

    head = struct.pack(
        fmt.BLOCK_HEAD_FMT, fmt.SYNC, fmt.KIND_EVENTS, codec, 0, len(big), 16, 2, 0, 0, zlib.crc32(big)
    )
    liar = head + struct.pack("<I", zlib.crc32(head)) + big
    ev = capture.event_blocks()[0]
    p = os.fspath(tmp_path / "h.kcap")
    with open(p, "wb") as f:
        f.write(capture.raw[: ev[0]] + liar + capture.raw[ev[0] :])
    tracemalloc.start()
    try:
        r, got = read_all(p)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 8 << 20
    assert r is not None and sum(i.count for i in got if isinstance(i, EventBlock)) == capture.events
    assert any(n.startswith(f"damaged block at byte {ev[0]} ({says}") for n in r.notes)


def test_well_formed_block_with_bad_msgpack(capture: Any, tmp_path: Any) -> None:
    import zlib

    for kind, doc in (
        (fmt.KIND_TABLE, b"\xc1"),
        (fmt.KIND_TABLE, b"\x93\x01\x02\x03"),
        (fmt.KIND_STATS, b"\x01"),
    ):
        head = struct.pack(fmt.BLOCK_HEAD_FMT, fmt.SYNC, kind, 0, 0, len(doc), len(doc), 0, 0, 0, zlib.crc32(doc))
        blk = head + struct.pack("<I", zlib.crc32(head)) + doc
        ev = capture.event_blocks()[0]
        p = os.fspath(tmp_path / "m.kcap")
        with open(p, "wb") as f:
            f.write(capture.raw[: ev[0]] + blk + capture.raw[ev[0] :])
        r, got = read_all(p)
        assert r is not None and sum(i.count for i in got if isinstance(i, EventBlock)) == capture.events
        assert any(n.startswith(f"damaged block at byte {ev[0]}") for n in r.notes)


@st.composite
def mutations(draw: Any) -> list[tuple[str, int, int, bytes]]:
    ops: list[tuple[str, int, int, bytes]] = draw(
        st.lists(
            st.tuples(
                st.sampled_from(["flip", "zero", "cut", "insert", "delete", "sync"]),
                st.integers(0, 1 << 20),
                st.integers(1, 300),
                st.binary(max_size=64),
            ),
            min_size=1,
            max_size=6,
        )
    )
    return ops


def mutate(data: bytes, ops: list[tuple[str, int, int, bytes]]) -> bytes:
    b = bytearray(data)
    for op, pos, n, blob in ops:
        if not b:
            break
        pos %= len(b)
        if op == "flip":
            b[pos] ^= 1 << (n % 8)
        elif op == "zero":
            b[pos : pos + n] = bytes(len(b[pos : pos + n]))
        elif op == "cut":
            del b[pos:]
        elif op == "insert":
            b[pos:pos] = blob
        elif op == "delete":
            del b[pos : pos + n]
        else:
            b[pos:pos] = fmt.SYNC + blob
    return bytes(b)


@settings(max_examples=300, deadline=2000, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=mutations())
def test_fuzz_reader_only_raises_capture_error(capture: Any, tmp_path: Any, ops: list[Any]) -> None:
    data = mutate(capture.raw, ops)
    p = os.fspath(tmp_path / "fz.kcap")
    with open(p, "wb") as f:
        f.write(data)
    r, got = read_all(p)  # any exception but CaptureError fails the test
    if r is None:
        return
    for i in got:
        assert isinstance(i, (EventBlock, TableBlock, StatsBlock))
        if isinstance(i, EventBlock):
            assert len(i.raw) <= fmt.MAX_BLOCK
    if data != capture.raw:
        assert r.notes or r.complete
