"""The page's drill-down tables: the views of ``ktrace top`` (tracer.views), over the capture.

A view's table for one (view, time selection, filter, -pc) is computed once by the views engine
and kept (the last few), so sorting and paging -- a million rows at a page of 200 -- only slice
a sorted list. Drill-down filters are the engine's (``drill_filter``), so the page's next level is
what ``ktrace top`` shows after Enter on the same row.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any, Final

from ..errors import UsageError
from ..views import ViewSpec, ViewTable, all_views, capture_table, drill_filter
from .index import Index
from .queries import Window, check_filter, combine

KEEP_TABLES: Final = 4  # computed tables kept for paging and sorting
KEEP_ORDERS: Final = 16  # sorted row orders kept


class Drill:
    """Lists the views and serves one view's rows, sorted and paged."""

    def __init__(self, idx: Index, extra_dirs: tuple[str, ...] = ()) -> None:
        self.idx = idx
        self.notes: list[str] = []  # user views that could not be loaded: said at start, then left out
        found = all_views(extra_dirs, on_error=lambda e: self.notes.append(str(e)))
        self.views: dict[str, ViewSpec] = {vid: fv.view for vid, fv in found.items()
                                           if fv.view.kind in ("table", "list")}
        self._tables: OrderedDict[tuple[Any, ...], ViewTable] = OrderedDict()
        self._orders: OrderedDict[tuple[Any, ...], list[Any]] = OrderedDict()
        self._lock = threading.Lock()

    def list_views(self) -> list[dict[str, Any]]:
        return [{"id": v.id, "name": v.name, "description": v.description, "kind": v.kind, "root": v.root,
                 "drilldown": v.drilldown, "applies_to": list(v.applies_to), "key": v.key}
                for v in self.views.values()]

    def table(self, view: ViewSpec, window: Window, user_filter: str, pc: bool) -> ViewTable:
        key = (view.id, window.start, window.end, user_filter, pc)
        with self._lock:
            t = self._tables.get(key)
            if t is not None:
                self._tables.move_to_end(key)
                return t
        check_filter(user_filter)
        t = capture_table(view, self.idx.paths, filter_text=combine(window.filter_text(), user_filter),
                          container_mode=pc)
        with self._lock:
            self._tables[key] = t
            while len(self._tables) > KEEP_TABLES:
                self._tables.popitem(last=False)
        return t

    def rows(self, view_id: str, window: Window, user_filter: str, sort: str, order: str, offset: int, limit: int,
             pc: bool) -> dict[str, Any]:
        view = self.views.get(view_id)
        if view is None:
            raise UsageError(f"unknown view '{view_id}'")
        t = self.table(view, window, user_filter, pc)
        headers = [c.header for c in t.columns]
        col: int | None = headers.index(sort) if sort in headers else None
        asc: bool | None = None if col is None else order == "asc"
        okey = (id(t), col, asc)
        with self._lock:
            rows = self._orders.get(okey)
        if rows is None:
            rows = t.sorted_rows(col, asc)
            with self._lock:
                self._orders[okey] = rows
                while len(self._orders) > KEEP_ORDERS:
                    self._orders.popitem(last=False)
        shown_col = col if col is not None else view.sort_index(pc)
        shown_asc = asc if asc is not None else view.sort_ascending
        page = rows[offset:offset + limit]
        key_field = t.key_field
        return {
            "id": view.id, "name": view.name, "kind": view.kind,
            "columns": [{"header": c.header, "field": c.field, "units": c.units, "desc": c.desc} for c in t.columns],
            "rows": [{"key": _plain(r.key), "cells": [_plain(v) for v in r.values],
                      "drill": drill_filter(key_field, r.key) if r.key is not None else ""} for r in page],
            "total": len(rows), "offset": offset,
            "sort": headers[shown_col] if shown_col is not None and shown_col < len(headers) else "",
            "order": "asc" if shown_asc else "desc",
            "key_field": key_field, "drilldown": view.drilldown if view.kind == "table" else None,
            "notes": t.notes,
        }


def _plain(v: Any) -> Any:
    """A value JSON can carry: numbers and text as they are, bytes decoded, the rest as text."""
    if v is None or isinstance(v, (bool, int, float, str)):
        return v
    if isinstance(v, bytes):
        return v.decode(errors="replace")
    if isinstance(v, (list, tuple)):
        return ",".join(str(_plain(x)) for x in v)
    return str(v)


def make_drill(idx: Index) -> Drill:
    return Drill(idx)
