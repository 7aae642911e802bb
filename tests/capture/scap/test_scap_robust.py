"""Damaged .scap files: cut at and inside every block, bit flips, lying lengths, random bytes.

The reader must refuse a file only at its section header (CaptureError), otherwise read what it
can without raising, keep every event it gives back whole, and stay within bounded memory.
"""

from __future__ import annotations

import gzip
import re
import struct
import tracemalloc
from pathlib import Path
from typing import Any

import pytest
import scapbytes as S
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tracer.capture.reader import EventBlock
from tracer.capture.scap import blocks as B
from tracer.capture.scap.reader import ScapReader
from tracer.errors import CaptureError
from tracer.event import Event, RenderOptions
from tracer.schema import record as R
from tracer.state.state import State

ROOT = Path(__file__).resolve().parents[3]
TRUNC = re.compile(r"capture truncated: recovered (\d+) events, lost the tail after byte (\d+)")
MEMORY_BOUND = 96 << 20  # a lying length may make the reader ask for one block of MAX_BLOCK, no more


def sample() -> bytes:
    """A real capture (sysdig's), uncompressed and cut down to its tables, a few fd lists and its
    last events (the connection), plus a few block kinds it lacks."""
    raw = gzip.decompress((ROOT / "captures" / "scap" / "single_ipv6_conn.scap").read_bytes())
    blocks, pos = [], 0
    while pos + 8 <= len(raw):
        btype, total = struct.unpack_from("<II", raw, pos)
        blocks.append((btype, raw[pos:pos + total]))
        pos += total
    fdls = [b for t, b in blocks if t in (B.FDL, B.FDL_V2)]
    events = [b for t, b in blocks if t in B.EVENT_BLOCKS]
    head = [b for t, b in blocks if t not in B.EVENT_BLOCKS and t not in (B.FDL, B.FDL_V2)]
    raw = b"".join(head + fdls[:4] + events[-60:])
    return raw + S.ul(True, [(0, 0, "root", "/root", "/bin/sh")], [(0, "root")]) + S.ev(
        B.EVF_V2_LARGE, S.TS0, 9, 7, [S.i64(2), b"hi"], flags=B.DF_STATE_ONLY)


def block_ends(data: bytes) -> list[int]:
    ends, pos = [], 0
    while pos + 8 <= len(data):
        pos += struct.unpack_from("<I", data, pos + 4)[0]
        ends.append(pos)
    return ends


DATA = sample()
ENDS = block_ends(DATA)


def read_all(path: Path) -> tuple[ScapReader | None, int, list[EventBlock]]:
    try:
        r = ScapReader(path)
    except CaptureError:
        return None, 0, []
    with r:
        got = list(r)
    blocks = [x for x in got if isinstance(x, EventBlock)]
    return r, sum(b.count for b in blocks), blocks


def check_records(blocks: list[EventBlock]) -> None:
    """Every record given back is whole: its lengths add up, and it decodes."""
    state = State()
    for b in blocks:
        off = 0
        while off < len(b.raw):
            n = int.from_bytes(b.raw[off + R.OFF_LEN:off + R.OFF_LEN + 4], "little")
            assert n >= R.REC_FIXED and off + n <= len(b.raw)
            Event(b.raw, off, 1, state).info_str(RenderOptions())
            off += n


def events_before(cut: int) -> int:
    """Events in the whole event blocks before ``cut``."""
    n, pos = 0, 0
    while pos + 8 <= len(DATA):
        btype, total = struct.unpack_from("<II", DATA, pos)
        if pos + total > cut:
            break
        n += btype in B.EVENT_BLOCKS
        pos += total
    return n


def test_truncation_at_and_inside_every_block(tmp_path: Path) -> None:
    p = tmp_path / "t.scap"
    first_end = ENDS[0]
    points = sorted({x for end in ENDS[:-1] for x in (end, end + 3, end + 9)} | {len(DATA) - 1})
    for cut in points:
        if cut <= first_end:
            continue
        p.write_bytes(DATA[:cut])
        r, n, blocks = read_all(p)
        assert r is not None, cut
        whole = events_before(cut)
        assert n == whole, cut
        check_records(blocks)
        if cut in ENDS:
            assert r.complete and not any("truncated" in x for x in r.notes), cut
        else:
            assert not r.complete
            m = TRUNC.match(r.notes[-1])
            assert m is not None and int(m[1]) == whole, (cut, r.notes)
        assert len(r.notes) <= 1


def test_truncated_gzip(tmp_path: Path) -> None:
    z = gzip.compress(DATA)
    p = tmp_path / "t.scap"
    for cut in (len(z) // 3, len(z) // 2, len(z) - 20, len(z) - 1):
        p.write_bytes(z[:cut])
        r, n, blocks = read_all(p)
        assert r is not None and not r.complete
        assert len(r.notes) == 1 and "truncated" in r.notes[0]
        check_records(blocks)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_bit_flips(tmp_path: Path, data: Any) -> None:
    buf = bytearray(DATA)
    for _ in range(data.draw(st.integers(1, 8))):
        pos = data.draw(st.integers(0, len(buf) - 1))
        buf[pos] ^= 1 << data.draw(st.integers(0, 7))
    p = tmp_path / "f.scap"
    p.write_bytes(bytes(buf))
    tracemalloc.start()
    try:
        _r, _n, blocks = read_all(p)
        check_records(blocks)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < MEMORY_BOUND


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(block=st.integers(0, len(ENDS) - 2), value=st.integers(0, 0xFFFFFFFF), which=st.sampled_from([4, -4, 28]))
def test_lying_lengths(tmp_path: Path, block: int, value: int, which: int) -> None:
    """A block's leading or trailing length, or the length inside its event, set to anything."""
    start = ENDS[block]
    end = ENDS[block + 1]
    buf = bytearray(DATA)
    pos = start + which if which > 0 else end + which
    if pos + 4 > end:
        return
    struct.pack_into("<I", buf, pos, value)
    p = tmp_path / "l.scap"
    p.write_bytes(bytes(buf))
    tracemalloc.start()
    try:
        r, n, blocks = read_all(p)
        check_records(blocks)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert r is not None
    assert n <= events_before(len(DATA))
    assert peak < MEMORY_BOUND


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(tail=st.binary(max_size=600))
def test_random_bytes_after_a_header(tmp_path: Path, tail: bytes) -> None:
    p = tmp_path / "r.scap"
    p.write_bytes(S.shb() + tail)
    r, _n, blocks = read_all(p)
    assert r is not None
    check_records(blocks)


@pytest.mark.parametrize("name", ["cat_write.scap", "single_ipv6_conn.scap", "curl_google.scap"])
def test_the_captures_read_cleanly(name: str) -> None:
    r, n, blocks = read_all(ROOT / "captures" / "scap" / name)
    assert r is not None and r.complete and not r.notes and not r.damaged
    check_records(blocks)
    assert n == r.events > 0
