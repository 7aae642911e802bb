"""topscalls_time: system calls by time spent in them."""

from __future__ import annotations

from tracer.chisel import PC_DESC, TableChisel, TableSpec


class TopScallsTime(TableChisel):
    name = "topscalls_time"
    category = "Performance"
    short_description = "Top system calls by time"
    description = ("Show the top 30 system calls in terms of time spent in each call. You can use filters to "
                   "restrict this to a specific process, thread or file. " + PC_DESC)
    spec = TableSpec(("evt.type",), ("Syscall",), "evt.latency", "Time", None, 30, "time")
    container_spec = spec.with_keys(("evt.type", "container.name"), ("Syscall", "container.name"))
