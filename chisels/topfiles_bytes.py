"""topfiles_bytes: files by bytes read and written."""

from __future__ import annotations

from tracer.chisel import FILE_IO, PC_DESC, TableChisel, TableSpec


class TopFilesBytes(TableChisel):
    name = "topfiles_bytes"
    category = "I/O"
    short_description = "Top files by R+W bytes"
    description = "Shows the top files in terms of disk usage. " + PC_DESC
    spec = TableSpec(("fd.name",), ("Filename",), "evt.rawarg.res", "Bytes", FILE_IO, 10, "bytes")
    container_spec = spec.with_keys(("container.name", "fd.name"), ("container.name", "Filename"))
