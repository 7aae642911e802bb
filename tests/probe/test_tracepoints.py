"""Regular tracepoints: the declared layout, the C struct made from it, and the loader's check of
the running kernel's tracefs format before it attaches a program."""

from __future__ import annotations

import ctypes
import os
import re
from pathlib import Path

import pytest

from tracer.probe import loader
from tracer.probe.image import ProgSpec
from tracer.schema import tracepoints as TP

# sock:inet_sock_set_state's format file as Linux 6.x writes it.
FORMAT = """name: inet_sock_set_state
ID: 2287
format:
\tfield:unsigned short common_type;\toffset:0;\tsize:2;\tsigned:0;
\tfield:unsigned char common_flags;\toffset:2;\tsize:1;\tsigned:0;
\tfield:unsigned char common_preempt_count;\toffset:3;\tsize:1;\tsigned:0;
\tfield:int common_pid;\toffset:4;\tsize:4;\tsigned:1;

\tfield:const void * skaddr;\toffset:8;\tsize:8;\tsigned:0;
\tfield:int oldstate;\toffset:16;\tsize:4;\tsigned:1;
\tfield:int newstate;\toffset:20;\tsize:4;\tsigned:1;
\tfield:__u16 sport;\toffset:24;\tsize:2;\tsigned:0;
\tfield:__u16 dport;\toffset:26;\tsize:2;\tsigned:0;
\tfield:__u16 family;\toffset:28;\tsize:2;\tsigned:0;
\tfield:__u16 protocol;\toffset:30;\tsize:2;\tsigned:0;
\tfield:__u8 saddr[4];\toffset:32;\tsize:4;\tsigned:0;
\tfield:__u8 daddr[4];\toffset:36;\tsize:4;\tsigned:0;
\tfield:__u8 saddr_v6[16];\toffset:40;\tsize:16;\tsigned:0;
\tfield:__u8 daddr_v6[16];\toffset:56;\tsize:16;\tsigned:0;

print fmt: "family=%s ..."
"""


def test_parse_format() -> None:
    fmt = TP.parse_format(FORMAT)
    assert fmt["common_pid"] == (4, 4) and fmt["skaddr"] == (8, 8) and fmt["saddr_v6"] == (40, 16)
    assert TP.mismatch(TP.SOCK_STATE, fmt) is None


def test_mismatch_names_the_field() -> None:
    moved = FORMAT.replace("field:__u16 sport;\toffset:24", "field:__u16 sport;\toffset:26")
    assert "sport" in (TP.mismatch(TP.SOCK_STATE, TP.parse_format(moved)) or "")
    gone = "\n".join(line for line in FORMAT.splitlines() if "daddr_v6" not in line)
    assert "daddr_v6 is missing" in (TP.mismatch(TP.SOCK_STATE, TP.parse_format(gone)) or "")


class _CLayout(ctypes.Structure):
    """The layout the C struct gen.py writes must have, built independently with ctypes."""

    _fields_ = [("common", ctypes.c_uint8 * 8), ("skaddr", ctypes.c_uint64), ("oldstate", ctypes.c_int32),
                ("newstate", ctypes.c_int32), ("sport", ctypes.c_uint16), ("dport", ctypes.c_uint16),
                ("family", ctypes.c_uint16), ("protocol", ctypes.c_uint16), ("saddr", ctypes.c_uint8 * 4),
                ("daddr", ctypes.c_uint8 * 4), ("saddr_v6", ctypes.c_uint8 * 16), ("daddr_v6", ctypes.c_uint8 * 16)]


def test_c_struct_matches_the_declared_offsets() -> None:
    lines = TP.c_struct(TP.SOCK_STATE)
    names = [line.split()[-1].rstrip(";").split("[")[0] for line in lines[1:-1]]
    assert names == [n for n, _ in _CLayout._fields_]
    for f in TP.SOCK_STATE.fields:
        assert getattr(_CLayout, f.name).offset == f.offset and getattr(_CLayout, f.name).size == f.size


def test_kernel_format_is_the_declared_one() -> None:
    """On this machine the kernel lays the record out as declared (else the program is left out)."""
    for base in loader.TRACEFS:
        path = Path(base, "events", TP.SOCK_STATE.path, "format")
        if os.access(path, os.R_OK):
            assert TP.mismatch(TP.SOCK_STATE, TP.parse_format(path.read_text())) is None
            return
    pytest.skip("no readable tracefs here (needs root)")


def test_loader_leaves_out_a_tracepoint_laid_out_otherwise(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    d = tmp_path / "events" / "sock" / "inet_sock_set_state"
    d.mkdir(parents=True)
    (d / "id").write_text("2287\n")
    (d / "format").write_text(FORMAT)
    monkeypatch.setattr(loader, "TRACEFS", (str(tmp_path),))
    assert loader.tracepoint_id("sock/inet_sock_set_state") == (2287, "")
    (d / "format").write_text(FORMAT.replace("offset:16;\tsize:4", "offset:16;\tsize:8"))
    tp_id, why = loader.tracepoint_id("sock/inet_sock_set_state")
    assert tp_id is None and "oldstate" in why
    monkeypatch.setattr(loader, "TRACEFS", (str(tmp_path / "none"),))
    assert loader.tracepoint_id("sock/inet_sock_set_state")[0] is None


def test_program_kinds() -> None:
    sys_enter = ProgSpec("raw_tracepoint__sys_enter", "sys_enter", b"", (), "GPL")
    regular = ProgSpec("kt_tp__sock__inet_sock_set_state", "sock/inet_sock_set_state", b"", (), "GPL")
    sock_io = ProgSpec("kt_raw__sock_send_length", "sock_send_length", b"", (), "GPL")
    assert (sys_enter.raw, sys_enter.optional) == (True, False)
    assert (regular.raw, regular.optional) == (False, True)
    assert (sock_io.raw, sock_io.optional) == (True, True)


def test_the_probe_attaches_the_sock_io_tracepoints_as_declared() -> None:
    """The program names in the probe source are the tracepoints tracepoints.SOCK_IO declares."""
    src = loader.PROBE_SRC.read_text()
    assert sorted(re.findall(r"^int kt_raw__(\w+)\(", src, re.M)) == sorted(TP.SOCK_IO)
