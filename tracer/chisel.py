"""Chisels: the contract (sysdig's, as a typed class), the generic table chisel, and the registry.

A chisel is a class: metadata (name, descriptions, category, typed arguments) and hooks the session
calls -- ``on_capture_start(live)``, ``on_event(ev)`` for every event that passes both the user's
filter and the chisel's own ``filter``, ``on_interval(ts_ns)`` every ``interval_ns`` (live only),
``on_capture_end(ts_ns)``. ``on_init`` runs once the arguments are known and says what the chisel
needs: ``filter`` (sysdig syntax; the session ANDs it with the user's and pushes both down),
``fields`` (what it reads, e.g. ``evt.latency`` makes the session pair enters with exits),
``interval_ns``, ``needs_cpu`` (live CPU samples) and ``snaplen``. Setting ``done`` asks the session
to stop reading, like sysdig's ``end_capture()``.

Where chisels come from, first match wins: ``--chisel-dir`` directories, then ``$KTRACE_CHISEL_DIR``
(``os.pathsep``-separated), then the ``ktrace.chisels`` entry-point group, then the built-ins (the
top-level ``chisels`` package, one module per chisel). A directory chisel is ``NAME.py`` defining
one Chisel subclass (or ``CHISEL = TheClass``).

Arguments on the command line (``ktrace -c NAME [ARGS] [FILTER]``): like sysdig, declared arguments
are taken positionally, required ones first. An optional argument takes the next token only when
the token fits it -- an integer for ``int``, one of its ``choices`` for a keyword, anything for a
``filter`` argument (which takes every remaining token: ps/lsof/netstat), and for other strings
any token that does not look like a filter (no ``= < > ! ( )``, not a field name or ``and``/``or``/
``not``). An optional argument that does not fit is left at its default and the next one is tried
with the same token; the first token no remaining argument fits starts the filter.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import importlib.util
import json
import os
import pkgutil
import re
import sys
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from decimal import ROUND_HALF_UP, Decimal
from types import ModuleType
from typing import IO, TYPE_CHECKING, Any, ClassVar, Final

from .errors import KtraceError, UsageError
from .event import Event, RecordView, RenderOptions
from .output.format import resolve_field
from .schema import record as R
from .schema.events import SYSCALL_NR, event_info
from .schema.types import PT

if TYPE_CHECKING:
    from rich.console import Console

    from .filter.compiler import CompiledFilter
    from .state.state import State
    from .state.tables import Fd, Thread

ENTRY_POINT_GROUP: Final = "ktrace.chisels"
ENV_DIRS: Final = "KTRACE_CHISEL_DIR"
ONE_SECOND: Final = 1_000_000_000
NA: Final = "<NA>"


class ChiselError(KtraceError):
    """A chisel that cannot be loaded: a syntax or import error, or missing metadata."""


# --- sysdig's formatting helpers (common.lua) ------------------------------------------------------
def extend_string(s: str, width: int) -> str:
    """Pad to ``width``; a string that long or longer is cut to ``width - 1`` plus a space."""
    if len(s) < width:
        return s.ljust(width)
    return s[: width - 1] + " " if width > 0 else ""


def format_bytes(val: float) -> str:
    """1230 -> ``1.20KB``: a unit switches only once the value is strictly above 1024^k."""
    for power, unit in ((5, "P"), (4, "T"), (3, "G"), (2, "M"), (1, "KB")):
        if val > 1024**power:
            return f"{_half_up(val / 1024**power)}{unit}"
    return f"{int(val)}B"


def _half_up(v: float) -> str:
    """Two decimals, halves rounded up as sysdig's Lua formats them (10.625 -> 10.63), where
    Python's formatting rounds them to even."""
    return str(Decimal(v).quantize(Decimal("0.01"), ROUND_HALF_UP))


def format_time_interval(ns: float) -> str:
    """A duration in ns the way sysdig prints it: ``1.50s``, ``12ms``, ``3.25ms``, ``15us``, ``7ns``."""
    v = int(ns)
    if v >= ONE_SECOND:
        return f"{v // ONE_SECOND}.{(v % ONE_SECOND) // 10_000_000:02d}s"
    if v >= 10_000_000:
        return f"{v // 1_000_000}ms"
    if v >= 1_000_000:
        return f"{v // 1_000_000}.{(v % 1_000_000) // 10_000:02d}ms"
    if v >= 10_000:
        return f"{v // 1_000}us"
    if v >= 1_000:
        return f"{v // 1_000}.{(v % 1_000) // 10:02d}us"
    return f"{v}ns"


def lua_str(v: Any) -> str:
    """A field value as sysdig's chisels turn it into text (Lua ``tostring``)."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        return str(int(v)) if v.is_integer() and abs(v) < 1e15 else f"{v:.14g}"
    if isinstance(v, bytes):
        return v.decode(errors="replace")
    if isinstance(v, list):
        return ",".join(lua_str(x) for x in v)
    return str(v)


class Palette:
    """ANSI colours (ansiterminal.lua), or empty strings when colour is off."""

    _CODES: ClassVar[dict[str, int]] = {"reset": 0, "red": 31, "green": 32, "yellow": 33, "blue": 34,
                                        "magenta": 35, "cyan": 36}

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        for name, code in self._CODES.items():
            setattr(self, name, f"\x1b[{code}m" if enabled else "")

    reset: str
    red: str
    green: str
    yellow: str
    blue: str
    magenta: str
    cyan: str


# --- the contract ----------------------------------------------------------------------------------
ARG_TYPES: Final = ("int", "string", "filter")
_FILTER_WORDS: Final = frozenset({"and", "or", "not"})
_INT_RE: Final = re.compile(r"-?\d+")


def _unquote(token: str) -> str:
    """sysdig passes an argument with spaces as one token in single quotes: ``"'a and b'"``."""
    if len(token) >= 2 and token[0] == token[-1] == "'":
        return token[1:-1]
    return token


def looks_like_filter(token: str) -> bool:
    """True for a token that starts (or is) a filter expression rather than a chisel argument."""
    if any(c in token for c in "=<>!()"):
        return True
    first = token.split()[0] if token.split() else ""
    return first in _FILTER_WORDS or resolve_field(first) is not None


@dataclass(frozen=True)
class ChiselArg:
    """One declared argument. ``type`` is what ``-i`` shows (sysdig's int, string, filter);
    ``choices`` makes an optional string a keyword that only those tokens fill."""

    name: str
    description: str
    type: str = "string"
    optional: bool = False
    choices: tuple[str, ...] = ()
    default: Any = None

    def fits(self, token: str) -> bool:
        """Whether an optional argument should take this token (see the module docstring)."""
        if self.type == "int":
            return bool(_INT_RE.fullmatch(token))
        if self.choices:
            return token in self.choices
        if self.type == "filter":
            return True
        return not looks_like_filter(token)

    def convert(self, token: str, chisel: str) -> Any:
        token = _unquote(token)
        if self.type == "int":
            if not _INT_RE.fullmatch(token.strip()):
                raise UsageError(f"chisel {chisel}: argument '{self.name}' must be a number, not '{token}'")
            return int(token)
        return token


@dataclass
class ChiselContext:
    """How the run looks to a chisel: -pc, -j, buffer rendering, live or not, where to write.

    ``console`` (a rich Console) decides terminal or not; tests pass one with a fixed width.
    """

    container_mode: bool = False
    json_out: bool = False
    render: RenderOptions = field(default_factory=RenderOptions)
    live: bool = False
    out: IO[str] | None = None
    console: Console | None = None

    def stream(self) -> IO[str]:
        if self.console is not None:
            return self.console.file
        return self.out if self.out is not None else sys.stdout

    def get_console(self) -> Console:
        if self.console is None:
            from rich.console import Console

            self.console = Console(file=self.stream(), highlight=False)
        return self.console

    @property
    def terminal(self) -> bool:
        return self.get_console().is_terminal

    @property
    def colors(self) -> bool:
        """Colour escapes only on a terminal: a pipe gets what sysdig prints with colours off."""
        c = self.get_console()
        return c.is_terminal and not c.no_color


Extractor = Callable[[Event], Any]


class Chisel:
    """Base of every chisel. Subclasses set the metadata and override the hooks they need.

    Construction takes the context and the parsed arguments, then calls ``on_init``: anything an
    argument changes (the filter, the fields) is settled there, before the session starts.
    """

    name: ClassVar[str] = ""
    short_description: ClassVar[str] = ""
    description: ClassVar[str] = ""
    category: ClassVar[str] = ""
    args: ClassVar[tuple[ChiselArg, ...]] = ()
    hidden: ClassVar[bool] = False

    def __init__(self, ctx: ChiselContext | None = None, args: Mapping[str, Any] | None = None) -> None:
        self.ctx = ctx if ctx is not None else ChiselContext()
        self.arg: dict[str, Any] = {a.name: a.default for a in self.args}
        self.arg.update(args or {})
        self.filter: str | None = None
        self.fields: set[str] = set()
        self.interval_ns = 0
        self.needs_cpu = False
        self.snaplen: int | None = None
        self.done = False
        self.state: State | None = None  # the session's state tables, set before the run starts
        self.live = self.ctx.live
        self.out = self.ctx.stream()
        self.on_init()

    # --- hooks ---------------------------------------------------------------------------------
    def on_init(self) -> None:
        """Settle filter, fields, interval and the like from the arguments."""

    def on_capture_start(self, live: bool) -> None:
        self.live = live

    def on_event(self, ev: Event) -> None:
        """One event that passed the filters."""

    def on_interval(self, ts_ns: int) -> None:
        """Every ``interval_ns`` of a live run."""

    def on_capture_end(self, ts_ns: int) -> None:
        """The end of the file(s), Ctrl-C, -M or -n."""

    # --- helpers -------------------------------------------------------------------------------
    def field(self, name: str) -> Extractor:
        """An extractor for a field as written in sysdig (``evt.rawarg.res``, ``proc.aname[2]``)."""
        found = resolve_field(name)
        if found is None:
            raise UsageError(f"chisel {self.name}: unknown field '{name}'; `ktrace -l` lists fields")
        fdef, arg = found
        self.fields.add(fdef.name)
        return lambda ev: fdef.extract(ev, arg)

    def print(self, line: str = "") -> None:
        self.out.write(line + "\n")

    def flush(self) -> None:
        """Live output reaches a pipe at once (``ktrace -c spy_users | grep``), not at exit."""
        if self.live:
            self.out.flush()

    def palette(self, disabled: bool = False) -> Palette:
        return Palette(self.ctx.colors and not disabled)

    @classmethod
    def check_metadata(cls, origin: str) -> None:
        """Raise ChiselError when the class lacks what -cl and -i need."""
        for attr in ("name", "short_description", "category"):
            v = getattr(cls, attr, None)
            if not isinstance(v, str) or not v:
                raise ChiselError(f"{origin}: chisel {cls.__name__} has no {attr}")
        if not isinstance(cls.args, tuple) or not all(isinstance(a, ChiselArg) for a in cls.args):
            raise ChiselError(f"{origin}: chisel {cls.name}: args must be a tuple of ChiselArg")
        for a in cls.args:
            if a.type not in ARG_TYPES:
                raise ChiselError(f"{origin}: chisel {cls.name}: argument {a.name} has unknown type {a.type!r}")


# --- the generic table chisel (sysdig's table_generator) -------------------------------------------
UNITS: Final = ("bytes", "time", "timepct", "none")
NET_IO: Final = "(fd.type=ipv4 or fd.type=ipv6) and evt.is_io=true"  # the filters sysdig's chisels share
FILE_IO: Final = "fd.type=file and evt.is_io=true"
PC_DESC: Final = ("This chisel is compatible with containers using the ktrace -pc or -pcontainer argument, "
                  "otherwise no container information will be shown.")
KEY_WIDTH: Final = 20


@dataclass(frozen=True)
class TableSpec:
    """A table: group events by ``keys`` (shown as ``key_descs``), sum ``value`` (``value_desc``),
    over the events ``filter`` admits; print the ``top`` rows (0 = all) in ``units``."""

    keys: tuple[str, ...]
    key_descs: tuple[str, ...]
    value: str
    value_desc: str
    filter: str | None = None
    top: int = 0
    units: str = "none"

    def with_keys(self, keys: tuple[str, ...], key_descs: tuple[str, ...]) -> TableSpec:
        return replace(self, keys=keys, key_descs=key_descs)


def plain_table(spec: TableSpec, rows: list[tuple[tuple[str, ...], str]]) -> list[str]:
    """sysdig's layout: value and keys padded to 20 (the last key in full), 80 dashes."""
    header = extend_string(spec.value_desc, KEY_WIDTH) + "".join(extend_string(d, KEY_WIDTH) for d in spec.key_descs)
    lines = [header, "-" * 80]
    for keys, value in rows:
        cut = "".join(extend_string(k[:KEY_WIDTH], KEY_WIDTH) for k in keys[:-1])
        lines.append(extend_string(value, KEY_WIDTH) + cut + (keys[-1] if keys else ""))
    return lines


def json_table(spec: TableSpec, data: list[list[Any]], ts_ns: int) -> str:
    """sysdig's JSON table; the value's info entry follows the keys (sysdig put it at index 3)."""
    info: list[dict[str, Any]] = [{"is_key": True, "name": k, "desc": d} for k, d in zip(spec.keys, spec.key_descs,
                                                                                           strict=True)]
    info.append({"is_key": False, "name": spec.value, "desc": spec.value_desc})
    return json.dumps({"info": info, "ts": str(ts_ns), "data": data}, separators=(",", ":"))


def _res_is_ret() -> bytes:
    """Event ids whose evt.rawarg.res is the return value as it is (a signed 64-bit result)."""
    m = bytearray(R.EVT_BASE_OTHER)
    for evt in range(1, R.EVT_BASE_OTHER, 2):
        info = event_info(evt)
        p = next((p for p in info.params(1) if p.name == "res"), None) if info is not None else None
        if p is not None and p.src == "ret" and p.type in (PT.RES, PT.RESFD, PT.INT64):
            m[evt] = 1
    return bytes(m)


_RES_IS_RET: Final = _res_is_ret()


class TableChisel(Chisel):
    """Configure with ``spec`` (and ``container_spec`` for -pc). Live: a table every second, then
    reset; offline: one table at the end. A value counts only if set and > 0, so enter events and
    failed calls add nothing.

    Output: on a terminal a rich table (live: the screen is cleared each second, like sysdig); on
    a pipe sysdig's plain layout (live: each table after a time line, and the rest of the last
    second at the end, so the tables add up to the whole run); with -j one JSON table per line.
    """

    spec: ClassVar[TableSpec]
    container_spec: ClassVar[TableSpec | None] = None

    def table_spec(self) -> TableSpec:
        """The spec in force: the -pc variant when there is one and -pc was given."""
        if self.ctx.container_mode and self.container_spec is not None:
            return self.container_spec
        return self.spec

    def on_init(self) -> None:
        self.table_cfg = spec = self.table_spec()
        if len(spec.keys) != len(spec.key_descs):
            raise ChiselError(f"chisel {self.name}: {len(spec.keys)} keys but {len(spec.key_descs)} key descriptions")
        if spec.units not in UNITS:
            raise ChiselError(f"chisel {self.name}: unknown units {spec.units!r}")
        self.key_fns = [self.field(k) for k in spec.keys]
        self.value_fn = self.field(spec.value)
        self.filter = spec.filter
        if spec.value == "evt.rawarg.res":
            # Only exits carry a result: enters would reach the table only to add nothing.
            self.filter = f"({spec.filter}) and evt.dir=<" if spec.filter else "evt.dir=<"
        self.interval_ns = ONE_SECOND if self.ctx.live else 0
        self.table: dict[tuple[str, ...], Any] = {}
        self.start_ts = 0  # the first event's time (offline timepct divides by the span)
        self.last_print_ts = 0
        self.printed = 0

    def on_capture_start(self, live: bool) -> None:
        super().on_capture_start(live)
        if live and not self.ctx.json_out and self.ctx.terminal:
            console = self.ctx.get_console()
            console.show_cursor(False)
            console.clear()
        self.last_print_ts = time.time_ns() if live else 0

    def key_of(self, ev: Event) -> tuple[str, ...] | None:
        parts = []
        for fn in self.key_fns:
            v = fn(ev)
            if v is None:
                return None
            parts.append(lua_str(v))
        return tuple(parts)

    def record_counter(self, state: State) -> Callable[[bytes, int], None] | None:
        """``on_event`` for records, without an Event, when the table allows it: keys of fields
        marked ``raw`` and the return value (evt.rawarg.res) as the value. The pipeline hands it
        the records an exact filter matched; anything else still comes to ``on_event``."""
        if self.table_cfg.value != "evt.rawarg.res":
            return None
        for k in self.table_cfg.keys:
            found = resolve_field(k)
            if found is None or not found[0].raw:
                return None
        view = RecordView(state)
        head = RecordView.HEAD.unpack_from
        res = _RES_IS_RET
        nres = len(res)
        # Keys by (tid, fd object): valid while the state's version (bumped by every change made
        # in place) stays the same and the thread and fd are the same objects.
        keys: dict[tuple[int, int], tuple[Any, Any, tuple[str, ...] | None]] = {}
        version = -1

        def count(buf: bytes, off: int) -> None:
            nonlocal version
            ts, tid, pid, evt, _cpu, _len, ret = head(buf, off)
            if not self.start_ts:
                self.start_ts = state.start_ts or ts
            if ret <= 0 or evt >= nres or not res[evt] or buf[off + 84] & R.RF_HIDDEN:
                return  # enters, failures, internal events: no value, as in on_event
            view.set(buf, off, tid, pid, evt, ret)
            if version != state.version:
                keys.clear()
                version = state.version
            fd, thread = view.fd, view.thread
            slot = (tid, id(fd))
            known = keys.get(slot)
            if known is not None and known[0] is fd and known[1] is thread:
                key = known[2]
            else:
                key = self.key_of(view)  # type: ignore[arg-type]  # raw fields read only the view's part
                if len(keys) > 65536:
                    keys.clear()
                keys[slot] = (fd, thread, key)
            if key is not None:
                self.table[key] = self.table.get(key, 0) + ret

        return count

    def on_event(self, ev: Event) -> None:
        if not self.start_ts:
            self.start_ts = ev.state.start_ts or ev.ts
        key = self.key_of(ev)
        if key is None:
            return
        value = self.value_fn(ev)
        if value is None or isinstance(value, (str, bytes)) or not value > 0:
            return
        self.table[key] = self.table.get(key, 0) + value

    def on_interval(self, ts_ns: int) -> None:
        self.emit(ts_ns, ts_ns - self.last_print_ts if self.last_print_ts else ONE_SECOND)
        self.table = {}
        self.last_print_ts = ts_ns

    def on_capture_end(self, ts_ns: int) -> None:
        start = self.last_print_ts if self.live else self.start_ts
        tty = self.live and self.ctx.terminal and not self.ctx.json_out
        # A terminal keeps the last table on the screen (a partial second would only flicker),
        # unless the run was too short for one; a pipe gets the rest, so its tables add up.
        if not (tty and self.printed):
            self.emit(ts_ns, ts_ns - start if start else 0)
        if tty:
            self.ctx.get_console().show_cursor(True)

    # --- output --------------------------------------------------------------------------------
    def sorted_rows(self) -> list[tuple[tuple[str, ...], Any]]:
        """Largest value first (ties by key, so output is stable), cut to the top N."""
        rows = sorted(self.table.items(), key=lambda kv: (-kv[1], kv[0]))
        top = self.table_cfg.top
        return rows[:top] if top else rows

    def format_value(self, v: Any, delta_ns: int) -> str:
        units = self.table_cfg.units
        if units == "bytes":
            return format_bytes(v)
        if units == "time":
            return format_time_interval(v)
        if units == "timepct":
            return f"{v / delta_ns * 100:.2f}%" if delta_ns > 0 else "0.00%"
        return lua_str(v)

    def emit(self, ts_ns: int, delta_ns: int) -> None:
        """Print the current table."""
        spec = self.table_cfg
        rows = self.sorted_rows()
        if self.ctx.json_out:
            self.print(json_table(spec, [[*k, v] for k, v in rows], ts_ns))
            self.flush()
            return
        text_rows = [(k, self.format_value(v, delta_ns)) for k, v in rows]
        if self.ctx.terminal:
            self.rich_table(spec, text_rows, ts_ns)
            return
        if self.live:
            if self.printed:
                self.print()
            self.print(time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ts_ns // ONE_SECOND)))
        for line in plain_table(spec, text_rows):
            self.print(line)
        self.printed += 1
        self.flush()

    def rich_table(self, spec: TableSpec, rows: list[tuple[tuple[str, ...], str]], ts_ns: int) -> None:
        from rich import box
        from rich.table import Table
        from rich.text import Text

        console = self.ctx.get_console()
        table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, header_style="bold")
        table.add_column(spec.value_desc, no_wrap=True)
        for i, desc in enumerate(spec.key_descs):
            last = i == len(spec.key_descs) - 1
            table.add_column(desc, no_wrap=not last, overflow="fold" if last else "ellipsis",
                             max_width=None if last else KEY_WIDTH - 1)
        for keys, value in rows:
            table.add_row(Text(value), *(Text(k) for k in keys))
        if self.live:
            console.clear()
            console.print(Text(time.strftime("%H:%M:%S", time.localtime(ts_ns // ONE_SECOND)), style="dim"))
        console.print(table)
        self.printed += 1


class CpuTableChisel(TableChisel):
    """CPU% per key from the CPU samples (``procinfo`` events, one round a second for every thread
    that used CPU). Each thread's share is its CPU ticks (1/100 s each) since its previous sample,
    like sysdig's ``thread.cpu x 10^7``; the table divides the CPU time by the time the rounds
    span: percent of one CPU, above 100 for a process on several CPUs.

    Rounds are the unit, not the printing interval: a live table covers the rounds that arrived
    since the previous table, so a round landing just before or after a tick is never counted
    twice or lost; offline the table covers the first round to the last. A thread's first sample
    is its baseline, unless the thread was born after the first round (then it counts from 0).
    """

    def on_init(self) -> None:
        super().on_init()
        self.filter = "evt.type=procinfo"
        self.fields.add("thread.cpu")
        self.needs_cpu = True
        self.ticks: dict[int, int] = {}
        self.round_ts = 0  # the round being read (all samples of a round share its time)
        self.first_round_ts = 0
        self.span = 0  # ns covered by the rounds accumulated in the table
        self.rounds = 0

    def on_event(self, ev: Event) -> None:
        t = ev.thread
        if t is None or ev.evt != R.EVT_PROCINFO:
            return
        if ev.ts != self.round_ts:
            if self.round_ts:
                self.span += ev.ts - self.round_ts
            else:
                self.first_round_ts = ev.ts
            self.round_ts = ev.ts
            self.rounds += 1
        ticks = t.cpu_ticks
        prev = self.ticks.get(t.tid)
        if prev is None:
            prev = 0 if t.start_ts and self.first_round_ts and t.start_ts > self.first_round_ts else ticks
        self.ticks[t.tid] = ticks
        if ticks <= prev:
            return
        key = self.key_of(ev)
        if key is not None:
            self.table[key] = self.table.get(key, 0) + (ticks - prev) * 10_000_000

    def on_interval(self, ts_ns: int) -> None:
        if not self.rounds and self.printed:
            return  # no round since the last table: keep it rather than print an empty one
        self.emit(ts_ns, self.span)
        self.table = {}
        self.span = 0
        self.rounds = 0
        self.last_print_ts = ts_ns

    def on_capture_end(self, ts_ns: int) -> None:
        tty = self.live and self.ctx.terminal and not self.ctx.json_out
        # Live, only rounds since the last table make a new one, and a terminal keeps the last.
        if not (self.live and self.printed and (tty or not self.rounds)):
            self.emit(ts_ns, self.span)
        if tty:
            self.ctx.get_console().show_cursor(True)


# --- chisels that print the state tables (ps, lsof, netstat, lscontainers) -------------------------
_FSTAT_ENTER: Final = SYSCALL_NR["fstat"] * 2


class StateDumpChisel(Chisel):
    """Dumps the state at the first event that passes the filter, then stops the run (sysdig's
    ``end_capture()``); ``dump`` makes the lines then, so later events cannot change them."""

    need_event: ClassVar[bool] = True  # no event: print sysdig's "empty capture" line instead
    # The tables as of the first event of any kind, internal ones (CPU samples) included, as
    # sysdig's chisels see every event.
    sees_internal: ClassVar[bool] = True

    def on_init(self) -> None:
        self.lines: list[str] | None = None

    def on_event(self, ev: Event) -> None:
        if self.lines is None:
            self.lines = self.dump(ev.state)
        self.done = True

    def on_capture_end(self, ts_ns: int) -> None:
        lines = self.lines
        if lines is None:
            if self.need_event:
                self.print("empty capture or no event matching the filter")
                return
            if self.state is None:
                return
            lines = self.dump(self.state)
        for line in lines:
            self.print(line)

    def dump(self, state: State) -> list[str]:
        raise NotImplementedError

    @staticmethod
    def compile(text: str | None) -> CompiledFilter | None:
        if not text or not text.strip():
            return None
        from .filter.compiler import compile_filter
        from .schema.fields import FIELDS

        return compile_filter(text, FIELDS)

    @staticmethod
    def matching(state: State, flt: CompiledFilter | None) -> Iterable[tuple[Thread, list[Fd]]]:
        """Threads by tid with their process's fds that pass ``flt``. Like sysdig, a thread is
        listed when one of its fds matches; a thread without fds is tested on its own."""
        for tid in sorted(state.threads):
            t = state.threads[tid]
            fds = [state.fds.get(t.pid, {})[n] for n in sorted(state.fds.get(t.pid, {}))]
            if flt is None:
                yield t, fds
                continue
            if not fds:
                if flt.match(_probe(state, t, -1)):
                    yield t, []
                continue
            ok = [fd for fd in fds if flt.match(_probe(state, t, fd.num))]
            if ok:
                yield t, ok

    @staticmethod
    def user_name(state: State, t: Thread) -> str:
        u = state.users.get(t.uid)
        return u.name if u else NA


def _probe(state: State, t: Thread, fd: int) -> Event:
    """An event of thread ``t`` about ``fd``, to run a filter on a state row (an fstat enter: its
    only argument is the fd)."""
    raw = R.pack_record(0, t.tid, t.pid, _FSTAT_ENTER, args=(fd,))
    return Event(raw, 0, 0, state)


# --- registry --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Found:
    cls: type[Chisel]
    origin: str  # "built-in", a file path, or "entry point NAME (VALUE)"


def _search_dirs(extra_dirs: Iterable[str]) -> list[str]:
    dirs = list(extra_dirs)
    env = os.environ.get(ENV_DIRS, "")
    dirs += [d for d in env.split(os.pathsep) if d]
    return dirs


def _chisel_class(module: ModuleType, origin: str, name: str) -> type[Chisel]:
    """The chisel a module defines: its ``CHISEL``, or its one Chisel subclass."""
    cls = getattr(module, "CHISEL", None)
    if cls is None:
        own = [v for v in vars(module).values()
               if isinstance(v, type) and issubclass(v, Chisel) and v.__module__ == module.__name__]
        if len(own) > 1:  # helper base classes have no name of their own
            own = [v for v in own if v.name]
        if len(own) != 1:
            raise ChiselError(f"{origin}: expected one Chisel subclass (or CHISEL = ...), found {len(own)}")
        cls = own[0]
    if not (isinstance(cls, type) and issubclass(cls, Chisel)):
        raise ChiselError(f"{origin}: CHISEL is not a Chisel subclass")
    if not getattr(cls, "name", ""):
        cls.name = name
    cls.check_metadata(origin)
    return cls


def _load_file(path: str, name: str) -> type[Chisel]:
    modname = "ktrace_user_chisel_" + re.sub(r"\W", "_", name)
    try:
        spec = importlib.util.spec_from_file_location(modname, path)
        if spec is None or spec.loader is None:
            raise ChiselError(f"{path}: cannot be loaded as a Python module")
        module = importlib.util.module_from_spec(spec)
        sys.modules[modname] = module  # dataclasses and typing look their module up here
        spec.loader.exec_module(module)
    except KtraceError:
        sys.modules.pop(modname, None)
        raise
    except SyntaxError as e:
        sys.modules.pop(modname, None)
        raise ChiselError(f"{path}: syntax error, line {e.lineno}: {e.msg}") from None
    except (Exception, SystemExit) as e:  # whatever the user's code raises at import
        sys.modules.pop(modname, None)
        raise ChiselError(f"{path}: {type(e).__name__}: {e}") from None
    return _chisel_class(module, path, name)


def _builtin_package() -> ModuleType:
    """The built-in ``chisels`` package, installed next to ``tracer``.

    A directory named ``chisels`` on sys.path (a test directory, sysdig users' Lua chisel
    directories) would otherwise be imported in its place as a namespace package.
    """
    ours = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "chisels")
    pkg = sys.modules.get("chisels")
    if pkg is None:
        try:
            pkg = importlib.import_module("chisels")
        except ImportError:
            pkg = None
    if pkg is not None and (not os.path.isdir(ours) or ours in [os.path.abspath(p) for p in pkg.__path__]):
        return pkg
    init = os.path.join(ours, "__init__.py")
    spec = importlib.util.spec_from_file_location("chisels", init, submodule_search_locations=[ours])
    if spec is None or spec.loader is None:
        raise ChiselError(f"{ours}: the built-in chisels cannot be loaded")
    pkg = importlib.util.module_from_spec(spec)
    sys.modules["chisels"] = pkg
    spec.loader.exec_module(pkg)
    return pkg


def _load_builtin(name: str) -> type[Chisel]:
    _builtin_package()
    module = importlib.import_module(f"chisels.{name}")
    return _chisel_class(module, f"built-in chisel {name}", name)


def _builtin_names() -> list[str]:
    pkg = _builtin_package()
    return sorted(m.name for m in pkgutil.iter_modules(pkg.__path__) if not m.name.startswith("_"))


def _entry_points() -> list[importlib.metadata.EntryPoint]:
    return list(importlib.metadata.entry_points(group=ENTRY_POINT_GROUP))


def _load_entry_point(ep: importlib.metadata.EntryPoint) -> type[Chisel]:
    origin = f"entry point {ep.name} ({ep.value})"
    try:
        obj = ep.load()
    except (Exception, SystemExit) as e:
        raise ChiselError(f"{origin}: {type(e).__name__}: {e}") from None
    if isinstance(obj, ModuleType):
        return _chisel_class(obj, origin, ep.name)
    if isinstance(obj, type) and issubclass(obj, Chisel):
        if not obj.name:
            obj.name = ep.name
        obj.check_metadata(origin)
        return obj
    raise ChiselError(f"{origin}: not a Chisel subclass or a module")


def find_chisel(name: str, extra_dirs: Iterable[str] = ()) -> Found:
    """The chisel called ``name``, from the first place that has it (see the module docstring)."""
    if not name or "/" in name or name.startswith((".", "_")):
        raise UsageError(f"unknown chisel '{name}'; `ktrace -cl` lists them")
    for d in _search_dirs(extra_dirs):
        path = os.path.join(d, f"{name}.py")
        if os.path.isfile(path):
            return Found(_load_file(path, name), path)
    for ep in _entry_points():
        if ep.name == name:
            return Found(_load_entry_point(ep), f"entry point {ep.name} ({ep.value})")
    if name in _builtin_names():
        return Found(_load_builtin(name), "built-in")
    raise UsageError(f"unknown chisel '{name}'; `ktrace -cl` lists them")


def all_chisels(extra_dirs: Iterable[str] = (), on_error: Callable[[ChiselError], None] | None = None
                ) -> dict[str, Found]:
    """Every chisel by name (the first place that has a name wins); broken ones go to ``on_error``."""
    found: dict[str, Found] = {}

    def add(name: str, load: Callable[[], type[Chisel]], origin: str) -> None:
        if name in found:
            return
        try:
            found[name] = Found(load(), origin)
        except ChiselError as e:
            if on_error is None:
                raise
            on_error(e)

    for d in _search_dirs(extra_dirs):
        try:
            files = sorted(f for f in os.listdir(d) if f.endswith(".py") and not f.startswith("_"))
        except OSError:
            continue
        for f in files:
            path = os.path.join(d, f)
            add(f[:-3], lambda p=path, n=f[:-3]: _load_file(p, n), path)  # type: ignore[misc]
    for ep in _entry_points():
        add(ep.name, lambda e=ep: _load_entry_point(e), f"entry point {ep.name}")  # type: ignore[misc]
    for n in _builtin_names():
        add(n, lambda n=n: _load_builtin(n), "built-in")  # type: ignore[misc]
    return found


def parse_args(cls: type[Chisel], rest: list[str]) -> tuple[dict[str, Any], list[str]]:
    """Take the chisel's arguments off the front of ``rest``; what is left is the filter."""
    values: dict[str, Any] = {}
    i = 0

    def take(a: ChiselArg) -> None:
        nonlocal i
        if a.type == "filter":  # a filter argument takes the rest
            values[a.name] = " ".join(_unquote(t) for t in rest[i:])
            i = len(rest)
        else:
            values[a.name] = a.convert(rest[i], cls.name)
            i += 1

    for a in cls.args:
        if a.optional:
            continue
        if i >= len(rest):
            raise UsageError(f"chisel {cls.name}: missing argument '{a.name}' ({a.description})")
        take(a)
    for a in cls.args:
        if a.optional and i < len(rest) and a.fits(rest[i]):
            take(a)
    return values, list(rest[i:])


def load_chisel(name: str, rest: list[str], *, container_mode: bool, json_out: bool, render: RenderOptions,
                extra_dirs: tuple[str, ...] = (), live: bool, out: IO[str] | None = None,
                console: Console | None = None) -> tuple[Chisel, list[str]]:
    """The configured chisel, and what is left of ``rest`` after its arguments (the filter)."""
    found = find_chisel(name, extra_dirs)
    values, remaining = parse_args(found.cls, list(rest))
    ctx = ChiselContext(container_mode=container_mode, json_out=json_out, render=render, live=live, out=out,
                        console=console)
    try:
        chisel = found.cls(ctx, values)
    except KtraceError:
        raise
    except Exception as e:  # a user chisel's on_init: one line naming it, never a traceback
        raise ChiselError(f"chisel {name} ({found.origin}): {type(e).__name__}: {e}") from None
    return chisel, remaining


# --- -cl and -i ------------------------------------------------------------------------------------
DESCRIPTION_TEXT_START: Final = 16
CONSOLE_LINE_LEN: Final = 79


def _list_lines(classes: Iterable[type[Chisel]]) -> list[str]:
    """sysdig's -cl body: a titled block per category, names padded to 16, descriptions wrapped."""
    out: list[str] = []
    last = None
    width = CONSOLE_LINE_LEN - DESCRIPTION_TEXT_START
    for cls in sorted(classes, key=lambda c: (c.category, c.name)):
        if cls.category != last:
            title = f"Category: {cls.category}"
            out += ["", title, "-" * len(title)]
            last = cls.category
        name = cls.name
        if len(name) >= DESCRIPTION_TEXT_START:
            out.append(name)
            name = ""
        desc = cls.short_description
        chunks = [desc[i:i + width] for i in range(0, len(desc), width)] or [""]
        out.append(name.ljust(DESCRIPTION_TEXT_START) + chunks[0])
        out += [" " * DESCRIPTION_TEXT_START + c for c in chunks[1:]]
    return out


def list_chisels(extra_dirs: Iterable[str] = ()) -> str:
    """``ktrace -cl``: sysdig's layout. A broken user chisel is reported on stderr and skipped."""

    def warn(e: ChiselError) -> None:
        print(e.show(), file=sys.stderr)

    found = all_chisels(extra_dirs, on_error=warn)
    lines = _list_lines(f.cls for f in found.values() if not f.cls.hidden)
    lines += ["", "Use the -i flag to get detailed information about a specific chisel"]
    return "\n".join(lines)


def chisel_info(name: str, extra_dirs: Iterable[str] = ()) -> str:
    """``ktrace -i NAME``: sysdig's layout (the -cl entry, the description, the typed args)."""
    cls = find_chisel(name, extra_dirs).cls
    parts = ["\n".join(_list_lines([cls])), ""]
    desc = cls.description or cls.short_description
    parts.append("\n".join(desc[i:i + CONSOLE_LINE_LEN] for i in range(0, len(desc), CONSOLE_LINE_LEN)))
    astr = "Args:\n"
    if cls.args:
        astr += "".join(f"[{a.type}] {a.name} - {a.description}\n" for a in cls.args)
    else:
        astr += "(None)"
    # The argument block wraps every 63 columns of a line, continuing under the description column.
    text: list[str] = []
    linepos = 0
    for ch in astr:
        if ch == "\n":
            linepos = -1
        elif linepos and linepos % (CONSOLE_LINE_LEN - DESCRIPTION_TEXT_START) == 0:
            text.append("\n" + " " * DESCRIPTION_TEXT_START)
        text.append(ch)
        linepos += 1
    parts.append("".join(text))
    return "\n".join(parts)
