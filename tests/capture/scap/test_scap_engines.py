"""The compiled scap decoder (ext/scap.pyx) against its pure twin (tracer/_pure/scap.py): the same
files through ScapReader with each, the same records byte for byte, the same counts and notes.

Inputs: sysdig's three captures, each block of one of them fed on its own, files of every event
type with random parameters (the twin's Translator.record is the independent implementation the
compiled plans are checked against), and damaged files (bit flips, lying lengths).
"""

from __future__ import annotations

import gzip
import random
import struct
from pathlib import Path
from typing import Any

import pytest
import scapbytes as S
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tracer import engine
from tracer._pure import scap as pure
from tracer.capture.reader import EventBlock, TableBlock
from tracer.capture.scap import blocks as B
from tracer.capture.scap import pxi
from tracer.capture.scap.reader import ScapReader
from tracer.capture.scap.table import PPM_EVENT_MAX, PPM_EVENTS, PT

compiled = pytest.importorskip("tracer._ext.scap", reason="the compiled engine is not built")
ROOT = Path(__file__).resolve().parents[3]
CAPTURES = sorted((ROOT / "captures" / "scap").glob("*.scap"))


def read(path: Path, mod: Any, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    monkeypatch.setattr(engine, "scap", mod)
    notes: list[str] = []
    out: dict[str, Any] = {"blocks": [], "tables": []}
    with ScapReader(path, on_note=notes.append) as r:
        for it in r:
            if isinstance(it, EventBlock):
                out["blocks"].append((bytes(it.raw), it.count, it.first_ts, it.last_ts, it.offset))
            elif isinstance(it, TableBlock):
                out["tables"].append((it.kind, it.rows))
        out.update(notes=notes, counts=dict(r.block_counts), order=list(r.block_counts), events=r.events,
                   skipped=dict(r.skipped), complete=r.complete, damaged=r.damaged)
    return out


def same(path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    a = read(path, pure, monkeypatch)
    b = read(path, compiled, monkeypatch)
    assert a["blocks"] == b["blocks"]
    assert a == b
    return a


def test_the_generated_include_is_fresh() -> None:
    assert pxi.render() == pxi.PXI.read_text(), "run `python -m tracer.capture.scap.pxi`"


@pytest.mark.parametrize("path", CAPTURES, ids=lambda p: p.name)
def test_sysdig_captures(path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    got = same(path, monkeypatch)
    assert got["events"] > 100 and got["complete"]


def raw_blocks(path: Path) -> list[tuple[int, bytes]]:
    raw = path.read_bytes()
    if raw[:2] == b"\x1f\x8b":
        raw = gzip.decompress(raw)
    out, pos = [], 0
    while pos + 8 <= len(raw):
        btype, total = struct.unpack_from("<II", raw, pos)
        out.append((btype, raw[pos:pos + total]))
        pos += total
    return out


@pytest.mark.parametrize("path", CAPTURES, ids=lambda p: p.name)
def test_every_block_kind_repeated_past_a_flush(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                path: Path) -> None:
    """The capture's events three times over (enters left pending across copies), so records are
    flushed inside runs of blocks, and a version-1 copy of the same blocks (translated in Python)."""
    blocks = raw_blocks(path)
    head = b"".join(b for t, b in blocks if t not in B.EVENT_BLOCKS)
    events = b"".join(b for t, b in blocks if t in B.EVENT_BLOCKS)
    f = tmp_path / "x.scap"
    f.write_bytes(head + events * 12)
    got = same(f, monkeypatch)
    assert len(got["blocks"]) > 1


def random_param(rng: random.Random, t: PT) -> bytes:
    sizes = {PT.INT8: 1, PT.UINT8: 1, PT.INT16: 2, PT.UINT16: 2, PT.INT32: 4, PT.UINT32: 4, PT.FD32: 4,
             PT.PID32: 4, PT.SYSCALLID: 2, PT.SIGTYPE: 1, PT.PORT: 2, PT.L4PROTO: 1, PT.SOCKFAMILY: 1,
             PT.BOOL: 4, PT.FLAGS8: 1, PT.FLAGS16: 2, PT.FLAGS32: 4, PT.UID: 4, PT.GID: 4, PT.SIGSET: 4,
             PT.MODE: 4, PT.ENUMFLAGS8: 1, PT.ENUMFLAGS16: 2, PT.ENUMFLAGS32: 4}
    pick = rng.random()
    if t == PT.SOCKADDR:
        return rng.choice([b"", b"\x02" + rng.randbytes(6), b"\x0a" + rng.randbytes(18), b"\x01/run/x\0\xff",
                           b"\x01" + rng.randbytes(rng.randrange(0, 40)), rng.randbytes(rng.randrange(0, 9))])
    if pick < 0.1:
        return b""  # empty values
    if pick < 0.2:
        return rng.randbytes(rng.randrange(1, 12))  # narrower or wider than the type
    if t in sizes:
        return rng.randbytes(sizes[t])
    if t in (PT.INT64, PT.UINT64, PT.ERRNO, PT.FD, PT.PID, PT.RELTIME, PT.ABSTIME):
        return rng.choice([rng.randbytes(8), struct.pack("<q", rng.randrange(-200, 200))])
    return rng.randbytes(rng.randrange(0, 40)) + rng.choice([b"\0", b""])


def random_events(rng: random.Random, n: int) -> bytes:
    out = []
    kinds = [B.EV_V2, B.EV_V2, B.EV_V2, B.EVF_V2, B.EV_V2_LARGE, B.EVF_V2_LARGE, B.EV, B.EV_INT, B.EVF]
    types = [t for t in range(PPM_EVENT_MAX) if PPM_EVENTS[t] is not None]
    for k in range(n):
        t = rng.choice(types)
        info = PPM_EVENTS[t]
        assert info is not None
        params = [random_param(rng, p.type) for p in info.params]
        if rng.random() < 0.1:
            params = params[:rng.randrange(0, len(params) + 1)]
        elif rng.random() < 0.05:
            params.append(b"new")
        tid = rng.choice([7, 8, 9, 2**40, 2**64 - 1])
        out.append(S.ev(rng.choice(kinds), S.TS0 + k, tid, t, params, flags=rng.choice([0, B.DF_STATE_ONLY])))
    return b"".join(out)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 2**32 - 1))
def test_every_event_type_with_random_parameters(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                 seed: int) -> None:
    rng = random.Random(seed)
    f = tmp_path / "r.scap"
    f.write_bytes(S.shb() + S.mi() + random_events(rng, 600))
    same(f, monkeypatch)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 2**32 - 1))
def test_damaged_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, seed: int) -> None:
    rng = random.Random(seed)
    data = bytearray(S.shb() + S.mi() + random_events(rng, 200))
    for _ in range(rng.randrange(1, 6)):
        at = rng.randrange(40, len(data))
        if rng.random() < 0.5:
            data[at] ^= 1 << rng.randrange(8)  # a bit flip
        else:
            struct.pack_into("<I", data, at - at % 4, rng.choice([0, 12, 13, 1 << 20, rng.randrange(1 << 16)]))
    f = tmp_path / "d.scap"
    f.write_bytes(bytes(data[:rng.randrange(len(data) // 2, len(data) + 1)]))
    same(f, monkeypatch)
