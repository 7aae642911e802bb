"""Shared helpers of the bench scripts: processes, readiness, quiet checks, stats, tables.

Every benchmark runs its variants alternately (bare, floor, ktrace, ..., then again) so slow drift
of the machine hits them all alike, and reports the median with the spread (min-max) of the rounds.
The machine is shared: before each measurement ``wait_quiet`` waits (bounded) until the CPUs are
mostly idle and no other tracer is attached, and the figure records how busy they were.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import signal
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

REPO = Path(__file__).resolve().parents[1]
VENV = REPO / ".venv" / "bin"
KTRACE = str(VENV / "ktrace")
PYTHON = str(VENV / "python")
BPFTRACE_FLOOR = "tracepoint:raw_syscalls:sys_enter, tracepoint:raw_syscalls:sys_exit { @[probe] = count(); }"

# Processes whose presence means someone else is tracing (their probes slow every syscall).
TRACERS = {"ktrace", "bpftrace", "strace", "sysdig", "perf", "naive_bcc.py", "py-spy"}

_STATS_RE = re.compile(r"ktrace: (\d+) events captured, (\d+) dropped")


# --- machine ---------------------------------------------------------------------------------
def machine() -> dict[str, Any]:
    u = os.uname()
    model = ""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return {"kernel": u.release, "cpus": os.cpu_count(), "cpu_model": model,
            "date": time.strftime("%Y-%m-%d %H:%M %Z"), "commit": commit()}


def commit() -> str:
    """The ktrace commit measured ("+dirty" when tracked files outside bench/ differ from it)."""
    try:
        head = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], capture_output=True,
                              text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(REPO), "status", "--porcelain", "--untracked-files=no", "--", ".",
                                ":(exclude)bench"],
                               capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head + ("+dirty" if dirty else "")


def machine_line() -> str:
    m = machine()
    return f"{m['cpus']} vCPU ({m['cpu_model']}), kernel {m['kernel']}, ktrace {m['commit']}, {m['date']}"


def _cpu_times() -> tuple[int, int]:
    with open("/proc/stat") as f:
        parts = [int(x) for x in f.readline().split()[1:]]
    idle = parts[3] + parts[4]
    return sum(parts), idle


def cpu_busy(interval: float = 0.5) -> float:
    """Fraction of all CPUs busy over ``interval`` seconds."""
    t0, i0 = _cpu_times()
    time.sleep(interval)
    t1, i1 = _cpu_times()
    return 0.0 if t1 == t0 else 1.0 - (i1 - i0) / (t1 - t0)


def foreign_tracers(mine: Sequence[int] = ()) -> list[str]:
    """Tracer processes running that this bench did not start."""
    out = []
    me = os.getpid()
    for d in os.listdir("/proc"):
        if not d.isdigit() or int(d) in mine or int(d) == me:
            continue
        try:
            with open(f"/proc/{d}/comm") as f:
                comm = f.read().strip()
        except OSError:
            continue
        if comm in TRACERS:
            out.append(f"{comm}({d})")
    return out


@dataclass
class Quiet:
    busy: float
    tracers: list[str]
    waited: float

    @property
    def ok(self) -> bool:
        return self.busy < QUIET_BUSY and not self.tracers


QUIET_BUSY = 0.15
QUIET_WAIT = 30.0


def wait_quiet(timeout: float | None = None, mine: Sequence[int] = ()) -> Quiet:
    """Wait until the CPUs are mostly idle and no other tracer runs (at most ``timeout`` s)."""
    limit = QUIET_WAIT if timeout is None else timeout
    t0 = time.monotonic()
    while True:
        q = Quiet(cpu_busy(0.5), foreign_tracers(mine), time.monotonic() - t0)
        if q.ok or q.waited >= limit:
            return q
        time.sleep(1.0)


# --- processes -------------------------------------------------------------------------------
@dataclass
class Done:
    """How a process ended: exit code, wall time, CPU seconds, peak RSS (KiB), its output."""

    code: int
    wall: float
    cpu: float
    maxrss_kb: int
    stdout: str = ""
    stderr: str = ""


def reap(pid: int) -> tuple[int, resource.struct_rusage]:
    _, status, ru = os.wait4(pid, 0)
    return os.waitstatus_to_exitcode(status), ru


def run_timed(argv: Sequence[str], *, stdout: int | IO[Any] | None = subprocess.DEVNULL,
              stderr: int | IO[Any] | None = subprocess.DEVNULL, env: dict[str, str] | None = None,
              cwd: str | None = None) -> Done:
    """Run to the end; wall time from spawn to exit, CPU and peak RSS from wait4."""
    t0 = time.perf_counter()
    p = subprocess.Popen(argv, stdout=stdout, stderr=stderr, env=env, cwd=cwd)
    code, ru = reap(p.pid)
    wall = time.perf_counter() - t0
    p.returncode = code
    return Done(code, wall, ru.ru_utime + ru.ru_stime, ru.ru_maxrss)


def run_capture(argv: Sequence[str], env: dict[str, str] | None = None, cwd: str | None = None) -> Done:
    """Like run_timed, keeping stdout and stderr (through files: no pipe can fill up)."""
    import tempfile

    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        d = run_timed(argv, stdout=out, stderr=err, env=env, cwd=cwd)
        out.seek(0)
        err.seek(0)
        d.stdout, d.stderr = out.read(), err.read()
    return d


class Bg:
    """A background process (a tracer, a server) with its output in files; stopped with SIGINT."""

    def __init__(self, argv: Sequence[str], workdir: Path, name: str, env: dict[str, str] | None = None) -> None:
        self.name = name
        self.out_path = workdir / f"{name}.out"
        self.err_path = workdir / f"{name}.err"
        self._out = open(self.out_path, "w")  # noqa: SIM115 - closed in stop()
        self._err = open(self.err_path, "w")  # noqa: SIM115
        self.t0 = time.perf_counter()
        self.p = subprocess.Popen(argv, stdout=self._out, stderr=self._err, env=env, start_new_session=True)
        self.pid = self.p.pid
        self.done: Done | None = None

    def alive(self) -> bool:
        return self.done is None and self.p.poll() is None

    def stdout(self) -> str:
        return self.out_path.read_text(errors="replace")

    def stderr(self) -> str:
        return self.err_path.read_text(errors="replace")

    def wait_ready(self, ready: Callable[[Bg], bool], timeout: float = 30.0, settle: float = 0.0) -> float:
        """Poll ``ready`` every 5 ms; seconds from spawn to ready. RuntimeError if it dies or times out."""
        end = time.perf_counter() + timeout
        while time.perf_counter() < end:
            if ready(self):
                t = time.perf_counter() - self.t0
                if settle:
                    time.sleep(settle)
                return t
            if self.p.poll() is not None:
                raise RuntimeError(f"{self.name} exited ({self.p.returncode}) before it was ready: "
                                   f"{self.stderr().strip()[-500:]}")
            time.sleep(0.005)
        self.stop()
        raise RuntimeError(f"{self.name} not ready after {timeout} s: {self.stderr().strip()[-500:]}")

    def stop(self, sig: int = signal.SIGINT, timeout: float = 60.0) -> Done:
        """Signal it (its own pid only), wait, and return how it ended."""
        if self.done is not None:
            return self.done
        if self.p.poll() is None:
            try:
                os.kill(self.pid, sig)
            except ProcessLookupError:
                pass
        end = time.monotonic() + timeout
        while True:
            pid, status, ru = os.wait4(self.pid, os.WNOHANG)
            if pid:
                code = os.waitstatus_to_exitcode(status)
                break
            if time.monotonic() > end:
                os.kill(self.pid, signal.SIGKILL)
                _, status, ru = os.wait4(self.pid, 0)
                code = -9
                break
            time.sleep(0.01)
        self.p.returncode = code
        self._out.close()
        self._err.close()
        wall = time.perf_counter() - self.t0
        self.done = Done(code, wall, ru.ru_utime + ru.ru_stime, ru.ru_maxrss, self.stdout(), self.stderr())
        return self.done


def bpf_links(pid: int) -> int:
    """How many BPF links (attached raw tracepoints) the process holds."""
    n = 0
    try:
        for fd in os.listdir(f"/proc/{pid}/fd"):
            try:
                if os.readlink(f"/proc/{pid}/fd/{fd}") == "anon_inode:bpf_link":
                    n += 1
            except OSError:
                pass
    except OSError:
        pass
    return n


def file_ready(path: Path) -> Callable[[Bg], bool]:
    """Ready once ktrace has attached its probes and opened its capture (after the /proc bootstrap)."""
    return lambda bg: bpf_links(bg.pid) >= 2 and path.exists() and path.stat().st_size > 0


def links_ready(n: int = 2) -> Callable[[Bg], bool]:
    return lambda bg: bpf_links(bg.pid) >= n


def text_ready(needle: str, where: str = "stderr") -> Callable[[Bg], bool]:
    def ready(bg: Bg) -> bool:
        return needle in (bg.stderr() if where == "stderr" else bg.stdout())

    return ready


def start_floor(workdir: Path) -> Bg:
    """bpftrace counting raw_syscalls enter+exit: the cheapest useful probe, our floor."""
    bg = Bg(["bpftrace", "-e", BPFTRACE_FLOOR], workdir, "bpftrace")
    # bpftrace prints "Attaching 2 probes..." just before attaching (perf-event tracepoints, no
    # bpf_link): give it a moment after the line.
    bg.wait_ready(text_ready("Attaching", "stdout"), settle=0.5)
    return bg


def ktrace_stats(stderr: str) -> tuple[int, int] | None:
    """(events captured, dropped) from ktrace's closing line."""
    m = _STATS_RE.search(stderr)
    return (int(m.group(1)), int(m.group(2))) if m else None


def skip_without_chisel(bench: Any, name: str) -> None:
    """Leave the chisel's variant out (with a note) when `ktrace -cl` does not list it."""
    ok, why = ktrace_has_chisel(name)
    if not ok:
        bench.skip.add(name)
        bench.notes.append(f"{name} skipped: {why}")


def ktrace_has_chisel(name: str) -> tuple[bool, str]:
    d = run_capture([KTRACE, "-cl"])
    if d.code != 0:
        return False, f"`ktrace -cl` fails: {(d.stderr or d.stdout).strip().splitlines()[-1:]}"
    if re.search(rf"^\s*{re.escape(name)}\b", d.stdout, re.M):
        return True, ""
    return False, f"`ktrace -cl` does not list {name}"


def capture_events(path: Path) -> int:
    """Events in a capture, from its index (or by reading its blocks)."""
    from tracer.capture import CaptureReader, EventBlock

    with CaptureReader(path) as r:
        if r.index is not None:
            return sum(e.count for e in r.index)
        return sum(it.count for it in r if isinstance(it, EventBlock))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# --- figures ---------------------------------------------------------------------------------
@dataclass
class Series:
    """The values of one figure over the rounds."""

    values: list[float] = field(default_factory=list)

    def add(self, v: float | None) -> None:
        if v is not None:
            self.values.append(v)

    @property
    def median(self) -> float | None:
        return statistics.median(self.values) if self.values else None

    @property
    def lo(self) -> float | None:
        return min(self.values) if self.values else None

    @property
    def hi(self) -> float | None:
        return max(self.values) if self.values else None

    def spread(self, fmt: str = "{:.2f}") -> str:
        if not self.values:
            return "-"
        if len(self.values) == 1:
            return "(1 run)"
        return f"{fmt.format(self.lo)}-{fmt.format(self.hi)}"

    def to_json(self) -> dict[str, Any]:
        return {"median": self.median, "min": self.lo, "max": self.hi, "values": self.values}


def ratio_series(num: Series, den: Series) -> Series:
    """Per-round ratios (rounds alternate, so round i of each belongs together)."""
    return Series([a / b for a, b in zip(num.values, den.values, strict=False) if b])


def fmt(v: float | None, spec: str = "{:.2f}") -> str:
    return "-" if v is None else spec.format(v)


def table(headers: Sequence[str], rows: Sequence[Sequence[str]], out: IO[str] = sys.stdout) -> None:
    cols = list(zip(*([list(headers)] + [list(r) for r in rows]), strict=False))
    widths = [max(len(c) for c in col) for col in cols]
    line = "  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=False))
    print(line, file=out)
    print("  ".join("-" * w for w in widths), file=out)
    for r in rows:
        print("  ".join((c.rjust(w) if i else c.ljust(w)) for i, (c, w) in
                        enumerate(zip(r, widths, strict=False))), file=out)


def common_args(ap: argparse.ArgumentParser, rounds: int = 5) -> None:
    ap.add_argument("--rounds", type=int, default=rounds, help="rounds of alternating runs (default %(default)s)")
    ap.add_argument("--json", metavar="FILE", help="also write the figures as JSON to FILE ('-' = stdout)")
    ap.add_argument("--workdir", metavar="DIR", help="keep files here (default: a temporary directory)")
    ap.add_argument("--no-wait-quiet", action="store_true", help="do not wait for an idle machine between runs")
    ap.add_argument("--nice", type=int, default=-10,
                    help="run the bench and what it starts at this niceness, to shield them from other load on a "
                         "shared machine (default %(default)s; 0 = leave as is)")


def apply_nice(a: argparse.Namespace) -> None:
    """Renice this process (its children inherit it) by --nice."""
    if a.nice:
        try:
            os.setpriority(os.PRIO_PROCESS, 0, a.nice)
        except OSError as e:
            log(f"cannot set niceness {a.nice}: {e}")


def dump_json(path: str | None, doc: dict[str, Any]) -> None:
    if not path:
        return
    text = json.dumps(doc, indent=2, default=str)
    if path == "-":
        print(text)
    else:
        Path(path).write_text(text + "\n")


def need_root() -> None:
    if os.geteuid() != 0:
        sys.exit("this benchmark loads BPF probes: run it as root (sudo .venv/bin/python bench/...)")


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


# --- probe cost in the kernel ------------------------------------------------------------------
class BpfStats:
    """Kernel run-time statistics of BPF programs while this object is open (BPF_ENABLE_STATS).

    The kernel keeps them only while the returned fd is held, and switches them off when it closes
    (or this process dies): no global setting is left changed. Costs ~20 ns per program run.
    """

    def __init__(self) -> None:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        attr = (ctypes.c_uint8 * 128)()  # union bpf_attr: enable_stats.type = BPF_STATS_RUN_TIME (0)
        fd = libc.syscall(321, 32, ctypes.byref(attr), 128)  # SYS_bpf, BPF_ENABLE_STATS
        if fd < 0:
            raise OSError(ctypes.get_errno(), "BPF_ENABLE_STATS failed")
        self.fd = fd

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


def prog_stats(pid: int) -> dict[str, tuple[int, int]]:
    """{program name: (run count, run time ns)} of the BPF programs process ``pid`` holds."""
    out: dict[str, tuple[int, int]] = {}
    try:
        fds = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return out
    for fd in fds:
        try:
            if os.readlink(f"/proc/{pid}/fd/{fd}") != "anon_inode:bpf-prog":
                continue
            with open(f"/proc/{pid}/fdinfo/{fd}") as f:
                info = dict(line.split(":", 1) for line in f if ":" in line)
        except OSError:
            continue
        name = info.get("prog_tag", fd).strip() + "/" + fd
        cnt, ns = int(info.get("run_cnt", "0")), int(info.get("run_time_ns", "0"))
        if cnt:
            out[name] = (cnt, ns)
    return out


def probe_ns(before: dict[str, tuple[int, int]], after: dict[str, tuple[int, int]]) -> tuple[int, float] | None:
    """(program runs, mean ns per run) between two prog_stats snapshots."""
    runs = sum(c for c, _ in after.values()) - sum(c for c, _ in before.values())
    ns = sum(t for _, t in after.values()) - sum(t for _, t in before.values())
    return (runs, ns / runs) if runs > 0 else None


def proc_cpu(pid: int) -> float:
    """CPU seconds (user + system, all threads) process ``pid`` has used so far."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            st = f.read()
    except OSError:
        return 0.0
    rest = st[st.rfind(")") + 2:].split()
    return (int(rest[11]) + int(rest[12])) / os.sysconf("SC_CLK_TCK")


class RssSampler:
    """Samples a process's VmRSS every ``period`` seconds in a thread; ``peak_kb`` is the largest."""

    def __init__(self, pid: int, period: float = 0.05) -> None:
        import threading

        self.pid = pid
        self.period = period
        self.peak_kb = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak_kb = max(self.peak_kb, status_kb(self.pid, "VmRSS"))
            self._stop.wait(self.period)

    def stop(self) -> int:
        self._stop.set()
        self._thread.join()
        self.peak_kb = max(self.peak_kb, status_kb(self.pid, "VmRSS"))
        return self.peak_kb


def status_kb(pid: int, key: str) -> int:
    """A kB figure (VmRSS, VmHWM ...) from /proc/PID/status, 0 when gone."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def print_footer(probe: dict[str, tuple[int, float]], probe_title: str, busy: Sequence[float],
                 notes: Sequence[str]) -> None:
    """The tail every bench report shares: in-kernel probe cost, how busy the machine was, notes."""
    if probe:
        print(f"\nin-kernel probe cost ({probe_title}; includes the statistics' own ~20-40 ns):")
        table(["tracer", "program runs", "ns per run"], [[v, f"{r[0]:,}", f"{r[1]:.0f}"] for v, r in probe.items()])
    if busy:
        print(f"\nCPU busy (other load) before each run: median {100 * statistics.median(busy):.0f}%, "
              f"max {100 * max(busy):.0f}%")
    for n in notes:
        print(f"note: {n}")
