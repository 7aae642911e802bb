"""Finding chisels, their arguments, -cl and -i, user chisels and what a broken one looks like."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tracer.chisel import ChiselError, find_chisel, load_chisel, parse_args
from tracer.errors import KtraceError, UsageError
from tracer.event import RenderOptions

BUILTINS = ["echo_fds", "fdbytes_by", "fdcount_by", "lscontainers", "lsof", "netstat", "proc_exec_time", "ps",
            "spy_users", "topconns", "topcontainers_cpu", "topcontainers_file", "topcontainers_net",
            "topfiles_bytes", "topfiles_time", "topprocs_cpu", "topprocs_file", "topprocs_net", "topscalls",
            "topscalls_time"]


def load(name: str, rest: list[str], **kw: Any) -> tuple[Any, list[str]]:
    opts: dict[str, Any] = {"container_mode": False, "json_out": False, "render": RenderOptions(), "live": False}
    opts.update(kw)
    return load_chisel(name, rest, **opts)


@pytest.mark.parametrize("name", BUILTINS)
def test_every_builtin_loads_with_metadata(name: str) -> None:
    cls = find_chisel(name).cls
    assert cls.name == name
    assert cls.short_description and cls.description and cls.category
    rest = ["proc.name"] if name in ("fdbytes_by", "fdcount_by") else []
    chisel, left = load(name, rest)
    assert left == []
    if chisel.filter:  # its own filter compiles against the field table
        from tracer.filter.compiler import compile_filter
        from tracer.schema.fields import FIELDS

        compile_filter(chisel.filter, FIELDS)


@pytest.mark.parametrize(("name", "tokens", "values", "rest"), [
    ("spy_users", [], {"max_depth": -1, "disable_color": None}, []),
    ("spy_users", ["2"], {"max_depth": 2, "disable_color": None}, []),
    ("spy_users", ["2", "disable_color"], {"max_depth": 2, "disable_color": "disable_color"}, []),
    ("spy_users", ["disable_colors"], {"max_depth": -1, "disable_color": "disable_colors"}, []),
    ("spy_users", ["proc.name=bash"], {"max_depth": -1}, ["proc.name=bash"]),
    ("spy_users", ["3", "proc.name", "=", "bash"], {"max_depth": 3}, ["proc.name", "=", "bash"]),
    ("echo_fds", ["disable_color", "fd.port=80"], {"disable_color": "disable_color"}, ["fd.port=80"]),
    ("echo_fds", ["fd.port=80"], {"disable_color": None}, ["fd.port=80"]),
    ("echo_fds", ["not", "fd.port=80"], {"disable_color": None}, ["not", "fd.port=80"]),
    ("proc_exec_time", ["disable_colors"], {"disable_color": "disable_colors"}, []),
    ("fdbytes_by", ["proc.name", "evt.type=read"], {"key": "proc.name"}, ["evt.type=read"]),
    ("fdcount_by", ["fd.sport"], {"key": "fd.sport"}, []),
    ("lsof", ["proc.name=sshd and fd.type=ipv4"], {"filter": "proc.name=sshd and fd.type=ipv4"}, []),
    ("lsof", ["'proc.name=sshd and fd.type=ipv4'"], {"filter": "proc.name=sshd and fd.type=ipv4"}, []),
    ("lsof", ["proc.name=sshd", "and", "fd.type=ipv4"], {"filter": "proc.name=sshd and fd.type=ipv4"}, []),
    ("ps", [], {"filter": None}, []),
    ("lscontainers", ["desc"], {"desc": "desc"}, []),
    ("lscontainers", ["container.name=web"], {"desc": None}, ["container.name=web"]),
    ("topconns", ["fd.port=80"], {}, ["fd.port=80"]),
])
def test_arguments_then_filter(name: str, tokens: list[str], values: dict[str, Any], rest: list[str]) -> None:
    got, left = parse_args(find_chisel(name).cls, tokens)
    for k, v in values.items():
        assert got.get(k, find_default(name, k)) == v
    assert left == rest


def find_default(name: str, arg: str) -> Any:
    return next(a.default for a in find_chisel(name).cls.args if a.name == arg)


@pytest.mark.parametrize(("name", "tokens", "message"), [
    ("nope", [], "unknown chisel 'nope'; `ktrace -cl` lists them"),
    ("../etc/passwd", [], "unknown chisel '../etc/passwd'"),
    ("fdbytes_by", [], "chisel fdbytes_by: missing argument 'key'"),
    ("fdbytes_by", ["no.such.field"], "chisel fdbytes_by: unknown field 'no.such.field'"),
])
def test_usage_errors(name: str, tokens: list[str], message: str) -> None:
    with pytest.raises(UsageError, match="^" + message.replace("(", r"\(").replace(")", r"\)").replace(".", r"\.")):
        load(name, tokens)


def test_cli_unknown_chisel_is_one_line(ktrace: Any) -> None:
    r = ktrace("-r", "/nonexistent.kcap", "-c", "nope")
    assert r.code == 2
    assert r.err == "ktrace: unknown chisel 'nope'; `ktrace -cl` lists them\n"
    assert r.out == ""


def test_cli_missing_argument(ktrace: Any) -> None:
    r = ktrace("-r", "/nonexistent.kcap", "-c", "fdbytes_by")
    assert r.code == 2
    assert r.err.startswith("ktrace: chisel fdbytes_by: missing argument 'key'")


def test_list_chisels_layout(ktrace: Any, golden: Any) -> None:
    r = ktrace("-cl")
    assert r.code == 0
    golden("cl.txt", r.out)
    # sysdig's layout: a blank line, the category title underlined, names padded to 16.
    assert r.out.startswith("\nCategory: CPU Usage\n-------------------\ntopcontainers_cpu\n                Top ")
    assert "topconns        Top network connections by total bytes\n" in r.out
    assert r.out.endswith("\nUse the -i flag to get detailed information about a specific chisel\n")


@pytest.mark.parametrize("name", ["spy_users", "topconns", "lsof"])
def test_chisel_info_layout(ktrace: Any, golden: Any, name: str) -> None:
    r = ktrace("-i", name)
    assert r.code == 0
    golden(f"info_{name}.txt", r.out)


def test_info_wraps_arguments_like_sysdig(ktrace: Any) -> None:
    out = ktrace("-i", "spy_users").out
    assert "Args:\n[int] max_depth - the maximum depth to show in the hierarchy of\n                 processes\n" in out


# --- user chisels ----------------------------------------------------------------------------------
HELLO = '''
from __future__ import annotations

from tracer.chisel import Chisel, ChiselArg


class Hello(Chisel):
    category = "Misc"
    short_description = "Count reads and greet"
    args = (ChiselArg("greeting", "what to say"),)

    def on_init(self) -> None:
        self.filter = "evt.type=read and evt.dir=<"
        self.n = 0

    def on_event(self, ev) -> None:
        self.n += 1

    def on_capture_end(self, ts_ns: int) -> None:
        self.print(f"{self.arg['greeting']} {self.n}")
'''

MYTOP = '''
from tracer.chisel import TableChisel, TableSpec


class ByUser(TableChisel):
    name = "bytes_by_user"
    category = "I/O"
    short_description = "Bytes by user"
    spec = TableSpec(("user.name",), ("User",), "evt.rawarg.res", "Bytes", "evt.is_io=true", 5, "bytes")
'''


def test_user_chisel_from_chisel_dir(tmp_path: Path, scenario_path: str, ktrace: Any) -> None:
    (tmp_path / "hello.py").write_text(HELLO)
    r = ktrace("--chisel-dir", str(tmp_path), "-r", scenario_path, "-c", "hello", "hi", "proc.name=dd")
    assert (r.code, r.out, r.err) == (0, "hi 3\n", "")


def test_user_table_chisel_from_env(tmp_path: Path, scenario_path: str, ktrace: Any,
                                    monkeypatch: pytest.MonkeyPatch, golden: Any) -> None:
    (tmp_path / "bytes_by_user.py").write_text(MYTOP)
    monkeypatch.setenv("KTRACE_CHISEL_DIR", f"/nonexistent:{tmp_path}")
    r = ktrace("-r", scenario_path, "-c", "bytes_by_user")
    assert r.code == 0, r.err
    golden("user_bytes_by_user.txt", r.out)
    listing = ktrace("-cl").out
    assert "bytes_by_user   Bytes by user\n" in listing


def test_user_dir_overrides_a_builtin(tmp_path: Path, scenario_path: str, ktrace: Any) -> None:
    (tmp_path / "topconns.py").write_text(HELLO.replace("class Hello", "class TopConns"))
    r = ktrace("--chisel-dir", str(tmp_path), "-r", scenario_path, "-c", "topconns", "yo")
    assert r.out == "yo 7\n"


BROKEN = {
    "syntax": ("class Broken(:\n    pass\n", "syntax error, line 1"),
    "imports": ("import no_such_module_for_ktrace\n", "ModuleNotFoundError: No module named"),
    "raises": ("raise RuntimeError('boom at import')\n", "RuntimeError: boom at import"),
    "nometa": ("from tracer.chisel import Chisel\n\nclass X(Chisel):\n    name = 'nometa'\n",
               "chisel X has no short_description"),
    "nochisel": ("x = 1\n", "expected one Chisel subclass"),
    "badargs": ("from tracer.chisel import Chisel\n\nclass X(Chisel):\n    short_description = 'x'\n"
                "    category = 'Misc'\n    args = ('key',)\n", "args must be a tuple of ChiselArg"),
    "initfails": ("from tracer.chisel import Chisel\n\nclass X(Chisel):\n    short_description = 'x'\n"
                  "    category = 'Misc'\n    def on_init(self):\n        return 1 / 0\n",
                  "ZeroDivisionError: division by zero"),
}


@pytest.mark.parametrize("name", sorted(BROKEN))
def test_broken_user_chisel_is_one_line_naming_its_file(tmp_path: Path, ktrace: Any, name: str) -> None:
    source, message = BROKEN[name]
    path = tmp_path / f"{name}.py"
    path.write_text(source)
    with pytest.raises(KtraceError) as info:
        load(name, [], extra_dirs=(str(tmp_path),))
    assert isinstance(info.value, ChiselError)
    assert str(path) in str(info.value) and message in str(info.value)
    r = ktrace("--chisel-dir", str(tmp_path), "-r", "/nonexistent.kcap", "-c", name)
    assert r.code == 2
    assert r.err.count("\n") == 1 and str(path) in r.err and "Traceback" not in r.err


def test_listing_skips_a_broken_chisel_with_a_warning(tmp_path: Path, ktrace: Any) -> None:
    (tmp_path / "syntax.py").write_text(BROKEN["syntax"][0])
    (tmp_path / "hello.py").write_text(HELLO)
    r = ktrace("--chisel-dir", str(tmp_path), "-cl")
    assert r.code == 0
    assert "hello           Count reads and greet\n" in r.out
    assert "syntax.py: syntax error" in r.err


def test_entry_point_chisel(tmp_path: Path, scenario_path: str, ktrace: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """A package can ship chisels through the ``ktrace.chisels`` entry-point group."""
    import importlib.metadata

    import tracer.chisel.registry as registry

    (tmp_path / "ktrace_ep_sample.py").write_text(HELLO.replace("class Hello", "class EpHello"))
    monkeypatch.syspath_prepend(str(tmp_path))
    ep = importlib.metadata.EntryPoint("ephello", "ktrace_ep_sample:EpHello", registry.ENTRY_POINT_GROUP)
    broken = importlib.metadata.EntryPoint("epbroken", "ktrace_no_such_module:X", registry.ENTRY_POINT_GROUP)
    monkeypatch.setattr(registry, "_entry_points", lambda: [ep, broken])
    assert ktrace("-r", scenario_path, "-c", "ephello", "hey").out == "hey 7\n"
    assert "ephello         Count reads and greet\n" in ktrace("-cl").out
    r = ktrace("-r", scenario_path, "-c", "epbroken")
    assert r.code == 2 and "entry point epbroken (ktrace_no_such_module:X)" in r.err
