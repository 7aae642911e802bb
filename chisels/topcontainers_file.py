"""topcontainers_file: containers by bytes read from and written to files."""

from __future__ import annotations

from tracer.chisel import FILE_IO, TableChisel, TableSpec


class TopContainersFile(TableChisel):
    name = "topcontainers_file"
    category = "I/O"
    short_description = "Top containers by R+W disk bytes"
    description = "Shows the top containers in terms of total (in+out) bytes to disk."
    spec = TableSpec(("container.name",), ("container.name",), "evt.rawarg.res", "Bytes",
                     FILE_IO + " and container.name!=host", 10, "bytes")
