"""How a live ktrace ends: signals, kill -9 during -w, -M and -n; and the startup time.

The oracle is tests/live/ticker.py: it stats DIR/seq-N every 2 ms and logs when it did each N by
its own clock, so a test knows which numbered events ktrace must have.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from livekit import Ktrace, env, ktrace_argv

pytestmark = pytest.mark.live

TICKER = Path(__file__).resolve().parent / "ticker.py"
TICK_FILTER = "proc.name=kttick and evt.type=newfstatat and evt.dir=<"
SUMMARY = re.compile(r"^ktrace: (\d+) events captured, (\d+) dropped \((.*)\)$")
TRUNCATED = re.compile(
    r"^ktrace: (?:\S+: )?capture truncated: recovered \d+ events in \d+ blocks, lost the tail after byte \d+$")


class Ticker:
    def __init__(self, tmp: Path) -> None:
        self.dir = tmp
        self.log = tmp / "ticks.log"
        self.proc = subprocess.Popen([sys.executable, str(TICKER), str(tmp), str(self.log)])

    def ticks(self) -> list[tuple[int, float]]:
        out = []
        for line in self.log.read_text().splitlines():
            parts = line.split()
            if len(parts) == 2:
                out.append((int(parts[0]), float(parts[1])))
        return out

    def stop(self) -> None:
        self.proc.kill()
        self.proc.wait()


@pytest.fixture
def ticker(tmp_path: Path) -> Iterator[Ticker]:
    t = Ticker(tmp_path)
    deadline = time.monotonic() + 10
    while not t.log.exists() or not t.log.read_text():
        assert time.monotonic() < deadline, "the ticker did not start"
        time.sleep(0.02)
    yield t
    t.stop()


def seqs(text: str) -> list[int]:
    return [int(m) for m in re.findall(r"/seq-(\d+)", text)]


def replay(cap: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*ktrace_argv(), "-r", str(cap), *args], capture_output=True, text=True, env=env(),
                          timeout=300)


@pytest.mark.parametrize("capture_filter", ["", "proc.name=kttick"], ids=["everything", "filtered"])
def test_kill_9_during_w_loses_at_most_the_last_second(tmp_path: Path, ticker: Ticker, capture_filter: str) -> None:
    cap = tmp_path / "k.kcap"
    kt = Ktrace(["-w", str(cap), *([capture_filter] if capture_filter else [])], tmp_path / "k.out")
    try:
        kt.wait_stderr("capturing")
        started = time.monotonic()
        time.sleep(3.0)
        killed = time.monotonic()
        kt.proc.send_signal(signal.SIGKILL)
        assert kt.proc.wait(timeout=10) == -signal.SIGKILL
    finally:
        kt.kill()
    ticks = ticker.ticks()
    rep = replay(cap, TICK_FILTER)
    assert rep.returncode == 0, rep.stderr
    notes = rep.stderr.splitlines()
    assert len(notes) == 1 and TRUNCATED.match(notes[0]), rep.stderr
    got = seqs(rep.stdout)
    assert got == sorted(got) and got == list(range(got[0], got[-1] + 1)), "holes or disorder in what was recovered"
    when = dict(ticks)
    must = [n for n, t in ticks if started + 0.2 <= t <= killed - 1.5]
    assert must, "the ticker did not tick"
    assert set(must) <= set(got), f"lost ticks before the last 1.5 s: {sorted(set(must) - set(got))[:10]}"
    lost_tail = killed - when[got[-1]]
    print(f"kill -9: recovered ticks {got[0]}..{got[-1]}, the last {lost_tail:.2f} s before the kill lost")
    assert lost_tail < 1.5


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
@pytest.mark.parametrize("mode", ["print", "write"])
def test_a_signal_ends_the_run_with_exit_0_and_the_summary(tmp_path: Path, ticker: Ticker, sig: int,
                                                            mode: str) -> None:
    cap = tmp_path / "s.kcap"
    args = [TICK_FILTER] if mode == "print" else ["-w", str(cap), "proc.name=kttick"]
    kt = Ktrace(args, tmp_path / "s.out")
    try:
        kt.wait_stderr("capturing")
        time.sleep(1.0)
        sent = time.monotonic()
        rc = kt.stop(sig)
        took = time.monotonic() - sent
    finally:
        kt.kill()
    err = kt.stderr().splitlines()
    assert rc == 0, err
    assert "Traceback" not in kt.stderr()
    assert err[0] == "ktrace: capturing; press Ctrl-C to stop", err
    m = SUMMARY.match(err[-1])
    assert m and len(err) == 2, err
    assert took < 5, f"took {took:.1f} s to stop"
    if mode == "print":
        printed = seqs(kt.text())
        assert len(printed) > 100
        assert int(m[1]) >= len(printed)
    else:
        rep = replay(cap, TICK_FILTER)
        assert rep.returncode == 0 and rep.stderr == "", rep.stderr  # closed cleanly: no recovery note
        assert len(seqs(rep.stdout)) > 100


def test_live_capture_is_lz4_and_a_rewrite_zstd(tmp_path: Path, ticker: Ticker) -> None:
    """Live -w stores its events with the fast codec; rewriting it offline (-r -w) with zstd; both
    replay to the same events."""
    from tracer.capture.capinfo import capinfo

    live, rewritten = tmp_path / "live.kcap", tmp_path / "zstd.kcap"
    kt = Ktrace(["-w", str(live), "-M", "2", "proc.name=kttick"], tmp_path / "l.out")
    try:
        assert kt.proc.wait(timeout=120) == 0, kt.stderr()
    finally:
        kt.kill()
    rw = subprocess.run([*ktrace_argv(), "-r", str(live), "-w", str(rewritten)], capture_output=True, text=True,
                        env=env(), timeout=300)
    assert rw.returncode == 0, rw.stderr
    assert list(capinfo(str(live))["event_codecs"]) == ["lz4-64k"]
    assert list(capinfo(str(rewritten))["event_codecs"]) == ["zstd"]
    a, b = replay(live, TICK_FILTER), replay(rewritten, TICK_FILTER)
    assert a.returncode == b.returncode == 0, a.stderr + b.stderr
    assert len(seqs(a.stdout)) > 100 and a.stdout == b.stdout


def test_M_stops_after_that_many_seconds(tmp_path: Path, ticker: Ticker) -> None:
    kt = Ktrace(["-M", "2", TICK_FILTER], tmp_path / "m.out")
    try:
        kt.wait_stderr("capturing")
        ready = time.monotonic()
        rc = kt.proc.wait(timeout=30)
        took = time.monotonic() - ready
    finally:
        kt.kill()
    assert rc == 0, kt.stderr()
    assert SUMMARY.match(kt.stderr().splitlines()[-1]), kt.stderr()
    assert 1.0 <= took <= 4.0, f"-M 2 ran {took:.2f} s after the startup line"
    assert len(seqs(kt.text())) > 100


def test_n_stops_after_that_many_events(tmp_path: Path, ticker: Ticker) -> None:
    kt = Ktrace(["-n", "5", TICK_FILTER], tmp_path / "n.out")
    try:
        rc = kt.proc.wait(timeout=60)
    finally:
        kt.kill()
    assert rc == 0, kt.stderr()
    lines = kt.text().splitlines()
    assert len(lines) == 5 and len(seqs("\n".join(lines))) == 5, lines
    assert SUMMARY.match(kt.stderr().splitlines()[-1]), kt.stderr()


def test_w_to_a_missing_directory_is_one_line_and_exit_2(tmp_path: Path) -> None:
    p = subprocess.run([*ktrace_argv(), "-w", str(tmp_path / "no" / "x.kcap"), "-M", "1"], capture_output=True,
                       text=True, env=env(), timeout=120)
    assert p.returncode == 2
    assert p.stderr.splitlines() == [f"ktrace: cannot write capture {tmp_path / 'no' / 'x.kcap'}: "
                                     "No such file or directory"], p.stderr


def thread_policies(pid: int) -> dict[str, int]:
    """Each thread's scheduling policy (field 41 of /proc/PID/task/TID/stat), by thread name."""
    out = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        with open(f"/proc/{pid}/task/{tid}/stat") as f:
            st = f.read()
        out[f"{st[st.index('(') + 1:st.rindex(')')]}/{tid}"] = int(st[st.rindex(")") + 2:].split()[38])
    return out


@pytest.mark.parametrize(("sched", "policy"), [(None, os.SCHED_BATCH), ("normal", os.SCHED_OTHER)])
def test_live_threads_never_preempt_on_wakeup(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, sched: str | None,
                                              policy: int) -> None:
    """Live, every ktrace thread (main, ring consumer, capture writer, enrichment) is SCHED_BATCH,
    unless KTRACE_SCHED=normal; -v says which."""
    if sched is not None:
        monkeypatch.setenv("KTRACE_SCHED", sched)
    cap = tmp_path / "s.kcap"
    kt = Ktrace(["-w", str(cap), "-v", "-q", "proc.name=kt-nobody"], tmp_path / "s.out")
    try:
        # Main, ring consumer and capture writer at least (the writer's thread starts after the
        # file's header is written).
        _wait_for(lambda: cap.exists() and cap.stat().st_size > 0
                  and len(os.listdir(f"/proc/{kt.proc.pid}/task")) >= 3, kt)
        policies = thread_policies(kt.proc.pid)
    finally:
        assert kt.stop() == 0, kt.stderr()
    assert len(policies) >= 3 and set(policies.values()) == {policy}, policies
    assert ("SCHED_BATCH" in kt.stderr()) == (policy == os.SCHED_BATCH), kt.stderr()


def _wait_for(cond: Callable[[], bool], kt: Ktrace, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert kt.proc.poll() is None, kt.stderr()
        assert time.monotonic() < deadline, "ktrace did not start writing"
        time.sleep(0.05)
