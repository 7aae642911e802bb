"""Usage and input errors: exit status 2, one line on stderr (a filter error adds the filter and a
caret under the spot), never a traceback, nothing on stdout. Run in-process through
``tracer.cli.main``, and a few through the installed ``ktrace`` script.
"""

from __future__ import annotations

import os
import struct
import subprocess
import sys
import zlib
from collections.abc import Callable
from pathlib import Path

import pytest

from tracer.cli import main
from tracer.testing import Synth, fd_row, tables, thread_row, write_capture

KTRACE = Path(sys.executable).parent / "ktrace"


@pytest.fixture
def cap(tmp_path: Path) -> Path:
    s = Synth(pid=100).open("/etc/hosts", 3).read(3, b"127.0.0.1 localhost").close(3)
    return write_capture(tmp_path / "ok.kcap", s.batch(),
                         tabs=tables(threads=[thread_row(100, comm="cat")], fds={100: [fd_row(1, "file", "/x")]}))


def run_main(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as ei:
        main(argv)
    out, err = capsys.readouterr()
    code = ei.value.code
    return (code if isinstance(code, int) else 1), out, err


def one_line_error(code: int, out: str, err: str) -> str:
    assert code == 2, err
    assert out == ""
    assert "Traceback" not in err
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("ktrace: ")
    return lines[0]


# --- flags -----------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("argv", "words"),
    [
        (["--bogus"], ["--bogus", "ktrace --help"]),
        (["-Q"], ["-Q"]),
        (["-t", "x"], ["x"]),
        (["-n", "0"], ["0"]),
        (["-s", "70000"], ["70000"]),
        (["-M", "-1"], []),
        (["-w"], ["-w"]),
        (["-C", "1"], ["-w"]),
        (["-G", "5"], ["-w"]),
        (["-W", "3"], ["-w"]),
        (["-e", "100"], ["-w"]),
        (["capinfo"], ["PATH"]),
        (["capinfo", "--bogus", "x"], ["--bogus", "ktrace capinfo --help"]),
    ],
)
def test_bad_flags(argv: list[str], words: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    line = one_line_error(*run_main(argv, capsys))
    for w in words:
        assert w in line


def test_unknown_field_in_format(cap: Path, capsys: pytest.CaptureFixture[str]) -> None:
    line = one_line_error(*run_main(["-r", str(cap), "-p", "%proc.name %proc.nme"], capsys))
    assert "proc.nme" in line


def test_json_with_unknown_field(cap: Path, capsys: pytest.CaptureFixture[str]) -> None:
    line = one_line_error(*run_main(["-r", str(cap), "-j", "-p", "%evt.bogus"], capsys))
    assert "evt.bogus" in line


def test_write_over_the_file_being_read(cap: Path, capsys: pytest.CaptureFixture[str]) -> None:
    one_line_error(*run_main(["-r", str(cap), "-w", str(cap)], capsys))
    assert cap.stat().st_size > 0


# --- filters ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("filt", "at"),
    [
        ("proc.nme=x", "proc.nme"),
        ("evt.type=open and bogus.f=1", "bogus.f"),
        ("evt.type in (open, read", "("),
        ("(evt.type=open", "("),
        ("evt.type=open)", ")"),
        ("proc.name contains", "contains"),
        ("fd.port > abc", "abc"),
        ("evt.type=open or or evt.type=read", "or evt"),
        ('proc.name="unterminated', '"'),
        ("evt.num < 1.5.6", "1.5.6"),
        ("proc.name=app and", "and"),
        ("\tevt.type=open and\tnope=1", "nope"),  # tabs echoed as spaces: the caret stays aligned
    ],
)
def test_bad_filter_shows_a_caret(cap: Path, filt: str, at: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run_main(["-r", str(cap), filt], capsys)
    assert (code, out) == (2, "")
    assert "Traceback" not in err
    msg, echoed, caret = err.rstrip("\n").split("\n")
    assert msg.startswith("ktrace: filter error: ")
    assert echoed == "  " + filt.replace("\t", " ")
    assert caret.strip() == "^"
    assert caret.index("^") - 2 == (filt.rindex(at) if at in ("or evt", "(", ")") else filt.index(at))


# --- files that are not captures -----------------------------------------------------------------------
def _header(meta: bytes, *, magic: bytes = b"KCAP", major: int = 1, crc: int | None = None) -> bytes:
    return struct.pack("<4sHHII", magic, major, 0, len(meta), zlib.crc32(meta) if crc is None else crc) + meta


DAMAGED: list[tuple[str, Callable[[Path], bytes | None]]] = [
    ("empty", lambda ok: b""),
    ("random", lambda ok: os.urandom(4096)),
    ("text", lambda ok: b"this is not a capture\n" * 10),
    ("pcap", lambda ok: bytes.fromhex("d4c3b2a1020004000000000000000000ffff000001000000")),
    ("short header", lambda ok: ok.read_bytes()[:10]),
    ("magic only", lambda ok: b"KCAP"),
    ("bad magic", lambda ok: b"KCAQ" + ok.read_bytes()[4:]),
    ("newer major", lambda ok: _header(b"\x80", major=99)),
    ("meta crc", lambda ok: ok.read_bytes()[:12] + b"\0\0\0\0" + ok.read_bytes()[16:]),
    ("meta cut", lambda ok: ok.read_bytes()[:20]),
    ("meta not msgpack", lambda ok: _header(b"\xc1\xc1\xc1")),
    ("meta too long", lambda ok: struct.pack("<4sHHII", b"KCAP", 1, 0, 2**31, 0)),
    ("directory", lambda ok: None),
]


@pytest.mark.parametrize(("what", "make"), DAMAGED, ids=[d[0] for d in DAMAGED])
def test_not_a_capture(what: str, make: Callable[[Path], bytes | None], cap: Path, tmp_path: Path,
                       capsys: pytest.CaptureFixture[str]) -> None:
    data = make(cap)
    bad = tmp_path / "bad.kcap"
    if data is None:
        bad.mkdir()
    else:
        bad.write_bytes(data)
    line = one_line_error(*run_main(["-r", str(bad)], capsys))
    assert str(bad) in line


def test_missing_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    line = one_line_error(*run_main(["-r", str(tmp_path / "nope.kcap")], capsys))
    assert "nope.kcap" in line


def test_capinfo_of_a_non_capture(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "x.kcap"
    bad.write_bytes(b"garbage" * 100)
    one_line_error(*run_main(["capinfo", str(bad)], capsys))
    one_line_error(*run_main(["capinfo", str(tmp_path / "none.kcap")], capsys))


def test_damaged_block_is_a_note_not_an_error(cap: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Damage inside the file is reported and skipped: the run goes on and exits 0."""
    raw = bytearray(cap.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    bad = tmp_path / "flipped.kcap"
    bad.write_bytes(bytes(raw))
    code, out, err = run_main(["-r", str(bad)], capsys)
    assert code == 0 and "Traceback" not in err
    cut = tmp_path / "cut.kcap"
    cut.write_bytes(cap.read_bytes()[: len(raw) - 7])
    code, out, err = run_main(["-r", str(cut)], capsys)
    assert code == 0 and "Traceback" not in err
    assert len(out.splitlines()) == 6  # every event: the file lost only its end (stats, index, footer)


def test_good_capture_reads(cap: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run_main(["-r", str(cap), "-p", "%evt.num %proc.name %fd.name", "evt.dir=<"], capsys)
    assert (code, err) == (0, "")
    assert out.splitlines() == ["2 cat /etc/hosts", "4 cat /etc/hosts", "6 cat "]  # closed: libsinsp's empty name


# --- the installed script --------------------------------------------------------------------------------
@pytest.mark.skipif(not KTRACE.exists(), reason="ktrace is not installed in this interpreter's bin directory")
@pytest.mark.parametrize(
    "argv",
    [["--bogus"], ["-C", "1"], ["-r", "{cap}", "-p", "%nope"], ["-r", "{cap}", "evt.type=="], ["-r", "{empty}"]],
)
def test_installed_script(argv: list[str], cap: Path, tmp_path: Path) -> None:
    empty = tmp_path / "empty.kcap"
    empty.write_bytes(b"")
    args = [a.format(cap=cap, empty=empty) for a in argv]
    p = subprocess.run([str(KTRACE), *args], capture_output=True, text=True, timeout=60,
                       env={**os.environ, "KTRACE_DEBUG": ""})
    assert p.returncode == 2, p.stderr
    assert p.stdout == ""
    assert "Traceback" not in p.stderr
    assert p.stderr.startswith("ktrace: ")
    assert len(p.stderr.splitlines()) in (1, 3)  # 3: a filter error's message, filter and caret
