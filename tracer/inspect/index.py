"""The index of a capture: built once, kept in a cache file, read by every page request.

One pass over the capture (several files read in sequence, like ``-r a -r b``) gives:

- the EVENTS blocks with their time span (where a time selection starts and stops reading);
- events per bucket (a tenth of a second) by category (the timeline), counted in C by ``tally``;
- every overview tile per bucket (``summary.Summary``, through the same pipeline as the chisels).

The cache file is ``CAPTURE.kidx`` next to the (first) capture, or, when that directory is not
writable, under ``$XDG_CACHE_HOME/ktrace/inspect`` (``~/.cache``). It is used again while every
capture keeps its size and mtime, and the index format its version.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
from array import array
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

import msgpack

from ..capture import EventBlock, FileStart, TableBlock
from ..capture.files import read_captures
from ..engine import tally as _tally
from ..errors import CaptureError
from ..pipeline import Pipeline, Selection
from ..schema import record as R
from ..schema.events import INTERNAL_EVENTS, event_info
from ..state.state import State
from .summary import RecordTally, Summary

INDEX_VERSION: Final = 1
BUCKET_NS: Final = 100_000_000  # a tenth of a second: short captures still get a timeline
MAX_BUCKETS: Final = 10 * 86400  # a day: later timestamps (damage, longer captures) count in the last one
# Timeline categories: the schema's, grouped; internal records (ktrace's own) are not drawn.
CATEGORIES: Final = ("other", "file", "io", "net", "process", "memory", "ipc", "wait", "internal")
_GROUP: Final = {"file": "file", "io": "io", "net": "net", "process": "process", "memory": "memory",
                 "ipc": "ipc", "signal": "ipc", "wait": "wait"}


FAILS: Final = 0x80  # category table bit: an exit whose negative result is evt.failed=true


def category_table() -> bytes:
    """The timeline category of each event id, as a byte per id (for ``tally``), with FAILS on the
    syscall exits that have parameters (evt.failed's rule: a result, and it is negative)."""
    m = bytearray(R.EVT_MAX)
    for evt in range(R.EVT_MAX):
        if evt in INTERNAL_EVENTS:
            m[evt] = CATEGORIES.index("internal")
            continue
        info = event_info(evt)
        cat = _GROUP.get(info.category, "other") if info is not None else "other"
        m[evt] = CATEGORIES.index(cat)
        if info is not None and evt < R.EVT_BASE_OTHER and evt & 1 and info.params(1):
            m[evt] |= FAILS
    return bytes(m)


@dataclass
class Block:
    """One EVENTS block: which file, where, its time span and records."""

    file: int
    offset: int
    first_ts: int
    last_ts: int
    count: int


@dataclass
class Index:
    paths: list[str]
    t0: int = 0
    t1: int = 0
    bucket_ns: int = BUCKET_NS
    events: int = 0
    blocks: list[Block] = field(default_factory=list)
    counts: list[int] = field(default_factory=list)  # bucket-major: counts[b * len(CATEGORIES) + c]
    tiles: dict[str, dict[int, Any]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    headers: list[dict[str, Any]] = field(default_factory=list)

    @property
    def nbuckets(self) -> int:
        return len(self.counts) // len(CATEGORIES)

    def bucket_of(self, ts: int) -> int:
        return min(max(0, (ts - self.t0) // self.bucket_ns), max(0, self.nbuckets - 1))

    def timeline(self) -> dict[str, list[int]]:
        n = len(CATEGORIES)
        return {c: self.counts[i::n] for i, c in enumerate(CATEGORIES) if c != "internal"}

    def to_doc(self, stamp: list[Any]) -> dict[str, Any]:
        return {"version": INDEX_VERSION, "stamp": stamp, "paths": self.paths, "t0": self.t0, "t1": self.t1,
                "bucket_ns": self.bucket_ns, "events": self.events,
                "blocks": [[b.file, b.offset, b.first_ts, b.last_ts, b.count] for b in self.blocks],
                "counts": self.counts, "tiles": self.tiles, "notes": self.notes, "headers": self.headers}

    @classmethod
    def from_doc(cls, doc: dict[str, Any]) -> Index:
        return cls(paths=doc["paths"], t0=doc["t0"], t1=doc["t1"], bucket_ns=doc["bucket_ns"], events=doc["events"],
                   blocks=[Block(*b) for b in doc["blocks"]], counts=doc["counts"], tiles=doc["tiles"],
                   notes=doc["notes"], headers=doc["headers"])


def stamp(paths: Sequence[str]) -> list[Any]:
    """What must not change for a cached index to hold: each capture's path, size and mtime."""
    out: list[Any] = [INDEX_VERSION]
    for p in paths:
        st = os.stat(p)
        out.append([os.path.abspath(p), st.st_size, st.st_mtime_ns])
    return out


def cache_paths(paths: Sequence[str]) -> list[str]:
    """Where the index may live: next to the first capture, then the user's cache directory."""
    first = os.path.abspath(paths[0])
    key = hashlib.sha256("\0".join(os.path.abspath(p) for p in paths).encode()).hexdigest()[:24]
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    user = os.path.join(base, "ktrace", "inspect", f"{key}.kidx")
    beside = first + ".kidx" if len(paths) == 1 else os.path.join(os.path.dirname(first), f".{key}.kidx")
    return [beside, user]


def build(paths: Sequence[str], *, on_progress: Callable[[int], None] | None = None, reference: bool = False) -> Index:
    """Read the captures once and index them. A file ktrace cannot read at all raises CaptureError;
    damage and truncation become notes, and the index holds what could be read. ``reference``:
    the tiles are counted from a decoded Event each (slow; what the fast counts must equal)."""
    idx = Index(paths=[os.fspath(p) for p in paths])
    state = State()
    summary: Summary | None = None
    pipeline: Pipeline | None = None
    fast: RecordTally | None = None
    cats = category_table()
    ncat = len(CATEGORIES)
    internal = CATEGORIES.index("internal")
    counts: array[int] = array("Q")
    failed: array[int] = array("Q")
    procs: dict[int, set[str]] = {}
    containers: dict[int, set[str]] = {}
    pid_container: dict[int, str] = {}  # a process's container as last seen (it may be gone)

    def remember(tid: int, chain: Callable[[int], None] | None) -> None:
        t = state.threads.get(tid)
        if t is not None:
            pid_container[t.pid] = t.container_id
        if chain is not None:
            chain(tid)

    file_no = -1
    for item in read_captures(idx.paths, on_note=idx.notes.append):
        if isinstance(item, FileStart):
            file_no += 1
            idx.headers.append({k: v for k, v in item.header.items() if isinstance(v, (str, int, float, list))})
        elif isinstance(item, EventBlock):
            if not item.count:
                continue
            if summary is None:
                idx.t0 = item.first_ts
                summary = Summary(idx.t0, idx.bucket_ns, last_bucket=MAX_BUCKETS - 1)
                # Exact: the event ids are the whole selection; what matches comes to the record
                # counter (reads and writes without an Event), state changes to on_event.
                if reference:
                    pipeline = Pipeline(state, selection=Selection(summary.evts), on_event=summary.on_event)
                else:
                    fast = summary.record_tally(state)
                    pipeline = Pipeline(state, selection=Selection(summary.evts, exact=True),
                                        on_event=fast.on_event, on_record=summary.record_counter(state),
                                        on_records=fast.on_records())
                    pipeline.scanner.stateless_mask = fast.stateless
                chain = state.on_thread_change
                state.on_thread_change = lambda tid, chain=chain: remember(tid, chain)
            assert pipeline is not None
            pairs: set[int] = set()
            try:
                _tally.tally(item.raw, cats, idx.t0, idx.bucket_ns, ncat, MAX_BUCKETS - 1, counts, failed, pairs,
                             internal)
            except ValueError as e:
                idx.notes.append(f"{idx.paths[file_no]}: block at byte {item.offset}: {e}: skipped")
                continue
            pipeline.feed(item.raw)
            for t in state.threads.values():
                pid_container[t.pid] = t.container_id
            for pair in pairs:
                b, pid = pair >> 32, pair & 0xFFFFFFFF
                procs.setdefault(b, set()).add(str(pid))
                cid = pid_container.get(pid, "host")
                if cid != "host":
                    containers.setdefault(b, set()).add(cid)
            idx.blocks.append(Block(file_no, item.offset, item.first_ts, item.last_ts, item.count))
            idx.events += item.count
            idx.t1 = max(idx.t1, item.last_ts)
            if on_progress is not None:
                on_progress(idx.events)
        elif isinstance(item, TableBlock):
            state.load_table(item.kind, item.rows)
    idx.counts = list(counts)
    if summary is not None:
        if fast is not None:
            fast.merge()
        idx.tiles = summary.dump()
    idx.tiles["procs"] = {b: sorted(v) for b, v in procs.items()}
    idx.tiles["containers"] = {b: sorted(v) for b, v in containers.items()}
    idx.tiles["errors"] = {b: n for b, n in enumerate(failed) if n}
    idx.tiles["syscalls"] = {b: n for b in range(idx.nbuckets)
                             if (n := sum(idx.counts[b * ncat + c] for c in range(ncat) if c != internal))}
    return idx


def load_or_build(paths: Sequence[str], *, on_progress: Callable[[int], None] | None = None,
                  rebuild: bool = False) -> tuple[Index, str]:
    """The cached index when it still holds (unless ``rebuild``), else a new one, saved where
    possible. Returns the index and where it is kept ('' when nowhere could be written)."""
    for p in paths:
        if not os.path.isfile(p):
            raise CaptureError(f"{p}: no such file")
    st = stamp(paths)
    places = cache_paths(paths)
    for place in places if not rebuild else ():
        with contextlib.suppress(OSError, ValueError, KeyError, TypeError, msgpack.UnpackException):
            with open(place, "rb") as f:
                doc = msgpack.unpackb(f.read(), strict_map_key=False)
            if doc.get("version") == INDEX_VERSION and doc.get("stamp") == st:
                return Index.from_doc(doc), place
    idx = build(paths, on_progress=on_progress)
    data = msgpack.packb(idx.to_doc(st))
    for place in places:
        try:
            os.makedirs(os.path.dirname(place), exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=os.path.dirname(place), prefix=".kidx-")
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            os.replace(tmp, place)
            return idx, place
        except OSError:
            with contextlib.suppress(OSError, UnboundLocalError):
                os.unlink(tmp)
            continue
    return idx, ""
