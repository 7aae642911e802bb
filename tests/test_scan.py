"""The batch scanner: selection by masks, the thread check's cache, and refusal of bad lengths.

Behaviour is checked on the engine chosen at import (the suite runs once per engine); the last
part runs the Cython scanner and its pure-Python twin side by side on the same random batches.
"""

from __future__ import annotations

import importlib
import os
import struct
from types import ModuleType
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tracer.engine import scan
from tracer.event import Event
from tracer.schema import record as R
from tracer.schema.events import FD_NONE, FD_RET
from tracer.state.state import State
from tracer.testing import Synth, split

SEL_STATE, SEL_MATCH, SEL_EXACT = R.SEL_STATE, R.SEL_MATCH, R.SEL_EXACT
M = SEL_MATCH | SEL_EXACT  # may match, and every check (if any) said so for sure
E_A, E_B, E_S = 10, 11, 12  # a matching event, a non-matching one, a state-changing one


def mask(*evts: int, n: int = R.EVT_MAX) -> bytes:
    m = bytearray(n)
    for e in evts:
        m[e] = 1
    return bytes(m)


def rec(evt: int, tid: int = 1, ts: int = 0, payload: bytes = b"") -> bytes:
    return R.pack_record(ts, tid, tid, evt, seg0=payload)


def triples(sel: Any) -> list[tuple[int, int, int]]:
    v = list(sel)
    return [(v[i], v[i + 1], v[i + 2]) for i in range(0, len(v), 3)]


def offsets(batch: bytes) -> list[int]:
    out, off = [], 0
    for r in split(batch):
        out.append(off)
        off += len(r)
    return out


class Checker:
    """A tid_check with fixed answers that records every question."""

    def __init__(self, answers: dict[int, bool | None]) -> None:
        self.answers = answers
        self.asked: list[int] = []

    def __call__(self, tid: int) -> bool | None:
        self.asked.append(tid)
        return self.answers.get(tid)


# --- selection -----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("evts", "smask", "mmask", "expected_why"),
    [
        ([E_A, E_B, E_S], (E_S,), (E_A,), [M, 0, SEL_STATE]),
        ([E_A, E_B, E_S], (E_S,), (E_S,), [0, 0, SEL_STATE | M]),
        ([E_A, E_B, E_S], (), (), [0, 0, 0]),
        ([E_A, E_B, E_S], (E_A, E_B, E_S), (E_A, E_B, E_S), [7, 7, 7]),
        ([R.EVT_MAX - 1, 0], (0,), (R.EVT_MAX - 1,), [M, SEL_STATE]),
        # Ids beyond a mask's length are never selected by it.
        ([R.EVT_MAX + 5, E_A], (), (E_A,), [0, M]),
    ],
)
def test_selection_by_masks(evts: list[int], smask: tuple[int, ...], mmask: tuple[int, ...],
                            expected_why: list[int]) -> None:
    payloads = [b"x" * i for i in range(len(evts))]  # records of different lengths
    batch = b"".join(rec(e, ts=100 + i, payload=p) for i, (e, p) in enumerate(zip(evts, payloads, strict=True)))
    sel, n = scan.Scanner(mask(*smask), mask(*mmask)).scan(batch)
    offs = offsets(batch)
    assert n == len(evts)
    assert triples(sel) == [(i, offs[i], w) for i, w in enumerate(expected_why) if w]


def test_counts_and_timestamps() -> None:
    batch = b"".join(rec(E_B, ts=ts) for ts in (500, 300, 900, 700))  # not monotonic: the kernel's order
    sc = scan.Scanner(mask(), mask())
    sel, n = sc.scan(batch)
    assert (list(sel), n, sc.first_ts, sc.last_ts) == ([], 4, 500, 700)


def test_empty_batch() -> None:
    sc = scan.Scanner(mask(), mask(E_A))
    sel, n = sc.scan(b"")
    assert (list(sel), n) == ([], 0)


@pytest.mark.parametrize("mlen", [0, 1, E_A, E_A + 1, R.EVT_MAX])
@pytest.mark.parametrize("slen", [0, E_S, E_S + 1, R.EVT_MAX])
def test_masks_of_any_length(mlen: int, slen: int) -> None:
    """A mask shorter than the event ids is 'no' past its end, whatever the other mask's length."""
    sm = mask(E_S, n=max(slen, E_S + 1))[:slen]
    mm = mask(E_A, n=max(mlen, E_A + 1))[:mlen]
    batch = rec(E_A) + rec(E_S)
    sel, n = scan.Scanner(sm, mm).scan(batch)
    want = []
    if mlen > E_A:
        want.append((0, 0, M))
    if slen > E_S:
        want.append((1, R.REC_FIXED, SEL_STATE))
    assert (triples(sel), n) == (want, 2)


def test_synthetic_stream_selection() -> None:
    """A realistic batch: the state mask picks open's exit, the match mask read's exit."""
    s = Synth(pid=7)
    s.open("/etc/hosts", 3).read(3, b"abc").close(3)
    batch = s.batch()
    open_x, read_x = R.syscall_evt(2, 1), R.syscall_evt(0, 1)
    sel, n = scan.Scanner(mask(open_x), mask(read_x)).scan(batch)
    offs = offsets(batch)
    assert n == 6
    assert triples(sel) == [(1, offs[1], SEL_STATE), (3, offs[3], M)]


# --- the thread check ----------------------------------------------------------------------------
def test_tid_check_narrows_matches_and_caches() -> None:
    check = Checker({1: True, 2: False})
    sc = scan.Scanner(mask(), mask(E_A), check)
    batch = b"".join(rec(E_A, tid) for tid in (1, 2, 1, 2, 1))
    sel, _ = sc.scan(batch)
    assert [(t[0], t[2]) for t in triples(sel)] == [(0, M), (2, M), (4, M)]
    assert check.asked == [1, 2]  # each answer asked once
    sc.scan(batch)
    assert check.asked == [1, 2]  # and kept across batches
    sc.reset_tids()
    sc.scan(batch)
    assert check.asked == [1, 2, 1, 2]


def test_tid_check_unknown_thread_is_selected_inexact_and_asked_again() -> None:
    check = Checker({})  # None: thread not known yet
    sc = scan.Scanner(mask(), mask(E_A), check)
    sel, _ = sc.scan(rec(E_A, 5) + rec(E_A, 5))
    assert [t[2] for t in triples(sel)] == [SEL_MATCH, SEL_MATCH]  # Python's filter must decide
    assert check.asked == [5, 5]
    check.answers[5] = False
    sel, _ = sc.scan(rec(E_A, 5))
    assert list(sel) == []


def test_tid_check_only_for_matching_events() -> None:
    check = Checker({1: False})
    sc = scan.Scanner(mask(E_S), mask(E_A), check)
    sel, _ = sc.scan(rec(E_B, 1) + rec(E_S, 1))
    assert check.asked == []
    assert [t[2] for t in triples(sel)] == [SEL_STATE]


def test_state_event_makes_thread_dirty_for_rest_of_batch() -> None:
    """After a state change (an exec may rename it), a thread is not narrowed in that batch, and its
    cached answer is dropped: the next batch asks again."""
    check = Checker({1: False, 2: False})
    sc = scan.Scanner(mask(E_S), mask(E_A, E_S), check)
    batch = rec(E_A, 1) + rec(E_A, 2) + rec(E_S, 1) + rec(E_A, 1) + rec(E_A, 2)
    sel, _ = sc.scan(batch)
    assert [(t[0], t[2]) for t in triples(sel)] == [(2, SEL_STATE | SEL_MATCH), (3, SEL_MATCH)]
    assert sorted(check.asked) == [1, 2]
    sel, _ = sc.scan(rec(E_A, 1) + rec(E_A, 2))
    assert list(sel) == []
    assert sorted(check.asked) == [1, 1, 2]  # 1 asked again (its answer was dropped), 2 still cached


def test_check_attributes_settable() -> None:
    sc = scan.Scanner(mask(), mask(E_A))
    sc.tid_check = Checker({1: False})
    sel, _ = sc.scan(rec(E_A, 1))
    assert list(sel) == []


# --- the fd check --------------------------------------------------------------------------------
def regs(**by_evt: int) -> bytes:
    r = bytearray([FD_NONE]) * R.EVT_MAX
    for k, v in by_evt.items():
        r[int(k[1:])] = v
    return bytes(r)


def fdrec(evt: int, pid: int, args: tuple[int, ...] = (), ret: int = 0) -> bytes:
    return R.pack_record(0, pid, pid, evt, ret=ret, args=args)


class FdChecker:
    def __init__(self, answers: dict[tuple[int, int], bool | None]) -> None:
        self.answers = answers
        self.asked: list[tuple[int, int]] = []

    def __call__(self, pid: int, fd: int) -> bool | None:
        self.asked.append((pid, fd))
        return self.answers.get((pid, fd))


@pytest.mark.parametrize(
    ("reg", "args", "answers", "expected_why", "asked"),
    [
        (0, (3,), {(9, 3): True}, M, [(9, 3)]),
        (0, (3,), {(9, 3): False}, 0, [(9, 3)]),
        (0, (3,), {}, SEL_MATCH, [(9, 3)]),  # unknown fd: selected, Python decides
        (2, (1, 2, 7), {(9, 7): True}, M, [(9, 7)]),  # the register fd_regs names
        (4, (0, 0, 0, 0, 5), {(9, 5): False}, 0, [(9, 5)]),
        # The low 32 bits as a signed int, as the kernel reads an int argument.
        (0, (0xFFFFFFFF_FFFFFF9C,), {(9, -100): True}, M, [(9, -100)]),
        (0, (0x1_00000003,), {(9, 3): True}, M, [(9, 3)]),
        (FD_RET, (), {(9, 3): False}, SEL_MATCH, []),  # a new fd: known only after the state sees it
        (FD_NONE, (3,), {(9, 3): True}, 0, []),  # no fd: an fd filter cannot match
    ],
)
def test_fd_check(reg: int, args: tuple[int, ...], answers: dict[tuple[int, int], bool | None],
                  expected_why: int, asked: list[tuple[int, int]]) -> None:
    check = FdChecker(answers)
    sc = scan.Scanner(mask(), mask(E_A), None, check, regs(e10=reg))
    sel, _ = sc.scan(fdrec(E_A, 9, args, ret=3))
    assert [t[2] for t in triples(sel)] == ([expected_why] if expected_why else [])
    assert check.asked == asked


def test_fd_check_caches_per_process_and_fd() -> None:
    check = FdChecker({(1, 3): True, (1, 4): False, (2, 3): False})
    sc = scan.Scanner(mask(E_S), mask(E_A), None, check, regs(e10=0))
    batch = b"".join(fdrec(E_A, pid, (fd,)) for pid, fd in [(1, 3), (1, 4), (2, 3), (1, 3), (2, 3), (1, 4)])
    sel, _ = sc.scan(batch)
    assert [t[0] for t in triples(sel)] == [0, 3]
    assert check.asked == [(1, 3), (1, 4), (2, 3)]
    # A state change in process 1 (an open, a close...) drops its answers for the rest of the batch
    # and for later ones; process 2 keeps its own.
    sel, _ = sc.scan(fdrec(E_S, 1) + fdrec(E_A, 1, (4,)) + fdrec(E_A, 2, (3,)))
    assert [(t[0], t[2]) for t in triples(sel)] == [(0, SEL_STATE), (1, SEL_MATCH)]
    assert check.asked == [(1, 3), (1, 4), (2, 3)]
    sc.scan(fdrec(E_A, 1, (4,)))
    assert check.asked[-1] == (1, 4)
    sc.reset_tids()
    sc.scan(fdrec(E_A, 2, (3,)))
    assert check.asked[-1] == (2, 3)


def test_tid_and_fd_checks_combine() -> None:
    """Both must pass; a thread that fails is not asked about its fd; exact only if both are sure."""
    tcheck = Checker({1: True, 2: False, 3: None})
    fcheck = FdChecker({(1, 3): True, (3, 3): True, (1, 4): None})
    sc = scan.Scanner(mask(), mask(E_A), tcheck, fcheck, regs(e10=0))
    batch = fdrec(E_A, 1, (3,)) + fdrec(E_A, 2, (3,)) + fdrec(E_A, 3, (3,)) + fdrec(E_A, 1, (4,))
    sel, _ = sc.scan(batch)
    assert [(t[0], t[2]) for t in triples(sel)] == [(0, M), (2, SEL_MATCH), (3, SEL_MATCH)]
    assert (2, 3) not in fcheck.asked


@pytest.mark.parametrize("n", [0, 1, E_A, R.EVT_MAX - 1])
def test_fd_regs_shorter_than_match_mask_refused(n: int) -> None:
    with pytest.raises(ValueError):
        scan.Scanner(mask(), mask(E_A), None, FdChecker({}), bytes([FD_NONE]) * n)


# --- bad records -----------------------------------------------------------------------------------
def _with_len(r: bytes, n: int) -> bytes:
    return r[:R.OFF_LEN] + struct.pack("<I", n) + r[R.OFF_LEN + 4:]


GOOD = rec(E_A, payload=b"0123456789")  # 104 bytes
assert len(GOOD) == 104


@pytest.mark.parametrize(
    ("batch", "offset"),
    [
        (GOOD[:50], 0),  # shorter than a record head
        (GOOD + GOOD[:87], len(GOOD)),  # cut inside the second record's fixed part
        (GOOD + GOOD[:96], len(GOOD)),  # the second record's payload cut
        (_with_len(GOOD, 0), 0),
        (_with_len(GOOD, R.REC_FIXED - 8), 0),  # shorter than the fixed part
        (GOOD + _with_len(GOOD, 97), len(GOOD)),  # not 8-byte aligned
        (GOOD + _with_len(GOOD, 112), len(GOOD)),  # past the batch's end
        (GOOD * 2 + _with_len(GOOD, 0xFFFFFFF8), 2 * len(GOOD)),  # huge
    ],
)
def test_bad_lengths_raise_batch_error_at_offset(batch: bytes, offset: int) -> None:
    sc = scan.Scanner(mask(), mask(E_A))
    with pytest.raises(scan.BatchError) as ei:
        sc.scan(batch)
    assert ei.value.offset == offset
    assert str(offset) in str(ei.value)
    assert isinstance(ei.value, ValueError)


def test_scanner_usable_after_batch_error() -> None:
    sc = scan.Scanner(mask(), mask(E_A))
    with pytest.raises(scan.BatchError):
        sc.scan(GOOD[:10])
    sel, n = sc.scan(GOOD)
    assert (triples(sel), n) == ([(0, 0, M)], 1)


def test_accepts_bytearray_and_memoryview() -> None:
    batch = GOOD + rec(E_B)
    for buf in (bytearray(batch), memoryview(batch)):
        sel, n = scan.Scanner(mask(), mask(E_A)).scan(buf)  # type: ignore[arg-type]
        assert (triples(sel), n) == ([(0, 0, M)], 2)


# --- the two engines side by side ------------------------------------------------------------------
def _engines() -> tuple[ModuleType, ModuleType]:
    pure = importlib.import_module("tracer._pure.scan")
    try:
        ext = importlib.import_module("tracer._ext.scan")
    except ImportError:
        if os.environ.get("KTRACE_PUREPYTHON") != "1":
            raise  # a Cython run must have its engine
        pytest.skip("the Cython extension is not built (allowed with KTRACE_PUREPYTHON=1 only)")
    return pure, ext


EVTS = [0, 1, 2, 3, E_A, E_B, E_S, R.EVT_PROCEXIT, R.EVT_THREADINFO, R.EVT_MAX - 1, R.EVT_MAX, 0xFFFF]
TIDS = [1, 2, 3, 0, 2**32 - 2]
FDS = [0, 3, 4, -1, -100]

record_st = st.tuples(
    st.integers(0, 2**64 - 1),  # ts
    st.sampled_from(TIDS),  # tid (pid = tid % 3: a few processes of several threads)
    st.sampled_from(EVTS),
    st.lists(st.sampled_from(FDS) | st.integers(0, 2**64 - 1), min_size=6, max_size=6),  # registers
    st.binary(max_size=24),  # payload
)
batch_st = st.lists(record_st, max_size=40)
mask_st = st.builds(lambda on, n: bytes(1 if i in on else 0 for i in range(n)),
                    st.sets(st.sampled_from(EVTS), max_size=6), st.sampled_from([0, 16, R.EVT_MAX, 0x10000]))
answer_st = st.sampled_from([True, False, None])
tid_answers_st = st.one_of(st.none(), st.dictionaries(st.sampled_from(TIDS), answer_st))
fd_answers_st = st.one_of(st.none(), st.dictionaries(st.tuples(st.sampled_from([0, 1, 2]), st.sampled_from(FDS)),
                                                     answer_st))
regs_st = st.dictionaries(st.sampled_from([e for e in EVTS if e < 0x10000]),
                          st.sampled_from([0, 1, 2, 5, FD_RET, FD_NONE]))


def _build(recs: list[tuple[int, int, int, list[int], bytes]]) -> bytes:
    return b"".join(R.pack_record(ts, tid, tid % 3, evt, args=tuple(a), seg0=p) for ts, tid, evt, a, p in recs)


def _outcome(mod: ModuleType, batches: list[bytes], smask: bytes, mmask: bytes,
             tids: dict[int, bool | None] | None, fds: dict[tuple[int, int], bool | None] | None,
             fd_regs: dict[int, int], reset_after: int) -> list[Any]:
    tcheck = Checker(dict(tids)) if tids is not None else None
    fcheck = FdChecker(dict(fds)) if fds is not None else None
    r = bytearray([FD_NONE]) * max(len(mmask), 0x10000)
    for e, v in fd_regs.items():
        r[e] = v
    sc = mod.Scanner(smask, mmask, tcheck, fcheck, bytes(r))
    out: list[Any] = []
    for i, b in enumerate(batches):
        try:
            sel, n = sc.scan(b)
            out.append(("ok", list(sel), n, sc.first_ts, sc.last_ts))
        except mod.BatchError as e:
            out.append(("error", e.offset))
        if i == reset_after:
            sc.reset_tids()
    out.append(tcheck.asked if tcheck is not None else None)
    out.append(fcheck.asked if fcheck is not None else None)
    return out


@settings(max_examples=300, deadline=None)
@given(batches=st.lists(batch_st, min_size=1, max_size=3), smask=mask_st, mmask=mask_st, tids=tid_answers_st,
       fds=fd_answers_st, fd_regs=regs_st, reset_after=st.integers(-1, 2))
def test_engines_agree_on_random_batches(batches: list[list[tuple[int, int, int, list[int], bytes]]],
                                         smask: bytes, mmask: bytes, tids: dict[int, bool | None] | None,
                                         fds: dict[tuple[int, int], bool | None] | None, fd_regs: dict[int, int],
                                         reset_after: int) -> None:
    pure, ext = _engines()
    raw = [_build(b) for b in batches]
    assert _outcome(pure, raw, smask, mmask, tids, fds, fd_regs, reset_after) == \
        _outcome(ext, raw, smask, mmask, tids, fds, fd_regs, reset_after)


@settings(max_examples=300, deadline=None)
@given(recs=batch_st, cut=st.integers(0, 4000), junk=st.binary(min_size=1, max_size=8),
       smask=mask_st, mmask=mask_st)
def test_engines_agree_on_damaged_batches(recs: list[tuple[int, int, int, list[int], bytes]], cut: int,
                                          junk: bytes, smask: bytes, mmask: bytes) -> None:
    """Overwrite a few bytes anywhere (length fields included) or cut the batch: same verdict."""
    pure, ext = _engines()
    b = bytearray(_build(recs))
    if b:
        pos = cut % len(b)
        b[pos:pos + len(junk)] = junk
    damaged = [bytes(b), bytes(b[: cut % (len(b) + 1)])]
    assert _outcome(pure, damaged, smask, mmask, None, None, {}, -1) == \
        _outcome(ext, damaged, smask, mmask, None, None, {}, -1)


def test_engines_agree_on_real_masks() -> None:
    """The pipeline's own masks and fd registers over a synthetic stream of many syscalls."""
    from tracer.pipeline import STATE_EVENTS, _mask
    from tracer.schema.events import FD_REGS

    pure, ext = _engines()
    s = Synth(pid=50)
    for i in range(30):
        s.open(f"/tmp/f{i}", 3 + i % 4).read(3 + i % 4, b"x" * i).write(1, b"y").close(3 + i % 4)
        s.on(51, 50).socket(9).connect(9, ("10.0.0.1", 80)).sendto(9, b"q", ("10.0.0.2", 53))
    batch = s.batch()
    read_x = R.syscall_evt(0, 1)
    answers = {(50, fd): fd % 2 == 0 for fd in range(10)}
    for smask, mmask in [(_mask(STATE_EVENTS), _mask(None)), (_mask(STATE_EVENTS), _mask([read_x]))]:
        outs = []
        for mod in (pure, ext):
            fcheck = FdChecker(dict(answers))
            sc = mod.Scanner(smask, mmask, Checker({50: True, 51: False}), fcheck, FD_REGS)
            sel, n = sc.scan(batch)
            outs.append((list(sel), n, fcheck.asked))
        assert outs[0] == outs[1]


def test_engines_agree_on_tid_all_ones() -> None:
    """tid 0xFFFFFFFF is a thread like any other: the thread check is asked about it."""
    pure, ext = _engines()
    batch = R.pack_record(1, 0xFFFFFFFF, 1, E_A)
    answers: dict[int, bool | None] = {0xFFFFFFFF: True}
    assert _outcome(pure, [batch], mask(), mask(E_A), answers, None, {}, -1) == \
        _outcome(ext, [batch], mask(), mask(E_A), answers, None, {}, -1)


# --- the fast path: fd events applied by the scanner itself ------------------------------------------
class FdTables:
    """A stand-in state: the fd tables and what ``open_raw`` was told."""

    def __init__(self) -> None:
        self.fds: dict[int, dict[int, Any]] = {50: {3: "old", 4: "keep"}}
        self.opened: list[tuple[int, int, int, bytes, int, int | None]] = []

    def open_raw(self, pid: int, tid: int, num: int, path: bytes, flags: int, dirfd: int | None) -> None:
        self.opened.append((pid, tid, num, path, flags, dirfd))
        self.fds.setdefault(pid, {})[num] = path

    def dup_raw(self, pid: int, old: int, new: int, cloexec: bool) -> None:
        self.opened.append((pid, -1, new, b"dup", int(cloexec), old))
        table = self.fds.get(pid)
        if table is not None and old in table:
            table[new] = table[old]


def _fast_scanner(mod: ModuleType, mmask: bytes, st_: FdTables, fcheck: Any = None) -> Any:
    from tracer.pipeline import FAST_MASK, STATE_EVENTS, _mask
    from tracer.schema.events import FD_REGS

    return mod.Scanner(_mask(STATE_EVENTS), mmask, None, fcheck, FD_REGS, FAST_MASK, st_)


def test_fast_path_applies_fd_events_without_selecting_them() -> None:
    s = Synth(pid=50).close(3).open("/etc/hosts", 5, os.O_RDONLY | os.O_CLOEXEC, dirfd=-100)
    s.open("rel", 6).open("/nope", -2, dirfd=-100).close(9, ret=-9)
    s.syscall("openat2", (7,), ret=8, seg0=b"x", seg1=(0o200000).to_bytes(8, "little") + bytes(16))
    batch = s.batch()
    for mod in _engines():
        st_ = FdTables()
        sc = _fast_scanner(mod, mask(), st_)
        sel, n = sc.scan(batch)
        assert list(sel) == [], mod
        assert st_.opened == [(50, 50, 5, b"/etc/hosts", os.O_RDONLY | os.O_CLOEXEC, -100),
                              (50, 50, 6, b"rel", os.O_RDONLY, None), (50, 50, 8, b"x", 0o200000, 7)]
        assert st_.fds[50] == {4: "keep", 5: b"/etc/hosts", 6: b"rel", 8: b"x"}
        assert sc.fast_applied == 6  # failed calls included: they change nothing


def test_fast_path_waits_behind_a_candidate_of_the_same_process() -> None:
    """A filter candidate's fd name is read after the scan: the process's later fd events wait
    (and are applied by Scanner.apply, in order); after a clone, every fd event waits."""
    read_x = R.syscall_evt(0, 1)
    s = Synth(pid=50).read(3, b"x").close(3).open("/a", 3)
    s.on(60).close(7).syscall("getpid", ret=60)  # (an fd event followed by a state record of its thread goes slow)
    s.on(60).clone(61).on(60).close(8)
    batch = s.batch()
    F = SEL_STATE | R.SEL_FAST
    for mod in _engines():
        st_ = FdTables()
        st_.fds[60] = {7: "other", 8: "eight"}
        sc = _fast_scanner(mod, mask(read_x), st_)
        sel, _ = sc.scan(batch)
        kinds = [(Event(batch, off, 0, State()).type, why) for _, off, why in triples(sel)]
        assert kinds == [("read", M), ("close", F), ("open", F), ("clone", SEL_STATE), ("clone", SEL_STATE),
                         ("clone", SEL_STATE), ("close", F)], mod
        assert st_.fds == {50: {3: "old", 4: "keep"}, 60: {8: "eight"}}
        for _, off, why in triples(sel):
            if why == F:
                sc.apply(batch, off)
        assert st_.fds == {50: {3: b"/a", 4: "keep"}, 60: {}}
        with pytest.raises(ValueError):
            sc.apply(batch, triples(sel)[0][1])  # a read is no fast-path record


def test_fd_event_makes_only_its_fd_unsure() -> None:
    """fd_check answers for other fds of the process stay exact after a deferred close."""
    read_x = R.syscall_evt(0, 1)
    s = Synth(pid=50).read(4, b"a").close(3).read(4, b"b").read(3, b"c")
    batch = s.batch()
    for mod in _engines():
        st_ = FdTables()
        fcheck = FdChecker({(50, 4): True, (50, 3): True})
        sc = _fast_scanner(mod, mask(read_x), st_, fcheck)
        sel, _ = sc.scan(batch)
        assert [why for _, _, why in triples(sel)] == [M, SEL_STATE | R.SEL_FAST, M, SEL_MATCH], mod


@settings(max_examples=200, deadline=None)
@given(batches=st.lists(batch_st, min_size=1, max_size=3), mmask=mask_st, fds=fd_answers_st, fd_regs=regs_st)
def test_engines_agree_on_the_fast_path(batches: list[list[tuple[int, int, int, list[int], bytes]]],
                                         mmask: bytes, fds: dict[tuple[int, int], bool | None] | None,
                                         fd_regs: dict[int, int]) -> None:
    from tracer.pipeline import FAST_MASK

    pure, ext = _engines()
    fast = bytearray(FAST_MASK)
    for e, code in zip((E_A, E_B, E_S), (1, 3, 4), strict=True):
        fast[e] = code  # the random events include fast ones of every kind
    outs = []
    for mod in (pure, ext):
        st_ = FdTables()
        fcheck = FdChecker(dict(fds)) if fds is not None else None
        r = bytearray([FD_NONE]) * max(len(mmask), 0x10000)
        for e, v in fd_regs.items():
            r[e] = v
        sc = mod.Scanner(mask(E_A, E_B, E_S), mmask, None, fcheck, bytes(r), bytes(fast), st_)
        res: list[Any] = []
        for b in batches:
            sel, n = sc.scan(_build(b))
            res.append((list(sel), n))
        outs.append((res, st_.fds, st_.opened, sc.fast_applied, fcheck.asked if fcheck else None))
    assert outs[0] == outs[1]


def test_dups_are_applied_at_once_unless_their_process_waits() -> None:
    """A dup copies its source fd at once; behind a filter candidate of its process (and the
    deferred close of its source) it waits its turn like the other fd events."""
    read_x = R.syscall_evt(0, 1)
    s = Synth(pid=50).dup2(4, 7).syscall("dup3", (4, 8, os.O_CLOEXEC), ret=8)
    s.on(60).read(3, b"x").close(3).dup2(3, 9)
    batch = s.batch()
    F = SEL_STATE | R.SEL_FAST
    for mod in _engines():
        st_ = FdTables()
        st_.fds[60] = {3: "three"}
        sc = _fast_scanner(mod, mask(read_x), st_)
        sel, _ = sc.scan(batch)
        assert [(Event(batch, off, 0, State()).type, why) for _, off, why in triples(sel)] == [
            ("read", M), ("close", F), ("dup2", F)], mod
        assert st_.fds[50] == {3: "old", 4: "keep", 7: "keep", 8: "keep"}
        assert [o[4] for o in st_.opened] == [0, 1]  # dup3's O_CLOEXEC
        for _, off, why in triples(sel):
            if why == F:
                sc.apply(batch, off)
        assert st_.fds[60] == {}  # closed, then a dup of nothing: no fd 9


def test_an_enter_holds_back_no_fd_event() -> None:
    """A clone's enter is only remembered for its exit: the fd events after it are applied at once
    (its exit, which makes a thread, still holds back every one after it)."""
    s = Synth(pid=50).syscall("clone", (0x11,), exit=False).close(3).open("/b", 5).syscall("getpid", ret=50)
    s.syscall("clone", (0x11,), ret=61, enter=False).close(4)
    batch = s.batch()
    for mod in _engines():
        st_ = FdTables()
        sc = _fast_scanner(mod, mask(), st_, None)
        sel, _ = sc.scan(batch)
        assert [(Event(batch, off, 0, State()).type, why) for _, off, why in triples(sel)] == [
            ("clone", SEL_STATE), ("clone", SEL_STATE), ("close", SEL_STATE | R.SEL_FAST)], mod
        assert st_.fds[50] == {4: "keep", 5: b"/b"}


def test_a_waiting_fd_event_needing_no_state_is_selected_twice() -> None:
    """A close that is also an exact match counted without the state (stateless_mask), behind a
    read of the same fd: its state part waits its turn (SEL_FAST), its match goes on its own (the
    consumer counts it without an Event)."""
    read_x, close_x = R.syscall_evt(0, 1), R.syscall_evt(3, 1)
    s = Synth(pid=50).read(3, b"x").close(3).close(4)
    batch = s.batch()
    offs = offsets(batch)
    F = SEL_STATE | R.SEL_FAST
    for mod in _engines():
        st_ = FdTables()
        sc = _fast_scanner(mod, mask(read_x, close_x), st_)
        sc.exact_fd_only = True
        sc.stateless_mask = mask(close_x)
        sel, _ = sc.scan(batch)
        # (each call is an enter and an exit record: the exits are 1, 3 and 5)
        # (and a deferred fd event holds back its process's later ones: close(4) too)
        assert triples(sel) == [(1, offs[1], M), (3, offs[3], F), (3, offs[3], M), (5, offs[5], F),
                                (5, offs[5], M)], mod
        assert st_.fds[50] == {3: "old", 4: "keep"}
        sc.apply(batch, offs[3])
        sc.apply(batch, offs[5])
        assert st_.fds[50] == {}


def test_an_open_closed_unseen_never_reaches_python() -> None:
    """An open kept pending is forgotten with its close (the old entry goes, as the close says);
    anything that may look (a callback, a selected record, the batch's end) applies it first."""
    read_x = R.syscall_evt(0, 1)
    s = Synth(pid=50).open("/tmp/a", 3, dirfd=-100).close(3)  # nobody looked: no open_raw
    s.open("/tmp/b", 5, dirfd=-100).read(5, b"x")  # the read's fd check sees /tmp/b
    s.on(60).open("/tmp/c", 6, dirfd=-100)  # the batch's end applies it
    batch = s.batch()
    for mod in _engines():
        st_ = FdTables()
        asked: list[Any] = []

        def check(pid: int, fd: int, st_: FdTables = st_, asked: list[Any] = asked) -> bool:
            asked.append((pid, fd, dict(st_.fds[pid])))
            return True

        sc = _fast_scanner(mod, mask(read_x), st_, check)
        sel, _ = sc.scan(batch)
        assert [o[3] for o in st_.opened] == [b"/tmp/b", b"/tmp/c"], mod
        assert asked == [(50, 5, {4: "keep", 5: b"/tmp/b"})]
        assert st_.fds == {50: {4: "keep", 5: b"/tmp/b"}, 60: {6: b"/tmp/c"}}
        assert [why for _, _, why in triples(sel)] == [M]


def test_run_constants_follow_the_record_layout() -> None:
    """Both scanners read records and write runs as tracer/schema/record.py says: a run's triple
    decodes with its SEL_RUN and shifts, and RF_HIDDEN (at its OFF_FLAGS) keeps a record out of runs."""
    recs = [R.pack_record(1 + i, 7, 7, E_A, seg0=b"x" * 9 * i) for i in range(3)]
    recs += [R.pack_record(4, 7, 7, E_A, flags=R.RF_HIDDEN), R.pack_record(5, 7, 7, E_A, seg0=b"y")]
    offs = [sum(len(r) for r in recs[:i]) for i in range(len(recs))]
    for mod in _engines():
        sc = mod.Scanner(mask(), mask(E_A))
        sc.runs_below = R.EVT_BASE_OTHER
        sel, n = sc.scan(b"".join(recs))
        got: list[tuple[Any, ...]] = []
        for last, first, why in triples(sel):
            if why & R.SEL_RUN:
                got.append(("run", first, last, (why >> R.RUN_COUNT_SHIFT) & R.RUN_COUNT_MASK,
                            why >> R.RUN_BYTES_SHIFT))
            else:
                got.append(("one", first, last, why))
        assert n == 5
        assert got == [("run", offs[0], offs[2], 3, offs[3]), ("one", offs[3], 3, M),
                       ("run", offs[4], offs[4], 1, len(recs[4]))], mod


FAST_EVTS = [R.syscall_evt(n, 1) for n in (3, 2, 257, 437, 85, 33, 292)]  # close, open, openat, openat2, creat,
#                                                                         dup2, dup3 exits
FAST_RUN_EVTS = [*FAST_EVTS, R.syscall_evt(0, 1), R.syscall_evt(56, 1), R.syscall_evt(56, 0), R.EVT_THREADINFO,
                 R.EVT_FDINFO, E_A]  # and a read, a clone, internal records, a plain event
fast_record_st = st.tuples(
    st.sampled_from([1, 1, 1, 2, 3]),  # tid (pid = 50 + tid % 2): mostly one, so runs form
    st.sampled_from(FAST_RUN_EVTS),
    st.sampled_from([0, 3, 4, 5, -2, -100]),  # ret
    st.lists(st.sampled_from([3, 4, 5, -100, 0o101]), min_size=6, max_size=6),  # registers
    st.sampled_from([b"", b"/tmp/x", b"/tmp/y", b"rel"]),
    st.sampled_from([b"", (0o200000).to_bytes(8, "little")]),
    st.sampled_from([0, 0, R.RF_HIDDEN]),
)


@settings(max_examples=300, deadline=None)
@given(recs=st.lists(fast_record_st, max_size=30), matched=st.sets(st.sampled_from(FAST_RUN_EVTS), max_size=4),
       tids=tid_answers_st, fds=fd_answers_st, runs=st.booleans(), fd_only=st.booleans(), cut=st.integers(0, 30),
       stateless=st.sets(st.sampled_from(FAST_RUN_EVTS), max_size=3))
def test_engines_agree_on_the_fast_path_and_runs(recs: list[Any], matched: set[int],
                                                 tids: dict[int, bool | None] | None,
                                                 fds: dict[tuple[int, int], bool | None] | None, runs: bool,
                                                 fd_only: bool, cut: int, stateless: set[int]) -> None:
    """Fd events applied by the scanner, pending opens, runs and what waits for what: the same
    selection, the same state changes, and the checks asked the same questions of the same state."""
    from tracer.pipeline import FAST_MASK, STATE_EVENTS, _mask
    from tracer.schema.events import FD_REGS

    raw = b"".join(R.pack_record(i, tid, 50 + tid % 2, evt, ret=ret, args=tuple(a), seg0=s0, seg1=s1, flags=f)
                   for i, (tid, evt, ret, a, s0, s1, f) in enumerate(recs))
    batches = [raw[:R.padded(cut * 8)], raw] if cut else [raw]
    outs = []
    for mod in _engines():
        st_ = FdTables()
        asked: list[Any] = []

        def tcheck(tid: int, asked: list[Any] = asked, st_: FdTables = st_) -> bool | None:
            asked.append(("tid", tid, {p: dict(t) for p, t in st_.fds.items()}))
            return tids.get(tid) if tids is not None else None

        def fcheck(pid: int, fd: int, asked: list[Any] = asked, st_: FdTables = st_) -> bool | None:
            asked.append(("fd", pid, fd, {p: dict(t) for p, t in st_.fds.items()}))
            return fds.get((pid - 50, fd)) if fds is not None else None

        sc = mod.Scanner(_mask(STATE_EVENTS), _mask(matched), tcheck if tids is not None else None,
                         fcheck if fds is not None else None, FD_REGS, FAST_MASK, st_)
        sc.runs_below = R.EVT_BASE_OTHER if runs else 0
        sc.exact_fd_only = fd_only
        sc.stateless_mask = _mask(stateless)
        out: list[Any] = []
        for b in batches:
            try:
                sel, n = sc.scan(b)
                out.append(("ok", list(sel), n))
            except mod.BatchError as e:
                out.append(("error", e.offset))
            for _idx, off, why in triples(sel) if out[-1][0] == "ok" else []:
                if why == R.SEL_STATE | R.SEL_FAST:
                    sc.apply(b, off)
        outs.append((out, sc.fast_applied, st_.opened, st_.fds, asked))
    assert outs[0] == outs[1]
