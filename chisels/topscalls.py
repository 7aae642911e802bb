"""topscalls: system calls by number of calls (enters and exits both count, as in sysdig)."""

from __future__ import annotations

from tracer.chisel import PC_DESC, TableChisel, TableSpec


class TopScalls(TableChisel):
    name = "topscalls"
    category = "Performance"
    short_description = "Top system calls by number of calls"
    description = ("Show the top 30 system calls in terms of number of calls. You can use filters to restrict this "
                   "to a specific process, thread or file. " + PC_DESC)
    spec = TableSpec(("evt.type",), ("Syscall",), "evt.count", "# Calls", "evt.type!=switch", 30, "none")
    container_spec = spec.with_keys(("evt.type", "container.name"), ("Syscall", "container.name"))
