"""Lines of records read from a .scap file: the renderers (ext/render.pyx, which walks the PPM
parameters in C with per-type plans, and its twin tracer/_pure/render.py) against the Event path
(an Event per event, one Formatter.line each, libsinsp's rules in tracer/capture/scap), byte for
byte.

Inputs: files with a thread, fd and user table and one event of every PPM type (more at random),
whose parameters are drawn to reach every way a parameter prints: known, unknown and failed fds
and pids, errnos, every integer width narrower and wider than its type, flags, paths absolute,
relative and not UTF-8, buffers long, short, empty and binary, socket addresses and tuples of each
family and of wrong lengths. Printed with the default line, -p with the fields that follow
libsinsp's rules, -pc, -j, -A, -X and -s. A deliberately broken rule, on either side, shows.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import os
import random
import shutil
import struct
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import scapbytes as S
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tracer._pure import render as pure_render
from tracer.capture import EventBlock, TableBlock
from tracer.capture.files import read_captures
from tracer.capture.scap import blocks as B
from tracer.capture.scap import render as scap_render
from tracer.capture.scap.table import PF, PPM_EVENT_MAX, PPM_EVENTS, PT
from tracer.event import RenderOptions
from tracer.output.format import PRESETS, Formatter
from tracer.pipeline import Pipeline
from tracer.state.state import State

compiled = pytest.importorskip("tracer._ext.render", reason="the compiled engine is not built")
ROOT = Path(__file__).resolve().parents[3]
CAPTURES = sorted((ROOT / "captures" / "scap").glob("*.scap"))
RULES = ("%evt.num %evt.type %evt.dir %proc.name %thread.tid %fd.num %fd.name %evt.rawres %user.name "
         "%container.id %fd.type %evt.info %proc.pid %fd.l4proto %evt.arg[0]")
# (name, -p format or preset, -j, buffer mode, -v, -s)
MODES = [
    ("default", None, False, "normal", False, 80),
    ("rules", RULES, False, "normal", False, 80),
    ("pc", PRESETS["c"], False, "normal", False, 80),
    ("json", None, True, "normal", False, 80),
    ("json-rules", RULES, True, "normal", False, 80),
    ("ascii", None, False, "ascii", False, 80),
    ("hex", None, False, "hex_ascii", False, 80),
    ("base64", None, False, "base64", False, 80),
    ("s7-v", None, False, "normal", False, 7),
    ("verbose", None, False, "normal", True, 20),
]
TIDS = [100, 101, 200]  # in the thread table (101 a thread of process 100)
FDS = [0, 1, 3, 4, 5, 6, 7]  # in process 100's fd table


pytestmark = pytest.mark.usefixtures("utc")  # sysdig's times are local: compared in UTC


# --- files -------------------------------------------------------------------------------------
def _ip4() -> bytes:
    return ipaddress.IPv4Address("10.0.0.7").packed


def _ip6(mapped: bool) -> bytes:
    return ipaddress.IPv6Address("::ffff:10.0.0.9" if mapped else "2001:db8::1").packed


def _int(rng: random.Random, size: int) -> bytes:
    pick = rng.random()
    if pick < 0.08:
        return b""
    if pick < 0.16:
        return rng.randbytes(rng.randrange(1, 10))  # narrower or wider than the type
    if pick < 0.3:
        return (rng.choice([0, 1, 2, 8, 0o644, 0x41, 0x242, 0xFFFF]) & ((1 << (8 * size)) - 1)).to_bytes(size, "little")
    return rng.randbytes(size)


def _text(rng: random.Random) -> bytes:
    return rng.choice([b"curl", b"caf\xc3\xa9", b"bad\xff\xfe", b"a\0b", b"", b"x" * 40]) + rng.choice([b"\0", b""])


def _path(rng: random.Random) -> bytes:
    return rng.choice([b"/etc/passwd", b"data.txt", b"../up/x", b"<NA>", b"", b"/tmp/caf\xc3\xa9", b"rel\xffx",
                       b"/srv/dir/"]) + rng.choice([b"\0", b""])


def _buf(rng: random.Random) -> bytes:
    return rng.choice([b"", b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", b"\x00\x01\x02\tab\ncd", b"short",
                       rng.randbytes(rng.randrange(0, 200)), b"A" * 100])


def _sockaddr(rng: random.Random) -> bytes:
    return rng.choice([b"", b"\x02" + _ip4() + struct.pack("<H", 80), b"\x0a" + _ip6(False) + struct.pack("<H", 443),
                       b"\x0a" + _ip6(True) + struct.pack("<H", 53), b"\x01/run/sock\0", b"\x02" + rng.randbytes(3),
                       b"\x0a" + rng.randbytes(5), b"\x07abc", b"\x01"])


def _tuple(rng: random.Random) -> bytes:
    return rng.choice([b"", b"\x02" + _ip4() + struct.pack("<H", 4000) + _ip4() + struct.pack("<H", 80),
                       b"\x0a" + _ip6(False) + struct.pack("<H", 5) + _ip6(False) + struct.pack("<H", 6),
                       b"\x0a" + _ip6(True) + struct.pack("<H", 5) + _ip6(True) + struct.pack("<H", 6),
                       b"\x01" + struct.pack("<QQ", 0xAB, 0xCD) + b"/run/sock\0", b"\x02" + rng.randbytes(4),
                       b"\x0a" + rng.randbytes(20), b"\x09zz"])


def param(rng: random.Random, t: PT) -> bytes:
    """A value of type ``t``, drawn to reach each way it prints."""
    if t in (PT.FD, PT.PID, PT.ERRNO):
        # (fds and results in int's range, as a kernel's are: the scanner keys the fds it applies so)
        pool = FDS + [77, -2, -9, -100, 0] if t == PT.FD else TIDS + [300, -1, 0] if t == PT.PID \
            else [0, 5, -2, -11, -115, -9999, 1 << 30]
        return rng.choice([struct.pack("<q", rng.choice(pool)), struct.pack("<i", rng.choice(pool)), b"",
                           rng.randbytes(4) if t != PT.PID else rng.randbytes(8)])
    if t in (PT.FD32, PT.PID32):
        pool = FDS + [77, -2] if t == PT.FD32 else TIDS + [300, -1]
        return rng.choice([struct.pack("<i", rng.choice(pool)), b""])
    sizes = {PT.INT8: 1, PT.UINT8: 1, PT.INT16: 2, PT.UINT16: 2, PT.INT32: 4, PT.UINT32: 4, PT.INT64: 8,
             PT.UINT64: 8, PT.SYSCALLID: 2, PT.SIGTYPE: 1, PT.PORT: 2, PT.L4PROTO: 1, PT.SOCKFAMILY: 1,
             PT.BOOL: 4, PT.FLAGS8: 1, PT.FLAGS16: 2, PT.FLAGS32: 4, PT.UID: 4, PT.GID: 4, PT.SIGSET: 4,
             PT.MODE: 4, PT.ENUMFLAGS8: 1, PT.ENUMFLAGS16: 2, PT.ENUMFLAGS32: 4, PT.RELTIME: 8, PT.ABSTIME: 8}
    if t in (PT.UID, PT.GID) and rng.random() < 0.5:
        return struct.pack("<I", rng.choice([0, 1000, 0xFFFFFFFF, 4242]))
    if t == PT.RELTIME and rng.random() < 0.3:
        return rng.choice([b"\xff" * 8, struct.pack("<Q", 1_500_000_000)])
    if t in sizes:
        return _int(rng, sizes[t])
    if t == PT.CHARBUF:
        return _text(rng)
    if t in (PT.FSPATH, PT.FSRELPATH):
        return _path(rng)
    if t == PT.BYTEBUF:
        return _buf(rng)
    if t == PT.SOCKADDR:
        return _sockaddr(rng)
    if t == PT.SOCKTUPLE:
        return _tuple(rng)
    if t == PT.FDLIST:
        fds = [(rng.choice(FDS + [77]), rng.randrange(0, 8)) for _ in range(rng.randrange(0, 4))]
        return struct.pack("<H", len(fds)) + b"".join(struct.pack("<qh", fd, fl) for fd, fl in fds)
    return rng.randbytes(rng.randrange(0, 24)) + rng.choice([b"\0", b""])


def scap_file(rng: random.Random, extra: int) -> bytes:
    """Tables, then one event of every type in random order, then ``extra`` more at random."""
    threads = [S.T(100, 100, 1, "app", "/usr/bin/app", ["-v"], "/srv", 0, 0, 100, 100),
               S.T(101, 100, 1, "app", "/usr/bin/app", ["-v"], "/srv", 0, 0, 101, 100),
               S.T(200, 200, 1, "caf\u00e9", "/bin/c", [], "/", 1000, 1000, 200, 200)]
    fds = [S.fd_file(0, "/dev/null"), S.fd_file(1, "/var/log/x.log"), S.fd_server4(3, "0.0.0.0", 80),
           S.fd_ipv4(4, "10.0.0.7", 4000, "10.0.0.8", 80), S.fd_unix(5, "/run/sock"),
           S.fd_file(6, "/srv/dir"), S.fd_ipv4(7, "10.0.0.7", 80, "10.0.0.9", 5000, proto=3)]
    head = (S.shb() + S.mi() + S.il(True, [("lo", "ipv4", "127.0.0.1")])
            + S.ul(True, [(0, 0, "root", "/root", "/bin/sh"), (1000, 1000, "u", "/home/u", "/bin/sh")],
                   [(0, "root"), (1000, "u")])
            + S.pl(9, threads) + S.fdl(True, 100, fds))
    types = [t for t in range(PPM_EVENT_MAX) if PPM_EVENTS[t] is not None]
    order = types[:]
    rng.shuffle(order)
    order += [rng.choice(types) for _ in range(extra)]
    kinds = [B.EV_V2, B.EV_V2, B.EVF_V2, B.EV_V2_LARGE]
    out = []
    for k, t in enumerate(order):
        info = PPM_EVENTS[t]
        assert info is not None
        params = [param(rng, p.type) for p in info.params]
        if rng.random() < 0.08:
            params = params[:rng.randrange(0, len(params) + 1)]
        tid = rng.choice(TIDS + TIDS + [300, 301])
        out.append(S.ev(rng.choice(kinds), S.TS0 + 1000 * k, tid, t, params, cpu=k % 3))
    return head + b"".join(out)


# --- the two paths -----------------------------------------------------------------------------
def _formatter(mode: tuple[str, str | None, bool, str, bool, int]) -> Formatter:
    _, fmt, json_out, bufmode, verbose, max_buf = mode
    return Formatter(fmt, json_out=json_out, time_mode="h",
                     opts=RenderOptions(mode=bufmode, verbose=verbose, max_buf=max_buf))


def _feed(path: Path, p: Pipeline, state: State, after: Any = None) -> None:
    for it in read_captures([str(path)]):
        if isinstance(it, TableBlock):
            state.load_table(it.kind, it.rows)
        elif isinstance(it, EventBlock):
            p.feed(it.raw)
            if after is not None:
                after()


def event_path(path: Path, mode: Any) -> bytes:
    """An Event per event, one Formatter.line each."""
    state, f, out = State(), _formatter(mode), []
    p = Pipeline(state, on_event=lambda ev: out.append(f.line(ev)))
    _feed(path, p, state)
    return "".join(x + "\n" for x in out).encode("utf-8", "surrogateescape")


def renderer_path(path: Path, mode: Any, mod: Any) -> bytes:
    """ktrace -r's printing: runs of records rendered straight from the batch by ``mod``'s Renderer."""
    state = State()
    r = mod.Renderer(_formatter(mode), state)
    p = Pipeline(state, on_event=r.render_event, renderer=r)
    chunks: list[bytes] = []
    _feed(path, p, state, lambda: chunks.append(r.take()))
    return b"".join(chunks)


def check(path: Path, modes: list[Any] = MODES) -> None:
    for mode in modes:
        want = event_path(path, mode)
        assert want.count(b"\n") > 20
        for mod in (compiled, pure_render):
            got = renderer_path(path, mode, mod)
            if got != want:
                a, b = want.splitlines(), got.splitlines()
                first = next((i for i, (x, y) in enumerate(zip(a, b, strict=False)) if x != y), min(len(a), len(b)))
                pytest.fail(f"{mode[0]}, {mod.__name__}, line {first + 1}:\n  event path: "
                            f"{a[first] if first < len(a) else b'(none)'!r}\n  renderer:   "
                            f"{b[first] if first < len(b) else b'(none)'!r}")


# --- tests -------------------------------------------------------------------------------------
@pytest.mark.parametrize("path", CAPTURES, ids=lambda p: p.name)
def test_sysdig_captures(path: Path) -> None:
    check(path)


def test_every_parameter_type_is_drawn() -> None:
    """The files hold every parameter type the table has, so every plan code is exercised."""
    used = {p.type for e in PPM_EVENTS if e is not None for p in e.params}
    codes = {scap_render._param_plan(p)[0] for e in PPM_EVENTS if e is not None for p in e.params}
    assert codes == {scap_render.Q_INT, scap_render.Q_ERRNO, scap_render.Q_FD, scap_render.Q_PID, scap_render.Q_STR,
                     scap_render.Q_PATH, scap_render.Q_BUF, scap_render.Q_CACHED, scap_render.Q_PY}
    assert {PT.FD, PT.PID, PT.ERRNO, PT.CHARBUF, PT.FSPATH, PT.FSRELPATH, PT.BYTEBUF, PT.SOCKADDR,
            PT.SOCKTUPLE, PT.FDLIST, PT.FLAGS32, PT.MODE, PT.UID} <= used


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 2**32 - 1))
def test_random_files(tmp_path: Path, seed: int) -> None:
    rng = random.Random(seed)
    f = tmp_path / "r.scap"
    f.write_bytes(scap_file(rng, 300))
    check(f)


def _broken_plans(orig: Any) -> Any:
    """c_plans with one rule wrong: integers in hex print in decimal."""
    def plans() -> Any:
        out = []
        for plan in orig():
            if plan is not None:
                params = tuple((q[0], q[1], q[2], q[3], q[4], int(PF.DEC) if q[5] == PF.HEX else q[5], q[6])
                               for q in plan[0])
                plan = (params, *plan[1:])
            out.append(plan)
        return out

    return plans


def test_a_broken_c_plan_shows(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    f = tmp_path / "r.scap"
    f.write_bytes(scap_file(random.Random(1), 0))
    mode = MODES[0]
    want = event_path(f, mode)
    assert renderer_path(f, mode, compiled) == want
    monkeypatch.setattr(scap_render, "c_plans", _broken_plans(scap_render.c_plans))
    assert renderer_path(f, mode, compiled) != want


def test_a_broken_python_rule_shows(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The C renderer prints numbers itself: a wrong Python rule for them makes the two differ."""
    f = tmp_path / "r.scap"
    f.write_bytes(scap_file(random.Random(2), 0))
    mode = MODES[1]
    assert renderer_path(f, mode, compiled) == event_path(f, mode)
    monkeypatch.setattr(scap_render, "_number", lambda p, v: "0")
    assert renderer_path(f, mode, compiled) != event_path(f, mode)


def _damaged(raw: bytes) -> bytes:
    """Every third .scap record of a batch with an annex that cannot be read (a length size of 3):
    its Event has no PPM event, so ktrace's own rules apply to it."""
    from tracer.schema import record as R

    out = bytearray(raw)
    off, k = 0, 0
    while off + R.REC_FIXED <= len(out):
        length, l0, l1, flags = (struct.unpack_from("<I", out, off + R.OFF_LEN)[0],
                                 *struct.unpack_from("<HHI", out, off + R.OFF_L0))
        if flags & R.RF_PPM and R.REC_FIXED + l0 + l1 + 12 <= length:
            k += 1
            if k % 3 == 0:
                out[off + R.REC_FIXED + l0 + l1 + 8] = 3
        off += length
    return bytes(out)


@pytest.mark.parametrize("path", CAPTURES, ids=lambda p: p.name)
def test_damaged_annexes(path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real = read_captures

    def damaged(paths: list[str]) -> Iterator[Any]:
        for it in real(paths):
            yield dataclasses.replace(it, raw=_damaged(bytes(it.raw))) if isinstance(it, EventBlock) else it

    monkeypatch.setattr(sys.modules[__name__], "read_captures", damaged)
    check(path, [MODES[0], MODES[1], MODES[3]])


@pytest.mark.skipif(shutil.which("sysdig") is None, reason="sysdig is not installed (scripts/setup.sh installs it)")
def test_fd_parameters_as_sysdig_prints_them(tmp_path: Path) -> None:
    """An fd parameter of -100 is AT_FDCWD (any fd parameter, as libsinsp names it), another negative
    one an errno, a known one its tag and name: ktrace's lines are sysdig 0.29's on the same file."""
    E = B.EV_V2
    t = S.T(100, 100, 1, "app", "/usr/bin/app", ["-v"], "/srv", 0, 0, 100, 100)
    head = (S.shb() + S.mi() + S.il(True, [("lo", "ipv4", "127.0.0.1")])
            + S.ul(True, [(0, 0, "root", "/root", "/bin/sh")], [(0, "root")])
            + S.pl(9, [t]) + S.fdl(True, 100, [S.fd_file(0, "/dev/null"), S.fd_file(5, "/srv/dir")]))
    flags_mode = [S.u32(1), S.u32(0)]
    events = [(306, [S.i64(-100), S.cstr("/etc/hosts"), *flags_mode]),  # openat
              (307, [S.i64(4), S.i64(-100), S.cstr("/etc/hosts"), *flags_mode, S.u32(0)]),
              (306, [S.i64(5), S.cstr("x"), *flags_mode]),
              (307, [S.i64(-2), S.i64(5), S.cstr("x"), *flags_mode, S.u32(0)]),
              (4, [S.i64(-9)]), (5, [S.i64(-9)]),  # close
              (4, [S.i64(-100)]), (5, [S.i64(-100)]),
              (306, [S.i64(-100), S.cstr("rel/a"), *flags_mode]),
              (307, [S.i64(-100), S.i64(-100), S.cstr("rel/a"), *flags_mode, S.u32(0)])]
    f = tmp_path / "fds.scap"
    f.write_bytes(head + b"".join(S.ev(E, S.TS0 + 10 * k, 100, et, ps) for k, (et, ps) in enumerate(events)))
    env = dict(os.environ, TZ="UTC")
    want = subprocess.run(["sysdig", "-r", str(f)], capture_output=True, env=env, timeout=60, check=True).stdout
    assert want.count(b"AT_FDCWD") == 6 and b"fd=-2(ENOENT)" in want and b"res=-100(ENETDOWN)" in want
    for mode in (MODES[0],):
        assert event_path(f, mode) == want
        assert renderer_path(f, mode, compiled) == want
        assert renderer_path(f, mode, pure_render) == want


@pytest.mark.skipif(shutil.which("sysdig") is None, reason="sysdig is not installed (scripts/setup.sh installs it)")
def test_dynamic_parameters_as_sysdig_prints_them(tmp_path: Path) -> None:
    """A dynamic parameter's first byte picks the type of the rest from its table (setsockopt's
    value, ptrace's address and data, bpf's result): every row of each, an index past the table
    and an empty value, against sysdig 0.29's lines on the same file."""
    E = B.EV_V2
    t = S.T(100, 100, 1, "app", "/usr/bin/app", ["-v"], "/srv", 0, 0, 100, 100)
    head = (S.shb() + S.mi() + S.il(True, [("lo", "ipv4", "127.0.0.1")])
            + S.ul(True, [(0, 0, "root", "/root", "/bin/sh")], [(0, "root")])
            + S.pl(9, [t]) + S.fdl(True, 100, [S.fd_file(0, "/dev/null"), S.fd_file(5, "/srv/dir")]))
    sockopt = [b"\x00ab\x01c", b"\x01" + S.i64(-11), b"\x02" + S.u32(4096), b"\x03" + struct.pack("<Q", 1 << 40),
               b"\x04" + struct.pack("<Q", 1_500_000_000), b"\x09" + S.u32(1), b""]
    events = [(45, [S.i64(0), S.i64(5), b"\x01", b"\x02", v, S.u32(len(v))]) for v in sockopt]  # setsockopt <
    events += [(47, [S.i64(-22), S.i64(0), b"\x00", b"\x00", v, S.u32(0)]) for v in sockopt[:3]]  # getsockopt <
    events += [(169, [S.i64(0), b"\x00" + struct.pack("<Q", 0x7FFE1234), b"\x01\x09"]),  # ptrace <
               (297, [b"\x00" + S.i64(5)]), (297, [b"\x01" + S.i64(-1)])]  # bpf <
    f = tmp_path / "dyn.scap"
    f.write_bytes(head + b"".join(S.ev(E, S.TS0 + 10 * k, 100, et, ps) for k, (et, ps) in enumerate(events)))
    env = dict(os.environ, TZ="UTC")
    want = subprocess.run(["sysdig", "-r", str(f)], capture_output=True, env=env, timeout=60, check=True).stdout
    assert b"val=ab.c" in want and b"val=-11(EAGAIN)" in want and b"val=4096" in want
    for mode in (MODES[0], MODES[5]):
        want_mode = want if mode is MODES[0] else subprocess.run(
            ["sysdig", "-A", "-r", str(f)], capture_output=True, env=env, timeout=60, check=True).stdout
        assert event_path(f, mode) == want_mode
        assert renderer_path(f, mode, compiled) == want_mode
        assert renderer_path(f, mode, pure_render) == want_mode


@pytest.mark.skipif(shutil.which("sysdig") is None, reason="sysdig is not installed (scripts/setup.sh installs it)")
def test_buffers_as_sysdig_prints_them(tmp_path: Path) -> None:
    """-A keeps printable characters and line ends (a CR, or a CR LF, one newline); -X and -x end
    each line with a newline, an odd last line's text two columns left; a value's own trailing
    spaces stay: ktrace's lines are sysdig 0.29's on the same file, for every length of a last
    line and every byte."""
    t = S.T(100, 100, 1, "app", "/usr/bin/app", ["-v"], "/srv", 0, 0, 100, 100)
    head = (S.shb() + S.mi() + S.il(True, [("lo", "ipv4", "127.0.0.1")])
            + S.ul(True, [(0, 0, "root", "/root", "/bin/sh")], [(0, "root")])
            + S.pl(9, [t]) + S.fdl(True, 100, [S.fd_file(0, "/dev/null")]))
    datas = [bytes(range(0, 40)) + b"hello\r\nworld\r\r\n\x7f\x80\xff~ ", bytes(range(256)), b"ends with spaces  "]
    datas += [b"abcdefghijklmnopq"[:n] for n in range(1, 18)]
    f = tmp_path / "bufs.scap"
    f.write_bytes(head + b"".join(S.ev(B.EV_V2, S.TS0 + 10 * k, 100, 7, [S.i64(len(d)), d])  # read <
                                  for k, d in enumerate(datas)))
    env = dict(os.environ, TZ="UTC")
    for flag, mode in (("", MODES[0]), ("-A", MODES[5]), ("-X", MODES[6]), ("-b", MODES[7]),
                       ("-x", ("hex", None, False, "hex", False, 80))):
        want = subprocess.run(["sysdig", *([flag] if flag else []), "-r", str(f)], capture_output=True, env=env,
                              timeout=60, check=True).stdout
        assert event_path(f, mode) == want, flag
        assert renderer_path(f, mode, compiled) == want, flag
        assert renderer_path(f, mode, pure_render) == want, flag


@pytest.mark.skipif(shutil.which("sysdig") is None, reason="sysdig is not installed (scripts/setup.sh installs it)")
@pytest.mark.parametrize("fmt", ["[%2proc.name][%3evt.num][%1evt.dir][%evt.info][%evt.args]",
                                 "*%10evt.info|%20fd.name|%5thread.tid"])
def test_custom_formats_as_sysdig_prints_them(fmt: str) -> None:
    """-p: %N prints exactly N characters (cut or padded), evt.info and evt.args end with their
    last parameter's space: ktrace's lines are sysdig 0.29's on its own captures."""
    env = dict(os.environ, TZ="UTC")
    for path in CAPTURES:
        want = subprocess.run(["sysdig", "-r", str(path), "-p", fmt], capture_output=True, env=env, timeout=60,
                              check=True).stdout
        mode = ("p", fmt, False, "normal", False, 80)
        assert event_path(path, mode) == want, path.name
        assert renderer_path(path, mode, compiled) == want, path.name
        assert renderer_path(path, mode, pure_render) == want, path.name
