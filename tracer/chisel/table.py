"""Table chisels (sysdig's table_generator): group events by keys, sum a value, print the top rows
every second live or once at the end; and the CPU-sample variant behind topprocs_cpu."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, ClassVar, Final

from ..event import Event
from ..schema import record as R
from . import counter
from .contract import Chisel, ChiselError
from .format import ONE_SECOND, extend_string, format_bytes, format_time_interval, lua_str

if TYPE_CHECKING:
    from ..state.state import State

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
        return counter.record_counter(self, state)

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

