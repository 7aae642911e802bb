"""The inspection page's server: aiohttp on 127.0.0.1, a random token, the page and a JSON API.

Every request needs the token: in the URL (``?token=``, which the page is opened with; that
request also sets it as a same-site cookie so the page's own requests carry it) or the
``X-Ktrace-Token`` header. Without it: 403. Static files are served from the package's
``static`` directory only; a name that resolves outside it is refused.

API (all GET, JSON; ``from``/``to`` are ns since the epoch, the time selection; ``filter`` is
sysdig's language and a bad one is a 400 with ``error`` and ``pos``, the caret's column):

``/api/info``      the capture: files, span, events, notes (truncation, damage), tile and view lists
``/api/timeline``  events by category over time, ``points`` (the chart's width) points at most
``/api/overview``  every tile's total over the selection and its sparkline, ``points`` points at most
``/api/views``, ``/api/view``  the views of ``ktrace top`` and one view's rows (sorted, paged)
``/api/events``    event lines (dig), paged;  ``/api/io``  I/O chunks (echo), paged
``/api/spy_users`` users' commands;  ``/api/graph``  the connection graph
``/api/check``     whether a filter is valid
"""

from __future__ import annotations

import asyncio
import hmac
import os
import secrets
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, Final

from aiohttp import web

from ..errors import FilterError, KtraceError
from . import queries
from .index import CATEGORIES, Index
from .summary import TILES, step_for, totals

STATIC: Final = Path(__file__).parent / "static"
COOKIE: Final = "ktrace_token"
PAGE_MAX: Final = 5000
# Points of a timeline or sparkline when the page does not say (its width in pixels): what is sent
# and drawn does not grow with the capture's length.
POINTS: Final = 1000
POINTS_MAX: Final = 10000
TYPES: Final = {".html": "text/html", ".js": "text/javascript", ".css": "text/css", ".svg": "image/svg+xml",
                ".txt": "text/plain", ".png": "image/png"}

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class Inspector:
    """What the server serves: one capture's index and the queries over it."""

    def __init__(self, idx: Index, token: str, views: Any = None) -> None:
        self.idx = idx
        self.token = token
        self.views = views  # a tracer.inspect.drill.Drill, when the views engine is there

    # --- selection ------------------------------------------------------------------------------
    def window(self, q: Any) -> queries.Window:
        def num(name: str) -> int:
            v = q.get(name, "")
            try:
                return max(0, int(v)) if v else 0
            except ValueError:
                raise web.HTTPBadRequest(text=f"{name} must be an integer (ns since the epoch)") from None
        return queries.Window(num("from"), num("to"))

    def buckets(self, w: queries.Window) -> tuple[int, int]:
        idx = self.idx
        first = idx.bucket_of(w.start) if w.start else 0
        last = idx.bucket_of(w.end - 1) if w.end else idx.nbuckets - 1
        return first, last

    # --- handlers ---------------------------------------------------------------------------------
    def info(self) -> dict[str, Any]:
        idx = self.idx
        return {"files": [os.path.basename(p) for p in idx.paths], "t0": str(idx.t0), "t1": str(idx.t1),
                "bucket_ns": idx.bucket_ns, "events": idx.events, "notes": idx.notes,
                "blocks": len(idx.blocks),
                "tiles": [{"id": t.id, "category": t.category, "title": t.title, "unit": t.unit, "kind": t.kind,
                           "filter": t.filter, "chisel": t.chisel, "view": t.view} for t in TILES],
                "views": self.views.list_views() if self.views is not None else []}

    def timeline(self, points: int = POINTS) -> dict[str, Any]:
        """Events by category, summed over ``step`` buckets a point (the first point starts at t0)."""
        idx = self.idx
        n = idx.nbuckets
        step = step_for(n, points)
        counts = idx.timeline()
        if step > 1:
            counts = {c: [sum(v[g:g + step]) for g in range(0, n, step)] for c, v in counts.items()}
        return {"t0": str(idx.t0), "bucket_ns": idx.bucket_ns, "buckets": n, "step": step,
                "categories": [c for c in CATEGORIES if c != "internal"], "counts": counts}

    def overview(self, w: queries.Window, points: int = POINTS) -> dict[str, Any]:
        first, last = self.buckets(w)
        step = step_for(last - first + 1, points)
        out = []
        for t in TILES:
            total, spark = totals(t, self.idx.tiles.get(t.id, {}), first, last, step) \
                if self.idx.nbuckets else (0, [])
            out.append({"id": t.id, "total": total, "spark": spark})
        return {"first_bucket": first, "last_bucket": last, "step": step, "tiles": out}


def _json(data: Any, status: int = 200) -> web.Response:
    return web.json_response(data, status=status, dumps=_dumps)


def _dumps(obj: Any) -> str:
    import json

    return json.dumps(obj, separators=(",", ":"), default=str)


def _int(q: Any, name: str, default: int, hi: int) -> int:
    try:
        return min(hi, max(0, int(q.get(name, default))))
    except ValueError:
        raise web.HTTPBadRequest(text=f"{name} must be an integer") from None


def make_app(ins: Inspector) -> web.Application:
    @web.middleware
    async def auth(request: web.Request, handler: Handler) -> web.StreamResponse:
        given = request.query.get("token") or request.headers.get("X-Ktrace-Token") or request.cookies.get(COOKIE)
        if not given or not hmac.compare_digest(given.encode(), ins.token.encode()):
            return web.Response(status=403, text="ktrace inspect: open the URL printed at start (it has the token)\n")
        resp = await handler(request)
        if request.query.get("token"):
            resp.set_cookie(COOKIE, ins.token, httponly=True, samesite="Strict")
        resp.headers["Cache-Control"] = "no-store"
        resp.headers["X-Content-Type-Options"] = "nosniff"
        return resp

    @web.middleware
    async def errors(request: web.Request, handler: Handler) -> web.StreamResponse:
        try:
            return await handler(request)
        except FilterError as e:
            return _json({"error": e.message, "pos": e.pos, "text": e.text}, 400)
        except KtraceError as e:
            return _json({"error": str(e)}, 400)

    app = web.Application(middlewares=[auth, errors])

    async def page(_request: web.Request) -> web.StreamResponse:
        return web.FileResponse(STATIC / "index.html", headers={"Content-Type": "text/html"})

    async def static(request: web.Request) -> web.StreamResponse:
        name = request.match_info["name"]
        root = STATIC.resolve()
        target = (root / name).resolve()
        if root not in target.parents or not target.is_file():
            raise web.HTTPNotFound(text="no such file\n")
        return web.FileResponse(target, headers={"Content-Type": TYPES.get(target.suffix, "application/octet-stream")})

    async def run(fn: Callable[..., Any], *args: Any) -> Any:
        return await asyncio.to_thread(fn, *args)

    async def info(_r: web.Request) -> web.Response:
        return _json(ins.info())

    async def timeline(r: web.Request) -> web.Response:
        return _json(await run(ins.timeline, _int(r.query, "points", POINTS, POINTS_MAX)))

    async def overview(r: web.Request) -> web.Response:
        return _json(await run(ins.overview, ins.window(r.query), _int(r.query, "points", POINTS, POINTS_MAX)))

    async def check(r: web.Request) -> web.Response:
        queries.check_filter(r.query.get("filter", ""))
        return _json({"ok": True})

    async def events(r: web.Request) -> web.Response:
        q = r.query
        return _json(await run(queries.event_lines, ins.idx, ins.window(q), q.get("filter", ""),
                               _int(q, "offset", 0, 1 << 40), _int(q, "limit", 500, PAGE_MAX)))

    async def io_(r: web.Request) -> web.Response:
        q = r.query
        return _json(await run(queries.io_chunks, ins.idx, ins.window(q), q.get("filter", ""),
                               _int(q, "offset", 0, 1 << 40), _int(q, "limit", 200, PAGE_MAX)))

    async def spy(r: web.Request) -> web.Response:
        q = r.query
        return _json(await run(queries.spy_users, ins.idx, ins.window(q), q.get("filter", "")))

    async def graph(r: web.Request) -> web.Response:
        q = r.query
        by = q.get("by", "proc")
        if by not in ("proc", "container"):
            raise web.HTTPBadRequest(text="by must be proc or container")
        return _json(await run(queries.connection_graph, ins.idx, ins.window(q), q.get("filter", ""), by))

    async def views(_r: web.Request) -> web.Response:
        return _json(ins.views.list_views() if ins.views is not None else [])

    async def view(r: web.Request) -> web.Response:
        if ins.views is None:
            raise web.HTTPNotFound(text="no views engine")
        q = r.query
        return _json(await run(ins.views.rows, q.get("id", ""), ins.window(q), q.get("filter", ""),
                               q.get("sort", ""), q.get("order", "desc"), _int(q, "offset", 0, 1 << 40),
                               _int(q, "limit", 200, PAGE_MAX), q.get("pc", "") == "1"))

    app.router.add_get("/", page)
    app.router.add_get("/static/{name:.+}", static)
    for path, h in (("info", info), ("timeline", timeline), ("overview", overview), ("check", check),
                    ("events", events), ("io", io_), ("spy_users", spy), ("graph", graph), ("views", views),
                    ("view", view)):
        app.router.add_get(f"/api/{path}", h)
    return app


def new_token() -> str:
    return secrets.token_urlsafe(18)


async def start(app: web.Application, bind: str, port: int) -> tuple[web.AppRunner, int]:
    """Start listening; returns the runner and the port (the free one chosen when ``port`` is 0).
    A port in use or an address that cannot be bound raises OSError."""
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, bind, port, reuse_address=False)
    try:
        await site.start()
    except OSError:
        await runner.cleanup()
        raise
    server = site._server
    sockets = getattr(server, "sockets", None) or []
    real = sockets[0].getsockname()[1] if sockets else port
    return runner, int(real)
