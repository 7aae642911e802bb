"""``ktrace top`` end to end in a real terminal (tmux): the procs view appears within 2 s, Enter
drills down, q leaves the terminal as it found it; on a capture and live. And the CLI: -j against
topconns, bad input exits 2 with one line."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
KTRACE = Path(sys.executable).parent / "ktrace"
WEB = str(ROOT / "captures" / "01-webserver.kcap")
ENV = {**os.environ, "PYTHONPATH": str(ROOT), "TERM": "xterm-256color"}

needs_tmux = pytest.mark.skipif(shutil.which("tmux") is None, reason="no tmux (sh scripts/setup.sh installs it)")


class Tmux:
    def __init__(self, cmd: str, width: int = 80, height: int = 24) -> None:
        self.name = f"ktop-{uuid.uuid4().hex[:8]}"
        env = " ".join(f"{k}={v}" for k, v in (("PYTHONPATH", str(ROOT)), ("TERM", "xterm-256color")))
        # After ktrace exits: its status, and the terminal modes it left (icanon and echo back on).
        modes = "stty -a | tr ' ' '\\n' | grep -x -e -icanon -e icanon -e echo -e -echo"
        script = f"env {env} {cmd}; echo EXITED=$?; {modes}; sleep 60"
        subprocess.run(["tmux", "new-session", "-d", "-s", self.name, "-x", str(width), "-y", str(height), script],
                       check=True)

    def screen(self) -> str:
        return subprocess.run(["tmux", "capture-pane", "-p", "-t", self.name], capture_output=True, text=True).stdout

    def keys(self, *keys: str) -> None:
        subprocess.run(["tmux", "send-keys", "-t", self.name, *keys], check=True)

    def wait(self, pred: object, timeout: float) -> float:
        """Seconds until ``pred(screen)`` holds; fails with the screen after ``timeout``."""
        start = time.monotonic()
        while time.monotonic() - start < timeout:
            if pred(self.screen()):  # type: ignore[operator]
                return time.monotonic() - start
            time.sleep(0.05)
        raise AssertionError(f"timed out; screen:\n{self.screen()}")

    def alternate_on(self) -> bool:
        out = subprocess.run(["tmux", "display", "-p", "-t", self.name, "#{alternate_on}"], capture_output=True,
                             text=True).stdout.strip()
        return out == "1"

    def close(self) -> None:
        subprocess.run(["tmux", "kill-session", "-t", self.name], capture_output=True)


def drive(cmd: str, first_row: str) -> None:
    t = Tmux(cmd)
    try:
        started = time.monotonic()
        t.wait(lambda s: "PID" in s and "Command" in s, 2.0)
        assert time.monotonic() - started <= 2.0
        t.wait(lambda s: first_row in s, 10.0)
        t.keys("Enter")
        t.wait(lambda s: "> Threads" in s and "TID" in s, 10.0)
        t.keys("BSpace")
        t.wait(lambda s: "Threads" not in s.splitlines()[0], 10.0)
        t.keys("q")
        # stty's lines follow EXITED=0: wait for both of its answers, then read them.
        t.wait(lambda s: "EXITED=0" in s and any(x in ("icanon", "-icanon") for x in s.split())
               and any(x in ("echo", "-echo") for x in s.split()), 10.0)
        screen = t.screen()
        assert "\nicanon" in "\n" + screen and "\necho" in "\n" + screen  # cooked mode again
        assert "PID" not in screen  # the UI is gone with the alternate screen
        assert not t.alternate_on()
    finally:
        t.close()


@needs_tmux
def test_tmux_on_a_capture() -> None:
    drive(f"{KTRACE} top -r {WEB}", "nginx")


@needs_tmux
@pytest.mark.live
def test_tmux_live() -> None:
    drive(f"{KTRACE} top -d 1000", "root")


@needs_tmux
def test_tmux_ctrl_c_restores_the_terminal() -> None:
    t = Tmux(f"{KTRACE} top -r {WEB} -v syscalls")
    try:
        t.wait(lambda s: "CALLS/S" in s and "recvfrom" in s, 10.0)
        t.keys("C-c")
        t.wait(lambda s: "EXITED=0" in s, 10.0)
        assert "\nicanon" in "\n" + t.screen() and not t.alternate_on()
    finally:
        t.close()


def ktrace(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(KTRACE), *args], capture_output=True, text=True, env=ENV, timeout=120,
                          stdin=subprocess.DEVNULL)


def test_json_connections_equal_topconns() -> None:
    top = ktrace("top", "-j", "-v", "connections", "-r", WEB)
    assert top.returncode == 0, top.stderr
    doc = json.loads(top.stdout)
    legend = [c["name"] for c in doc["info"]["legend"]]
    i_in, i_out = legend.index("BPS IN"), legend.index("BPS OUT")
    totals = {row["k"]: row["t"][i_in] + row["t"][i_out] for row in doc["data"]}
    conns = ktrace("-r", WEB, "-c", "topconns", "-j")
    data = json.loads(conns.stdout)["data"]
    assert data and {conn: n for _p, conn, n in data} == {conn: totals[conn] for _p, conn, _n in data}
    # The plain table too: same connections, same figures as sysdig prints them.
    plain = ktrace("-r", WEB, "-c", "topconns").stdout.splitlines()[2:]
    from tracer.chisel import format_bytes

    for line in plain:
        value, _proto, conn = line.split()
        assert format_bytes(totals[conn]) == value


@pytest.mark.parametrize(("args", "words"), [
    (["top", "-v", "nope", "-r", WEB], "unknown view 'nope'"),
    (["top", "-r", WEB, "proc.name="], "filter error"),
    (["top", "-r", "/nonexistent.kcap"], "no such file"),
    (["top", "-r", WEB], "needs a terminal"),
    (["top", "-d", "5", "-r", WEB], "-d"),
])
def test_bad_input_is_one_line_and_exit_2(args: list[str], words: str, tmp_path: Path) -> None:
    r = ktrace(*args)
    assert r.returncode == 2 and words in r.stderr and "Traceback" not in r.stderr and not r.stdout
    assert len(r.stderr.strip().splitlines()) <= 3  # a filter error adds the filter and its caret


def test_damaged_capture_exits_2(tmp_path: Path) -> None:
    bad = tmp_path / "bad.kcap"
    bad.write_bytes(Path(WEB).read_bytes()[:200])
    r = ktrace("top", "-j", "-r", str(bad))
    assert r.returncode == 2 and r.stderr.startswith("ktrace: ") and "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1


def test_list_views() -> None:
    r = ktrace("top", "--list-views")
    ids = {v["id"] for v in json.loads(r.stdout)}
    assert {"procs", "connections", "containers", "errors", "syscalls", "spy_users", "kubernetes_pods"} <= ids
