"""Builders of synthetic records and small captures for the capture tests."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest

from tracer.capture import CaptureWriter
from tracer.capture.format import BLOCK_HEAD_SIZE, parse_block_head, parse_file_header
from tracer.schema.record import pack_record, syscall_evt
from tracer.testing import T0


@dataclass
class Batch:
    raw: bytes
    count: int
    first_ts: int
    last_ts: int
    evts: list[int]


def make_batch(n: int, ts0: int, step: int = 250, tid: int = 4242, nr: int = 0) -> Batch:
    """``n`` records alternating enter/exit of syscall ``nr``, exits with a 1-byte payload."""
    recs = []
    evts = []
    ts = ts0
    for i in range(n):
        d = i & 1
        evt = syscall_evt(nr, d)
        recs.append(pack_record(ts, tid, tid, evt, 1, d, (nr, 0x7FFD0000 + i, 1), seg0=bytes([i & 0xFF]) if d else b""))
        evts.append(evt)
        last = ts
        ts += step
    return Batch(b"".join(recs), n, ts0, last, evts)


def batches(nbatches: int, per: int, ts0: int = T0, step: int = 250) -> list[Batch]:
    out = []
    ts = ts0
    for k in range(nbatches):
        out.append(make_batch(per, ts, step, nr=k % 3))
        ts += per * step
    return out


THREADS = [{"tid": 1, "pid": 1, "comm": "init"}, {"tid": 42, "pid": 42, "comm": "dd"}, {"tid": 43, "pid": 42}]
CONTAINERS = [{"id": "abc123", "name": "web"}]


@dataclass
class Capture:
    path: str
    batches: list[Batch]
    events: int
    raw: bytes
    blocks: list[tuple[int, int, int]] = field(default_factory=list)  # (offset, end, kind)
    data_start: int = 0

    def event_blocks(self) -> list[tuple[int, int, int]]:
        return [b for b in self.blocks if b[2] == 1]


def block_layout(path: str) -> tuple[int, list[tuple[int, int, int]]]:
    """(offset of the first block, [(offset, end, kind)]) of an undamaged capture."""
    with open(path, "rb") as f:
        data = f.read()
    _, _, start = parse_file_header(path, lambda off, n: data[off : off + n])
    out = []
    pos = start
    while pos < len(data):
        h = parse_block_head(data, pos)
        assert h is not None, pos
        end = pos + BLOCK_HEAD_SIZE + h.stored_len
        out.append((pos, end, h.kind))
        pos = end
    return start, out


def write_capture(
    path: str, nbatches: int = 6, per: int = 200, *, tables: bool = True, stats: bool = True, **kw: Any
) -> Capture:
    """A closed capture: tables, then ``nbatches`` batches (one EVENTS block each), then stats."""
    bs = batches(nbatches, per)
    kw.setdefault("block_size", 1)
    with CaptureWriter(path, {"purpose": "test"}, **kw) as w:
        if tables:
            w.write_table("threads", THREADS)
            w.write_table("containers", CONTAINERS)
        for b in bs:
            w.write_events(b.raw, b.count, b.first_ts, b.last_ts)
        if stats:
            w.write_stats({"events": nbatches * per, "drops": {"ringbuf_full": 7, "filtered": 0}})
    start, layout = block_layout(path)
    with open(path, "rb") as f:
        raw = f.read()
    return Capture(path, bs, nbatches * per, raw, layout, start)


@pytest.fixture
def capture(tmp_path: Any) -> Capture:
    return write_capture(os.fspath(tmp_path / "c.kcap"))


@pytest.fixture
def make_capture(tmp_path: Any) -> Callable[..., Capture]:
    def make(name: str = "c.kcap", *args: Any, **kw: Any) -> Capture:
        return write_capture(os.fspath(tmp_path / name), *args, **kw)

    return make


class Kit:
    """The helpers above, for tests (a fixture, so tests need not import conftest)."""

    T0 = T0
    THREADS = THREADS
    CONTAINERS = CONTAINERS
    make_batch = staticmethod(make_batch)
    batches = staticmethod(batches)
    write_capture = staticmethod(write_capture)
    block_layout = staticmethod(block_layout)


@pytest.fixture
def kit() -> type[Kit]:
    return Kit
