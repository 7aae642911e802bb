"""The state lane (ext/statelane.pyx and its twin) against the per-event path it replaces: the same
captures give the same lines and leave the same state, whichever engine runs.

The reference is the pipeline with no lane: every state event an Event through State.apply, as
before the lane existed. The captures are the samples (live ones among them, with live mode's
facts after clones and execs) and random streams of files, sockets, dups, execs and clones.
"""

from __future__ import annotations

import io
import random
import types
from pathlib import Path
from typing import Any

import pytest

from tracer import pipeline as pipeline_mod
from tracer.event import Event
from tracer.schema import record as R
from tracer.schema.events import SYSCALL_NR
from tracer.session import Runner, RunOptions
from tracer.state.state import RAW_EVENTS, State
from tracer.testing import Synth, random_capture, write_capture

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = sorted(str(p) for p in (ROOT / "captures").glob("*.kcap"))
FMT = "%evt.num %evt.type %evt.dir %proc.name %proc.exe %proc.args %proc.ppid %thread.tid %fd.num %fd.name " \
      "%evt.rawres %user.name %container.id %evt.args"
NO_LANE = types.SimpleNamespace(statelane=types.SimpleNamespace(StateLane=lambda *a: None))


def _run(cap: str, **kw: Any) -> tuple[str, State]:
    out = io.StringIO()
    runner = Runner(RunOptions(reads=[cap], stdout=out, stderr=io.StringIO(), **kw))
    runner.run()
    return out.getvalue(), runner.state


def _facts(state: State) -> Any:
    """What the state holds, tables and the enters it still waits to pair."""
    return (state.tables(), dict(state._pending), dict(state._enter_ts), dict(state._forking), list(state._reap))


def _both(cap: str, monkeypatch: pytest.MonkeyPatch, **kw: Any) -> None:
    with monkeypatch.context() as m:
        m.setattr(pipeline_mod, "_engine", NO_LANE)
        want_out, want_state = _run(cap, **kw)
    got_out, got_state = _run(cap, **kw)
    assert got_out == want_out
    assert _facts(got_state) == _facts(want_state)


@pytest.mark.parametrize("cap", SAMPLES, ids=lambda p: Path(p).name)
@pytest.mark.parametrize("mode", ["lines", "format", "json", "quiet", "filtered"])
def test_lane_equals_the_event_path_on_the_samples(cap: str, mode: str, monkeypatch: pytest.MonkeyPatch) -> None:
    modes: dict[str, dict[str, Any]] = {
        "lines": {}, "format": {"fmt": FMT}, "json": {"json_out": True}, "quiet": {"quiet": True},
        "filtered": {"filter_text": "evt.type in (execve, clone, prctl, fcntl, procexit)"}}
    kw = modes[mode]
    _both(cap, monkeypatch, **kw)


def _forky(path: Path, seed: int, steps: int = 1500) -> str:
    """A fork-heavy stream, like a shell loop in a container: clones (processes and threads) with
    live mode's thread info right after some, execs, prctl names, fcntl dups and flags, dup2s,
    process exits, opens and reads, cut into batches at random."""
    rnd = random.Random(seed)
    s = Synth(pid=100)
    live = [100]
    batches = []
    for _ in range(steps):
        tid = rnd.choice(live)
        v = s.on(tid, tid)
        op = rnd.random()
        fd = rnd.randrange(3, 8)
        if op < 0.15:
            child = rnd.randrange(400, 5000)
            v.clone(child, thread=rnd.random() < 0.2)
            if rnd.random() < 0.5:
                s.on(child, child).threadinfo(comm="sh", cwd="/", uid=0, container_id="abc123")
            live.append(child)
        elif op < 0.25:
            v.execve(rnd.choice(("/bin/cat", "/bin/ls", "/usr/bin/env")), ["x", "-l"])
        elif op < 0.32:
            comm = rnd.choice((b"worker", b"", b"a-very-long-name"))
            v.syscall("prctl", (15, None), ret=rnd.choice((0, 0, -22)), seg0=comm)
        elif op < 0.42:
            v.fcntl(fd, rnd.choice((0, 1030, 2, 1)), rnd.randrange(0, 2), ret=rnd.choice((fd + 3, 0, -9)))
        elif op < 0.5:
            v.dup2(fd, rnd.randrange(3, 8))
        elif op < 0.58 and len(live) > 1:
            v.procexit()
            live.remove(tid)
        elif op < 0.75:
            v.open(rnd.choice(("/etc/hosts", "data.txt", "/tmp/x")), fd, flags=rnd.choice((0, 0o2000000)))
        elif op < 0.85:
            v.close(fd)
        else:
            v.read(fd, b"r" * rnd.randrange(1, 20))
        if rnd.random() < 0.04:
            batches.append(s.batch())
    batches.append(s.batch())
    return str(write_capture(path, *batches))


@pytest.mark.parametrize("seed", range(4))
def test_lane_equals_the_event_path_on_random_streams(tmp_path: Path, seed: int,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    for cap in (str(random_capture(tmp_path / "r.kcap", seed)), _forky(tmp_path / "f.kcap", seed)):
        _both(cap, monkeypatch, fmt=FMT)
        _both(cap, monkeypatch, quiet=True)
        _both(cap, monkeypatch, filter_text="proc.name=cat or evt.type=prctl")


def test_the_lane_makes_no_event_for_enters_and_raw_exits(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """With the lane, enters, clones, execs, prctl, fcntl, thread infos and process exits become no
    Event (so the comparisons above compare two paths, not one twice); without it, every state
    event does."""
    cap = _forky(tmp_path / "f.kcap", 7)
    made: list[int] = []
    real = pipeline_mod.Event

    def counting(*a: Any) -> Event:
        ev = real(*a)
        made.append(ev.evt)
        return ev

    monkeypatch.setattr(pipeline_mod, "Event", counting)
    _run(cap, quiet=True)
    assert made  # opens of relative paths still are Events: they need the state
    assert not [e for e in made if e < R.EVT_BASE_OTHER and not e & 1]
    assert not set(made) & RAW_EVENTS
    made.clear()
    monkeypatch.setattr(pipeline_mod, "_engine", NO_LANE)
    _run(cap, quiet=True)
    assert set(made) >= {R.syscall_evt(SYSCALL_NR[n], R.DIR_EXIT) for n in ("prctl", "fcntl", "clone", "execve")} \
        | {R.EVT_PROCEXIT, R.EVT_THREADINFO}
