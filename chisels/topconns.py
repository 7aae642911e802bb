"""topconns: network connections by bytes moved (in + out)."""

from __future__ import annotations

from tracer.chisel import NET_IO, PC_DESC, TableChisel, TableSpec


class TopConns(TableChisel):
    name = "topconns"
    category = "Net"
    short_description = "Top network connections by total bytes"
    description = "Shows the top network connections in terms of total (in+out) bandwidth. " + PC_DESC
    spec = TableSpec(("fd.l4proto", "fd.name"), ("Proto", "Conn"), "evt.rawarg.res", "Bytes", NET_IO, 30, "bytes")
    container_spec = spec.with_keys(("container.name", "fd.l4proto", "fd.name"), ("container.name", "Proto", "Conn"))
