"""One path after the source, live or offline: scan a batch, keep the state current, filter, and
hand matching events to the output or a chisel; produce what a capture file keeps.

Live mode adds one thing: facts from /proc and the runtime (thread info after exec, socket tuples
after accept/connect, CPU samples, container metadata) become internal records inserted into the
stream right after the event that needed them. A capture keeps them, so a replay rebuilds the same
state and prints the same lines.
"""

from __future__ import annotations

import struct
from array import array
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import msgpack

from . import engine as _engine
from .engine import scan as _scan
from .event import Event
from .schema import record as R
from .schema.events import FD_REGS, INTERNAL_EVENTS, event_ids
from .schema.record import (
    RUN_BYTES_SHIFT,
    RUN_COUNT_MASK,
    RUN_COUNT_SHIFT,
    SEL_EXACT,
    SEL_FAST,
    SEL_MATCH,
    SEL_RUN,
    SEL_STATE,
)
from .state.state import RAW_EVENTS, State
from .state.tables import Thread

# A consumer of runs of exact matches (Pipeline's ``on_records``): (batch, selection, first entry,
# the scanner's fast apply or None) -> (the entry it stopped at, the matches it took).
RecordRuns = Callable[[bytes, Any, int, Callable[[bytes, int], None] | None], tuple[int, int]]


class Predicate(Protocol):
    def match(self, ev: Event) -> bool: ...


class SpanRenderer(Protocol):
    """Prints matching records straight from the batch (tracer.engine.render.Renderer)."""

    def render_records(self, batch: bytes, sel: array[int], i: int, num_base: int, shown: bytes,
                       exact_only: bool) -> tuple[int, int]: ...

    def set_fast(self, apply: Callable[[bytes, int], None] | None, mask: bytes) -> None: ...

    def set_lane(self, lane: Any, followers: bytes) -> None: ...


class Enricher(Protocol):
    """Live-only: records to insert after an event (already applied to the state)."""

    watched: frozenset[int]  # the events ``after`` may add records after

    def after(self, ev: Event) -> list[bytes]: ...

    def pending(self) -> list[bytes]: ...


@dataclass
class Selection:
    """Which events may match, as the scanner sees them: event ids, a thread check, an fd check.

    ``exact`` says these checks are the whole filter: an event they definitely pass needs no
    second look by the Python predicate.
    """

    evts: frozenset[int] | None = None  # None = every event id
    tid_check: Callable[[int], bool | None] | None = None
    fd_check: Callable[[int, int], bool | None] | None = None
    exact: bool = False


def state_events() -> frozenset[int]:
    """Event ids the state must see."""
    from .state.state import State as _S

    out = set(_S()._handlers)
    for name in ("execve", "execveat", "connect", "clone", "clone3", "fork", "vfork"):
        out.update(event_ids(name)[:1])  # their enters carry what the exit needs (or the child's)
    # prctl(PR_SET_NAME) renames the thread: its exit carries the new comm.
    out.update(event_ids("prctl")[1:])
    return frozenset(out)


STATE_EVENTS = state_events()


def fast_mask() -> bytes:
    """The scanner's fast-path code for each event id (0: none): the exits of close, the opens
    and the dups. They never reach Python's Pipeline loop, so live mode must have nothing to add
    after them (LiveEnricher.after: exec, clone, socket and bind events only)."""
    m = bytearray(R.EVT_MAX)
    codes = {"close": R.FAST_CLOSE, "open": R.FAST_OPEN_A1, "openat": R.FAST_OPEN_A2,
             "openat2": R.FAST_OPEN_SEG1, "creat": R.FAST_CREAT, "dup": R.FAST_DUP, "dup2": R.FAST_DUP,
             "dup3": R.FAST_DUP3}
    for name, code in codes.items():
        m[event_ids(name)[1]] = code
    return bytes(m)


FAST_MASK = fast_mask()


def _mask(evts: Iterable[int] | None) -> bytes:
    m = bytearray(R.EVT_MAX)
    if evts is None:
        m[:] = b"\x01" * R.EVT_MAX
    else:
        for e in evts:
            if 0 <= e < R.EVT_MAX:
                m[e] = 1
    return bytes(m)


class Pipeline:
    """Feeds batches of records through state, filter and output.

    ``on_event`` receives every event that passes the filter (internal events only with
    ``show_internal``, or those in ``admit_internal``: a chisel's filter that names them). ``feed``
    returns the bytes a capture should keep for this batch: everything (with inserted records) when
    unfiltered; with a filter, the matching records, plus the
    state-changing ones flagged hidden when ``fatfile`` (-F).
    """

    def __init__(self, state: State, *, predicate: Predicate | None = None,
                 selection: Selection | None = None, on_event: Callable[[Event], None] | None = None,
                 show_internal: bool = False, fatfile: bool = False, latency: bool = False,
                 enricher: Enricher | None = None, keep: bool = False,
                 admit_internal: frozenset[int] = frozenset(),
                 on_record: Callable[[bytes, int], bool | None] | None = None,
                 on_records: RecordRuns | None = None,
                 renderer: SpanRenderer | None = None) -> None:
        self.state = state
        self.admit_internal = admit_internal
        self.predicate = predicate
        self.on_event = on_event
        # Takes the records an exact selection matched, as records (no Event): a table chisel's
        # counter (TableChisel.record_counter), which ignores what it does not count, or a view's
        # (ViewAggregator.record_counter), which returns False for a record it wants as an Event.
        self.on_record = on_record
        # Takes a run of them, in C: ``on_records(batch, selection, i, apply)`` consumes the exact
        # matches from entry i on, and the fd events left to their turn with ``apply`` (None: it
        # stops at them), and returns the first entry it left (to on_record, when i) and the
        # matches it took.
        self.on_records = on_records if on_record is not None else None
        self.show_internal = show_internal
        self.fatfile = fatfile
        self.enricher = enricher
        self.keep = keep
        sel = selection or Selection()
        match = set(sel.evts) if sel.evts is not None else None
        if match is not None and latency:
            # evt.latency pairs exits with their enters: the enters must reach the state.
            match.update(e - 1 for e in list(match) if e < R.EVT_BASE_OTHER and e & 1)
        if on_event is None and predicate is None:
            match = set()
        # The scanner applies the commonest fd events itself, unless every state event must reach
        # Python: -F keeps them all in the capture. (With evt.latency too: the enter of an exit
        # that may match is selected with it, and such an exit is never applied in C, so what
        # pairs an exit with its enter sees every pair it needs.)
        fast = None if fatfile else state
        self.scanner = _scan.Scanner(_mask(STATE_EVENTS), _mask(match), sel.tid_check, sel.fd_check, FD_REGS,
                                     FAST_MASK, fast)
        self.scanner.exact_fd_only = on_record is not None and sel.exact
        self.exact = sel.exact
        # Exact matches nobody shows, only counted (-q) or copied into a filtered capture (-w
        # FILTER): the scanner hands them over in runs, never one by one.
        if sel.exact and on_event is None and on_record is None and not latency and (predicate is not None or not keep):
            self.scanner.runs_below = R.EVT_BASE_OTHER
        state.on_thread_change = self._thread_changed
        self.count = 0  # records seen (evt.num of the last one)
        self.matched = 0
        self.latency = latency
        self.kept: tuple[int, int, int] = (0, 0, 0)  # records, first ts, last ts of feed()'s result
        self._described: dict[int, Thread] = {}  # tid -> the thread as last written (see _describe)
        # The state changes that need nothing but the state skip the per-event path: all of them,
        # but those the enricher adds live facts after, unless a filtered capture keeps them hidden.
        self.lane = _engine.statelane.StateLane(
            state, Event, self.scanner.apply, _RAW_MASK, _mask(enricher.watched if enricher else ())) \
            if not (predicate is not None and keep) else None
        # Printing: runs of matches that change no state and need no Python filter go from the
        # selection to rendered bytes in one call, without an Event each.
        self.renderer = renderer if renderer is not None and not latency and not keep \
            and (predicate is None or sel.exact) else None
        self._shown = bytes(show_internal or e not in INTERNAL_EVENTS or e in admit_internal
                            for e in range(R.EVT_MAX))
        if self.renderer is not None:
            # The fd events the scanner leaves to their turn are applied by the renderer too, and
            # the other state events by the lane.
            self.renderer.set_fast(self.scanner.apply if self.scanner.fast_on else None, FAST_MASK)
            self.renderer.set_lane(self.lane, _FOLLOWERS_MASK)

    def _thread_changed(self, tid: int) -> None:
        self.scanner.reset_tids()

    def _describe(self, ts: int, tid: int, pid: int) -> bytes | None:
        """Filtered capture: the first kept event of a thread is preceded by what the state knows
        of it, as a THREADINFO record. The records that told the live state (a thread info after an
        unkept exec or clone, the clone itself) may have been dropped by the filter; without this a
        replay elsewhere would not know the thread's container or name. (Only the first: a record
        right after a state-changing event is applied before that event is shown, so a later one
        could show the thread's previous event with its next state.)"""
        t = self.state.threads.get(tid)
        if t is None or self._described.get(tid) is t:
            return None
        if len(self._described) > 65536:
            self._described.clear()
        self._described[tid] = t
        doc = {f: getattr(t, f) for f in Thread.FIELDS if f not in ("tid", "pid")}
        return R.pack_record(ts, tid, pid, R.EVT_THREADINFO, seg0=msgpack.packb(doc))

    def feed(self, batch: bytes) -> bytes:
        """Process one batch; return what a capture keeps of it."""
        if self.enricher is not None:
            head = self.enricher.pending()
            if head:
                batch = b"".join(head) + batch
        sel, n = self.scanner.scan(batch)
        if n and not self.state.start_ts:
            self.state.start_ts = self.scanner.first_ts
        b = _Batch(batch, self.count)
        # An exact selection nobody consumes (-q, no -w, no chisel) is only counted.
        count_only = self.exact and self.on_event is None and not self.keep and not self.latency
        on_record = self.on_record if self.exact else None
        on_records = self.on_records if self.exact else None
        fast_apply = self.scanner.apply if self.scanner.fast_on else None
        renderer = self.renderer
        filtered = self.predicate is not None
        lane = self.lane
        i, nsel = 0, len(sel)
        while i < nsel:
            idx, off, why = sel[i], sel[i + 1], sel[i + 2]
            if renderer is not None and not why & SEL_RUN and (why & SEL_STATE or why == SEL_MATCH | SEL_EXACT
                                                               or (why == SEL_MATCH and not filtered)) \
                    and i not in b.early:
                # A run of plain matches and state events, printed in one call: resume after it
                # (it stops at once at a record it leaves to Python). Records applied ahead of
                # their turn (b.early) are Python's: they follow one it took.
                j, k = renderer.render_records(batch, sel, i, b.base + 1 + b.shift, self._shown, filtered)
                if j != i:
                    self.matched += k
                    i = j
                    continue
            if why & SEL_RUN:
                self._take_run(b, idx, off, why)
            elif why == SEL_MATCH | SEL_EXACT and count_only:
                self.matched += 1
            elif why == SEL_MATCH | SEL_EXACT and on_records is not None \
                    and (taken := on_records(batch, sel, i, fast_apply))[0] > i:
                self.matched += taken[1]
                i = taken[0]
                continue
            elif why == SEL_MATCH | SEL_EXACT and on_record is not None and on_record(batch, off) is not False:
                self.matched += 1  # (False: the consumer wants this one as an Event)
            elif why == SEL_STATE | SEL_FAST:
                self.scanner.apply(batch, off)  # an fd event whose turn came: no Event needed
            elif why & SEL_STATE and not why & SEL_MATCH and lane is not None \
                    and (j := lane.run(batch, sel, i, b.base + 1 + b.shift, b.early)) != i:
                i = j  # state changes nothing can match, applied in one call (it leaves the watched ones)
                continue
            else:
                self._take_event(b, sel, i)
            i += 3
        self.count = b.base + n + b.shift
        self.state.reap()
        return self._kept(b, n)

    def _take_run(self, b: _Batch, last: int, off: int, why: int) -> None:
        """Exact matches of one thread nobody shows: counted, and copied when kept (-w FILTER)."""
        nrec = (why >> RUN_COUNT_SHIFT) & RUN_COUNT_MASK
        self.matched += nrec
        if self.keep:
            if not self.fatfile:
                info = self._describe(*_TS_TID_PID.unpack_from(b.batch, off + R.OFF_TS))
                if info is not None:
                    b.out.append(info)
            b.out.append(b.batch[off:off + (why >> RUN_BYTES_SHIFT)])
            b.in_runs += nrec - 1
            b.run_last_ts = (len(b.out), _TS_TID_PID.unpack_from(b.batch, last + R.OFF_TS)[0])

    def _take_event(self, b: _Batch, sel: Sequence[int], i: int) -> None:
        """A record Python must look at (the selection's ``i``-th triple): as an Event, through the
        state, the filter and the consumer, and into what the capture keeps."""
        idx, off, why = sel[i], sel[i + 1], sel[i + 2]
        ev = Event(b.batch, off, b.base + idx + 1 + b.shift, self.state)
        length = _rec_len(b.batch, off)
        inserted: list[Event] = []
        if i in b.early:
            pass
        elif why & SEL_STATE:
            inserted = self._apply_state(b, sel, i, ev, off + length)
        elif self.latency and ev.is_syscall:
            if ev.direction:
                self.state.exit_latency(ev)
            else:
                self.state.note_enter(ev)
        matched = self._deliver(ev, why)
        if self.predicate is not None:
            self._keep_filtered(b, ev, off, length, why, matched)
        elif inserted and self.keep:
            b.out.append(b.batch[b.cut:off + length])
            b.cut = off + length
        self._deliver_inserted(b, inserted, matched)

    def _apply_state(self, b: _Batch, sel: Sequence[int], i: int, ev: Event, nxt: int) -> list[Event]:
        """Apply a state event, then what live mode learns of it now (returned: inserted after it) or
        learned then (the records right after it, applied ahead of their turn)."""
        state = self.state
        state.apply(ev)
        inserted: list[Event] = []
        if self.enricher is not None:
            for k, rec in enumerate(self.enricher.after(ev)):
                iev = Event(rec, 0, b.base + sel[i] + 2 + b.shift + k, state)
                state.apply(iev)
                inserted.append(iev)
        # What live mode learned about this event sits right after it: apply it before the event
        # is shown, as live mode did.
        j = i + 3
        while j < len(sel) and sel[j + 1] == nxt and _follows(b.batch, nxt, ev.tid):
            state.apply(Event(b.batch, nxt, 0, state))
            b.early.add(j)
            nxt += _rec_len(b.batch, nxt)
            j += 3
        return inserted

    def _deliver(self, ev: Event, why: int) -> bool:
        """Whether the event passes the filter; if so it is counted and handed to the consumer."""
        shown = self.show_internal or ev.evt not in INTERNAL_EVENTS or ev.evt in self.admit_internal
        if not (why & SEL_MATCH and shown and not ev.hidden):
            return False
        predicate = self.predicate
        if predicate is None or (self.exact and why & SEL_EXACT) or predicate.match(ev):
            self.matched += 1
            if self.on_event is not None:
                self.on_event(ev)
            return True
        return False

    def _keep_filtered(self, b: _Batch, ev: Event, off: int, length: int, why: int, matched: bool) -> None:
        """Filtered mode: what the capture keeps of this record."""
        assert self.predicate is not None
        if matched or ev.evt in _KEPT_UNFILTERED or (ev.evt == R.EVT_PROCINFO and self.predicate.match(ev)):
            # Container metadata is kept whatever the filter: a capture read elsewhere, even after
            # the containers are gone, still names them; so are the ends of TCP connections from the kernel
            # (one small record each), which the fds of the events the filter keeps may need. CPU
            # samples of the threads the filter keeps go too, so CPU chisels work on the capture.
            if matched and self.keep and not self.fatfile and ev.evt < R.EVT_BASE_OTHER:
                info = self._describe(ev.ts, ev.tid, ev.pid)
                if info is not None:
                    b.out.append(info)
            b.out.append(b.batch[off:off + length])
        elif self.fatfile and why & SEL_STATE or ev.evt in _EXEC_ENTERS:
            # -F keeps every state change, hidden; without it, exec enters still go (hidden): they
            # carry the program and arguments of an exec whose exit the filter keeps (the name the
            # filter wants often comes with that exec).
            b.out.append(_hidden(b.batch[off:off + length]))

    def _deliver_inserted(self, b: _Batch, inserted: list[Event], matched: bool) -> None:
        """The records live mode made after an event: shown when asked for, kept with the event."""
        predicate = self.predicate
        for iev in inserted:
            b.shift += 1
            if (self.show_internal or iev.evt in self.admit_internal) and self.on_event is not None \
                    and (predicate is None or predicate.match(iev)):
                self.on_event(iev)
            if self.keep and (predicate is None or self.fatfile or matched or iev.evt == R.EVT_CONTAINER):
                # What live mode learned about a kept event goes with it: a replay needs it (and
                # container metadata always: see _keep_filtered).
                b.out.append(_record_bytes(iev))

    def _kept(self, b: _Batch, n: int) -> bytes:
        """What a capture keeps of the batch; ``kept`` says how many records, from when to when."""
        if not self.keep:
            return b""
        out = b.out
        if self.predicate is None:
            self.kept = (n + b.shift, self.scanner.first_ts, self.scanner.last_ts)
            if not out:
                return b.batch
            out.append(b.batch[b.cut:])
            return b"".join(out)
        last = b.run_last_ts[1] if b.run_last_ts[0] == len(out) else _ts(out[-1]) if out else 0
        self.kept = (len(out) + b.in_runs, _ts(out[0]), last) if out else (0, 0, 0)
        return b"".join(out)


@dataclass
class _Batch:
    """One batch on its way through ``Pipeline.feed``."""

    batch: bytes
    base: int  # records seen before it (evt.num)
    shift: int = 0  # records inserted so far (live mode's facts)
    out: list[bytes] = field(default_factory=list)  # what the capture keeps, in order
    cut: int = 0  # unfiltered mode: batch[cut:] not copied to out yet
    early: set[int] = field(default_factory=set)  # selection positions of records applied ahead of their turn
    in_runs: int = 0  # records kept beyond one per item of out (runs)
    run_last_ts: tuple[int, int] = (0, 0)  # len(out) after the last run kept, the ts of its last record


def _rec_len(batch: bytes, off: int) -> int:
    n: int = _U32.unpack_from(batch, off + R.OFF_LEN)[0]
    return n


def _hidden(rec: bytes) -> bytes:
    """The record with RF_HIDDEN set: kept for the state only."""
    out = bytearray(rec)
    _U32.pack_into(out, R.OFF_FLAGS, _U32.unpack_from(out, R.OFF_FLAGS)[0] | R.RF_HIDDEN)
    return bytes(out)


def _follows(batch: bytes, off: int, tid: int) -> bool:
    """Whether the record at ``off`` is one live mode inserted right after an event of ``tid``,
    about it: thread or fd info, or the metadata of the container it was first seen in (which
    carries the thread's id; metadata that merely arrived carries 0)."""
    return (_U16.unpack_from(batch, off + R.OFF_EVT)[0] in _FOLLOWERS
            and _U32.unpack_from(batch, off + R.OFF_TID)[0] == tid)


def _record_bytes(ev: Event) -> bytes:
    from .schema.record import pack_record

    return pack_record(ev.ts, ev.tid, ev.pid, ev.evt, ev.cpu, ev.ret, ev.args, ev.seg0, ev.seg1, ev.flags)


def _ts(rec: bytes) -> int:
    ts: int = _U64.unpack_from(rec, R.OFF_TS)[0]
    return ts


_EXEC_ENTERS = frozenset(event_ids(n)[0] for n in ("execve", "execveat"))
_TS_TID_PID = struct.Struct("<QII")  # at OFF_TS: ts, tid, pid
assert R.OFF_TID == R.OFF_TS + 8 and R.OFF_PID == R.OFF_TID + 4
_U16 = struct.Struct("<H")
_U32 = struct.Struct("<I")
_U64 = struct.Struct("<Q")
_KEPT_UNFILTERED = frozenset({R.EVT_CONTAINER, R.EVT_CONNECTED, R.EVT_ACCEPTED})
_FOLLOWERS = frozenset({R.EVT_THREADINFO, R.EVT_FDINFO, R.EVT_CONTAINER})
_RAW_MASK = _mask(RAW_EVENTS)
_FOLLOWERS_MASK = _mask(_FOLLOWERS)

