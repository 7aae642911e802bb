"""topprocs_file: processes by bytes read from and written to files."""

from __future__ import annotations

from tracer.chisel import FILE_IO, PC_DESC, TableChisel, TableSpec


class TopProcsFile(TableChisel):
    name = "topprocs_file"
    category = "I/O"
    short_description = "Top processes by R+W disk bytes"
    description = "Shows the top processes in terms of total (in+out) bytes to disk. " + PC_DESC
    spec = TableSpec(("proc.name", "proc.pid"), ("Process", "PID"), "evt.rawarg.res", "Bytes", FILE_IO, 10, "bytes")
    container_spec = spec.with_keys(("proc.name", "proc.pid", "thread.vtid", "container.name"),
                                    ("Process", "Host_pid", "Container_pid", "container.name"))
