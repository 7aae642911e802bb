"""A capture replays to what the live run printed.

One run of the deterministic workload (tests/live/workload.py) is traced at once by four ktrace
processes:

- ``full``: ``-w full.kcap`` (no filter), printing FILTER's events as it goes;
- ``filtered``: ``-w filtered.kcap FILTER``, printing them too;
- ``text``: a plain live ``ktrace FILTER`` (the default line);
- ``json``: a live ``ktrace -j -p RICH FILTER``.

``ktrace -w`` prints nothing, so the first two are the session run by tests/live/print_and_write.py:
the same code path as ``ktrace -w``, plus a recording chisel that prints the default line. Within one
process the replay must be exact: ``ktrace -r full.kcap FILTER`` prints the very lines the writer
printed (evt.num and times included), and ``ktrace -r filtered.kcap`` the same lines except evt.num
(a filtered capture holds only the matching records, so the replay numbers them anew, as sysdig).

Across processes (``text`` and ``json`` against the replays) the same events must come in the same
order with the same fields, except what each ktrace process measures on its own:

- evt.num: each counts the records it received, and a proc.name filter is pushed into the kernel;
- times: each probe stamps the event itself, microseconds apart (checked: under 1 ms);
- the local end (client ip:port) of a UDP connection: ktrace reads it from the socket after the
  connect, and each process reads it at its own moment, possibly after the program closed the fd
  (TCP ones come from the kernel: test_short_lived_connections_name_their_own_ports and the
  strace test check them);
- a new thread's own ``clone3`` return: its flags are read from user memory the parent may have
  reused by then, by each process's probe at its own moment.
"""

from __future__ import annotations

import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from livekit import FILTER, Ktrace, Workload, env, json_events, ktrace_argv

pytestmark = pytest.mark.live

RICH = ("%evt.cpu %evt.dir %evt.type %evt.info %evt.rawres %evt.rawtime %proc.name %proc.pid %proc.ppid %proc.exe "
        "%proc.args %proc.cwd %proc.pname %thread.tid %thread.vtid %user.name %user.uid %group.name %container.id "
        "%container.name %fd.num %fd.type %fd.name %fd.cip %fd.cport %fd.sip %fd.sport %fd.is_server %evt.buffer")
MARKER = "ktrace-go-marker"
PRINT_AND_WRITE = Path(__file__).resolve().parent / "print_and_write.py"


class Run:
    """Everything one traced run left: live outputs, captures, the workload's report."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.full = tmp / "full.kcap"
        self.filtered = tmp / "filtered.kcap"
        self.printed: dict[str, list[str]] = {}
        self.live_json: list[dict[str, Any]] = []
        self.stderr: dict[str, str] = {}
        self.rcs: dict[str, int] = {}
        self.result: dict[str, Any] = {}
        self.pid = 0

    def replay(self, cap: Path, *args: str) -> list[str]:
        p = subprocess.run([*ktrace_argv(), "-r", str(cap), *args], capture_output=True, text=True, env=env(),
                           timeout=300)
        assert p.returncode == 0, p.stderr
        assert p.stderr == "", p.stderr  # a whole capture: no recovery note
        return p.stdout.splitlines()


@pytest.fixture(scope="module")
def run(live: None, tmp_path_factory: pytest.TempPathFactory) -> Run:
    tmp = tmp_path_factory.mktemp("roundtrip")
    r = Run(tmp)
    wl = Workload(tmp)
    r.pid = wl.info["pid"]
    pw = [sys.executable, str(PRINT_AND_WRITE)]
    procs: dict[str, Ktrace] = {}
    try:
        procs["full"] = Ktrace([str(tmp / "full.txt"), str(r.full), FILTER], tmp / "full.out", cmd=pw,
                               lines=tmp / "full.txt")
        procs["filtered"] = Ktrace([str(tmp / "filtered.txt"), str(r.filtered), FILTER, FILTER], tmp / "filtered.out",
                                   cmd=pw, lines=tmp / "filtered.txt")
        procs["text"] = Ktrace([FILTER], tmp / "live.txt")
        procs["json"] = Ktrace(["-j", "-p", RICH, FILTER], tmp / "live.json")
        for p in procs.values():
            wl.wait_seen(p)
        r.result = wl.go()
        deadline = time.monotonic() + 120
        while not all(_ended(p.text(), r.pid) for p in procs.values()):
            assert time.monotonic() < deadline, "not every ktrace showed the workload's exit"
            time.sleep(0.1)
        for k, p in procs.items():
            r.rcs[k] = p.stop()
            r.stderr[k] = p.stderr()
            r.printed[k] = p.text().splitlines()
        r.live_json = json_events(procs["json"].text())
    finally:
        for p in procs.values():
            p.kill()
        wl.kill()
    return r


def _ended(text: str, pid: int) -> bool:
    return bool(re.search(rf"\({pid}\) > procexit", text) or re.search(
        rf'"evt.type":"procexit".*"thread.tid":{pid}\b', text))


def _window(lines: list[str], pid: int) -> list[str]:
    """From the line of the go marker's stat to the workload's procexit."""
    start = next(i for i, line in enumerate(lines) if MARKER in line and " < " in line)
    end = next(i for i, line in enumerate(lines) if re.search(rf"\({pid}\) > procexit", line))
    return lines[start:end + 1]


def test_every_run_exits_0_with_the_summary(run: Run) -> None:
    for k, rc in run.rcs.items():
        assert rc == 0, (k, run.stderr[k])
        assert re.search(r"^ktrace: \d+ events captured, \d+ dropped \(", run.stderr[k], re.M), (k, run.stderr[k])


def test_full_capture_replays_exactly_what_its_run_printed(run: Run) -> None:
    _same(run.printed["full"], run.replay(run.full, FILTER), lambda line: line)


def test_filtered_capture_replays_what_its_run_printed_but_evt_num(run: Run) -> None:
    _same(run.printed["filtered"], run.replay(run.filtered), lambda line: line.split(" ", 1)[1])


def _same(printed: list[str], replayed: list[str], key: Any) -> None:
    assert len(printed) > 300, len(printed)
    diffs = [f"live:   {a}\nreplay: {b}" for a, b in zip(printed, replayed, strict=False) if key(a) != key(b)]
    assert len(printed) == len(replayed) and not diffs, (
        f"{len(printed)} printed, {len(replayed)} replayed; {len(diffs)} differ:\n" + "\n".join(diffs[:10]))


def _other_process(line: str) -> str:
    """A default line as another ktrace process must print it too: no evt.num, no time, no local end."""
    _num, _clock, rest = line.split(" ", 2)
    head, _, info = rest.partition(" < ")
    return f"{head} < {_mask(info)}" if _ else _mask(rest)


def _mask(text: str) -> str:
    text = re.sub(r"[0-9a-f.:]+:\d+->([0-9a-f.:]+:\d+)", r"*->\1", text)
    # A new thread's own clone3 return: each probe reads clone_args from the parent's stack after the
    # parent may have moved on, so two ktrace processes can read different flags (0 or the real ones).
    return re.sub(r"^(clone3 res=0 flags=)\S+", r"\1*", text)


@pytest.mark.parametrize("cap", ["full", "filtered"])
def test_another_live_ktrace_printed_the_same_events(run: Run, cap: str) -> None:
    replayed = run.replay(run.full, FILTER) if cap == "full" else run.replay(run.filtered)
    live = [_other_process(x) for x in _window(run.printed["text"], run.pid)]
    again = [_other_process(x) for x in _window(replayed, run.pid)]
    assert len(live) > 300
    diffs = [f"live:   {a}\nreplay: {b}" for a, b in zip(live, again, strict=False) if a != b]
    assert len(live) == len(again) and not diffs, (
        f"{len(live)} live lines, {len(again)} replayed; {len(diffs)} differ:\n" + "\n".join(diffs[:10]))


def _json_window(evs: list[dict[str, Any]], pid: int) -> list[dict[str, Any]]:
    start = next(i for i, e in enumerate(evs) if e["evt.dir"] == "<" and MARKER in e["evt.info"])
    end = next(i for i, e in enumerate(evs) if e["evt.type"] == "procexit" and e["thread.tid"] == pid)
    return evs[start:end + 1]


def _mask_json(e: dict[str, Any]) -> dict[str, Any]:
    e = dict(e)
    if e.get("fd.is_server") is False:
        e["fd.cip"] = e["fd.cport"] = "*"
    for k in ("fd.name", "evt.info"):
        if isinstance(e.get(k), str):
            e[k] = _mask(e[k])
    return e


def test_another_live_ktrace_gave_the_same_fields(run: Run) -> None:
    live = _json_window(run.live_json, run.pid)
    p = subprocess.run([*ktrace_argv(), "-r", str(run.full), "-j", "-p", RICH, FILTER], capture_output=True,
                       text=True, env=env(), timeout=300)
    assert p.returncode == 0, p.stderr
    again = _json_window(json_events(p.stdout), run.pid)
    assert len(live) == len(again), (len(live), len(again))
    offsets = sorted(b["evt.rawtime"] - a["evt.rawtime"] for a, b in zip(live, again, strict=True))
    assert max(map(abs, offsets)) < 1_000_000, f"the same events' times differ by up to {offsets[0]} ns"
    diffs = []
    for a, b in zip(live, again, strict=True):
        a, b = _mask_json(a), _mask_json(b)
        for k in a:
            if k != "evt.rawtime" and a[k] != b.get(k):
                diffs.append(f"{a['evt.type']} {a['evt.dir']} {k}: live {a[k]!r} replay {b.get(k)!r}")
    assert not diffs, f"{len(diffs)} fields differ:\n" + "\n".join(diffs[:20])
    print(f"{len(live)} events compared field by field; times differ by {offsets[0]}..{offsets[-1]} ns "
          f"(median {offsets[len(offsets) // 2]})")


def test_short_lived_connections_name_their_own_ports(run: Run) -> None:
    """Each short-lived client connection's fd.name has the local port the workload's accept saw,
    though the client closes it within a millisecond: the probe takes both ends from the kernel
    when the connection is established (sock:inet_sock_set_state), not from the socket later."""
    port = run.result["churn_port"]
    cports = run.result["churn_cports"]
    sends = [e for e in _json_window(run.live_json, run.pid)
             if e["evt.type"] == "sendto" and e["evt.dir"] == "<" and str(e["evt.buffer"]).startswith("churn ")]
    assert len(sends) == len(cports)
    for e in sends:
        i = int(e["evt.buffer"].split()[1])
        assert e["fd.name"] == f"127.0.0.1:{cports[i]}->127.0.0.1:{port}", e
