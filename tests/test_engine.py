"""The engine: each Cython module (ext/*.pyx), its pure-Python twin (tracer/_pure) and its stub
(ext/*.pyi) offer the same names and signatures, and the engine that runs is the one asked for:
without KTRACE_PUREPYTHON=1 a missing Cython build is an error, never a quiet switch to the twins.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import os
import re
import subprocess
import sys
from pathlib import Path
from types import ModuleType, SimpleNamespace
from typing import Any

import pytest

from tracer import engine
from tracer.capture.scap.translate import Translator
from tracer.state.state import State

ROOT = Path(__file__).resolve().parents[1]
TWINS = sorted(p.stem for p in (ROOT / "ext").glob("*.pyx"))
PURE_RUN = os.environ.get("KTRACE_PUREPYTHON") == "1"

# Arguments that construct a class without a kernel (a Ring needs a BPF map: its class is read).
SAMPLES: dict[str, tuple[Any, ...]] = {"Scanner": (b"", b""), "BatchError": ("message", 0), "Tally": (b"",),
                                       "Decoder": (Translator(), {}, 1),
                                       "Plan": ([], [], [], b"", b"", b"", 0), "Enters": (),
                                       "ViewCounter": (SimpleNamespace(aggs=[], plans_epoch={}), State(), print, b"",
                                                       False)}

Param = tuple[str, str, bool]  # name, kind, has a default


def _modules(name: str) -> tuple[ModuleType, ModuleType]:
    pure = importlib.import_module(f"tracer._pure.{name}")
    try:
        ext = importlib.import_module(f"tracer._ext.{name}")
    except ImportError:
        if PURE_RUN:
            pytest.skip("the Cython extension is not built (allowed with KTRACE_PUREPYTHON=1 only)")
        raise
    return ext, pure


# --- the stub, read as source -----------------------------------------------------------------------
def _stub(name: str) -> ast.Module:
    return ast.parse((ROOT / "ext" / f"{name}.pyi").read_text())


def _stub_all(tree: ast.Module) -> list[str]:
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "__all__" for t in node.targets):
            return list(ast.literal_eval(node.value))
    raise AssertionError("the stub has no __all__")


def _ast_params(fn: ast.FunctionDef) -> list[Param]:
    a = fn.args
    positional = [*a.posonlyargs, *a.args]
    first_default = len(positional) - len(a.defaults)
    out = [(p.arg, "POSITIONAL_ONLY" if p in a.posonlyargs else "POSITIONAL_OR_KEYWORD", i >= first_default)
           for i, p in enumerate(positional)]
    if a.vararg:
        out.append((a.vararg.arg, "VAR_POSITIONAL", False))
    out += [(p.arg, "KEYWORD_ONLY", d is not None) for p, d in zip(a.kwonlyargs, a.kw_defaults, strict=True)]
    if a.kwarg:
        out.append((a.kwarg.arg, "VAR_KEYWORD", False))
    return [p for p in out if p[0] != "self"]


def _stub_class(tree: ast.Module, name: str) -> tuple[list[str], dict[str, list[Param] | None]]:
    """The class's bases, and its members: a method's parameters, None for data and properties."""
    cls = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == name)
    members: dict[str, list[Param] | None] = {}
    for node in cls.body:
        if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            members[node.target.id] = None
        elif isinstance(node, ast.FunctionDef):
            prop = any(isinstance(d, ast.Name) and d.id == "property" for d in node.decorator_list)
            members[node.name] = None if prop else _ast_params(node)
    return [ast.unparse(b) for b in cls.bases], members


# --- the runtime modules ----------------------------------------------------------------------------
def _params(fn: Any) -> list[Param]:
    return [(p.name, p.kind.name, p.default is not inspect.Parameter.empty)
            for p in inspect.signature(fn).parameters.values() if p.name != "self"]


def _init_params(cls: type, mod: ModuleType) -> list[Param]:
    """The constructor's parameters. A Cython extension type carries no signature: they are read
    from its source (``def __init__`` or ``def __cinit__``, C types dropped)."""
    try:
        return _params(cls)
    except ValueError:
        pass
    src = (ROOT / "ext" / f"{mod.__name__.rsplit('.', 1)[1]}.pyx").read_text()
    body = src[src.index(f"cdef class {cls.__name__}"):]
    body = body[:body.find("\ncdef class ", 1) % (len(body) + 1)]  # this class's own, not the next one's
    # __init__ when there is one (a __cinit__ beside it may take anything, to allocate).
    m = re.search(r"def __init__\(self,?(.*?)\):", body, re.S) \
        or re.search(r"def __cinit__\(self,?(.*?)\):", body, re.S)
    assert m is not None, f"no constructor found for {cls.__name__}"
    out: list[Param] = []
    for item in filter(None, (i.strip() for i in m[1].split(","))):
        decl, _, default = item.partition("=")
        out.append((decl.split()[-1], "POSITIONAL_OR_KEYWORD", bool(default)))
    return out


def _members(cls: type) -> dict[str, list[Param] | None]:
    """Public members the class adds to its bases (an instance's data included when one can be
    made here): a method's parameters, None for data and properties."""
    inherited = {n for base in cls.__mro__[1:] for n in dir(base)}
    holder: Any = cls(*SAMPLES[cls.__name__]) if cls.__name__ in SAMPLES else cls
    out: dict[str, list[Param] | None] = {}
    for n in dir(holder):
        if n.startswith("_") or n in inherited:
            continue
        attr = inspect.getattr_static(cls, n, None)
        out[n] = _params(attr) if callable(attr) and not isinstance(attr, property) else None
    return out


@pytest.mark.parametrize("name", TWINS)
def test_twins_and_stub_export_the_same_names(name: str) -> None:
    ext, pure = _modules(name)
    stub = _stub(name)
    assert sorted(ext.__all__) == sorted(pure.__all__) == sorted(_stub_all(stub))
    for mod in (ext, pure):
        assert [n for n in mod.__all__ if not hasattr(mod, n)] == [], mod
        # Nothing public defined here is left out of __all__ (and so out of the comparison).
        defined = {n for n, v in vars(mod).items() if not n.startswith("_") and callable(v)
                   and getattr(v, "__module__", None) == mod.__name__}
        assert defined <= set(mod.__all__), mod
    for n in ext.__all__:
        a, b = getattr(ext, n), getattr(pure, n)
        if callable(a) and not inspect.isclass(a):
            # A function: the same parameters in both (Cython functions carry their signature).
            assert list(inspect.signature(a).parameters) == list(inspect.signature(b).parameters), n
        elif isinstance(a, (int, float, str, bytes, tuple, frozenset)):
            assert a == b, n  # a constant: the same value in both
        elif not inspect.isclass(a):
            assert type(a).__name__ == type(b).__name__, n  # an instance (a sentinel): of the twin classes


@pytest.mark.parametrize("name", TWINS)
def test_twins_and_stub_classes_have_the_same_members_and_signatures(name: str) -> None:
    ext, pure = _modules(name)
    stub = _stub(name)
    for cname in (n for n in ext.__all__ if inspect.isclass(getattr(ext, n))):
        e_cls, p_cls = getattr(ext, cname), getattr(pure, cname)
        bases, members = _stub_class(stub, cname)
        assert [b.__name__ for b in e_cls.__bases__ if b is not object] == \
            [b.__name__ for b in p_cls.__bases__ if b is not object] == bases, cname
        init = members.pop("__init__", [])
        assert _init_params(e_cls, ext) == _init_params(p_cls, pure) == init, cname
        assert _members(e_cls) == _members(p_cls) == {k: v for k, v in members.items() if not k.startswith("_")}, \
            cname


# --- the engine that runs ---------------------------------------------------------------------------
def test_the_engine_asked_for_is_the_one_loaded() -> None:
    kind = "_pure" if PURE_RUN else "_ext"
    assert engine.PURE == PURE_RUN
    assert (engine.scan.__name__, engine.ring.__name__) == (f"tracer.{kind}.scan", f"tracer.{kind}.ring")


# Run first in a child: makes the Cython modules impossible to import, as when they were never built.
_NO_EXT = """
import importlib.abc, sys

class NoExt(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.startswith("tracer._ext."):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None

sys.meta_path.insert(0, NoExt())
"""


def _without_ext(code: str, *, pure: bool) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "KTRACE_PUREPYTHON"}
    if pure:
        env["KTRACE_PUREPYTHON"] = "1"
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    return subprocess.run([sys.executable, "-c", _NO_EXT + code], env=env, capture_output=True, text=True,
                          timeout=120, cwd=ROOT)


def test_a_missing_cython_engine_is_an_error_not_a_switch() -> None:
    r = _without_ext("import tracer.engine", pure=False)
    assert r.returncode == 1
    assert re.search(r"^tracer\.errors\.EngineError: the Cython engine is not built \(.*'tracer\._ext", r.stderr, re.M)
    assert "KTRACE_PUREPYTHON=1" in r.stderr


def test_ktrace_says_so_in_one_line() -> None:
    capture = ROOT / "captures" / "02-shell.kcap"
    run = f"from tracer.cli import main; main(['-r', {str(capture)!r}, '-n', '3'])"
    r = _without_ext(run, pure=False)
    assert (r.returncode, r.stdout) == (2, "")
    assert re.fullmatch(r"ktrace: the Cython engine is not built \(.*\): .*KTRACE_PUREPYTHON=1.*\n", r.stderr)
    # Asked for, the pure-Python engine needs no build.
    r = _without_ext(run, pure=True)
    assert (r.returncode, r.stderr, len(r.stdout.splitlines())) == (0, "", 3)
