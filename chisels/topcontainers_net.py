"""topcontainers_net: containers by network bytes (in + out)."""

from __future__ import annotations

from tracer.chisel import NET_IO, TableChisel, TableSpec


class TopContainersNet(TableChisel):
    name = "topcontainers_net"
    category = "Net"
    short_description = "Top containers by network I/O"
    description = "Sorted list of containers that use the most network bandwidth."
    spec = TableSpec(("container.name",), ("container.name",), "evt.rawarg.res", "Bytes",
                     NET_IO + " and container.name!=host", 100, "bytes")
