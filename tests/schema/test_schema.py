"""The event table: every x86_64 syscall (checked against the kernel's own unistd_64.h), a probe
header generated from it and not stale, capture specs the probe can honour and the decoder reads,
and `ktrace -L` listing it.
"""

from __future__ import annotations

import glob
import io
import re
import struct
from contextlib import redirect_stdout
from pathlib import Path

import pytest

from tracer.schema import gen
from tracer.schema import record as R
from tracer.schema.events import (
    FD_NONE,
    FD_REGS,
    FD_RET,
    OTHER_EVENTS,
    SYSCALL_NR,
    SYSCALLS,
    EventInfo,
    event_ids,
    event_info,
    event_name,
    event_names,
)
from tracer.schema.flags import ENUMS, FLAGS
from tracer.schema.syscalls_x86_64 import SYSCALLS_X86_64
from tracer.schema.types import CK, PT

HEADERS = sorted({*glob.glob("/usr/include/x86_64-linux-gnu/asm/unistd_64.h"),
                  *glob.glob("/usr/include/asm/unistd_64.h"),
                  *glob.glob("/usr/src/linux-headers-*/arch/x86/include/generated/uapi/asm/unistd_64.h")})
TYPED = [i for i in SYSCALLS if i is not None and (i.enter or i.exit or i.captures)]


def kernel_syscalls(path: str) -> dict[str, int]:
    found = {m[1]: int(m[2]) for m in re.finditer(r"#define __NR_(\w+)\s+(\d+)", Path(path).read_text())}
    found.pop("syscalls", None)  # the generated header's count, not a syscall
    return found


@pytest.mark.parametrize("header", HEADERS or [pytest.param("", marks=pytest.mark.skip("no unistd_64.h here"))])
def test_every_kernel_syscall_present(header: str) -> None:
    kern = kernel_syscalls(header)
    assert len(kern) > 300
    missing = {n: nr for n, nr in kern.items() if SYSCALL_NR.get(n) != nr}
    assert missing == {}
    for name, nr in kern.items():
        assert event_name(2 * nr) == name and event_name(2 * nr + 1) == name
        assert event_ids(name) == [2 * nr, 2 * nr + 1]


def test_syscall_numbers_fit() -> None:
    assert max(SYSCALLS_X86_64) < R.NSYSCALLS
    assert len(set(SYSCALLS_X86_64.values())) == len(SYSCALLS_X86_64)
    assert {nr: i.name for nr, i in enumerate(SYSCALLS) if i is not None} == SYSCALLS_X86_64
    assert set(event_names()) == set(SYSCALL_NR) | {i.name for i in OTHER_EVENTS.values()}


def test_other_events_beyond_syscalls() -> None:
    for evt, info in OTHER_EVENTS.items():
        assert R.EVT_BASE_OTHER <= evt < R.EVT_MAX
        assert event_info(evt) is info
    assert event_name(R.EVT_MAX - 1) == f"event_{R.EVT_MAX - 1}"


# --- the generated header -----------------------------------------------------------------------------
@pytest.mark.parametrize("path", sorted(gen.GENERATED), ids=lambda p: p.name)
def test_generated_files_are_fresh(path: Path) -> None:
    assert gen.GENERATED[path]() == path.read_text(), "run `python -m tracer.schema.gen`"


def test_cython_include_matches_the_python_layout() -> None:
    text = gen.render_pxi()
    consts = {k: int(v) for k, v in re.findall(r"^    ([A-Z]\w*) = (\d+)$", text, re.M)}
    assert {k: consts[k] for k in ("OFF_TS", "OFF_LEN", "OFF_RET", "OFF_ARGS", "OFF_L0", "OFF_L1", "OFF_FLAGS",
                                   "REC_HEAD", "REC_FIXED", "RF_HIDDEN", "SEL_RUN", "RUN_BYTES_SHIFT")} == \
        {"OFF_TS": 0, "OFF_LEN": 20, "OFF_RET": 24, "OFF_ARGS": 32, "OFF_L0": 80, "OFF_L1": 82, "OFF_FLAGS": 84,
         "REC_HEAD": 24, "REC_FIXED": 88, "RF_HIDDEN": R.RF_HIDDEN, "SEL_RUN": R.SEL_RUN,
         "RUN_BYTES_SHIFT": R.RUN_BYTES_SHIFT}
    sizes = {"uint64_t": "Q", "int64_t": "q", "uint32_t": "I", "uint16_t": "H"}
    for name, fmt in (("rec_head", R.HEAD_FMT), ("rec_fixed", R.FIXED_FMT)):
        body = re.search(rf"cdef packed struct {name}:\n((?:    .*\n)+)", text)
        assert body is not None
        fields = re.findall(r"    (\w+) (\w+)(?:\[(\d+)\])?", body[1])
        assert "<" + "".join(count + sizes[typ] for typ, _name, count in fields) == fmt


def test_header_record_struct_matches_the_python_layout() -> None:
    text = gen.render_header()
    body = re.search(r"struct kt_rec \{(.*?)\};", text, re.S)
    assert body is not None
    sizes = {"u64": "Q", "s64": "q", "u32": "I", "u16": "H"}
    fmt = "<"
    for typ, _name, count in re.findall(r"(\w+) (\w+)(?:\[(\d+)\])?;", body[1]):
        fmt += (count or "") + sizes[typ]
    assert fmt == R.FIXED_FMT
    assert struct.calcsize(fmt) == R.REC_FIXED
    offsets = dict(re.findall(r"#define KT_(\w+) (\d+)", text))
    assert int(offsets["REC_FIXED"]) == R.REC_FIXED
    assert int(offsets["EVT_PROCEXIT"]) == R.EVT_PROCEXIT
    assert int(offsets["NSYSCALLS"]) == R.NSYSCALLS
    assert {k.name: int(offsets[f"CK_{k.name}"]) for k in CK} == {k.name: int(k) for k in CK}


def test_spec_row_layout_matches_the_c_struct() -> None:
    # struct kt_spec: u8 interest, u8 always, 2 x struct kt_seg_spec {u8 kind, arg, lkind, lreg; u16 lconst},
    # u8 nregs, u8 pad
    assert gen.SPEC_SIZE == 2 + 2 * 6 + 2
    row = (1, 0, int(CK.BUF), 1, gen.LEN_RET, 0, 0, int(CK.SOCKADDR), 4, gen.LEN_REG, 5, 0, 3)
    assert gen.pack_spec(row) == bytes([1, 0, int(CK.BUF), 1, gen.LEN_RET, 0, 0, 0,
                                        int(CK.SOCKADDR), 4, gen.LEN_REG, 5, 0, 0, 3, 0])


# --- capture specs --------------------------------------------------------------------------------------
SEG_KINDS = {
    PT.BUF: {CK.BUF, CK.IOV, CK.MSG, CK.MMSG},
    PT.SOCKADDR: {CK.SOCKADDR, CK.SOCKADDR_PLEN, CK.MSG, CK.MMSG},
    PT.PATH: {CK.STR},
    PT.STR: {CK.STR, CK.COMM},
    PT.ARGV: {CK.ARGV},
    PT.FDPAIR: {CK.RAW},
    PT.OPENHOW: {CK.RAW},
    PT.U64: {CK.RAW},
    PT.HEX: {CK.RAW},
}
RAW_LEN = {PT.FDPAIR: 8, PT.OPENHOW: 24, PT.U64: 8, PT.HEX: 4}
STATE_ONLY = {"accept", "accept4"}  # the peer's address goes to the state (fd.name), shown as the tuple


def _filled(info: EventInfo, at_exit: bool) -> dict[int, CK]:
    """Segment -> the capture kind that fills it on one side (MSG/MMSG fill both)."""
    out: dict[int, CK] = {}
    for c in info.captures:
        if c.at_exit == at_exit:
            out[c.seg] = c.kind
            if c.kind in (CK.MSG, CK.MMSG):
                out[1] = c.kind
    return out


@pytest.mark.parametrize("info", TYPED, ids=lambda i: i.name)
def test_capture_specs_sane(info: EventInfo) -> None:
    seen: set[tuple[bool, int]] = set()
    for c in info.captures:
        assert 0 <= c.arg <= 5 and c.seg in (0, 1)
        assert (c.at_exit, c.seg) not in seen, "two captures fill one segment"
        seen.add((c.at_exit, c.seg))
        if c.length.startswith("*a") or c.length.startswith("a"):
            assert 0 <= int(c.length.lstrip("*a")) <= 5
        elif c.length.isdigit():
            assert 0 < int(c.length) <= 128  # the probe copies at most 128 raw bytes
        if c.kind in (CK.BUF, CK.SOCKADDR, CK.SOCKADDR_PLEN, CK.IOV, CK.RAW):
            assert c.length, f"{c.kind.name} needs a length"
        if c.length == "ret":
            assert c.at_exit, "a length from the return value exists only at exit"
    for at_exit in (False, True):
        segs = {c.seg for c in info.captures if c.at_exit == at_exit}
        if segs:
            # The probe takes an event without a segment-0 capture for one without payload.
            assert 0 in segs


@pytest.mark.parametrize("info", TYPED, ids=lambda i: i.name)
def test_params_read_what_is_captured(info: EventInfo) -> None:
    for direction, params in ((0, info.enter), (1, info.exit)):
        filled = _filled(info, bool(direction))
        used: set[int] = set()
        for p in params:
            src = p.src
            if src == "ret":
                assert direction == 1, f"{p.name}: enter records carry no return value"
            elif re.fullmatch(r"a[0-5]", src):
                pass
            elif src in ("s0", "s1"):
                seg = int(src[1])
                assert seg in filled, f"{p.name} reads segment {seg}, which nothing fills on that side"
                assert filled[seg] in SEG_KINDS[p.type], f"{p.name}: {p.type} from a {filled[seg].name} capture"
                if p.type in RAW_LEN:
                    cap = next(c for c in info.captures if c.seg == seg and c.at_exit == bool(direction))
                    assert cap.length == str(RAW_LEN[p.type])
                used.add(seg)
            else:
                assert src.startswith("thread.") and p.type is PT.STATE and direction == 1
            if p.type is PT.FLAGS:
                assert p.fmt in FLAGS
            elif p.type is PT.ENUM:
                assert p.fmt in ENUMS
            elif p.type is PT.PATH and p.fmt:
                assert any(q.type is PT.DIRFD and q.src == p.fmt for q in params), f"{p.name}'s dirfd"
        if info.name in STATE_ONLY and direction == 1:
            used.add(0)
        assert set(filled) <= used | ({1} if filled.get(0) in (CK.MSG, CK.MMSG) else set()), \
            "a segment is captured that no parameter shows"


def test_capture_specs_rows() -> None:
    specs = gen.capture_specs()
    for evt, row in specs.items():
        info = SYSCALLS[evt >> 1]
        assert info is not None and any(c.at_exit == bool(evt & 1) for c in info.captures)
        assert len(gen.pack_spec(row)) == gen.SPEC_SIZE
        assert row[0] == 1 and row[2] != 0  # wanted, and a segment-0 kind
    want = {R.syscall_evt(i.nr, int(c.at_exit)) for i in TYPED for c in i.captures}
    assert set(specs) == want


@pytest.mark.parametrize(("name", "direction", "reg"), [
    ("read", 0, 0), ("read", 1, 0), ("open", 1, FD_RET), ("open", 0, FD_NONE), ("close", 1, 0),
    ("mmap", 0, 4), ("connect", 1, 0), ("accept4", 1, FD_RET), ("getpid", 0, FD_NONE), ("epoll_ctl", 0, 2),
])
def test_fd_registers(name: str, direction: int, reg: int) -> None:
    assert FD_REGS[R.syscall_evt(SYSCALL_NR[name], direction)] == reg
    assert len(FD_REGS) == R.EVT_MAX
    assert all(FD_REGS[e] == FD_NONE for e in range(R.EVT_BASE_OTHER, R.EVT_MAX))


# --- ktrace -L ----------------------------------------------------------------------------------------
def _list_events() -> str:
    from tracer.cli import main

    buf = io.StringIO()
    with redirect_stdout(buf), pytest.raises(SystemExit) as ei:
        main(["-L"])
    assert ei.value.code == 0
    return buf.getvalue()


def test_list_events_names_everything() -> None:
    out = _list_events().splitlines()
    for name in SYSCALLS_X86_64.values():
        assert sum(1 for x in out if x.startswith((f"> {name}(", f"< {name}("))) == 2, name
    for info in OTHER_EVENTS.values():
        assert any(x.startswith(f"> {info.name}(") for x in out), info.name
    assert "> threadinfo() [internal]" in out


@pytest.mark.parametrize("line", [
    "< open(RESFD fd, PATH name, FLAGS flags, OCT mode)",
    "> read(FD fd, UINT size)",
    "< read(RES res, BUF data)",
    "> connect(FD fd, SOCKADDR addr)",
    "> getrandom()",
])
def test_list_events_signatures(line: str) -> None:
    assert line in _list_events().splitlines()


# The probe compiles each capture kind only where the schema uses it (tracer/probe/ktrace.bpf.c,
# kt_segment): a row outside these places would silently capture nothing.
_ENTER_KINDS = {CK.STR, CK.ARGV, CK.SOCKADDR}
_SEG0_ONLY = {CK.IOV, CK.MSG, CK.MMSG}


@pytest.mark.parametrize("info", [i for i in SYSCALLS if i is not None and i.captures], ids=lambda i: i.name)
def test_captures_fit_the_probe(info: EventInfo) -> None:
    for c in info.captures:
        if not c.at_exit:
            assert c.kind in _ENTER_KINDS, f"{info.name}: {c.kind.name} at enter"
        if c.kind in _SEG0_ONLY:
            assert c.seg == 0, f"{info.name}: {c.kind.name} in segment {c.seg}"
        if c.kind is CK.ARGV:
            assert c.seg == 1 and not c.at_exit, f"{info.name}: argv must be segment 1 at enter"


@pytest.mark.parametrize("info", TYPED, ids=lambda i: i.name)
def test_kept_registers_cover_what_is_read(info: EventInfo) -> None:
    """The probe zeroes argument registers past a syscall's arity: none that a parameter, a capture
    or the fd names may be past it."""
    for direction in (0, 1):
        n = gen.nregs(R.syscall_evt(info.nr, direction))
        used = {int(p.src[1]) for p in info.params(direction) if p.src[:1] == "a" and p.src[1:].isdigit()}
        for c in info.captures:
            used.add(c.arg)
            if c.length[:1] == "a" or c.length[:2] == "*a":
                used.add(int(c.length.lstrip("*a")))
        reg = FD_REGS[R.syscall_evt(info.nr, direction)]
        if reg < 6:
            used.add(reg)
        assert not used or max(used) < n, f"{info.name}: registers {sorted(used)} but {n} kept"


def test_kept_registers() -> None:
    nr = SYSCALL_NR
    names = ("read", "close", "openat", "getpid", "mmap")
    assert [gen.nregs(R.syscall_evt(nr[n], 1)) for n in names] == [3, 1, 4, 0, 6]
    assert {gen.nregs(R.syscall_evt(nr[n], d)) for n in ("clone", "clone3", "fork", "vfork") for d in (0, 1)} == {6}
    assert gen.nregs(R.EVT_PROCEXIT) == 6
    assert gen.spec_row(R.syscall_evt(nr["getpid"], 0), {}) == (1, 0) + (0,) * 10 + (0,)
