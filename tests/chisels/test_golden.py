"""Every chisel over the scenario capture, diffed against golden output (sysdig's layouts).

Piped output (the CLI in-process, stdout not a terminal) is sysdig's plain text; terminal output
goes through a fixed-width rich console with the environment cleared. KTRACE_UPDATE_GOLDEN=1
rewrites the golden files.
"""

from __future__ import annotations

import io
import json
from typing import Any

import pytest
from rich.console import Console

from tracer.chisel import Chisel, load_chisel
from tracer.event import Event, RenderOptions
from tracer.session import Runner, RunOptions

# (golden file, ktrace arguments before "-r FILE", chisel and its arguments/filter)
CASES: list[tuple[str, list[str], list[str]]] = [
    ("topconns.txt", [], ["topconns"]),
    ("topconns_pc.txt", ["-pc"], ["topconns"]),
    ("topconns_json.txt", ["-j"], ["topconns"]),
    ("topconns_filtered.txt", [], ["topconns", "proc.name=curl"]),
    ("topprocs_net.txt", [], ["topprocs_net"]),
    ("topprocs_net_pc.txt", ["-pc"], ["topprocs_net"]),
    ("topfiles_bytes.txt", [], ["topfiles_bytes"]),
    ("topfiles_bytes_pc.txt", ["-pc"], ["topfiles_bytes"]),
    ("topfiles_time.txt", [], ["topfiles_time"]),
    ("topfiles_time_pc.txt", ["-pc"], ["topfiles_time"]),
    ("topprocs_file.txt", [], ["topprocs_file"]),
    ("topprocs_file_pc.txt", ["-pc"], ["topprocs_file"]),
    ("topscalls.txt", [], ["topscalls"]),
    ("topscalls_pc.txt", ["-pc"], ["topscalls"]),
    ("topscalls_time.txt", [], ["topscalls_time"]),
    ("topscalls_time_pc.txt", ["-pc"], ["topscalls_time"]),
    ("fdbytes_by_proc.txt", [], ["fdbytes_by", "proc.name"]),
    ("fdbytes_by_sport.txt", [], ["fdbytes_by", "fd.sport", "evt.type=read"]),
    ("fdcount_by_proc.txt", [], ["fdcount_by", "proc.name"]),
    ("fdcount_by_json.txt", ["-j"], ["fdcount_by", "proc.name"]),
    ("topcontainers_net.txt", [], ["topcontainers_net"]),
    ("topcontainers_file.txt", [], ["topcontainers_file"]),
    ("topcontainers_cpu.txt", [], ["topcontainers_cpu"]),
    ("topprocs_cpu.txt", [], ["topprocs_cpu"]),
    ("topprocs_cpu_pc.txt", ["-pc"], ["topprocs_cpu"]),
    ("topprocs_cpu_json.txt", ["-j"], ["topprocs_cpu"]),
    ("echo_fds.txt", [], ["echo_fds"]),
    ("echo_fds_ascii.txt", ["-A"], ["echo_fds", "proc.name=curl"]),
    ("echo_fds_hex.txt", ["-X"], ["echo_fds", "proc.name=curl"]),
    ("echo_fds_verbose.txt", ["-v"], ["echo_fds", "proc.name=nginx"]),
    ("echo_fds_pc.txt", ["-pc"], ["echo_fds", "proc.name=nginx"]),
    ("spy_users.txt", [], ["spy_users"]),
    ("spy_users_pc.txt", ["-pc"], ["spy_users"]),
    ("spy_users_depth0.txt", [], ["spy_users", "0"]),
    ("proc_exec_time.txt", [], ["proc_exec_time"]),
    ("proc_exec_time_pc.txt", ["-pc"], ["proc_exec_time"]),
    ("ps.txt", [], ["ps"]),
    ("ps_filtered.txt", [], ["ps", "fd.name contains /tmp"]),
    ("lsof.txt", [], ["lsof"]),
    ("lsof_filtered.txt", [], ["lsof", "'proc.name=nginx and fd.sport=80'"]),
    ("netstat.txt", [], ["netstat"]),
    ("netstat_filtered.txt", [], ["netstat", "fd.sport=22"]),
    ("lscontainers.txt", [], ["lscontainers"]),
    ("lscontainers_desc.txt", [], ["lscontainers", "desc"]),
]


@pytest.mark.parametrize(("golden_name", "flags", "chisel"), CASES, ids=[c[0][:-4] for c in CASES])
def test_piped_output(scenario_path: str, ktrace: Any, golden: Any, golden_name: str, flags: list[str],
                      chisel: list[str]) -> None:
    r = ktrace(*flags, "-r", scenario_path, "-c", *chisel)
    assert r.code == 0, r.err
    assert r.err == ""
    assert "\x1b" not in r.out  # no escapes on a pipe
    golden(golden_name, r.out)


# --- what the goldens say, spelled out --------------------------------------------------------------
def test_topconns_sums_both_directions_of_a_connection(scenario_path: str, ktrace: Any) -> None:
    data = json.loads(ktrace("-j", "-r", scenario_path, "-c", "topconns").out)["data"]
    assert ["tcp", "10.0.0.2:41000->10.0.0.9:80", 34 + 43] in data  # the EOF read adds nothing


def test_failed_and_enter_events_add_nothing(scenario_path: str, ktrace: Any) -> None:
    data = json.loads(ktrace("-j", "-r", scenario_path, "-c", "topfiles_bytes").out)["data"]
    assert ["/tmp/big", 3 * 65536] in data  # the ENOSPC write does not count


def test_cpu_percent_is_ticks_over_the_sampled_span(scenario_path: str, ktrace: Any) -> None:
    """nginx: 50 + 50 + 30 ticks (10 ms each) over the 2 s from the first round to the last."""
    out = ktrace("-r", scenario_path, "-c", "topprocs_cpu").out
    assert "65.00%              nginx               800\n" in out
    assert "10.00%              curl                700\n" in out  # born after the first round: counts from 0


def test_procinfo_reaches_the_chisel_not_the_lines(scenario_path: str, ktrace: Any) -> None:
    assert "procinfo" not in ktrace("-r", scenario_path).out
    assert "procinfo" in ktrace("-D", "-r", scenario_path).out
    assert "procinfo" not in ktrace("-r", scenario_path, "-c", "topscalls").out


def test_ps_stops_at_the_first_event(scenario_path: str) -> None:
    chisel, _ = load_chisel("ps", [], container_mode=False, json_out=False, render=RenderOptions(), live=False,
                            out=io.StringIO())
    runner = Runner(RunOptions(reads=[scenario_path], chisel=chisel))
    runner.run()
    assert runner.printed == 1 and chisel.done


def test_state_chisels_on_an_empty_capture(empty_capture: str, ktrace: Any) -> None:
    path = empty_capture
    for name in ("ps", "lsof", "netstat"):
        assert ktrace("-r", path, "-c", name).out == "empty capture or no event matching the filter\n"
    assert ktrace("-r", path, "-c", "lscontainers").out.splitlines()[2].startswith("docker         nginx:1.25")
    assert ktrace("-r", path, "-c", "topconns").out == "Bytes               Proto               Conn" \
        "                \n" + "-" * 80 + "\n"


# --- terminal output ---------------------------------------------------------------------------------
def tty_console(width: int = 100) -> Console:
    return Console(width=width, file=io.StringIO(), force_terminal=True, _environ={})


def run_tty(path: str, name: str, rest: list[str] | None = None, *, pc: bool = False,
            render: RenderOptions | None = None) -> str:
    console = tty_console()
    chisel, left = load_chisel(name, rest or [], container_mode=pc, json_out=False, render=render or RenderOptions(),
                               live=False, console=console)
    Runner(RunOptions(reads=[path], chisel=chisel, filter_text=" ".join(left))).run()
    out = console.file.getvalue()  # type: ignore[attr-defined]
    assert isinstance(out, str)
    return out


TTY_CASES = [
    ("tty_topconns.txt", "topconns", [], False),
    ("tty_topprocs_cpu_pc.txt", "topprocs_cpu", [], True),
    ("tty_spy_users_pc.txt", "spy_users", [], True),
    ("tty_spy_users_nocolor.txt", "spy_users", ["disable_color"], True),
    ("tty_echo_fds.txt", "echo_fds", ["proc.name=curl"], False),
    ("tty_echo_fds_pc.txt", "echo_fds", ["proc.name=nginx"], True),
    ("tty_proc_exec_time.txt", "proc_exec_time", [], False),
    ("tty_fdcount_by.txt", "fdcount_by", ["proc.name"], False),
]


@pytest.mark.parametrize(("golden_name", "name", "rest", "pc"), TTY_CASES, ids=[c[0][:-4] for c in TTY_CASES])
def test_terminal_output(scenario_path: str, golden: Any, golden_name: str, name: str, rest: list[str],
                         pc: bool) -> None:
    golden(golden_name, run_tty(scenario_path, name, rest, pc=pc))


def test_terminal_colours(scenario_path: str) -> None:
    out = run_tty(scenario_path, "proc_exec_time")
    assert "\x1b[33m7.20s         dd" in out  # over 3 s: yellow
    assert "\x1b[32m1.29s         curl" in out  # host, under 3 s: green
    assert out.endswith("\x1b[0m\n")
    out = run_tty(scenario_path, "echo_fds", ["proc.name=nginx"], pc=True)
    assert "\x1b[31m------ Read 39B from \x1b[36m [web] [abc123def456] \x1b[31m 172.17.0.1:51000->" in out


# --- live mode, driven by a stand-in for the session's clock -------------------------------------------
TICK = 250_000_000  # ticks on event time, every quarter second: the scenario spans 2.2 s


class Ticking(Chisel):
    """Forwards to ``inner`` as a live session would, calling ``on_interval`` each TICK of event
    time (the events the filter passes carry the clock)."""

    name = "ticking"

    def __init__(self, inner: Chisel) -> None:
        self.inner = inner
        super().__init__(inner.ctx)
        self.filter, self.fields, self.needs_cpu = inner.filter, inner.fields, inner.needs_cpu
        self.next_tick = 0
        self.ticks = 0

    def on_capture_start(self, live: bool) -> None:
        self.inner.on_capture_start(True)

    def on_event(self, ev: Event) -> None:
        if not self.next_tick:
            self.next_tick = (ev.ts // TICK + 1) * TICK
            self.inner.last_print_ts = self.next_tick - TICK  # type: ignore[attr-defined]
        while ev.ts >= self.next_tick:
            self.inner.on_interval(self.next_tick)
            self.next_tick += TICK
            self.ticks += 1
        self.inner.on_event(ev)

    def on_capture_end(self, ts_ns: int) -> None:
        self.inner.on_capture_end(ts_ns)


def run_live(path: str, name: str, rest: list[str], console: Console, json_out: bool = False) -> tuple[str, int]:
    """The output, and how many ticks there were."""
    inner, _ = load_chisel(name, rest, container_mode=False, json_out=json_out, render=RenderOptions(), live=True,
                           console=console)
    assert inner.interval_ns == 10**9
    ticking = Ticking(inner)
    Runner(RunOptions(reads=[path], chisel=ticking)).run()
    out = console.file.getvalue()  # type: ignore[attr-defined]
    assert isinstance(out, str)
    return out, ticking.ticks


def pipe_console() -> Console:
    return Console(width=100, file=io.StringIO(), force_terminal=False, _environ={})


def test_live_piped_tables(scenario_path: str, golden: Any) -> None:
    out, ticks = run_live(scenario_path, "topfiles_bytes", [], pipe_console())
    golden("live_topfiles_bytes.txt", out)
    # A table per tick after a time line, and at the end what the last tick left: no bytes lost.
    assert ticks == 4
    assert out.count("Bytes               Filename") == out.count("2023-11-14 22:13:2") == ticks + 1
    assert "\x1b" not in out


def test_live_piped_cpu_tables(scenario_path: str, golden: Any) -> None:
    out, _ = run_live(scenario_path, "topprocs_cpu", [], pipe_console())
    golden("live_topprocs_cpu.txt", out)


def test_live_json_tables(scenario_path: str) -> None:
    out, ticks = run_live(scenario_path, "topconns", [], pipe_console(), json_out=True)
    docs = [json.loads(line) for line in out.splitlines()]
    assert len(docs) == ticks + 1 == 2
    assert sum(row[-1] for d in docs for row in d["data"]) == 47 + 77 + 39 + 2025


def test_live_terminal_clears_the_screen(scenario_path: str, golden: Any) -> None:
    out, ticks = run_live(scenario_path, "topconns", [], tty_console())
    golden("live_tty_topconns.txt", out)
    assert out.count("\x1b[2J") == 1 + ticks  # at the start, then before each table
    assert out.endswith("\x1b[?25h")  # the cursor comes back; the last table stays on the screen
