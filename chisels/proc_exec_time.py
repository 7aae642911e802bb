"""proc_exec_time: every process that ends, with how long it ran."""

from __future__ import annotations

from tracer.chisel import Chisel, ChiselArg, format_time_interval
from tracer.event import Event
from tracer.na import NA

YELLOW_NS = 3_000_000_000
RED_NS = 10_000_000_000


def _cols(*values: str) -> str:
    """sysdig's ``%-13.13s %-12.12s %s`` (``-pc``: with two 20-wide container columns)."""
    widths = (13, 20, 20, 12) if len(values) == 5 else (13, 12)
    return " ".join(f"{v[:w]:<{w}}" for v, w in zip(values, widths, strict=False)) + " " + values[-1]


class ProcExecTime(Chisel):
    name = "proc_exec_time"
    category = "Performance"
    short_description = "Show process execution time"
    description = ("List the processes that have finished running, along with their execution time, and color every "
                   "line based on the total process run time (Green|Blue below thresholds, Yellow at 3 sec, and Red "
                   "at 10 sec). This chisel is compatible with containers using the ktrace -pc or -pcontainer "
                   "argument, otherwise no container information will be shown. (Blue represents a process running "
                   "within a container, and Green represents a host process)")
    args = (ChiselArg("disable_color", "Set to 'disable_colors' if you want to disable color output",
                      optional=True, choices=("disable_colors", "disable_color")),)

    def on_init(self) -> None:
        self.filter = "evt.type=procexit"
        self.duration = self.field("proc.duration")
        self.pname = self.field("proc.name")
        self.pargs = self.field("proc.args")
        self.cname = self.field("container.name")
        self.cid = self.field("container.id")
        self.c = self.palette(disabled=self.arg["disable_color"] is not None)

    def on_capture_start(self, live: bool) -> None:
        super().on_capture_start(live)
        if self.ctx.container_mode:
            self.print(_cols("proc.duration", "container.id", "container.name", "proc.name", "proc.args"))
            self.print(_cols("-" * 13, "-" * 20, "-" * 20, "-" * 12, "-" * 20))
        else:
            self.print(_cols("proc.duration", "proc.name", "proc.args"))
            self.print(_cols("-" * 13, "-" * 12, "-" * 20))

    def on_event(self, ev: Event) -> None:
        duration = self.duration(ev)
        if duration is None:
            return  # a process that started before the capture: its start time is unknown
        c = self.c
        cname = self.cname(ev) or NA
        color = c.green
        if duration > RED_NS:
            color = c.red
        elif duration > YELLOW_NS:
            color = c.yellow
        elif cname != "host":
            color = c.blue
        pname, pargs = self.pname(ev) or NA, self.pargs(ev) or ""
        if self.ctx.container_mode:
            line = _cols(format_time_interval(duration), self.cid(ev) or NA, cname, pname, pargs)
        else:
            line = _cols(format_time_interval(duration), pname, pargs)
        self.print(color + line)
        self.flush()

    def on_capture_end(self, ts_ns: int) -> None:
        self.print(self.c.reset)
