"""netstat: the network connections as the state knows them at the first event."""

from __future__ import annotations

from tracer.chisel import ChiselArg, StateDumpChisel, extend_string
from tracer.state.state import State

BASE_FILTER = "(fd.type=ipv4 or fd.type=ipv6)"


class Netstat(StateDumpChisel):
    """One row per thread and socket (rows repeat per thread, as in sysdig). A socket with no
    client address is a server's: ``LISTEN``, client ``0.0.0.0:*``; the others ``ESTABLISHED``."""

    name = "netstat"
    category = "System State"
    short_description = "List (and optionally filter) network connections."
    description = ("Print the system network connections, with an output that is similar to the one of netstat. "
                   "Output is at a point in time; adjust this in the filter. It defaults to time of evt.num=0")
    args = (ChiselArg("filter", "A ktrace filter expression that allows restricting the FD list. E.g. "
                      "'proc.name=foo and fd.port=80'.", "filter", optional=True),)

    def on_init(self) -> None:
        super().on_init()
        user = self.arg["filter"]
        self.state_filter = self.compile(f"{BASE_FILTER} and ({user})" if user else BASE_FILTER)

    def dump(self, state: State) -> list[str]:
        e = extend_string
        lines = [e("Proto", 6) + e("Server Address", 25) + e("Client Address", 25) + e("State", 15)
                 + "TID/PID/Program Name"]
        for t, fds in self.matching(state, self.state_filter):
            for fd in fds:
                any_ip = "0.0.0.0" if fd.type == "ipv4" else "::"
                if fd.cip:
                    client, state_name = f"{fd.cip}:{fd.cport}", "ESTABLISHED"
                else:
                    client, state_name = "0.0.0.0:*", "LISTEN"
                lines.append(e(fd.l4proto, 6) + e(f"{fd.sip or any_ip}:{fd.sport}", 25) + e(client, 25)
                             + e(state_name, 15) + f"{t.tid}/{t.pid}/{t.comm}")
        return lines
