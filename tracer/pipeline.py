"""One path after the source, live or offline: scan a batch, keep the state current, filter, and
hand matching events to the output or a chisel; produce what a capture file keeps.

Live mode adds one thing: facts from /proc and the runtime (thread info after exec, socket tuples
after accept/connect, CPU samples, container metadata) become internal records inserted into the
stream right after the event that needed them. A capture keeps them, so a replay rebuilds the same
state and prints the same lines.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Protocol

import msgpack

from .engine import scan as _scan
from .event import Event
from .schema import record as R
from .schema.events import FD_REGS, INTERNAL_EVENTS, SYSCALLS, event_ids
from .state.state import State
from .state.tables import Thread

SEL_STATE = 1
SEL_MATCH = 2
SEL_EXACT = 4
SEL_FAST = 8
SEL_RUN, RUN_COUNT_SHIFT, RUN_BYTES_SHIFT = _scan.SEL_RUN, _scan.RUN_COUNT_SHIFT, _scan.RUN_BYTES_SHIFT


class Predicate(Protocol):
    def match(self, ev: Event) -> bool: ...


class Enricher(Protocol):
    """Live-only: records to insert after an event (already applied to the state)."""

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
    """The scanner's fast-path code for each event id (0: none): the exits of close and the opens.
    They never reach Python's Pipeline loop, so live mode must have nothing to add after them
    (LiveEnricher.after: exec, clone, socket and bind events only)."""
    m = bytearray(R.EVT_MAX)
    codes = {"close": _scan.FAST_CLOSE, "open": _scan.FAST_OPEN_A1, "openat": _scan.FAST_OPEN_A2,
             "openat2": _scan.FAST_OPEN_SEG1, "creat": _scan.FAST_CREAT}
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
                 on_record: Callable[[bytes, int], bool | None] | None = None) -> None:
        self.state = state
        self.admit_internal = admit_internal
        self.predicate = predicate
        self.on_event = on_event
        # Takes the records an exact selection matched, as records (no Event): a table chisel's
        # counter (TableChisel.record_counter), which ignores what it does not count, or a view's
        # (ViewAggregator.record_counter), which returns False for a record it wants as an Event.
        self.on_record = on_record
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
        # Python: -F keeps them all in the capture, evt.latency pairs every exit with its enter.
        fast = None if fatfile or latency else state
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
        state = self.state
        enricher = self.enricher
        extra_head = enricher.pending() if enricher is not None else []
        if extra_head:
            head = b"".join(extra_head)
            batch = head + batch
        sel, n = self.scanner.scan(batch)
        if n and not state.start_ts:
            state.start_ts = self.scanner.first_ts
        filtered = self.predicate is not None
        out: list[bytes] = []
        cut = 0  # batch[cut:] not yet copied to out (unfiltered mode)
        base = self.count
        shift = 0
        predicate = self.predicate
        on_event = self.on_event
        on_record = self.on_record
        nsel = len(sel)
        early: set[int] = set()  # selection positions of internal records applied ahead of time
        i = 0
        # An exact selection nobody consumes (-q, no -w, no chisel) is only counted.
        count_only = self.exact and on_event is None and not self.keep and not self.latency
        in_runs = 0  # records kept beyond one per item of out (runs)
        run_last_ts = (0, 0)  # (len(out) after the last run kept, the ts of its last record)
        while i < nsel:
            idx, off, why = sel[i], sel[i + 1], sel[i + 2]
            if why & SEL_RUN:
                # Exact matches of one thread nobody shows: counted, and copied when kept (-w FILTER).
                # (For a run, idx is the offset of its last record.)
                nrec = (why >> RUN_COUNT_SHIFT) & RUN_COUNT_MASK
                self.matched += nrec
                if self.keep:
                    if not self.fatfile:
                        info = self._describe(*_TS_TID_PID.unpack_from(batch, off + R.OFF_TS))
                        if info is not None:
                            out.append(info)
                    out.append(batch[off:off + (why >> RUN_BYTES_SHIFT)])
                    in_runs += nrec - 1
                    run_last_ts = (len(out), _TS_TID_PID.unpack_from(batch, idx + R.OFF_TS)[0])
                i += 3
                continue
            if count_only and why == SEL_MATCH | SEL_EXACT:
                self.matched += 1
                i += 3
                continue
            if why == SEL_MATCH | SEL_EXACT and on_record is not None and self.exact \
                    and on_record(batch, off) is not False:  # False: the consumer wants an Event
                self.matched += 1
                i += 3
                continue
            if why == SEL_STATE | SEL_FAST:
                self.scanner.apply(batch, off)  # an fd event whose turn came: no Event needed
                i += 3
                continue
            ev = Event(batch, off, base + idx + 1 + shift, state)
            length = int.from_bytes(batch[off + 20:off + 24], "little")
            inserted: list[Event] = []
            if i in early:
                pass
            elif why & SEL_STATE:
                state.apply(ev)
                if enricher is not None:
                    for k, rec in enumerate(enricher.after(ev)):
                        iev = Event(rec, 0, base + idx + 2 + shift + k, state)
                        state.apply(iev)
                        inserted.append(iev)
                # What live mode learned about this event sits right after it: apply it before
                # the event is shown, as live mode did.
                j, nxt = i + 3, off + length
                while j < nsel and sel[j + 1] == nxt and _follows(batch, nxt, ev.tid):
                    state.apply(Event(batch, nxt, 0, state))
                    early.add(j)
                    nxt += int.from_bytes(batch[nxt + 20:nxt + 24], "little")
                    j += 3
            elif self.latency and ev.is_syscall:
                if ev.direction:
                    state.exit_latency(ev)
                else:
                    state.note_enter(ev)
            matched = False
            shown = self.show_internal or ev.evt not in INTERNAL_EVENTS or ev.evt in self.admit_internal
            if why & SEL_MATCH and shown and not ev.hidden:
                matched = predicate is None or (self.exact and bool(why & SEL_EXACT)) or predicate.match(ev)
                if matched:
                    self.matched += 1
                    if on_event is not None:
                        on_event(ev)
            if filtered:
                if matched or ev.evt in _KEPT_UNFILTERED or (
                        ev.evt == R.EVT_PROCINFO and predicate is not None and predicate.match(ev)):
                    # Container metadata is kept whatever the filter: a capture read elsewhere,
                    # even after the containers are gone, still names them; so are the ends of
                    # client TCP connections (one small record each), which the fds of the
                    # events the filter keeps may need. CPU samples of the
                    # threads the filter keeps go too, so CPU chisels work on the capture.
                    if matched and self.keep and not self.fatfile and ev.evt < R.EVT_BASE_OTHER:
                        info = self._describe(ev.ts, ev.tid, ev.pid)
                        if info is not None:
                            out.append(info)
                    out.append(batch[off:off + length])
                elif self.fatfile and why & SEL_STATE or ev.evt in _EXEC_ENTERS:
                    # -F keeps every state change, hidden; without it, exec enters still go (hidden):
                    # they carry the program and arguments of an exec whose exit the filter keeps
                    # (the name the filter wants often comes with that exec).
                    hidden = bytearray(batch[off:off + length])
                    flags = int.from_bytes(hidden[84:88], "little") | R.RF_HIDDEN
                    hidden[84:88] = flags.to_bytes(4, "little")
                    out.append(bytes(hidden))
            elif inserted and self.keep:
                out.append(batch[cut:off + length])
                cut = off + length
            for iev in inserted:
                shift += 1
                if (self.show_internal or iev.evt in self.admit_internal) and on_event is not None \
                        and (predicate is None or predicate.match(iev)):
                    on_event(iev)
                if self.keep and (not filtered or self.fatfile or matched or iev.evt == R.EVT_CONTAINER):
                    # What live mode learned about a kept event goes with it: a replay needs it
                    # (and container metadata always: see above).
                    out.append(_record_bytes(iev))
            i += 3
        self.count = base + n + shift
        state.reap()
        if not self.keep:
            return b""
        if not filtered:
            self.kept = (n + shift, self.scanner.first_ts, self.scanner.last_ts)
            if not out:
                return batch
            out.append(batch[cut:])
            return b"".join(out)
        last = run_last_ts[1] if run_last_ts[0] == len(out) else _ts(out[-1]) if out else 0
        self.kept = (len(out) + in_runs, _ts(out[0]), last) if out else (0, 0, 0)
        return b"".join(out)


def _evt_at(batch: bytes, off: int) -> int:
    return int.from_bytes(batch[off + 16:off + 18], "little")


def _follows(batch: bytes, off: int, tid: int) -> bool:
    """Whether the record at ``off`` is one live mode inserted right after an event of ``tid``,
    about it: thread or fd info, or the metadata of the container it was first seen in (which
    carries the thread's id; metadata that merely arrived carries 0)."""
    return _evt_at(batch, off) in _FOLLOWERS and int.from_bytes(batch[off + 8:off + 12], "little") == tid


def _record_bytes(ev: Event) -> bytes:
    from .schema.record import pack_record

    return pack_record(ev.ts, ev.tid, ev.pid, ev.evt, ev.cpu, ev.ret, ev.args, ev.seg0, ev.seg1, ev.flags)


def _ts(rec: bytes) -> int:
    return int.from_bytes(rec[:8], "little")


_EXEC_ENTERS = frozenset(event_ids(n)[0] for n in ("execve", "execveat"))
_TS_TID_PID = struct.Struct("<QII")  # at OFF_TS: ts, tid, pid
RUN_COUNT_MASK = (1 << (RUN_BYTES_SHIFT - RUN_COUNT_SHIFT)) - 1
assert R.OFF_TID == R.OFF_TS + 8 and R.OFF_PID == R.OFF_TID + 4
_KEPT_UNFILTERED = frozenset({R.EVT_CONTAINER, R.EVT_CONNECTED})
_FOLLOWERS = frozenset({R.EVT_THREADINFO, R.EVT_FDINFO, R.EVT_CONTAINER})


def syscall_exit_ids() -> frozenset[int]:
    return frozenset(R.syscall_evt(i.nr, 1) for i in SYSCALLS if i is not None)
