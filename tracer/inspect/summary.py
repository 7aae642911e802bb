"""The overview's tiles: what each counts, declared like a table chisel, and their totals per bucket of time.

A tile is a filter, optional key fields and a value: ``sum`` adds the value (bytes), ``count``
counts matching events, ``distinct`` counts the different keys (processes, connections, files).
Values follow TableChisel's rule -- one counts only when set and > 0 -- and the filters are the
chisels' own (NET_IO, FILE_IO), so a tile equals the chisel that lists the same thing: the
connections tile is the number of rows of ``topconns``, network bytes are the sum of
``topprocs_net``. Totals are kept per bucket of the index (a tenth of a second), so any time selection is
a merge of buckets, never a new pass over the capture.
"""

from __future__ import annotations

import functools
import re
from array import array
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from ..chisel import FILE_IO, NET_IO, lua_str
from ..engine import iotally
from ..event import Event, RecordView
from ..filter.compiler import CompiledFilter, compile_filter
from ..output.format import resolve_field
from ..schema.events import FD_REGS, IO_READ, IO_WRITE, EventInfo, event_ids, event_info, event_names
from ..schema.fields import FIELDS
from ..schema.record import EVT_BASE_OTHER, EVT_MAX, OFF_FLAGS, RF_HIDDEN

if TYPE_CHECKING:
    from ..pipeline import RecordRuns
    from ..state.state import State


@dataclass(frozen=True)
class Tile:
    """One overview tile. ``kind``: sum | count | distinct. ``gate`` names a filter (GATES) many
    tiles share: it is evaluated once per event, the tile's own ``filter`` only where it holds; the
    tile counts the events both admit. ``chisel`` names the command that gives the same number
    (the tile's tooltip; the tests compare with it). Tiles with ``source="tally"`` are counted in C
    while the index is built (every event counts: processes, containers, system calls)."""

    id: str
    category: str
    title: str
    filter: str
    kind: str
    keys: tuple[str, ...] = ()
    value: str | None = None  # summed, or (distinct) required > 0 like a table chisel's value
    unit: str = "count"
    chisel: str = ""
    view: str = ""  # the drill-down view the tile opens
    gate: str = ""
    source: str = "events"


EXITS: Final = "evt.dir=< and "
RES: Final = "evt.rawarg.res"
# Results of I/O: what table chisels count (their value, evt.rawarg.res, only on exits and > 0).
GATES: Final = {"file": f"{FILE_IO} and evt.dir=< and evt.rawres>0",
                "net": f"{NET_IO} and evt.dir=< and evt.rawres>0"}
# Well-known server ports: the Network apps tiles (bytes in + out), shown when present.
APP_PORTS: Final = (("http", "HTTP", (80, 8080)), ("https", "HTTPS", (443, 8443)), ("ssh", "SSH", (22,)),
                    ("dns", "DNS", (53,)), ("mysql", "MySQL", (3306,)), ("postgres", "PostgreSQL", (5432,)),
                    ("redis", "Redis", (6379,)), ("kafka", "Kafka", (9092,)), ("elasticsearch", "Elasticsearch",
                                                                           (9200,)),
                    ("mongodb", "MongoDB", (27017,)), ("memcached", "Memcached", (11211,)))


def _tiles() -> tuple[Tile, ...]:
    t = [
        Tile("procs", "General", "Processes", "", "distinct", ("proc.pid",), chisel="-p %proc.pid", view="procs",
             source="tally"),
        Tile("containers", "General", "Containers", "container.id!=host", "distinct", ("container.id",),
             chisel="-p %container.id", view="containers", source="tally"),
        Tile("syscalls", "General", "System calls", "", "count", chisel="-p %evt.num", view="syscalls",
             source="tally"),
        Tile("file_in", "File", "Bytes read", "evt.is_io_read=true", "sum", value=RES, unit="bytes",
             chisel="-c fdbytes_by fd.name fd.type=file", view="files", gate="file"),
        Tile("file_out", "File", "Bytes written", "evt.is_io_write=true", "sum", value=RES, unit="bytes",
             chisel="-c fdbytes_by fd.name fd.type=file", view="files", gate="file"),
        Tile("files", "File", "Files accessed", "", "distinct", ("fd.name",), RES, chisel="-c topfiles_bytes",
             view="files", gate="file"),
        Tile("files_mod", "File", "Files modified", "evt.is_io_write=true", "distinct", ("fd.name",), RES,
             chisel="-c topfiles_bytes evt.is_io_write=true", view="files", gate="file"),
        Tile("net_in", "Network", "Bytes in", "evt.is_io_read=true", "sum", value=RES, unit="bytes",
             chisel="-c topprocs_net", view="connections", gate="net"),
        Tile("net_out", "Network", "Bytes out", "evt.is_io_write=true", "sum", value=RES, unit="bytes",
             chisel="-c topprocs_net", view="connections", gate="net"),
        Tile("connections", "Network", "Connections", "", "distinct", ("fd.l4proto", "fd.name"), RES,
             chisel="-c topconns", view="connections", gate="net"),
        Tile("conn_in", "Network", "New inbound connections",
             EXITS + "evt.type in (accept, accept4) and evt.failed=false", "count", view="connections"),
        Tile("conn_out", "Network", "New outbound connections", EXITS + "evt.type=connect and evt.failed=false",
             "count", view="connections"),
    ]
    for tid, name, ports in APP_PORTS:
        plist = ", ".join(str(p) for p in ports)
        t.append(Tile(f"app_{tid}", "Network apps", name, f"fd.sport in ({plist})", "sum", value=RES,
                      unit="bytes", chisel=f"-c topconns fd.sport in ({plist})", view="connections", gate="net"))
    t += [
        Tile("execs", "Security", "Executed commands", EXITS + "evt.type in (execve, execveat) and evt.failed=false",
             "count", view="spy_users"),
        Tile("symlinks", "Security", "New symlinks", EXITS + "evt.type in (symlink, symlinkat) and evt.failed=false",
             "count", view="syscalls"),
        Tile("setns", "Security", "setns calls", EXITS + "evt.type=setns", "count", view="syscalls"),
        Tile("deleted", "Security", "Deleted files", EXITS + "evt.type in (unlink, unlinkat) and evt.failed=false",
             "count", view="syscalls"),
        Tile("sysfiles", "Security", "Modified system files",
             "evt.is_io_write=true and (fd.name startswith /etc/ or fd.name startswith /usr/ "
             "or fd.name startswith /bin/ or fd.name startswith /sbin/)", "distinct", ("fd.name",), RES,
             view="files", gate="file"),
        Tile("errors", "Performance", "Errors", "evt.failed=true", "count", chisel="-p %evt.num evt.failed=true",
             view="errors", source="tally"),
        Tile("open_errors", "Performance", "File open errors",
             EXITS + "evt.type in (open, openat, openat2, creat) and evt.failed=true", "count", view="errors"),
        Tile("conn_errors", "Performance", "Failed connections", EXITS + "evt.type=connect and evt.failed=true",
             "count", view="errors"),
        Tile("forks", "Performance", "Forks", EXITS + "evt.type in (clone, clone3, fork, vfork) and evt.rawres>0",
             "count", view="procs"),
        Tile("signals", "Performance", "Signals sent", EXITS + "evt.type in (kill, tkill, tgkill)", "count",
             view="syscalls"),
        Tile("logs", "Logs", "Log writes", "evt.is_io_write=true and (fd.name contains /log/ or fd.name endswith .log)",
             "count", view="files", gate="file"),
    ]
    return tuple(t)


TILES: Final = _tiles()


def tile_filter(tile: Tile) -> str:
    """The whole filter a tile counts with: its gate's and its own."""
    parts = [p for p in (GATES.get(tile.gate, ""), tile.filter) if p]
    return " and ".join(f"({p})" for p in parts)


def _extractor(name: str) -> Callable[[Event], Any]:
    found = resolve_field(name)
    assert found is not None, name
    fdef, arg = found
    return lambda ev: fdef.extract(ev, arg)


class _Counter:
    """A tile being counted: per bucket, {key: value} (distinct, sum by key) or a number."""

    def __init__(self, tile: Tile) -> None:
        self.tile = tile
        self.flt: CompiledFilter | None = compile_filter(tile.filter, FIELDS) if tile.filter else None
        self.keys = [_extractor(k) for k in tile.keys]
        self.value = _extractor(tile.value) if tile.value else None
        self.buckets: dict[int, Any] = {}

    def add(self, bucket: int, ev: Event, value: int | None = None) -> None:
        """Count ``ev`` in ``bucket`` if the tile's filter admits it (``value``: its value, known)."""
        if self.flt is not None and not self.flt.match(ev):
            return
        kind = self.tile.kind
        if kind == "count":
            self.buckets[bucket] = self.buckets.get(bucket, 0) + 1
            return
        v: Any = 1
        if value is not None:
            v = value
        elif self.value is not None:
            v = self.value(ev)
            if v is None or isinstance(v, (str, bytes)) or not v > 0:
                return
        if kind == "sum":
            self.buckets[bucket] = self.buckets.get(bucket, 0) + v
            return
        parts = []
        for fn in self.keys:
            k = fn(ev)
            if k is None:
                return
            parts.append(lua_str(k))
        b = self.buckets.get(bucket)
        if b is None:
            b = self.buckets[bucket] = set()
        b.add("\x1f".join(parts))


def _evt_ids(flt: CompiledFilter) -> set[int] | None:
    types = flt.pushdown.evt_types
    if types is None:
        return None
    out: set[int] = set()
    for n in event_names():
        if types.admits(n):
            out.update(event_ids(n))
    return out


class _IoView(RecordView):
    """A record view that also knows its event's schema entry (``evt.is_io_read`` reads it)."""

    __slots__ = ()

    @property
    def info(self) -> EventInfo | None:
        return event_info(self.evt)


def io_exits() -> set[int]:
    """Exit event ids of the calls that read or write data (what ``evt.is_io=true and evt.dir=<``
    admits): the only events the I/O gates can admit."""
    out = set()
    for e in range(1, EVT_BASE_OTHER, 2):
        info = event_info(e)
        if info is not None and (IO_READ in info.flags or IO_WRITE in info.flags):
            out.add(e)
    return out


class _Gate:
    """Tiles behind one shared filter (or none), and the event ids that filter admits."""

    def __init__(self, text: str, counters: list[_Counter]) -> None:
        self.text = text
        self.flt = compile_filter(text, FIELDS) if text else None
        self.counters = counters
        ids: set[int] | None = _evt_ids(self.flt) if self.flt is not None else None
        if text in GATES.values():
            ids = io_exits()  # the pushdown keeps both directions of evt.is_io's calls
        if ids is None and len(counters) == 1 and counters[0].flt is not None:
            ids = _evt_ids(counters[0].flt)
        self.evts = ids


class Summary:
    """Counts the event-sourced tiles per bucket as events go by (``on_event``); ``evts`` is the
    event ids any tile may count, for the pipeline's selection (None: all). A gate's filter runs
    once per event, its tiles' own filters only where it holds."""

    def __init__(self, t0: int, bucket_ns: int, tiles: Iterable[Tile] = TILES,
                 last_bucket: int = (1 << 20) - 1) -> None:
        self.t0 = t0
        self.bucket_ns = bucket_ns
        self.last_bucket = last_bucket  # later events count in it (as the timeline's)
        self.counters = [_Counter(t) for t in tiles if t.source == "events"]
        gates: list[_Gate] = []
        for name, text in GATES.items():
            members = [c for c in self.counters if c.tile.gate == name]
            if members:
                gates.append(_Gate(text, members))
        gates += [_Gate("", [c]) for c in self.counters if not c.tile.gate]
        by_evt: dict[int, list[_Gate]] = {}
        any_evt = [g for g in gates if g.evts is None]
        evts: set[int] | None = set()
        for g in gates:
            if g.evts is None:
                evts = None
                continue
            if evts is not None:
                evts |= g.evts
            for e in g.evts:
                by_evt.setdefault(e, []).append(g)
        self.any_evt = any_evt
        self.by_evt = {e: gs + any_evt for e, gs in by_evt.items()}
        self.evts = frozenset(evts) if evts is not None else None

    def on_event(self, ev: Event) -> None:
        b = min((ev.ts - self.t0) // self.bucket_ns if ev.ts > self.t0 else 0, self.last_bucket)
        for g in self.by_evt.get(ev.evt, self.any_evt):
            if g.flt is None or g.flt.match(ev):
                for c in g.counters:
                    c.add(b, ev)

    def record_counter(self, state: State) -> Callable[[bytes, int], None]:
        """``on_event`` for the records the pipeline hands over without an Event (an exact
        selection): the results of reads and writes go through one reused view of the record,
        as table chisels count them (TableChisel.record_counter); the gate becomes the fd's type
        and a result > 0, and the tiles' own filters read the view. Other records are decoded."""
        view = _IoView(state)
        head = RecordView.HEAD.unpack_from
        io = frozenset(io_exits())
        groups = {name: [c for c in self.counters if c.tile.gate == name and not c.tile.id.startswith("app_")]
                  for name in GATES}
        by_type = {"file": groups["file"], "ipv4": groups["net"], "ipv6": groups["net"]}
        # The Network apps tiles only where the server port is one of theirs.
        apps = [c for c in self.counters if c.tile.id.startswith("app_")]
        app_ports = frozenset(p for _, _, ports in APP_PORTS for p in ports)
        t0, bucket_ns, last_bucket = self.t0, self.bucket_ns, self.last_bucket

        def count(buf: bytes, off: int) -> None:
            ts, tid, pid, evt, _cpu, _len, ret = head(buf, off)
            if evt not in io:
                self.on_event(Event(buf, off, 0, state))
                return
            if ret <= 0 or buf[off + OFF_FLAGS] & RF_HIDDEN:
                return
            view.set(buf, off, tid, pid, evt, ret)
            fd = view.fd
            if fd is None:
                return
            counters = by_type.get(fd.type)
            if not counters:
                return
            b = min((ts - t0) // bucket_ns if ts > t0 else 0, last_bucket)
            for c in counters:
                c.add(b, view, ret)  # type: ignore[arg-type]  # the view has what the tiles read
            if fd.type != "file" and fd.sport in app_ports:
                for c in apps:
                    c.add(b, view, ret)  # type: ignore[arg-type]

        return count

    def record_tally(self, state: State) -> RecordTally:
        """The pipeline's ``on_records``: counts the tiles of matched records in C (``iotally``)."""
        return RecordTally(self, state)

    def dump(self) -> dict[str, dict[int, Any]]:
        """Per tile id, per bucket: a number, or the sorted list of distinct keys."""
        out: dict[str, dict[int, Any]] = {}
        for c in self.counters:
            out[c.tile.id] = {b: sorted(v) if isinstance(v, set) else v for b, v in c.buckets.items()}
        return out


# What a plan may depend on: the fields the tiles of the records ``iotally`` counts may read. An
# I/O exit's plan is keyed by its event and these attributes of its fd; any other event's by its
# event and the sign of its result.
_IO_FIELDS: Final = frozenset({"fd.type", "fd.name", "fd.l4proto", "fd.sport", "evt.is_io", "evt.is_io_read",
                               "evt.is_io_write", "evt.dir", "evt.rawres", "evt.rawarg.res"})
_RET_FIELDS: Final = frozenset({"evt.type", "evt.dir", "evt.failed", "evt.rawres"})
_FIELD: Final = re.compile(r"\b[a-z][a-z0-9_]*\.[a-z0-9_.]+")


def _reads(text: str) -> set[str]:
    """Field names a filter text mentions (strings and numbers aside)."""
    return set(_FIELD.findall(re.sub(r'"[^"]*"|\'[^\']*\'|\s/[^ )]*', " ", text)))


class RecordTally:
    """A Summary's counts of the records an exact selection matched, kept in C: ``iotally`` walks
    the selection, looks each record's plan up (what tiles it adds to, and how) by the facts
    those tiles read, and only asks Python (``_plan``, decoding one Event) for a plan it has not
    seen. Events whose tiles read more than that stay with ``Summary.record_counter``."""

    def __init__(self, summary: Summary, state: State) -> None:
        self.summary = summary
        self.state = state
        self.slots = {id(c): n for n, c in enumerate(summary.counters)}
        self.keys: dict[str, int] = {}
        self.plans: dict[tuple[Any, ...], tuple[int, ...]] = {}
        self.sums: array[int] = array("Q")
        self.distinct: set[int] = set()
        io = io_exits()
        kinds = bytearray(EVT_MAX)
        for evt in summary.evts or ():
            gates = summary.by_evt.get(evt, summary.any_evt)
            reads: set[str] = set()
            for g in gates:
                reads |= _reads(g.text)
                for c in g.counters:
                    reads |= _reads(c.tile.filter) | set(c.tile.keys) | ({c.tile.value} if c.tile.value else set())
            if evt in io and reads <= _IO_FIELDS:
                kinds[evt] = KIND_IO
            elif reads <= _RET_FIELDS and all(c.tile.kind == "count" for g in gates for c in g.counters):
                kinds[evt] = KIND_RET
        self.kinds = bytes(kinds)
        # Their plans read no state: the scanner may apply a fast event that is one at once.
        self.stateless = bytes(k == KIND_RET for k in kinds)
        self.regs = bytes(FD_REGS[e] if e < EVT_BASE_OTHER else 255 for e in range(EVT_MAX))

    def on_records(self) -> RecordRuns:
        """The pipeline's ``on_records``: ``iotally.count`` with this counter's arguments bound."""
        s = self.summary
        return functools.partial(iotally.count, self.kinds, self.regs, self.state.fds, s.t0, s.bucket_ns,
                                 s.last_bucket, len(s.counters), self.plans, self._plan, self.sums, self.distinct)

    def on_event(self, ev: Event) -> None:
        """The pipeline's ``on_event``: an event whose tiles read only its type and result (a state
        change the scanner left to Python) is counted by its plan; others by ``Summary.on_event``."""
        evt = ev.evt
        if evt >= len(self.kinds) or self.kinds[evt] != KIND_RET:
            self.summary.on_event(ev)
            return
        ret = ev.ret
        key = (evt, -1 if ret < 0 else (1 if ret > 0 else 0))
        plan = self.plans.get(key)
        if plan is None:
            plan = self.plans[key] = self.plan_event(ev)
        if plan:
            s = self.summary
            b = min((ev.ts - s.t0) // s.bucket_ns if ev.ts > s.t0 else 0, s.last_bucket)
            for e in plan:  # only counts: KIND_RET's tiles are counts
                c = s.counters[(e >> 2) & 0x3FFF]
                c.buckets[b] = c.buckets.get(b, 0) + 1

    def _plan(self, batch: bytes, off: int) -> tuple[int, ...]:
        return self.plan_event(Event(batch, off, 0, self.state))

    def plan_event(self, ev: Event) -> tuple[int, ...]:
        """What ``ev`` adds to which tiles, as ``Summary.on_event`` would count it."""
        s = self.summary
        out: list[int] = []
        for g in s.by_evt.get(ev.evt, s.any_evt):
            if g.flt is not None and not g.flt.match(ev):
                continue
            for c in g.counters:
                if c.flt is not None and not c.flt.match(ev):
                    continue
                slot = self.slots[id(c)] << 2
                if c.tile.kind == "count":
                    out.append(slot | OP_COUNT)
                    continue
                v = c.value(ev) if c.value is not None else 1
                if v is None or isinstance(v, (str, bytes)) or not v > 0:
                    continue
                if c.tile.kind == "sum":
                    out.append(slot | OP_SUM)
                    continue
                parts = []
                for fn in c.keys:
                    k = fn(ev)
                    if k is None:
                        break
                    parts.append(lua_str(k))
                else:
                    key = "\x1f".join(parts)
                    kid = self.keys.setdefault(key, len(self.keys))
                    out.append(kid << 16 | slot | OP_DISTINCT)
        return tuple(out)

    def merge(self) -> None:
        """Add what was counted here to the summary's counters (before ``Summary.dump``)."""
        counters = self.summary.counters
        n = len(counters)
        sums = self.sums
        for b in range(len(sums) // n):
            for k, c in enumerate(counters):
                v = sums[b * n + k]
                if v:
                    c.buckets[b] = c.buckets.get(b, 0) + v
        names = list(self.keys)
        mask = (1 << 36) - 1
        for d in self.distinct:
            c = counters[(d >> 36) & 0xFF]
            b = d >> 44
            got = c.buckets.get(b)
            if got is None:
                got = c.buckets[b] = set()
            got.add(names[d & mask])
        del self.sums[:]  # in place: on_records holds them
        self.distinct.clear()


# iotally's codes: event kinds, plan operations.
KIND_IO: Final = 1
KIND_RET: Final = 2
OP_SUM: Final = 0
OP_COUNT: Final = 1
OP_DISTINCT: Final = 2


def totals(tile: Tile, buckets: dict[int, Any], first: int, last: int, step: int = 1) -> tuple[int, list[int]]:
    """A tile's total over buckets [first, last] and its sparkline: one value per ``step`` buckets
    from ``first`` (the last point may cover fewer), the sum, or for a distinct tile the number of
    different keys, over those buckets. The total is exact whatever the step."""
    step = max(1, step)
    spark: list[int] = []
    if tile.kind == "distinct":
        seen: set[str] = set()
        for g in range(first, last + 1, step):
            point: set[str] = set()
            for b in range(g, min(g + step, last + 1)):
                keys = buckets.get(b)
                if keys:
                    point.update(keys)
            seen |= point
            spark.append(len(point))
        return len(seen), spark
    total = 0
    for g in range(first, last + 1, step):
        v = sum(int(buckets.get(b) or 0) for b in range(g, min(g + step, last + 1)))
        total += v
        spark.append(v)
    return total, spark


def step_for(nbuckets: int, points: int) -> int:
    """Buckets per point so that ``nbuckets`` fit in at most ``points`` points (at least 1)."""
    return max(1, -(-nbuckets // max(1, points)))
