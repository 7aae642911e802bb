"""The renderer (ext/render.pyx, tracer/_pure/render.py) against the Formatter, today's per-event
path: every capture in captures/ and random record streams must print the same bytes both ways,
for the default line, -p with many fields, -pc, -pk, -j, -j -p, -A, -X, -s, the time modes and a
filter."""

from __future__ import annotations

import io
import os
import random
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tracer import engine
from tracer.capture import EventBlock, TableBlock
from tracer.capture.files import read_captures
from tracer.event import RenderOptions
from tracer.filter.compiler import CompiledFilter, compile_filter
from tracer.filter.pushdown import exact
from tracer.output.format import PRESETS, Formatter
from tracer.pipeline import Pipeline, Selection
from tracer.schema import record as R
from tracer.schema.fields import FIELDS
from tracer.session import Runner, RunOptions, fd_check, thread_check, wanted_events
from tracer.state.state import State
from tracer.testing import Synth, fd_row, state_from, tables, thread_row, user_row

_ROOT = Path(__file__).resolve().parents[2]
# Every sample capture: ktrace's own, and sysdig's (whose records print by libsinsp's rules).
CAPTURES = sorted((_ROOT / "captures").glob("*.kcap")) + sorted((_ROOT / "captures" / "scap").glob("*.scap"))
assert CAPTURES, "no sample captures found"
MANY = ("%evt.num %evt.time %evt.cpu %proc.name %proc.pid %proc.exe %thread.tid %thread.vtid %fd.num "
        "%fd.name %fd.type %user.name %container.id %container.name %k8s.pod.name %evt.type %evt.dir "
        "%evt.info %12proc.name| %3thread.tid| %proc.cmdline %proc.aname[1] %fd.cip %evt.rawres %evt.args "
        "%evt.outputtime %evt.res %fd.l4proto %proc.ppid %evt.is_io")
# (name, -p format or preset, -j, buffer mode, -t)
MODES = [
    ("default", None, False, "normal", "h"),
    ("many", MANY, False, "normal", "h"),
    ("pc", PRESETS["c"], False, "normal", "h"),
    ("pk", PRESETS["k"], False, "normal", "h"),
    ("json", None, True, "normal", "h"),
    ("json-p", MANY, True, "normal", "h"),
    ("ascii", None, False, "ascii", "h"),
    ("hex", None, False, "hex_ascii", "h"),
]
TIME_MODES = [
    ("rel", "%evt.num %evt.outputtime %proc.name", False, "normal", "r"),
    ("delta", "*%evt.outputtime %5evt.cpu %fd.name", False, "normal", "D"),
    ("abs", None, False, "normal", "a"),
]


pytestmark = pytest.mark.usefixtures("utc")  # sysdig's times are local: compared in UTC


def _formatter(fmt: str | None, json_out: bool, mode: str, time_mode: str, verbose: bool = False) -> Formatter:
    return Formatter(fmt, json_out=json_out, time_mode=time_mode, opts=RenderOptions(mode=mode, verbose=verbose))


def _filter(text: str, state: State) -> tuple[CompiledFilter | None, Selection]:
    """The filter and the scanner's selection, as ``ktrace`` makes them (tracer/session.py)."""
    if not text:
        return None, Selection()
    pred = compile_filter(text, FIELDS)
    pd = pred.pushdown
    return pred, Selection(wanted_events(pd), thread_check(pd, state), fd_check(pd, state), exact=exact(pred.ast))


def formatter_path(items: list[EventBlock | TableBlock | bytes], state: State, f: Formatter,
                   filter_text: str = "") -> bytes:
    """Today's path: an Event per matching event, one Formatter.line each."""
    out: list[str] = []
    pred, sel = _filter(filter_text, state)
    latency = f.time_mode == "d" or "evt.latency" in f.fields
    p = Pipeline(state, predicate=pred, selection=sel, on_event=lambda ev: out.append(f.line(ev)), latency=latency)
    for it in items:
        if isinstance(it, TableBlock):
            state.load_table(it.kind, it.rows)
        else:
            p.feed(it.raw if isinstance(it, EventBlock) else it)
    return "".join(x + "\n" for x in out).encode("utf-8", "surrogateescape")


def renderer_path(items: list[EventBlock | TableBlock | bytes], state: State, f: Formatter, mod: object,
                  filter_text: str = "") -> bytes:
    """The printing path of ``ktrace``: runs of matches rendered from the batch, the rest one
    Event at a time, by ``mod``'s Renderer."""
    r = mod.Renderer(f, state)  # type: ignore[attr-defined]
    pred, sel = _filter(filter_text, state)
    latency = f.time_mode == "d" or "evt.latency" in f.fields
    p = Pipeline(state, predicate=pred, selection=sel, on_event=r.render_event, latency=latency, renderer=r)
    chunks = []
    for it in items:
        if isinstance(it, TableBlock):
            state.load_table(it.kind, it.rows)
        else:
            p.feed(it.raw if isinstance(it, EventBlock) else it)
            chunks.append(r.take())
    return b"".join(chunks)


def capture_items(path: Path) -> list[EventBlock | TableBlock | bytes]:
    return [it for it in read_captures([str(path)]) if isinstance(it, EventBlock | TableBlock)]


def both(items: list[EventBlock | TableBlock | bytes], fmt: str | None, json_out: bool, mode: str,
         time_mode: str, filter_text: str = "", tabs: dict[str, list[object]] | None = None,
         verbose: bool = False) -> tuple[bytes, bytes]:
    old = formatter_path(items, state_from(tabs), _formatter(fmt, json_out, mode, time_mode, verbose), filter_text)
    new = renderer_path(items, state_from(tabs), _formatter(fmt, json_out, mode, time_mode, verbose),
                        engine.render, filter_text)
    return old, new


@pytest.mark.parametrize("mode", MODES, ids=[m[0] for m in MODES])
@pytest.mark.parametrize("cap", CAPTURES, ids=[c.stem for c in CAPTURES])
def test_captures_render_the_same_bytes(cap: Path, mode: tuple[str, str | None, bool, str, str]) -> None:
    _, fmt, json_out, bufmode, tmode = mode
    old, new = both(capture_items(cap), fmt, json_out, bufmode, tmode)
    assert old.count(b"\n") > 20  # (the smallest, single_ipv6_conn.scap, prints 31 lines)
    assert new == old


@pytest.mark.parametrize("cap", CAPTURES, ids=[c.stem for c in CAPTURES])
def test_captures_filtered_and_latency(cap: Path) -> None:
    items = capture_items(cap)
    for flt in ("evt.dir=< and fd.type=file", "proc.name!=nomatch", "evt.type in (read,write,openat)"):
        old, new = both(items, PRESETS["c"], False, "normal", "h", flt)
        assert new == old, flt
    old, new = both(items, "%evt.num %evt.outputtime %evt.latency %proc.name", False, "normal", "d")
    assert new == old
    for _, fmt, json_out, bufmode, tmode in TIME_MODES:
        old, new = both(items, fmt, json_out, bufmode, tmode)
        assert new == old, tmode


@pytest.mark.parametrize("cap", CAPTURES[:2], ids=[c.stem for c in CAPTURES[:2]])
def test_ktrace_r_prints_what_the_formatter_prints(cap: Path) -> None:
    """The whole command's printing (Runner) against the Formatter path, through a real stdout."""
    for fmt, json_out in ((None, False), (None, True), (MANY, False)):
        raw = io.BytesIO()
        out = io.TextIOWrapper(raw, encoding="utf-8")
        opts = RunOptions(reads=[str(cap)], fmt=fmt, json_out=json_out, stdout=out, stderr=io.StringIO())
        Runner(opts).run()
        out.flush()
        old = formatter_path(capture_items(cap), State(), _formatter(fmt, json_out, "normal", "h"))
        assert raw.getvalue() == old


# --- random streams ------------------------------------------------------------------------------
TEXTS = [b"hello", b"", b"a\tb\nc\r", b"caf\xc3\xa9 \xe2\x82\xac", b"\xff\xfe bad utf8", b"\x00\x01\x7f\x80",
         b'quote " and \\ back', b" trailing  ", b"x" * 200, bytes(range(256))]
PATHS = [b"/etc/passwd", b"relative/file", b"../up", b"/tmp/caf\xc3\xa9", b"/bad\xff", b"", b"."]


def _stream(seed: int) -> tuple[list[bytes], dict[str, list[object]]]:
    rnd = random.Random(seed)
    tabs = tables(
        threads=[thread_row(100, comm="nginx", exe="/usr/sbin/nginx", cwd="/srv", uid=0, vtid=1,
                            container_id="abcdef123456"),
                 thread_row(101, 100, comm="nginx w\xe9", cwd="/srv", uid=33),
                 thread_row(200, comm="sh", cwd="/root", uid=1000)],
        fds={100: [fd_row(3, "file", "/var/log/x"), fd_row(4, "ipv4", "10.0.0.1:5->10.0.0.2:80", l4proto="tcp")],
             200: [fd_row(1, "pipe", "")]},
        users=[user_row(0, "root"), user_row(33, "www-data")],
        containers=[{"id": "abcdef123456", "name": "web", "pod_name": "web-0"}])
    s = Synth(pid=100, step=1_234_567)
    views = [s, s.on(101, 100), s.on(200), s.on(300)]
    batches = []
    for _ in range(rnd.randint(1, 4)):
        for _ in range(rnd.randint(1, 60)):
            v = rnd.choice(views)
            k = rnd.randrange(17)
            fd = rnd.choice([0, 1, 3, 4, 5, 77, -1])
            if k == 0:
                v.open(rnd.choice(PATHS), rnd.choice([3, 5, 9]), rnd.choice([0, os.O_CREAT | os.O_WRONLY]))
            elif k == 1:
                v.read(fd, rnd.choice(TEXTS))
            elif k == 2:
                v.write(fd, rnd.choice(TEXTS), ret=rnd.choice([None, -9, -11]))
            elif k == 3:
                v.close(rnd.choice([3, 5, 9]), ret=rnd.choice([0, -9]))
            elif k == 4:
                v.syscall("brk", (rnd.getrandbits(48),), ret=rnd.getrandbits(48))
            elif k == 5:
                v.syscall("wait4", (rnd.randint(-1, 400), 0, 0, 0), ret=rnd.choice([0, 12, -10]))
            elif k == 6:
                v.syscall("kill", (rnd.randint(0, 400), rnd.choice([0, 2, 9, 15, 64, -3 & 0xFFFFFFFF])),
                          ret=rnd.choice([0, -1, -3]))
            elif k == 7:
                v.dup2(rnd.choice([3, 4]), rnd.choice([1, 2, 7]))
            elif k == 8:
                v.fcntl(fd, rnd.choice([1, 2, 1030]), rnd.randint(0, 5), ret=rnd.choice([0, 10, -9]))
            elif k == 9:
                v.chdir(rnd.choice(PATHS), ret=rnd.choice([0, -2]))
            elif k == 10:
                v.execve(b"/bin/ls", [b"ls", rnd.choice(TEXTS)], comm=None) if rnd.random() < 0.5 \
                    else v.execve(b"/bin/caf\xc3\xa9", [b"x"], comm=b"caf")
            elif k == 11:
                v.syscall("getpid", (), ret=rnd.randint(1, 500))
            elif k == 12:
                v.syscall("lseek", (fd, rnd.getrandbits(40), rnd.randint(0, 4)), ret=rnd.choice([0, -22, 1 << 33]))
            elif k == 13:
                v.record(R.syscall_evt(rnd.choice([335, 400, 450]), rnd.randint(0, 1)),
                         args=[rnd.choice([0, rnd.getrandbits(64)]) for _ in range(6)],
                         ret=rnd.choice([0, -2, -4095, -5000, 7]))
            elif k == 14:
                v.socket(rnd.choice([5, 6]))
            elif k == 15:
                v.connect(rnd.choice([5, 6]), ("10.1.2.3", 443), ret=rnd.choice([0, -111]))
            else:
                v.procexit()
        batches.append(s.batch())
    return batches, tabs


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**32 - 1), mode=st.sampled_from(MODES + TIME_MODES),
       flt=st.sampled_from(["", "proc.name=nginx", "fd.type=file or evt.type=brk", "thread.tid!=101"]),
       snaplen_verbose=st.booleans())
def test_random_streams_render_the_same_bytes(seed: int, mode: tuple[str, str | None, bool, str, str],
                                              flt: str, snaplen_verbose: bool) -> None:
    batches, tabs = _stream(seed)
    _, fmt, json_out, bufmode, tmode = mode
    items: list[EventBlock | TableBlock | bytes] = list(batches)
    old, new = both(items, fmt, json_out, bufmode, tmode, flt, tabs, verbose=snaplen_verbose)
    assert new == old


def test_width_pads_by_characters_and_na() -> None:
    """%Nfield pads to N characters, not bytes; an unknown thread prints <NA>."""
    s = Synth(pid=101)
    s.syscall("getpid", (), ret=101)
    s.on(999).syscall("getpid", (), ret=999)
    tabs = tables(threads=[thread_row(101, comm="w\xe9b")])
    out = renderer_path([s.batch()], state_from(tabs), _formatter("%6proc.name|%user.name", False, "normal", "h"),
                        engine.render)
    assert out.decode().splitlines() == ["w\xe9b   |<NA>", "w\xe9b   |<NA>", "<NA>  |<NA>", "<NA>  |<NA>"]


def test_buffers_cut_at_the_snap_length_unless_verbose() -> None:
    s = Synth(pid=7, snaplen=200)
    s.write(1, b"y" * 100)
    b = s.batch()
    short = renderer_path([b], State(), _formatter("%evt.info", False, "normal", "h"), engine.render)
    full = renderer_path([b], State(), _formatter("%evt.info", False, "normal", "h", verbose=True), engine.render)
    assert b"data=" + b"y" * 77 + b"... \n" in short  # sysdig's cut: 80 characters in all, "..." included
    assert b"data=" + b"y" * 100 + b" \n" in full
