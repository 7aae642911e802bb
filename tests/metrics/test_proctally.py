"""The per-process tally behind the metrics: hand-counted batches, both engines, the same sums."""

from __future__ import annotations

import random

import pytest

from tracer._pure import proctally as pure_tally
from tracer.engine import proctally as tally
from tracer.metrics import event_kinds
from tracer.schema import record as R
from tracer.schema.events import SYSCALL_NR

READ_X = SYSCALL_NR["read"] * 2 + 1
READ_E = SYSCALL_NR["read"] * 2
OPENAT_X = SYSCALL_NR["openat"] * 2 + 1
NANOSLEEP_X = SYSCALL_NR["nanosleep"] * 2 + 1


def rec(pid: int, evt: int, ret: int = 0) -> bytes:
    return R.pack_record(1, pid, pid, evt, ret=ret)


def test_counts_calls_failures_and_bytes() -> None:
    batch = b"".join([
        rec(10, READ_E), rec(10, READ_X, 100),  # a read of 100 bytes
        rec(10, READ_E), rec(10, READ_X, -11),  # EAGAIN
        rec(11, OPENAT_X, 3),  # an fd, not bytes
        rec(11, OPENAT_X, -2),  # ENOENT
        rec(10, READ_X, 28),
        rec(12, NANOSLEEP_X, 0),
        rec(12, R.EVT_PROCEXIT),  # not a syscall
    ])
    t = tally.Tally(event_kinds())
    t.add(batch[: len(batch) // 2 // 88 * 88])  # two batches add up
    t.add(batch[len(batch) // 2 // 88 * 88:])
    procs, evts = t.take()
    assert procs == {10: [3, 1, 128], 11: [2, 1, 0], 12: [1, 0, 0]}
    assert evts == {READ_E: 2, READ_X: 3, OPENAT_X: 2, NANOSLEEP_X: 1, R.EVT_PROCEXIT: 1}
    assert t.take() == ({}, {})  # take starts again


def test_a_bad_length_stops_the_walk() -> None:
    good = rec(10, READ_X, 5)
    bad = bytearray(rec(10, READ_X, 5))
    bad[R.OFF_LEN] = 90  # not a multiple of 8
    t = tally.Tally(event_kinds())
    t.add(good + bytes(bad) + good)
    assert t.take()[0] == {10: [1, 0, 5]}


@pytest.mark.parametrize("seed", range(5))
def test_engines_agree(seed: int) -> None:
    rng = random.Random(seed)
    evts = [READ_E, READ_X, OPENAT_X, NANOSLEEP_X, R.EVT_PROCEXIT, R.EVT_THREADINFO]
    batch = b"".join(rec(rng.choice((1, 2, 3, 70000)), rng.choice(evts), rng.randint(-40, 10_000))
                     for _ in range(2000))
    kinds = event_kinds()
    a, b = tally.Tally(kinds), pure_tally.Tally(kinds)
    a.add(batch)
    b.add(batch)
    assert a.take() == b.take()
