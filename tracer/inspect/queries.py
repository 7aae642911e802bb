"""What the page asks of a capture beyond the index: event lines, I/O, users' commands, the
connection graph. Each is one pass of the capture through the pipeline (state, filter) with the
selection's time window joined to the filter, as ``evt.rawtime`` conditions; the pass stops at
the first block past the window, or when the consumer has what it needs.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..capture import EventBlock, TableBlock
from ..capture.files import read_captures
from ..chisel import NET_IO, ChiselContext, load_chisel
from ..event import Event, RenderOptions
from ..filter.compiler import compile_filter
from ..filter.pushdown import exact
from ..output.format import Formatter, resolve_field
from ..pipeline import Pipeline, Selection
from ..schema.fields import FIELDS
from ..session import fd_check, thread_check, wanted_events
from ..state.state import State
from .index import Index


@dataclass
class Window:
    """A time selection, [start, end) in ns since the epoch; 0 = open on that side."""

    start: int = 0
    end: int = 0

    def filter_text(self) -> str:
        parts = []
        if self.start:
            parts.append(f"evt.rawtime >= {self.start}")
        if self.end:
            parts.append(f"evt.rawtime < {self.end}")
        return " and ".join(parts)


def combine(*filters: str | None) -> str:
    parts = [f"({f})" for f in filters if f and f.strip()]
    return " and ".join(parts)


def check_filter(text: str) -> None:
    """Raise FilterError (with its position) when ``text`` is not a valid filter."""
    if text.strip():
        compile_filter(text, FIELDS)


class Done(Exception):
    """A consumer has what it needs: the pass stops."""


def run_pass(idx: Index, window: Window, user_filter: str, on_event: Callable[[Event, State], None],
             extra_filter: str = "", latency: bool = False) -> State:
    """Feed the capture through the pipeline; ``on_event`` gets each event the filters admit
    within the window (it may raise Done). Returns the state as the pass left it."""
    check_filter(user_filter)
    text = combine(window.filter_text(), extra_filter, user_filter)
    state = State()
    flt = compile_filter(text, FIELDS) if text else None
    pd = flt.pushdown if flt is not None else None
    sel = Selection(wanted_events(pd), thread_check(pd, state), fd_check(pd, state),
                    exact=exact(flt.ast)) if pd is not None and flt is not None else Selection()
    pipeline = Pipeline(state, predicate=flt, selection=sel, on_event=lambda ev: on_event(ev, state),
                        latency=latency)
    try:
        for item in read_captures(idx.paths):
            if isinstance(item, EventBlock):
                if window.end and item.first_ts >= window.end:
                    break
                pipeline.feed(item.raw)
            elif isinstance(item, TableBlock):
                state.load_table(item.kind, item.rows)
    except Done:
        pass
    return state


# --- event lines (dig) --------------------------------------------------------------------------
def event_lines(idx: Index, window: Window, user_filter: str, offset: int, limit: int) -> dict[str, Any]:
    """The default output lines of the events in the selection, ``limit`` from ``offset``;
    ``more`` says whether others follow."""
    fmt = Formatter(None, time_mode="h", opts=RenderOptions())
    lines: list[str] = []
    seen = 0

    def take(ev: Event, _state: State) -> None:
        nonlocal seen
        seen += 1
        if seen > offset + limit:
            raise Done
        if seen > offset:
            lines.append(fmt.line(ev))

    run_pass(idx, window, user_filter, take)
    return {"offset": offset, "lines": lines, "more": seen > offset + limit}


# --- I/O streams (echo) ---------------------------------------------------------------------------
def io_chunks(idx: Index, window: Window, user_filter: str, offset: int, limit: int) -> dict[str, Any]:
    """The data of each successful read and write in the selection, as echo_fds shows it: the
    direction, bytes, fd, process, container and the captured payload (base64)."""
    chunks: list[dict[str, Any]] = []
    seen = 0
    fields = {k: _field(k) for k in ("evt.is_io_read", "fd.name", "proc.name", "container.name", "evt.rawarg.res")}

    def take(ev: Event, _state: State) -> None:
        nonlocal seen
        res = fields["evt.rawarg.res"](ev)
        if res is None or res <= 0:
            return
        seen += 1
        if seen > offset + limit:
            raise Done
        if seen <= offset:
            return
        p = ev.param("data")
        data = ev.raw(p) if p is not None else b""
        chunks.append({"ts": ev.ts, "read": bool(fields["evt.is_io_read"](ev)), "bytes": res,
                       "fd": fields["fd.name"](ev) or "<NA>", "proc": fields["proc.name"](ev) or "<NA>",
                       "pid": ev.pid, "container": fields["container.name"](ev) or "<NA>",
                       "data": base64.b64encode(data if isinstance(data, bytes) else b"").decode()})

    # echo_fds's own filter: every successful read or write.
    run_pass(idx, window, user_filter, take, extra_filter="evt.is_io=true and evt.dir=< and evt.rawres>0")
    return {"offset": offset, "chunks": chunks, "more": seen > offset + limit}


def _field(name: str) -> Callable[[Event], Any]:
    found = resolve_field(name)
    assert found is not None, name
    fdef, arg = found
    return lambda ev: fdef.extract(ev, arg)


# --- spy users -------------------------------------------------------------------------------------
def spy_users(idx: Index, window: Window, user_filter: str, limit: int = 10000) -> dict[str, Any]:
    """spy_users' lines for the selection (the chisel itself, colours off, with containers)."""
    out = io.StringIO()
    chisel, _ = load_chisel("spy_users", ["disable_colors"], container_mode=True, json_out=False,
                            render=RenderOptions(), live=False)
    chisel.ctx = ChiselContext(container_mode=True, out=out)
    chisel.out = out
    ch_filter = getattr(chisel, "filter", None) or ""
    chisel.on_capture_start(False)
    count = 0

    def take(ev: Event, state: State) -> None:
        nonlocal count
        chisel.state = state
        chisel.on_event(ev)
        count += 1
        if count >= limit:
            raise Done

    run_pass(idx, window, user_filter, take, extra_filter=ch_filter)
    lines = [ln for ln in out.getvalue().splitlines() if ln.strip()]
    return {"lines": lines}


# --- connection graph ---------------------------------------------------------------------------
@dataclass
class _Graph:
    by: str
    nodes: dict[str, dict[str, Any]] = field(default_factory=dict)
    edges: dict[tuple[str, str], int] = field(default_factory=dict)
    # local endpoint (ip, port) -> node, to fold a loopback peer into the process that owns it
    owners: dict[tuple[str, int], str] = field(default_factory=dict)


def connection_graph(idx: Index, window: Window, user_filter: str, by: str = "proc") -> dict[str, Any]:
    """Processes (or containers) and the endpoints they exchanged bytes with: one edge per pair
    from client to server, weighted with the bytes moved both ways (topconns' filter and values).
    A peer that is another node's local end is drawn as that node."""
    g = _Graph(by)
    f = {k: _field(k) for k in ("proc.name", "container.name", "fd.lip", "fd.lport", "fd.rip", "fd.rport",
                                "fd.is_server", "evt.rawarg.res", "fd.l4proto")}
    raw_edges: dict[tuple[str, tuple[str, int], bool], int] = {}

    def take(ev: Event, _state: State) -> None:
        res = f["evt.rawarg.res"](ev)
        if res is None or res <= 0:
            return
        lip, lport, rip, rport = f["fd.lip"](ev), f["fd.lport"](ev), f["fd.rip"](ev), f["fd.rport"](ev)
        if lip is None or rip is None:
            return
        if by == "container":
            node = "container:" + str(f["container.name"](ev) or "host")
            label = str(f["container.name"](ev) or "host")
        else:
            node = f"proc:{ev.pid}"
            label = f"{f['proc.name'](ev) or '?'} ({ev.pid})"
        g.nodes.setdefault(node, {"id": node, "label": label, "kind": by, "bytes": 0})
        g.nodes[node]["bytes"] += res
        g.owners[(str(lip), int(lport or 0))] = node
        key = (node, (str(rip), int(rport or 0)), bool(f["fd.is_server"](ev)))
        raw_edges[key] = raw_edges.get(key, 0) + res

    run_pass(idx, window, user_filter, take, extra_filter=f"{NET_IO} and evt.dir=<")
    for (node, peer, is_server), nbytes in raw_edges.items():
        other = g.owners.get(peer)
        if other is None:
            other = f"ep:{peer[0]}:{peer[1]}" if not is_server else f"ep:{peer[0]}"
            label = f"{peer[0]}:{peer[1]}" if not is_server else peer[0]
            g.nodes.setdefault(other, {"id": other, "label": label, "kind": "endpoint", "bytes": 0})
            g.nodes[other]["bytes"] += nbytes
        if other == node:
            continue
        # client -> server; both ends of a loopback connection report the same bytes: keep one side
        src, dst = (other, node) if is_server else (node, other)
        if peer in g.owners and is_server:
            continue
        g.edges[(src, dst)] = g.edges.get((src, dst), 0) + nbytes
    return {"nodes": list(g.nodes.values()),
            "edges": [{"source": s, "target": t, "bytes": b} for (s, t), b in sorted(g.edges.items())]}
