"""Where views come from, first match of an id wins: ``v_*.py`` files in the chisel directories
(``--chisel-dir``, then ``$KTRACE_CHISEL_DIR``), then the ``ktrace.views`` entry-point group, then
the built-ins. A view file defines ``VIEW = ViewSpec(...)`` or ``VIEWS = (ViewSpec(...), ...)``,
as csysdig's ``v_*.lua`` files sit beside its chisels.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import json
import os
import re
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Final

from ..chisel import ENV_DIRS
from ..errors import UsageError
from .builtin import BUILTIN_VIEWS
from .spec import ViewError, ViewSpec

ENTRY_POINT_GROUP: Final = "ktrace.views"
FILE_PREFIX: Final = "v_"
DEFAULT_VIEW: Final = "procs"


def _search_dirs(extra_dirs: Iterable[str]) -> list[str]:
    """The chisel directories, in the order chisels are looked up in."""
    return [*extra_dirs, *(d for d in os.environ.get(ENV_DIRS, "").split(os.pathsep) if d)]


@dataclass(frozen=True)
class FoundView:
    view: ViewSpec
    origin: str  # "built-in", a file path, or "entry point NAME (VALUE)"


def _views_of(obj: Any, origin: str) -> list[ViewSpec]:
    """The views a module, or an entry point's object, declares."""
    if isinstance(obj, ViewSpec):
        views = [obj]
    elif isinstance(obj, (list, tuple)):
        views = list(obj)
    else:
        single, many = getattr(obj, "VIEW", None), getattr(obj, "VIEWS", None)
        views = ([single] if single is not None else []) + list(many or ())
        if not views:
            raise ViewError(f"{origin}: defines no VIEW or VIEWS")
    for v in views:
        if not isinstance(v, ViewSpec):
            raise ViewError(f"{origin}: {v!r} is not a ViewSpec")
        v.check(origin)
    return views


def _load_file(path: str) -> list[ViewSpec]:
    modname = "ktrace_user_view_" + re.sub(r"\W", "_", os.path.basename(path)[:-3])
    try:
        spec = importlib.util.spec_from_file_location(modname, path)
        if spec is None or spec.loader is None:
            raise ViewError(f"{path}: cannot be loaded as a Python module")
        module = importlib.util.module_from_spec(spec)
        sys.modules[modname] = module
        spec.loader.exec_module(module)
    except ViewError:
        sys.modules.pop(modname, None)
        raise
    except SyntaxError as e:
        sys.modules.pop(modname, None)
        raise ViewError(f"{path}: syntax error, line {e.lineno}: {e.msg}") from None
    except (Exception, SystemExit) as e:  # whatever the user's code raises at import
        sys.modules.pop(modname, None)
        raise ViewError(f"{path}: {type(e).__name__}: {e}") from None
    return _views_of(module, path)


def all_views(extra_dirs: Iterable[str] = (), on_error: Callable[[ViewError], None] | None = None
              ) -> dict[str, FoundView]:
    """Every view by id, in menu order (user views first, then the built-ins); a broken user view
    goes to ``on_error`` (raised when there is none)."""
    found: dict[str, FoundView] = {}

    def add(views: Callable[[], list[ViewSpec]], origin: str) -> None:
        try:
            for v in views():
                found.setdefault(v.id, FoundView(v, origin))
        except ViewError as e:
            if on_error is None:
                raise
            on_error(e)

    for d in _search_dirs(extra_dirs):
        try:
            files = sorted(f for f in os.listdir(d) if f.startswith(FILE_PREFIX) and f.endswith(".py"))
        except OSError:
            continue
        for f in files:
            path = os.path.join(d, f)
            add(lambda p=path: _load_file(p), path)  # type: ignore[misc]
    for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        origin = f"entry point {ep.name} ({ep.value})"

        def load(e: importlib.metadata.EntryPoint = ep, o: str = origin) -> list[ViewSpec]:
            try:
                obj = e.load()
            except (Exception, SystemExit) as exc:
                raise ViewError(f"{o}: {type(exc).__name__}: {exc}") from None
            return _views_of(obj, o)

        add(load, origin)
    for v in BUILTIN_VIEWS:
        found.setdefault(v.id, FoundView(v, "built-in"))
    return found


def find_view(view_id: str, extra_dirs: Iterable[str] = ()) -> ViewSpec:
    """The view called ``view_id``; UsageError naming ``--list-views`` when there is none."""
    found = all_views(extra_dirs, on_error=lambda e: print(e.show(), file=sys.stderr))
    if view_id not in found:
        raise UsageError(f"unknown view '{view_id}'; `ktrace top --list-views` lists them")
    return found[view_id].view


def views_json(extra_dirs: Iterable[str] = ()) -> str:
    """``ktrace top --list-views``: every view as JSON (csysdig's --list-views -j)."""
    out = []
    for fv in all_views(extra_dirs, on_error=lambda e: print(e.show(), file=sys.stderr)).values():
        v = fv.view
        out.append({
            "id": v.id, "name": v.name, "description": v.description, "kind": v.kind, "root": v.root,
            "filter": v.filter, "key": v.key, "containerKey": v.container_key, "sort": v.sort,
            "drilldownTarget": v.drilldown, "appliesTo": list(v.applies_to), "origin": fv.origin,
            "columns": [{"name": c.header, "field": c.field, "aggregation": c.agg, "units": c.units,
                         "desc": c.desc, "containersOnly": c.containers_only, "where": c.where}
                        for c in v.columns],
        })
    return json.dumps(out, indent=1)
