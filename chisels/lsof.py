"""lsof: the open fds of every process as the state knows them at the first event."""

from __future__ import annotations

from tracer.chisel import ChiselArg, StateDumpChisel, extend_string
from tracer.state.state import State


class Lsof(StateDumpChisel):
    """One row per thread and fd: threads share their process's fds, so rows repeat per thread."""

    name = "lsof"
    category = "System State"
    short_description = "List (and optionally filter) the open file descriptors."
    description = ("This chisel prints the open file descriptors for every process in the system, with an output "
                   "that is similar to the one of lsof. Output is at a point in time; adjust this in the filter.  It "
                   "defaults to time of evt.num=0")
    args = (ChiselArg("filter", "A ktrace filter expression that allows restricting the FD list. E.g. "
                      "'proc.name=foo and fd.name contains /etc'.", "filter", optional=True),)

    def on_init(self) -> None:
        super().on_init()
        self.state_filter = self.compile(self.arg["filter"])

    def dump(self, state: State) -> list[str]:
        e = extend_string
        lines = [e("COMMAND", 20) + e("PID", 8) + e("TID", 8) + e("USER", 8) + e("FD", 8) + e("TYPE", 12) + "NAME"]
        for t, fds in self.matching(state, self.state_filter):
            user = self.user_name(state, t)
            for fd in fds:
                lines.append(e(t.comm, 20) + e(str(t.pid), 8) + e(str(t.tid), 8) + e(user, 8) + e(str(fd.num), 8)
                             + e(fd.type, 12) + fd.name)
        return lines
