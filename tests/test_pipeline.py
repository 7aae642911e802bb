"""The pipeline: state before the filter, what a capture keeps, evt.num, and internal records
(live mode's inserted facts) giving a replay the same lines as the live run.
"""

from __future__ import annotations

import io
import os
import types
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tracer import engine
from tracer import pipeline as pipeline_mod
from tracer.enrich.live import internal_record
from tracer.event import Event
from tracer.filter.compiler import compile_filter
from tracer.filter.pushdown import exact
from tracer.output.format import Formatter
from tracer.pipeline import Pipeline, Selection
from tracer.schema import record as R
from tracer.schema.events import SYSCALL_NR
from tracer.schema.fields import FIELDS
from tracer.session import Runner, RunOptions, fd_check, thread_check, wanted_events
from tracer.state.state import State
from tracer.testing import (
    STREAM_OPS,
    Synth,
    build_stream,
    fd_row,
    lines,
    split,
    state_from,
    tables,
    thread_row,
    write_capture,
)

P = 100
FMT = "%evt.num %proc.name %thread.tid %evt.dir %evt.type %fd.name"


def tabs() -> dict[str, list[Any]]:
    return tables(threads=[thread_row(P, comm="app", cwd="/home/u"), thread_row(200, comm="peer", cwd="/")],
                  fds={P: [fd_row(1, "file", "/dev/pts/0")], 200: [fd_row(1, "file", "/dev/null")]})


def evts(batch: bytes) -> list[str]:
    """Each record as 'type dir', '!' marking a hidden one."""
    out = []
    for r in split(batch):
        evt = int.from_bytes(r[16:18], "little")
        flags = int.from_bytes(r[84:88], "little")
        name = Event(r, 0, 0, State()).type
        d = "<" if evt < R.EVT_BASE_OTHER and evt & 1 else ">"
        out.append(("!" if flags & R.RF_HIDDEN else "") + f"{name} {d}")
    return out


def pipeline(state: State, filt: str | None = None, out: list[str] | None = None, fmt: str = FMT,
             **kw: Any) -> Pipeline:
    f = Formatter(fmt)
    pred = compile_filter(filt, FIELDS) if filt else None
    sink = out if out is not None else []
    return Pipeline(state, predicate=pred, on_event=lambda ev: sink.append(f.line(ev)), **kw)


# --- state first --------------------------------------------------------------------------------------
def test_fd_name_of_an_fd_opened_earlier_in_the_same_batch() -> None:
    s = Synth(pid=P).open("/etc/passwd", 3).read(3, b"root").socket(4).connect(4, ("10.0.0.1", 80))
    s.write(4, b"GET").close(3).read(3, b"", ret=-9)
    out = lines(s.batch(), state=state_from(tabs()), fmt="%evt.num %evt.type %fd.name",
                filter="evt.dir=< and evt.type in (read, write)")
    # The read of the closed fd: an exit's unknown fd has an empty name, as libsinsp gives it.
    assert out == ["4 read /etc/passwd", "10 write 0.0.0.0:0->10.0.0.1:80", "14 read "]


def test_filter_on_fields_the_state_provides() -> None:
    s = Synth(pid=P).open("/etc/passwd", 3).read(3, b"x").open("/tmp/a", 4).read(4, b"y")
    s.clone(300).on(300).execve("/bin/cat", ["cat"]).read(3, b"z")
    out = lines(s.batch(), state=state_from(tabs()), fmt="%evt.num %proc.name %fd.name",
                filter="fd.name startswith /etc and evt.type=read and evt.dir=<")
    assert out == ["4 app /etc/passwd", "15 cat /etc/passwd"]


# --- the scanner's prefilter agrees with the plain predicate -----------------------------------------
FILTERS = [
    "proc.name=app",
    "proc.name in (app, cat) and evt.dir=<",
    "proc.name!=app",
    "evt.type=read",
    "evt.type in (read, write) and fd.type=file",
    "fd.type=ipv4",
    "fd.type!=file",
    "fd.type in (pipe, unix) or proc.pid=200",
    "proc.pid=100 and fd.type=file",
    "thread.tid=101",
    "container.id=host and evt.type=close",
    "not proc.name=app",
    "evt.dir=> and proc.name=peer",
    "evt.type=procexit",
    "fd.name contains passwd",
]

OPS = st.sampled_from(STREAM_OPS)
step_st = st.tuples(st.sampled_from([P, 101, 200]), OPS, st.integers(3, 7), st.booleans())


def run_both(filt: str, batches: list[bytes]) -> tuple[list[str], list[str]]:
    cf = compile_filter(filt, FIELDS)
    plain: list[str] = []
    p1 = pipeline(state_from(tabs()), filt, plain)
    fast: list[str] = []
    st2 = state_from(tabs())
    sel = Selection(wanted_events(cf.pushdown), thread_check(cf.pushdown, st2), fd_check(cf.pushdown, st2),
                    exact=exact(cf.ast))
    p2 = pipeline(st2, filt, fast, selection=sel)
    for b in batches:
        p1.feed(b)
        p2.feed(b)
    return plain, fast


@pytest.mark.parametrize("filt", FILTERS)
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(steps=st.lists(step_st, max_size=40))
def test_prefilter_selects_what_the_predicate_accepts(filt: str, steps: list[tuple[int, str, int, bool]]) -> None:
    plain, fast = run_both(filt, build_stream(steps))
    assert fast == plain


def _selected(filt: str, state: State, out: list[str]) -> Pipeline:
    cf = compile_filter(filt, FIELDS)
    sel = Selection(wanted_events(cf.pushdown), thread_check(cf.pushdown, state), fd_check(cf.pushdown, state),
                    exact=exact(cf.ast))
    return pipeline(state, filt, out, selection=sel)


@pytest.mark.parametrize("filt", FILTERS)
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(steps=st.lists(step_st, max_size=40))
def test_fast_path_sees_the_stream_in_order(filt: str, steps: list[tuple[int, str, int, bool]]) -> None:
    """The scanner applies fd events ahead of Python: lines and final state must be those of the
    same pipeline with every state event going through Python in stream order."""
    batches = build_stream(steps)
    fast: list[str] = []
    s1 = state_from(tabs())
    p1 = _selected(filt, s1, fast)
    slow: list[str] = []
    s2 = state_from(tabs())
    p2 = _selected(filt, s2, slow)
    p2.scanner.fast_on = False
    for b in batches:
        p1.feed(b)
        p2.feed(b)
    assert fast == slow
    assert s1.tables() == s2.tables()
    assert p2.scanner.fast_applied == 0


@pytest.mark.parametrize("filt", FILTERS)
@pytest.mark.parametrize(("keep", "fatfile"), [(True, False), (True, True), (False, False)])
@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(steps=st.lists(step_st, max_size=40))
def test_runs_of_exact_matches_count_and_copy_as_events_would(
        filt: str, keep: bool, fatfile: bool, steps: list[tuple[int, str, int, bool]]) -> None:
    """Nobody shown (-w FILTER, or -q): the scanner hands exact matches over in runs, which are
    counted and copied without Events, fd events among them applied by the scanner. The bytes
    kept (and the records and times said of them, which the capture's block heads hold), the count
    and the final state must be those of the same pipeline showing every event (which makes an
    Event of each)."""
    batches = build_stream(steps)
    got = []
    for shown in (False, True):
        state = state_from(tabs())
        cf = compile_filter(filt, FIELDS)
        sel = Selection(wanted_events(cf.pushdown), thread_check(cf.pushdown, state), fd_check(cf.pushdown, state),
                        exact=exact(cf.ast))
        p = Pipeline(state, predicate=cf, selection=sel, keep=keep, fatfile=fatfile,
                     on_event=(lambda ev: None) if shown else None)
        assert bool(p.scanner.runs_below) == (not shown and sel.exact)
        got.append(([(p.feed(b), p.kept) for b in batches], p.matched, state.tables()))
    assert got[0] == got[1]


def test_fast_path_names_fds_reused_within_a_batch() -> None:
    s = Synth(pid=P).open("/etc/a", 3).read(3, b"x").close(3).open("/etc/b", 3).read(3, b"y").close(3)
    s.on(200).open("/etc/c", 5).close(5).open("/etc/d", 5)
    out: list[str] = []
    st_ = state_from(tabs())
    p = _selected("evt.type=read and evt.dir=<", st_, out)
    p.feed(s.batch())
    assert [ln.split(" ", 1)[1] for ln in out] == ["app 100 < read /etc/a", "app 100 < read /etc/b"]
    assert p.scanner.fast_applied == 4  # P's first open, then all of 200's; P's rest waited for its reads
    assert st_.fd(200, 5) is not None and st_.fd(200, 5).name == "/etc/d"  # type: ignore[union-attr]
    assert st_.fd(P, 3) is None


# --- what a capture keeps ----------------------------------------------------------------------------
def scenario() -> Synth:
    s = Synth(pid=P)
    s.open("/etc/passwd", 3).read(3, b"root").socket(4).connect(4, ("10.0.0.1", 80)).write(4, b"GET")
    s.close(3).close(4)
    return s


def test_unfiltered_keep_returns_the_batch() -> None:
    batch = scenario().batch()
    p = pipeline(state_from(tabs()), keep=True)
    assert p.feed(batch) == batch
    assert p.kept == (len(split(batch)), int.from_bytes(batch[:8], "little"),
                      int.from_bytes(split(batch)[-1][:8], "little"))


def test_filtered_keep_is_the_matching_records() -> None:
    batch = scenario().batch()
    p = pipeline(state_from(tabs()), "evt.type in (read, write)", keep=True)
    kept = p.feed(batch)
    # The thread's first kept event comes after what the state knew of it, so a replay elsewhere
    # (without the records the filter dropped) still names it.
    assert evts(kept) == ["threadinfo >", "read >", "read <", "write >", "write <"]
    assert p.kept[0] == 5
    assert lines(kept, state=State(), fmt="%proc.name %proc.cwd %evt.type") == \
        ["app /home/u read", "app /home/u read", "app /home/u write", "app /home/u write"]


def test_fatfile_keeps_state_records_hidden() -> None:
    batch = scenario().batch()
    p = pipeline(state_from(tabs()), "evt.type=write", keep=True, fatfile=True)
    kept = p.feed(batch)
    assert evts(kept) == ["!open <", "!socket <", "!connect >", "!connect <", "write >", "write <", "!close <",
                          "!close <"]
    # Replayed with no filter, the hidden records feed the state and are never shown.
    out = lines(kept, state=state_from(tabs()), fmt="%evt.num %evt.type %fd.name")
    assert out == ["5 write 0.0.0.0:0->10.0.0.1:80", "6 write 0.0.0.0:0->10.0.0.1:80"]


def test_fatfile_keeps_matching_state_records_visible() -> None:
    batch = scenario().batch()
    kept = pipeline(state_from(tabs()), "evt.type=open", keep=True, fatfile=True).feed(batch)
    assert evts(kept)[:2] == ["open >", "open <"]


def test_without_fatfile_a_replay_lacks_the_context() -> None:
    batch = scenario().batch()
    kept = pipeline(state_from(tabs()), "evt.type=write", keep=True).feed(batch)
    assert lines(kept, state=state_from(tabs()), fmt="%evt.type %fd.name") == ["write <NA>", "write "]


def test_container_records_kept_whatever_the_filter() -> None:
    s = Synth(pid=P).container("abc", name="web").read(1, b"x")
    kept = pipeline(state_from(tabs()), "evt.type=write", keep=True).feed(s.batch())
    assert evts(kept) == ["container >"]


def test_connection_ends_kept_whatever_the_filter() -> None:
    """A filtered capture keeps EVT_CONNECTED: the socket's events it keeps are named in a replay."""
    s = Synth(pid=P).socket(3).connect(3, ("10.0.0.1", 80)).connected(3, ("10.0.0.2", 5000), ("10.0.0.1", 80))
    s.write(3, b"GET /")
    kept = pipeline(state_from(tabs()), "evt.type=write", keep=True).feed(s.batch())
    assert evts(kept) == ["connected >", "threadinfo >", "write >", "write <"]
    assert lines(kept, state=state_from(tabs()), fmt="%evt.type %fd.name") == [
        "write 10.0.0.2:5000->10.0.0.1:80", "write 10.0.0.2:5000->10.0.0.1:80"]


def test_accepted_ends_kept_whatever_the_filter() -> None:
    """So is EVT_ACCEPTED, though the filter drops the accept: the replay names the kept reads."""
    s = Synth(pid=P).socket(3).listen(3).accept(3, 5, b"").accepted(5, ("10.0.0.1", 80), ("10.0.0.2", 5000))
    s.read(5, b"GET /")
    kept = pipeline(state_from(tabs()), "evt.type=read", keep=True).feed(s.batch())
    assert evts(kept) == ["accepted >", "threadinfo >", "read >", "read <"]
    assert lines(kept, state=state_from(tabs()), fmt="%evt.type %fd.name") == [
        "read 10.0.0.2:5000->10.0.0.1:80", "read 10.0.0.2:5000->10.0.0.1:80"]


# --- evt.num -------------------------------------------------------------------------------------------
def test_numbers_count_every_record_across_batches() -> None:
    s = Synth(pid=P)
    out: list[str] = []
    p = pipeline(state_from(tabs()), "evt.type=read and evt.dir=<", out, fmt="%evt.num")
    for _ in range(3):
        s.open("/a", 3).read(3, b"x").close(3)
        p.feed(s.batch())
    assert out == ["4", "10", "16"]
    assert p.count == 18


def test_hidden_and_internal_records_are_numbered() -> None:
    s = Synth(pid=P).threadinfo(cwd="/x").read(1, b"a")
    s.record(R.syscall_evt(SYSCALL_NR["write"], 1), flags=R.RF_HIDDEN).read(1, b"b")
    assert lines(s.batch(), state=state_from(tabs()), fmt="%evt.num %evt.type") == \
        ["2 read", "3 read", "5 read", "6 read"]


# --- live facts inserted after events: replay equals live ---------------------------------------------
class FakeEnricher:
    """What LiveEnricher would learn: the local end of a connect, the cwd after an exec, and a
    container record due at the start of the next batch."""

    watched = frozenset(R.syscall_evt(SYSCALL_NR[n], R.DIR_EXIT) for n in ("connect", "execve"))

    def __init__(self) -> None:
        self.due: list[bytes] = [internal_record(R.EVT_CONTAINER, 1, 0, 0, {"id": "abc", "name": "web"})]

    def after(self, ev: Event) -> list[bytes]:
        if ev.type == "connect" and ev.direction and ev.ret == 0:
            fd = ev.args[0]
            return [internal_record(R.EVT_FDINFO, ev.ts, ev.tid, ev.pid,
                                    {"num": fd, "cip": "10.0.0.2", "cport": 5555,
                                     "name": "10.0.0.2:5555->10.0.0.1:80"})]
        if ev.type == "execve" and ev.direction and ev.ret == 0:
            return [internal_record(R.EVT_THREADINFO, ev.ts, ev.tid, ev.pid, {"cwd": "/srv", "uid": 33}),
                    internal_record(R.EVT_FDINFO, ev.ts, ev.tid, ev.pid, {"num": 9, "type": "pipe"})]
        return []

    def pending(self) -> list[bytes]:
        out, self.due = self.due, []
        return out


def live_stream() -> list[bytes]:
    s = Synth(pid=P)
    s.socket(4).connect(4, ("10.0.0.1", 80)).write(4, b"GET")
    b1 = s.batch()
    s.execve("/bin/sh", ["sh"]).write(9, b"x").open("rel", 5).write(4, b"again")
    return [b1, s.batch()]


LIVE_FMT = "%evt.num %proc.name %evt.type %evt.dir %fd.name %proc.cwd %user.uid %evt.info"


@pytest.mark.parametrize(
    ("filt", "show_internal"),
    [
        (None, False),
        (None, True),
        ("evt.type in (write, connect)", False),
        ("evt.type in (write, connect, fdinfo, threadinfo)", True),
        ("fd.name contains 5555", False),
    ],
)
def test_replay_equals_live(filt: str | None, show_internal: bool) -> None:
    live: list[str] = []
    p = pipeline(state_from(tabs()), filt, live, fmt=LIVE_FMT, keep=True, fatfile=True, enricher=FakeEnricher(),
                 show_internal=show_internal)
    capture = b"".join(p.feed(b) for b in live_stream())
    replay: list[str] = []
    p2 = pipeline(state_from(tabs()), filt, replay, fmt=LIVE_FMT, show_internal=show_internal)
    p2.feed(capture)
    if filt is None:
        assert replay == live  # the same numbers too: the capture holds every record
    else:
        def strip(xs: list[str]) -> list[str]:
            return [x.split(" ", 1)[1] for x in xs]

        assert strip(replay) == strip(live)
    assert any("10.0.0.2:5555->10.0.0.1:80" in x for x in live)


def test_inserted_records_sit_right_after_their_event() -> None:
    p = pipeline(state_from(tabs()), keep=True, enricher=FakeEnricher())
    kept = [evts(p.feed(b)) for b in live_stream()]
    assert kept[0] == ["container >", "socket >", "socket <", "connect >", "connect <", "fdinfo >", "write >",
                       "write <"]
    assert kept[1][:4] == ["execve >", "execve <", "threadinfo >", "fdinfo >"]
    assert p.count == sum(len(k) for k in kept)


def test_live_numbers_count_inserted_records() -> None:
    out: list[str] = []
    p = pipeline(state_from(tabs()), "evt.type=write and evt.dir=<", out, fmt="%evt.num", enricher=FakeEnricher())
    for b in live_stream():
        p.feed(b)
    # container(1) socket(2,3) connect(4,5) fdinfo(6) write(7,8) | execve(9,10) threadinfo(11) fdinfo(12)
    # write(13,14) open(15,16) write(17,18)
    assert out == ["8", "14", "18"]


def test_followers_applied_before_the_event_is_shown_in_a_replay() -> None:
    """In a capture, an FDINFO right after connect's exit is applied before connect is shown."""
    s = Synth(pid=P).socket(4).connect(4, ("10.0.0.1", 80))
    s.fdinfo(4, cip="10.0.0.2", cport=5555, name="10.0.0.2:5555->10.0.0.1:80")
    out = lines(s.batch(), state=state_from(tabs()), fmt="%evt.type %fd.name", filter="evt.type=connect and evt.dir=<")
    assert out == ["connect 10.0.0.2:5555->10.0.0.1:80"]


@pytest.mark.parametrize("filt", [None, "evt.type in (write, connect, clone, fcntl)"])
@pytest.mark.parametrize("render", [False, True])
def test_live_lane_leaves_the_enricher_its_events(filt: str | None, render: bool,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """With live mode's enricher, the state lane applies the state changes it does not watch and
    leaves it the others (execs, connects): the lines and the capture are the per-event path's."""
    def stream() -> list[bytes]:
        s = Synth(pid=P)
        s.socket(4).connect(4, ("10.0.0.1", 80)).clone(P + 1).fcntl(4, 1030, 0, ret=7)
        s.syscall("prctl", (15, None), ret=0, seg0=b"worker")
        b1 = s.batch()
        s.execve("/bin/sh", ["sh"]).write(7, b"x").on(P + 1, P + 1).write(4, b"child").procexit()
        return [b1, s.batch()]

    def run() -> tuple[list[str], bytes]:
        out: list[str] = []
        if render:
            fmt = Formatter(LIVE_FMT)
            st_ = state_from(tabs())
            r = engine.render.Renderer(fmt, st_)
            p = Pipeline(st_, on_event=r.render_event, enricher=FakeEnricher(), renderer=r)
            for b in stream():
                p.feed(b)
            return r.take().decode().splitlines(), b""
        p = pipeline(state_from(tabs()), filt, out, fmt=LIVE_FMT, keep=True, enricher=FakeEnricher())
        return out, b"".join(p.feed(b) for b in stream())

    got = run()
    assert any("threadinfo" not in x and "/srv" in x for x in got[0])  # the enricher's facts applied
    monkeypatch.setattr(pipeline_mod, "_engine", types.SimpleNamespace(
        statelane=types.SimpleNamespace(StateLane=lambda *a: None)))
    assert run() == got


# --- ktrace -r over a capture is the same pipeline ----------------------------------------------------------
@pytest.mark.parametrize("filt", ["", "evt.type=read", "proc.name=app and fd.type=file", "fd.type=ipv4"])
def test_reading_a_capture_prints_what_the_pipeline_prints(tmp_path: Path, filt: str) -> None:
    s = scenario()
    s.on(200).read(1, b"peer")
    b1 = s.batch()
    s.open("/etc/hosts", 5).read(5, b"127.0.0.1 localhost")
    b2 = s.batch()
    path = write_capture(tmp_path / "s.kcap", b1, b2, tabs=tabs())
    out = io.StringIO()
    Runner(RunOptions(reads=[os.fspath(path)], filter_text=filt, fmt=FMT, stdout=out, stderr=io.StringIO())).run()
    assert out.getvalue().splitlines() == lines(b1, b2, state=state_from(tabs()), fmt=FMT, filter=filt or None)


def test_unfiltered_numbers_are_consecutive() -> None:
    batch = scenario().batch()
    got = [int(x) for x in lines(batch, state=state_from(tabs()), fmt="%evt.num")]
    assert got == list(range(1, len(split(batch)) + 1))


def test_replay_equals_live_for_internal_events_a_chisel_names() -> None:
    """A chisel whose filter names an internal event sees it without -D, live and in a replay."""
    filt = "evt.type in (fdinfo, write)"
    admit = frozenset({R.EVT_FDINFO, R.EVT_THREADINFO})
    live: list[str] = []
    p = pipeline(state_from(tabs()), filt, live, fmt=LIVE_FMT, keep=True, fatfile=True, enricher=FakeEnricher(),
                 admit_internal=admit)
    capture = b"".join(p.feed(b) for b in live_stream())
    replay: list[str] = []
    pipeline(state_from(tabs()), filt, replay, fmt=LIVE_FMT, admit_internal=admit).feed(capture)
    assert [x.split(" ", 1)[1] for x in replay] == [x.split(" ", 1)[1] for x in live]
    assert any(" fdinfo " in x for x in replay)
