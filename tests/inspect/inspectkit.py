"""Helpers for the inspection page's tests: run ``ktrace inspect`` as users do, and the numbers
the page must show, from ktrace's own chisels and output lines over the same capture."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
CAPTURES = ROOT / "captures"
NET_IO = "(fd.type=ipv4 or fd.type=ipv6) and evt.is_io=true"
FILE_IO = "fd.type=file and evt.is_io=true"
RESULT = "evt.dir=< and evt.rawres>0"


def env() -> dict[str, str]:
    e = dict(os.environ)
    e["PYTHONPATH"] = os.pathsep.join(x for x in (str(ROOT), e.get("PYTHONPATH", "")) if x)
    return e


def ktrace_argv() -> list[str]:
    exe = Path(sys.executable).parent / "ktrace"
    return [str(exe)] if exe.exists() else [sys.executable, "-c", "from tracer.cli import main; main()"]


def copy_captures(dest: Path, names: Sequence[str]) -> list[Path]:
    """Copies in ``dest``: the index is written next to them, not in the source tree."""
    out = []
    for n in names:
        shutil.copyfile(CAPTURES / n, dest / n)
        out.append(dest / n)
    return out


class Server:
    """``ktrace inspect FILES`` in a child process; ``url`` is the line it printed."""

    def __init__(self, files: Sequence[Path], *args: str, cache: Path | None = None) -> None:
        e = env()
        if cache is not None:
            e["XDG_CACHE_HOME"] = str(cache)
        self.proc = subprocess.Popen([*ktrace_argv(), "inspect", *args, *map(str, files)], stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True, env=e)
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline().strip()
        if not line.startswith("http://"):
            self.proc.kill()
            err = self.proc.stderr.read() if self.proc.stderr else ""
            raise AssertionError(f"no URL printed: {line!r}, stderr: {err}")
        self.url = line
        self.base = line.split("/?", 1)[0]
        self.token = line.split("token=", 1)[1]
        self.port = int(self.base.rsplit(":", 1)[1])

    def stop(self) -> str:
        self.proc.terminate()
        try:
            _, err = self.proc.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            _, err = self.proc.communicate()
        return err

    def __enter__(self) -> Server:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def run(args: list[str], timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*ktrace_argv(), *args], capture_output=True, text=True, env=env(), timeout=timeout)


def _reads(files: Sequence[Path]) -> list[str]:
    out: list[str] = []
    for f in files:
        out += ["-r", str(f)]
    return out


def _and(*parts: str) -> str:
    return " and ".join(f"({p})" for p in parts if p)


def lines(files: Sequence[Path], fmt: str, flt: str) -> list[str]:
    p = run([*_reads(files), "-p", fmt, *([flt] if flt else [])])
    assert p.returncode == 0, p.stderr
    return p.stdout.splitlines()


def chisel_rows(files: Sequence[Path], chisel: list[str], flt: str = "") -> list[list[Any]]:
    p = run([*_reads(files), "-j", "-c", *chisel, *([flt] if flt else [])])
    assert p.returncode == 0, p.stderr
    return list(json.loads(p.stdout.strip().splitlines()[-1])["data"])


def expected(files: Sequence[Path], window: str = "") -> dict[str, int]:
    """The overview's numbers as ktrace's chisels and output lines give them (``window``: a time
    filter joined to every one)."""
    conns = chisel_rows(files, ["topconns"], window)
    net = chisel_rows(files, ["topprocs_net"], window)
    files_rows = chisel_rows(files, ["fdbytes_by", "fd.name"], _and("fd.type=file", window))
    assert len(conns) < 30 and len(net) < 100 and len(files_rows) < 30, "a chisel's top-N cut would hide rows"

    def total(flt: str) -> int:
        return sum(int(x) for x in lines(files, "%evt.rawarg.res", _and(flt, RESULT, window)))

    return {
        "procs": len(set(lines(files, "%proc.pid", window))),
        "containers": len(set(lines(files, "%container.id", _and("container.id!=host", window)))),
        "syscalls": len(lines(files, "%evt.num", window)),
        "connections": len(conns),
        "net_total": sum(int(r[-1]) for r in net),
        "net_in": total(f"{NET_IO} and evt.is_io_read=true"),
        "net_out": total(f"{NET_IO} and evt.is_io_write=true"),
        "files": len(files_rows),
        "file_total": sum(int(r[-1]) for r in files_rows),
        "file_in": total(f"{FILE_IO} and evt.is_io_read=true"),
        "file_out": total(f"{FILE_IO} and evt.is_io_write=true"),
        "errors": len(lines(files, "%evt.num", _and("evt.failed=true", window))),
    }


def wait_until(pred: Any, timeout: float = 20.0, what: str = "") -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")
