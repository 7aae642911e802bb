"""Bad flags, bad filters and damaged captures, through the real command: exit 2 and a short message
on stderr (filter errors add the echoed filter and a caret), never a traceback. Damage that leaves
the rest readable is a note on stderr and exit 0. No probe is loaded: these run anywhere.
"""

from __future__ import annotations

import os
import random
import subprocess
from pathlib import Path

import pytest

from tracer.capture import CaptureWriter
from tracer.schema.events import SYSCALL_NR
from tracer.schema.record import pack_record, syscall_evt
from tracer.state.state import State
from tracer.state.tables import Fd, Thread
from tracer.testing import T0, ktrace_argv
from tracer.testing import child_env as env

NEVENTS = 3000


def ktrace(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*ktrace_argv(), *args], capture_output=True, text=True, env=env(), timeout=120, cwd=cwd)


@pytest.fixture(scope="module")
def good(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small capture: one process reading /etc/hostname over and over, in many small blocks."""
    path = tmp_path_factory.mktemp("caps") / "good.kcap"
    st = State()
    st.threads[4242] = Thread(4242, 4242, ptid=1, comm="reader", exe="reader", cwd="/", uid=0, gid=0)
    st.fds[4242] = {3: Fd(3, "file", "/etc/hostname")}
    read = SYSCALL_NR["read"]
    with CaptureWriter(path, {"snaplen": 80}, block_size=4096) as w:
        for kind, rows in st.tables().items():
            w.write_table(kind, rows)
        for b in range(NEVENTS // 100):
            recs = []
            for i in range(50):
                ts = T0 + (b * 100 + 2 * i) * 1000
                recs.append(pack_record(ts, 4242, 4242, syscall_evt(read, 0), 0, 0, (3, 0x1000, 4096)))
                recs.append(pack_record(ts + 500, 4242, 4242, syscall_evt(read, 1), 0, 3, (3, 0x1000, 4096),
                                        seg0=b"vm\n"))
            w.write_events(b"".join(recs), 100, T0 + b * 100_000, T0 + (b * 100 + 99) * 1000)
    return path


def test_the_good_capture_reads_back(good: Path) -> None:
    p = ktrace("-r", str(good))
    assert p.returncode == 0 and p.stderr == "", p.stderr
    lines = p.stdout.splitlines()
    assert len(lines) == NEVENTS
    assert lines[1].endswith("reader (4242) < read res=3 data=vm. ")
    assert "fd=3(<f>/etc/hostname)" in lines[0]


def one_line_error(p: subprocess.CompletedProcess[str]) -> str:
    assert p.returncode == 2, (p.returncode, p.stdout[:200], p.stderr)
    assert "Traceback" not in p.stderr and p.stdout == ""
    lines = p.stderr.splitlines()
    assert lines and lines[0].startswith("ktrace: "), p.stderr
    return lines[0]


USAGE = [
    (["--no-such-flag"], "No such option"),
    (["-s", "abc"], "'-s'"),
    (["-s", "70000"], "'-s'"),
    (["-M", "-1"], "'-M'"),
    (["-n", "0"], "'-n'"),
    (["-t", "z"], "'-t'"),
    (["-C", "5"], "need -w"),
    (["-p", "%no.such.field"], "unknown field"),
    (["-c", "no_such_chisel"], "no_such_chisel"),
    (["-i", "no_such_chisel"], "no_such_chisel"),
    (["-r", "/nonexistent/x.kcap"], "/nonexistent/x.kcap"),
    (["-r", "."], "."),
]


@pytest.mark.parametrize(("args", "says"), USAGE, ids=[" ".join(a) for a, _ in USAGE])
def test_bad_usage(args: list[str], says: str) -> None:
    assert says in one_line_error(ktrace(*args))


FILTERS = [
    ("proc.nme=x", "unknown field", 0),
    ("evt.type=open and", "dangling", 14),
    ("(proc.name=a", None, None),
    ("proc.name in (a, b", None, None),
    ("fd.port > abc", None, None),
    ("proc.name", None, None),
    ("evt.type=open or or evt.type=read", None, None),
    ("fd.net=10.0.0.0/33", None, None),
    ("proc.name=x )", None, None),
]


@pytest.mark.parametrize(("flt", "says", "col"), FILTERS, ids=[f for f, _, _ in FILTERS])
def test_bad_filter(good: Path, flt: str, says: str | None, col: int | None) -> None:
    p = ktrace("-r", str(good), flt)
    first = one_line_error(p)
    assert first.startswith("ktrace: filter error: ")
    if says:
        assert says in first
    lines = p.stderr.splitlines()
    assert len(lines) == 3 and lines[1] == "  " + flt, p.stderr  # the filter echoed, the caret under it
    caret = lines[2].index("^") - 2
    assert 0 <= caret <= len(flt)
    if col is not None:
        assert caret == col, p.stderr


def test_write_and_read_the_same_file(good: Path) -> None:
    assert "same file" in one_line_error(ktrace("-r", str(good), "-w", str(good)))


@pytest.mark.parametrize("content", [b"", b"not a capture at all\n" * 10, bytes(range(256)) * 4],
                         ids=["empty", "text", "binary"])
def test_not_a_capture(tmp_path: Path, content: bytes) -> None:
    f = tmp_path / "x.kcap"
    f.write_bytes(content)
    one_line_error(ktrace("-r", str(f)))


def test_header_cut_short(tmp_path: Path, good: Path) -> None:
    f = tmp_path / "h.kcap"
    f.write_bytes(good.read_bytes()[:20])
    one_line_error(ktrace("-r", str(f)))


@pytest.mark.parametrize("keep", [0.3, 0.7, 0.99])
def test_cut_short_reads_back_to_the_last_whole_block(tmp_path: Path, good: Path, keep: float) -> None:
    data = good.read_bytes()
    f = tmp_path / "cut.kcap"
    f.write_bytes(data[: int(len(data) * keep)])
    p = ktrace("-r", str(f))
    assert p.returncode == 0, p.stderr
    notes = p.stderr.splitlines()
    assert len(notes) == 1 and "capture truncated: recovered" in notes[0], p.stderr
    n = len(p.stdout.splitlines())
    assert 0 < n <= NEVENTS  # at 99 % only the trailing index and footer are gone
    assert f"recovered {n} events" in notes[0]


def test_a_damaged_block_is_skipped_with_a_note(tmp_path: Path, good: Path) -> None:
    data = bytearray(good.read_bytes())
    rnd = random.Random(7)
    at = len(data) // 2
    for _ in range(8):
        data[at + rnd.randrange(64)] ^= 0xFF
    f = tmp_path / "dmg.kcap"
    f.write_bytes(bytes(data))
    p = ktrace("-r", str(f))
    assert p.returncode == 0, p.stderr
    assert "Traceback" not in p.stderr
    notes = p.stderr.splitlines()
    assert notes and all(n.startswith("ktrace: ") for n in notes), p.stderr
    assert any("damaged block" in n or "unreadable data" in n for n in notes), p.stderr
    n = len(p.stdout.splitlines())
    assert NEVENTS // 2 < n < NEVENTS


def test_random_damage_never_gives_a_traceback(tmp_path: Path, good: Path) -> None:
    data = good.read_bytes()
    rnd = random.Random(11)
    for k in range(15):
        d = bytearray(data)
        for _ in range(rnd.randrange(1, 40)):
            d[rnd.randrange(len(d))] = rnd.randrange(256)
        if k % 3 == 0:
            d = d[: rnd.randrange(len(d))]
        f = tmp_path / f"r{k}.kcap"
        f.write_bytes(bytes(d))
        p = ktrace("-r", str(f))
        assert p.returncode in (0, 2), (k, p.returncode, p.stderr)
        assert "Traceback" not in p.stderr and "internal error" not in p.stderr, (k, p.stderr)
        assert all(line.startswith(("ktrace: ", "  ")) for line in p.stderr.splitlines()), (k, p.stderr)
    assert os.path.exists(good)
