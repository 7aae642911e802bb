"""ps: the processes (threads) as the state knows them at the first event."""

from __future__ import annotations

from tracer.chisel import ChiselArg, StateDumpChisel, extend_string, format_bytes
from tracer.state.state import State


class Ps(StateDumpChisel):
    name = "ps"
    category = "System State"
    short_description = "List (and optionally filter) the machine processes."
    description = ("List the running processes, with an output that is similar to the one of ps. Output is at a "
                   "point in time; adjust this in the filter. It defaults to time of evt.num=0")
    args = (ChiselArg("filter", "A ktrace filter expression that allows restricting the FD list. For example "
                      "'fd.name contains /etc' shows all the processes that have files open under /etc.",
                      "filter", optional=True),)

    def on_init(self) -> None:
        super().on_init()
        self.state_filter = self.compile(self.arg["filter"])

    def dump(self, state: State) -> list[str]:
        e = extend_string
        lines = [e("TID", 8) + e("PID", 8) + e("USER", 12) + e("VIRT", 11) + e("RES", 11) + e("FDLIMIT", 10)
                 + e("CMD", 20)]
        for t, _fds in self.matching(state, self.state_filter):
            lines.append(e(str(t.tid), 8) + e(str(t.pid), 8) + e(self.user_name(state, t), 12)
                         + e(format_bytes(t.vmsize_kb * 1024), 11) + e(format_bytes(t.vmrss_kb * 1024), 11)
                         + e(str(t.fdlimit), 10) + t.comm)
        return lines
