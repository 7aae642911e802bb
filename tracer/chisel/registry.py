"""Where chisels come from and how their arguments are read (see the package docstring)."""

from __future__ import annotations

import importlib
import importlib.metadata
import importlib.util
import os
import pkgutil
import re
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from types import ModuleType
from typing import IO, TYPE_CHECKING, Any, Final

from ..errors import KtraceError, UsageError
from ..event import RenderOptions
from .contract import Chisel, ChiselArg, ChiselContext, ChiselError, unquote

if TYPE_CHECKING:
    from rich.console import Console

ENTRY_POINT_GROUP: Final = "ktrace.chisels"
ENV_DIRS: Final = "KTRACE_CHISEL_DIR"

@dataclass(frozen=True)
class Found:
    cls: type[Chisel]
    origin: str  # "built-in", a file path, or "entry point NAME (VALUE)"


def _search_dirs(extra_dirs: Iterable[str]) -> list[str]:
    dirs = list(extra_dirs)
    env = os.environ.get(ENV_DIRS, "")
    dirs += [d for d in env.split(os.pathsep) if d]
    return dirs


def _chisel_class(module: ModuleType, origin: str, name: str) -> type[Chisel]:
    """The chisel a module defines: its ``CHISEL``, or its one Chisel subclass."""
    cls = getattr(module, "CHISEL", None)
    if cls is None:
        own = [v for v in vars(module).values()
               if isinstance(v, type) and issubclass(v, Chisel) and v.__module__ == module.__name__]
        if len(own) > 1:  # helper base classes have no name of their own
            own = [v for v in own if v.name]
        if len(own) != 1:
            raise ChiselError(f"{origin}: expected one Chisel subclass (or CHISEL = ...), found {len(own)}")
        cls = own[0]
    if not (isinstance(cls, type) and issubclass(cls, Chisel)):
        raise ChiselError(f"{origin}: CHISEL is not a Chisel subclass")
    if not getattr(cls, "name", ""):
        cls.name = name
    cls.check_metadata(origin)
    return cls


def _load_file(path: str, name: str) -> type[Chisel]:
    modname = "ktrace_user_chisel_" + re.sub(r"\W", "_", name)
    try:
        spec = importlib.util.spec_from_file_location(modname, path)
        if spec is None or spec.loader is None:
            raise ChiselError(f"{path}: cannot be loaded as a Python module")
        module = importlib.util.module_from_spec(spec)
        sys.modules[modname] = module  # dataclasses and typing look their module up here
        spec.loader.exec_module(module)
    except KtraceError:
        sys.modules.pop(modname, None)
        raise
    except SyntaxError as e:
        sys.modules.pop(modname, None)
        raise ChiselError(f"{path}: syntax error, line {e.lineno}: {e.msg}") from None
    except (Exception, SystemExit) as e:  # whatever the user's code raises at import
        sys.modules.pop(modname, None)
        raise ChiselError(f"{path}: {type(e).__name__}: {e}") from None
    return _chisel_class(module, path, name)


def _builtin_package() -> ModuleType:
    """The built-in ``chisels`` package, installed next to ``tracer``.

    A directory named ``chisels`` on sys.path (a test directory, sysdig users' Lua chisel
    directories) would otherwise be imported in its place as a namespace package.
    """
    ours = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "chisels")
    pkg = sys.modules.get("chisels")
    if pkg is None:
        try:
            pkg = importlib.import_module("chisels")
        except ImportError:
            pkg = None
    if pkg is not None and (not os.path.isdir(ours) or ours in [os.path.abspath(p) for p in pkg.__path__]):
        return pkg
    init = os.path.join(ours, "__init__.py")
    spec = importlib.util.spec_from_file_location("chisels", init, submodule_search_locations=[ours])
    if spec is None or spec.loader is None:
        raise ChiselError(f"{ours}: the built-in chisels cannot be loaded")
    pkg = importlib.util.module_from_spec(spec)
    sys.modules["chisels"] = pkg
    spec.loader.exec_module(pkg)
    return pkg


def _load_builtin(name: str) -> type[Chisel]:
    _builtin_package()
    module = importlib.import_module(f"chisels.{name}")
    return _chisel_class(module, f"built-in chisel {name}", name)


def _builtin_names() -> list[str]:
    pkg = _builtin_package()
    return sorted(m.name for m in pkgutil.iter_modules(pkg.__path__) if not m.name.startswith("_"))


def _entry_points() -> list[importlib.metadata.EntryPoint]:
    return list(importlib.metadata.entry_points(group=ENTRY_POINT_GROUP))


def _load_entry_point(ep: importlib.metadata.EntryPoint) -> type[Chisel]:
    origin = f"entry point {ep.name} ({ep.value})"
    try:
        obj = ep.load()
    except (Exception, SystemExit) as e:
        raise ChiselError(f"{origin}: {type(e).__name__}: {e}") from None
    if isinstance(obj, ModuleType):
        return _chisel_class(obj, origin, ep.name)
    if isinstance(obj, type) and issubclass(obj, Chisel):
        if not obj.name:
            obj.name = ep.name
        obj.check_metadata(origin)
        return obj
    raise ChiselError(f"{origin}: not a Chisel subclass or a module")


def find_chisel(name: str, extra_dirs: Iterable[str] = ()) -> Found:
    """The chisel called ``name``, from the first place that has it (see the package docstring)."""
    if not name or "/" in name or name.startswith((".", "_")):
        raise UsageError(f"unknown chisel '{name}'; `ktrace -cl` lists them")
    for d in _search_dirs(extra_dirs):
        path = os.path.join(d, f"{name}.py")
        if os.path.isfile(path):
            return Found(_load_file(path, name), path)
    for ep in _entry_points():
        if ep.name == name:
            return Found(_load_entry_point(ep), f"entry point {ep.name} ({ep.value})")
    if name in _builtin_names():
        return Found(_load_builtin(name), "built-in")
    raise UsageError(f"unknown chisel '{name}'; `ktrace -cl` lists them")


def all_chisels(extra_dirs: Iterable[str] = (), on_error: Callable[[ChiselError], None] | None = None
                ) -> dict[str, Found]:
    """Every chisel by name (the first place that has a name wins); broken ones go to ``on_error``."""
    found: dict[str, Found] = {}

    def add(name: str, load: Callable[[], type[Chisel]], origin: str) -> None:
        if name in found:
            return
        try:
            found[name] = Found(load(), origin)
        except ChiselError as e:
            if on_error is None:
                raise
            on_error(e)

    for d in _search_dirs(extra_dirs):
        try:
            # v_*.py files beside the chisels are views (ktrace top), as csysdig's v_*.lua are.
            files = sorted(f for f in os.listdir(d) if f.endswith(".py") and not f.startswith(("_", "v_")))
        except OSError:
            continue
        for f in files:
            path = os.path.join(d, f)
            add(f[:-3], lambda p=path, n=f[:-3]: _load_file(p, n), path)  # type: ignore[misc]
    for ep in _entry_points():
        add(ep.name, lambda e=ep: _load_entry_point(e), f"entry point {ep.name}")  # type: ignore[misc]
    for n in _builtin_names():
        add(n, lambda n=n: _load_builtin(n), "built-in")  # type: ignore[misc]
    return found


def parse_args(cls: type[Chisel], rest: list[str]) -> tuple[dict[str, Any], list[str]]:
    """Take the chisel's arguments off the front of ``rest``; what is left is the filter."""
    values: dict[str, Any] = {}
    i = 0

    def take(a: ChiselArg) -> None:
        nonlocal i
        if a.type == "filter":  # a filter argument takes the rest
            values[a.name] = " ".join(unquote(t) for t in rest[i:])
            i = len(rest)
        else:
            values[a.name] = a.convert(rest[i], cls.name)
            i += 1

    for a in cls.args:
        if a.optional:
            continue
        if i >= len(rest):
            raise UsageError(f"chisel {cls.name}: missing argument '{a.name}' ({a.description})")
        take(a)
    for a in cls.args:
        if a.optional and i < len(rest) and a.fits(rest[i]):
            take(a)
    return values, list(rest[i:])


def load_chisel(name: str, rest: list[str], *, container_mode: bool, json_out: bool, render: RenderOptions,
                extra_dirs: tuple[str, ...] = (), live: bool, out: IO[str] | None = None,
                console: Console | None = None) -> tuple[Chisel, list[str]]:
    """The configured chisel, and what is left of ``rest`` after its arguments (the filter)."""
    found = find_chisel(name, extra_dirs)
    values, remaining = parse_args(found.cls, list(rest))
    # A chisel prints buffers whole: sysdig cuts them at 80 characters only when no chisel runs.
    ctx = ChiselContext(container_mode=container_mode, json_out=json_out, render=replace(render, max_buf=0),
                        live=live, out=out, console=console)
    try:
        chisel = found.cls(ctx, values)
    except KtraceError:
        raise
    except Exception as e:  # a user chisel's on_init: one line naming it, never a traceback
        raise ChiselError(f"chisel {name} ({found.origin}): {type(e).__name__}: {e}") from None
    return chisel, remaining

