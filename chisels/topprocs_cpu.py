"""topprocs_cpu: processes by CPU use, from the CPU samples (procinfo events)."""

from __future__ import annotations

from tracer.chisel import PC_DESC, CpuTableChisel, TableSpec


class TopProcsCpu(CpuTableChisel):
    name = "topprocs_cpu"
    category = "CPU Usage"
    short_description = "Top processes by CPU usage"
    description = "Show the top process defined by the highest CPU utilization. " + PC_DESC
    spec = TableSpec(("proc.name", "proc.pid"), ("Process", "PID"), "thread.cpu", "CPU%", None, 10, "timepct")
    container_spec = spec.with_keys(("proc.name", "proc.pid", "proc.vpid", "container.name"),
                                    ("Process", "Host_pid", "Container_pid", "container.name"))
