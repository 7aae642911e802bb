"""topfiles_time: files by time spent in their reads and writes."""

from __future__ import annotations

from tracer.chisel import FILE_IO, PC_DESC, TableChisel, TableSpec


class TopFilesTime(TableChisel):
    name = "topfiles_time"
    category = "I/O"
    short_description = "Top files by time"
    description = "Shows the top files in terms of time spent reading and writing them. " + PC_DESC
    spec = TableSpec(("fd.name",), ("Filename",), "evt.latency", "Time", FILE_IO, 10, "time")
    container_spec = spec.with_keys(("fd.name", "container.name"), ("Filename", "container.name"))
