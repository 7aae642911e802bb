"""topcontainers_cpu: containers by CPU use, from the CPU samples (procinfo events)."""

from __future__ import annotations

from tracer.chisel import CpuTableChisel, TableSpec


class TopContainersCpu(CpuTableChisel):
    name = "topcontainers_cpu"
    category = "CPU Usage"
    short_description = "Top containers by CPU usage"
    description = "Show the top containers defined by the highest CPU utilization."
    spec = TableSpec(("container.name",), ("container.name",), "thread.cpu", "CPU%", None, 10, "timepct")
