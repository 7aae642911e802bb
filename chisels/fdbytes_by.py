"""fdbytes_by KEY: I/O bytes grouped by any field."""

from __future__ import annotations

from tracer.chisel import ChiselArg, TableChisel, TableSpec


class FdBytesBy(TableChisel):
    name = "fdbytes_by"
    category = "I/O"
    short_description = "I/O bytes, aggregated by an arbitrary filter field"
    description = ("Groups FD activity based on the given filter field, and returns the key that generated the "
                   "most input+output bytes. For example, this script can be used to list the processes or TCP "
                   "ports that generated most traffic.")
    args = (ChiselArg("key", "The filter field used for grouping"),)
    spec = TableSpec((), (), "evt.rawarg.res", "Bytes", "evt.is_io=true and evt.failed=false", 30, "bytes")

    def table_spec(self) -> TableSpec:
        key = self.arg["key"]
        return self.spec.with_keys((key,), (key,))
