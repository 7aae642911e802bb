"""fdcount_by KEY: distinct fds used, grouped by any field."""

from __future__ import annotations

from tracer.chisel import ChiselArg, TableChisel, TableSpec
from tracer.event import Event


class FdCountBy(TableChisel):
    """Counts the distinct fds (number and name) each key was seen using. Like sysdig it prints
    once, at the end, as ``key<TAB>count`` lines, most fds first (rich and JSON tables otherwise)."""

    name = "fdcount_by"
    category = "I/O"
    short_description = "FD count, aggregated by an arbitrary filter field"
    description = ("Groups all the active FDs based on the given filter field, and returns the fd count for each "
                   "key. For example, it can be used to list the number of connections per process or per IP "
                   "endpoint.")
    args = (ChiselArg("key", "The filter field used for grouping"),)
    spec = TableSpec((), (), "fd.num", "Count", None, 0, "none")

    def table_spec(self) -> TableSpec:
        key = self.arg["key"]
        return self.spec.with_keys((key,), (key,))

    def on_init(self) -> None:
        super().on_init()
        self.interval_ns = 0
        self.fd_name = self.field("fd.name")
        self.seen: dict[tuple[str, ...], set[tuple[int, str]]] = {}

    def on_capture_start(self, live: bool) -> None:
        self.live = live  # no periodic tables, so no screen to clear

    def on_event(self, ev: Event) -> None:
        key = self.key_of(ev)
        num = self.value_fn(ev)
        name = self.fd_name(ev)
        # fd 0 does not count (sysdig wants fd.num > 0), nor an fd without a name.
        if key is None or num is None or num <= 0 or not name:
            return
        fds = self.seen.setdefault(key, set())
        fds.add((num, name))
        self.table[key] = len(fds)

    def on_capture_end(self, ts_ns: int) -> None:
        if self.ctx.json_out or self.ctx.terminal:
            self.live = False
            self.emit(ts_ns, 0)
            return
        for key, count in self.sorted_rows():
            self.print(f"{key[0]}\t{count}")
