"""Bounded labelled counters: at most N series, the rest under <other>; every counter only grows,
and the series always add up to everything counted."""

from __future__ import annotations

import random

from tracer.metrics import IDLE_EVICT_S, BoundedCounters


def test_free_slots_take_keys_at_once() -> None:
    b = BoundedCounters(limit=2, width=3)
    b.update({"a": [5, 1, 10], "b": [3, 0, 0], "c": [1, 0, 0]}, now=1.0, elapsed=1.0)
    rows = dict(b.rows())
    assert rows["a"] == [5, 1, 10] and rows["b"] == [3, 0, 0]
    assert rows[None] == [1, 0, 0]


def test_a_much_busier_key_takes_the_least_active_slot() -> None:
    b = BoundedCounters(limit=1, width=1)
    b.update({"quiet": [1]}, now=1.0, elapsed=1.0)
    for t in range(2, 30):
        b.update({"quiet": [1], "busy": [1000]}, now=float(t), elapsed=1.0)
    assert [k for k, _ in b.rows()] == ["busy", None]


def test_idle_keys_give_their_series_up() -> None:
    b = BoundedCounters(limit=1, width=1)
    b.update({"a": [1]}, now=0.0, elapsed=1.0)
    b.update({"b": [1]}, now=IDLE_EVICT_S + 1, elapsed=IDLE_EVICT_S + 1)
    assert [k for k, _ in b.rows()] == ["b", None]


def test_monotonic_and_complete_under_churn() -> None:
    rng = random.Random(7)
    b = BoundedCounters(limit=5, width=2)
    total = [0, 0]
    last: dict[object, list[int]] = {}
    last_other = 0
    for t in range(1, 400):
        deltas = {}
        for _ in range(rng.randint(0, 12)):
            key = f"k{min(int(rng.expovariate(0.15)), 40)}"
            d = deltas.setdefault(key, [0, 0])
            n = rng.randint(1, 100)
            d[0] += n
            d[1] += n // 10
        for d in deltas.values():
            total[0] += d[0]
            total[1] += d[1]
        b.update(deltas, now=float(t), elapsed=1.0)
        rows = dict(b.rows())
        assert len(rows) <= 6
        for k, v in rows.items():
            if k in last:  # a series that continues never goes down
                assert v[0] >= last[k][0] and v[1] >= last[k][1]
        last = rows
        assert rows[None][0] >= last_other  # <other> never goes down
        last_other = rows[None][0]
        assert sum(v[0] for v in rows.values()) <= total[0]


def test_series_add_up_to_everything() -> None:
    b = BoundedCounters(limit=3, width=1)
    total = 0
    for t in range(1, 50):
        deltas = {f"k{i}": [i + 10] for i in range(6)}
        total += sum(v[0] for v in deltas.values())
        b.update(deltas, now=float(t), elapsed=1.0)
    # the first three keys got the free series at once and kept them (the others are at most 2x busier)
    rows = dict(b.rows())
    assert set(rows) == {"k0", "k1", "k2", None}
    assert sum(v[0] for v in rows.values()) == total
