"""The index's fast counts (plans in iotally, C or pure; fast opens in the scanner) equal the slow
reference (an Event decoded for every record the tiles may count) on the sample captures and on
random streams of files, sockets, failures, hidden records and state changes."""

from __future__ import annotations

import errno
import os
import random
from array import array
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from inspectkit import CAPTURES

from tracer._pure import iotally as pure_iotally
from tracer.engine import iotally
from tracer.inspect.index import build
from tracer.inspect.summary import Summary
from tracer.pipeline import Pipeline, Selection
from tracer.schema import record as R
from tracer.state.state import State
from tracer.testing import Synth, write_capture

SAMPLES = sorted(p.name for p in CAPTURES.glob("*.kcap"))
PATHS = ("/etc/passwd", "/etc/app.conf", "/var/log/app.log", "/usr/lib/x.so", "/tmp/data", "rel/file")
PEERS = (("10.0.0.1", 80), ("10.0.0.2", 443), ("10.0.0.3", 22), ("10.0.0.4", 9999), ("10.0.0.5", 6379))


@pytest.mark.parametrize("name", SAMPLES)
def test_fast_index_equals_the_reference_on_samples(name: str) -> None:
    path = str(CAPTURES / name)
    fast, ref = build([path]), build([path], reference=True)
    assert fast.tiles == ref.tiles


def _random_capture(path: Path, seed: int) -> Path:
    """Processes opening, reading, writing and closing files and sockets (servers and clients),
    with failures, dups, execs and clones, over several tenths of a second; some records hidden."""
    rnd = random.Random(seed)
    s = Synth(pid=100)
    batches: list[bytes] = []
    pids = [100, 200, 300]
    for _ in range(1500):
        pid = rnd.choice(pids)
        v = s.on(pid, pid)
        fd = rnd.randrange(3, 9)
        op = rnd.random()
        if op < 0.12:
            p = rnd.choice(PATHS)
            v.open(p, fd if rnd.random() < 0.85 else -errno.ENOENT, flags=rnd.choice((os.O_RDONLY, os.O_WRONLY)),
                   dirfd=-100 if rnd.random() < 0.5 else None)
        elif op < 0.2:
            v.close(fd)
        elif op < 0.28:
            v.socket(fd)
            v.connect(fd, rnd.choice(PEERS), ret=0 if rnd.random() < 0.8 else -errno.ECONNREFUSED)
        elif op < 0.34:
            v.accept(3, fd if rnd.random() < 0.9 else -errno.EAGAIN, rnd.choice(PEERS), flags=0)
        elif op < 0.6:
            v.read(fd, b"x" * rnd.randrange(1, 50), ret=rnd.choice((None, None, None, 0, -errno.EBADF)))
        elif op < 0.85:
            v.write(fd, b"y" * rnd.randrange(1, 50), ret=rnd.choice((None, None, None, 0, -errno.EPIPE)))
        elif op < 0.88:
            v.sendto(fd, b"z" * rnd.randrange(1, 20), rnd.choice(PEERS))
        elif op < 0.9:
            v.dup2(fd, rnd.randrange(3, 9))
        elif op < 0.92:
            v.syscall("unlink", seg0=b"/tmp/data", ret=rnd.choice((0, -errno.ENOENT)))
        elif op < 0.93:
            v.execve("/bin/cat", comm="cat")
        elif op < 0.94:
            child = rnd.randrange(400, 10000)
            v.clone(child)
            pids.append(child)
        elif op < 0.95:
            v.syscall("kill", (1, 9), ret=0)
        else:
            s.sleep(rnd.randrange(1, 60_000_000))
        if rnd.random() < 0.05:
            batches.append(s.batch())
    batches.append(s.batch())
    hidden = []
    for b in batches:
        raw = bytearray(b)
        off = 0
        while off < len(raw):
            if rnd.random() < 0.03:
                flags = int.from_bytes(raw[off + 84:off + 88], "little") | R.RF_HIDDEN
                raw[off + 84:off + 88] = flags.to_bytes(4, "little")
            off += int.from_bytes(raw[off + 20:off + 24], "little")
        hidden.append(bytes(raw))
    return write_capture(path, *hidden)


@pytest.mark.parametrize("seed", range(12))
def test_fast_index_equals_the_reference_on_random_streams(tmp_path: Path, seed: int) -> None:
    cap = str(_random_capture(tmp_path / "r.kcap", seed))
    fast, ref = build([cap]), build([cap], reference=True)
    assert any(fast.tiles.get(k) for k in ("file_in", "net_out", "files", "connections"))
    assert fast.tiles == ref.tiles


def _counts(cap: str, impl: Any) -> tuple[list[int], list[int], list[int], list[int]]:
    """Index ``cap``'s tiles through ``impl.count``: its sums, distinct entries, the records whose
    plans it asked for and how far each call went."""
    from tracer.capture import EventBlock
    from tracer.capture.files import read_captures

    state = State()
    asked: list[int] = []
    stops: list[int] = []
    blocks = [it for it in read_captures([cap]) if isinstance(it, EventBlock) and it.count]
    summary = Summary(blocks[0].first_ts, 100_000_000)
    fast = summary.record_tally(state)

    def plan_of(batch: bytes, off: int) -> tuple[int, ...]:
        asked.append(off)
        return fast._plan(batch, off)

    def on_records(batch: bytes, sel: array[int], i: int,
                   apply: Callable[[bytes, int], None] | None) -> tuple[int, int]:
        j, k = impl.count(fast.kinds, fast.regs, state.fds, summary.t0, summary.bucket_ns, summary.last_bucket,
                          len(summary.counters), fast.plans, plan_of, fast.sums, fast.distinct, batch, sel, i, apply)
        stops.append(j - i)
        stops.append(k)
        return int(j), int(k)

    pipeline = Pipeline(state, selection=Selection(summary.evts, exact=True), on_event=fast.on_event,
                        on_record=summary.record_counter(state), on_records=on_records)
    pipeline.scanner.stateless_mask = fast.stateless
    for b in blocks:
        pipeline.feed(b.raw)
    return list(fast.sums), sorted(fast.distinct), asked, stops


@pytest.mark.parametrize("seed", range(4))
def test_c_and_pure_iotally_agree(tmp_path: Path, seed: int) -> None:
    """Both engines' ``count`` on the same selections give the same counts, plans asked and stops."""
    cap = str(_random_capture(tmp_path / "r.kcap", seed))
    c, pure = _counts(cap, iotally), _counts(cap, pure_iotally)
    assert c == pure
    assert c[0] and c[1]
