"""Chisels that print the state tables (ps, lsof, netstat, lscontainers)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, ClassVar, Final

from ..event import Event
from ..na import NA
from ..schema import record as R
from ..schema.events import SYSCALL_NR
from .contract import Chisel

if TYPE_CHECKING:
    from ..filter.compiler import CompiledFilter
    from ..state.state import State
    from ..state.tables import Fd, Thread

_FSTAT_ENTER: Final = R.syscall_evt(SYSCALL_NR["fstat"], R.DIR_ENTER)
# Facts libsinsp learns from /proc and the capture's tables, never as an event its chisels see:
# the tables are dumped at the first event after them (a .scap holds them as tables or
# state-only events).
_STATE_FACTS: Final = frozenset({R.EVT_THREADINFO, R.EVT_FDINFO, R.EVT_CONNECTED, R.EVT_ACCEPTED})


class StateDumpChisel(Chisel):
    """Dumps the state at the first event that passes the filter, then stops the run (sysdig's
    ``end_capture()``); ``dump`` makes the lines then, so later events cannot change them."""

    need_event: ClassVar[bool] = True  # no event: print sysdig's "empty capture" line instead
    # The tables as of the first event sysdig's chisels would see, internal ones (CPU samples,
    # container events) included, with the state that event leaves, as libsinsp parses an event
    # before its chisels see it.
    sees_internal: ClassVar[bool] = True

    def on_init(self) -> None:
        self.lines: list[str] | None = None

    def on_event(self, ev: Event) -> None:
        if ev.evt in _STATE_FACTS:
            return
        if self.lines is None:
            self.lines = self.dump(ev.state)
        self.done = True

    def on_capture_end(self, ts_ns: int) -> None:
        lines = self.lines
        if lines is None:
            if self.need_event:
                self.print("empty capture or no event matching the filter")
                return
            if self.state is None:
                return
            lines = self.dump(self.state)
        for line in lines:
            self.print(line)

    def dump(self, state: State) -> list[str]:
        raise NotImplementedError

    @staticmethod
    def compile(text: str | None) -> CompiledFilter | None:
        if not text or not text.strip():
            return None
        from ..filter.compiler import compile_filter
        from ..schema.fields import FIELDS

        return compile_filter(text, FIELDS)

    @staticmethod
    def matching(state: State, flt: CompiledFilter | None) -> Iterable[tuple[Thread, list[Fd]]]:
        """Threads by tid with their process's fds that pass ``flt``. Like sysdig, a thread is
        listed when one of its fds matches; a thread without fds is tested on its own."""
        for tid in sorted(state.threads):
            t = state.threads[tid]
            fds = [state.fds.get(t.pid, {})[n] for n in sorted(state.fds.get(t.pid, {}))]
            if flt is None:
                yield t, fds
                continue
            if not fds:
                if flt.match(_probe(state, t, -1)):
                    yield t, []
                continue
            ok = [fd for fd in fds if flt.match(_probe(state, t, fd.num))]
            if ok:
                yield t, ok

    @staticmethod
    def user_name(state: State, t: Thread) -> str:
        u = state.users.get(t.uid)
        return u.name if u else NA


def _probe(state: State, t: Thread, fd: int) -> Event:
    """An event of thread ``t`` about ``fd``, to run a filter on a state row (an fstat enter: its
    only argument is the fd)."""
    raw = R.pack_record(0, t.tid, t.pid, _FSTAT_ENTER, args=(fd,))
    return Event(raw, 0, 0, state)

