"""The fast path of a table chisel: records counted without an Event.

When a table's keys are fields marked ``raw`` (read from the record and the state alone) and its
value is the return value, the pipeline hands the records an exact filter matched straight to
this counter, which skips decoding them into Event objects.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Final

from ..event import RecordView
from ..output.format import resolve_field
from ..schema import record as R
from ..schema.events import event_info
from ..schema.types import PT

if TYPE_CHECKING:
    from ..state.state import State
    from .table import TableChisel


def _res_is_ret() -> bytes:
    """Event ids whose evt.rawarg.res is the return value as it is (a signed 64-bit result)."""
    m = bytearray(R.EVT_BASE_OTHER)
    for evt in range(1, R.EVT_BASE_OTHER, 2):
        info = event_info(evt)
        p = next((p for p in info.params(1) if p.name == "res"), None) if info is not None else None
        if p is not None and p.src == "ret" and p.type in (PT.RES, PT.RESFD, PT.INT64):
            m[evt] = 1
    return bytes(m)


_RES_IS_RET: Final = _res_is_ret()


def record_counter(chisel: TableChisel, state: State) -> Callable[[bytes, int], None] | None:
    """``chisel.on_event`` for records, or None when the table needs whole events (see
    :meth:`TableChisel.record_counter`)."""
    if chisel.table_cfg.value != "evt.rawarg.res":
        return None
    for k in chisel.table_cfg.keys:
        found = resolve_field(k)
        if found is None or not found[0].raw:
            return None
    view = RecordView(state)
    head = RecordView.HEAD.unpack_from
    res = _RES_IS_RET
    nres = len(res)
    # Keys by (tid, fd object): valid while the state's version (bumped by every change made
    # in place) stays the same and the thread and fd are the same objects.
    keys: dict[tuple[int, int], tuple[Any, Any, tuple[str, ...] | None]] = {}
    version = -1

    def count(buf: bytes, off: int) -> None:
        nonlocal version
        ts, tid, pid, evt, _cpu, _len, ret = head(buf, off)
        if not chisel.start_ts:
            chisel.start_ts = state.start_ts or ts
        if ret <= 0 or evt >= nres or not res[evt] or buf[off + R.OFF_FLAGS] & R.RF_HIDDEN:
            return  # enters, failures, internal events: no value, as in on_event
        view.set(buf, off, tid, pid, evt, ret)
        if version != state.version:
            keys.clear()
            version = state.version
        fd, thread = view.fd, view.thread
        slot = (tid, id(fd))
        known = keys.get(slot)
        if known is not None and known[0] is fd and known[1] is thread:
            key = known[2]
        else:
            key = chisel.key_of(view)  # type: ignore[arg-type]  # raw fields read only the view's part
            if len(keys) > 65536:
                keys.clear()
            keys[slot] = (fd, thread, key)
        if key is not None:
            chisel.table[key] = chisel.table.get(key, 0) + ret

    return count
