"""topprocs_net: processes by network bytes (in + out)."""

from __future__ import annotations

from tracer.chisel import NET_IO, PC_DESC, TableChisel, TableSpec


class TopProcsNet(TableChisel):
    name = "topprocs_net"
    category = "Net"
    short_description = "Top processes by network I/O"
    description = "Sort the list of the processes that use the most network bandwidth. " + PC_DESC
    spec = TableSpec(("proc.name", "proc.pid"), ("Process", "PID"), "evt.rawarg.res", "Bytes", NET_IO, 100, "bytes")
    container_spec = spec.with_keys(("proc.name", "proc.pid", "thread.vtid", "container.name"),
                                    ("Process", "Host_pid", "Container_pid", "container.name"))
