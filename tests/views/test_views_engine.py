"""The views engine over the sample captures: every view's numbers against the chisels and against
counts made here from ktrace's event lines (``-p`` formats over the same capture), drill-down
filters, slices, user views."""

from __future__ import annotations

import io
import json
from collections import Counter
from pathlib import Path

import pytest

from tracer.chisel import load_chisel
from tracer.errors import FilterError, UsageError
from tracer.event import RenderOptions
from tracer.session import RunOptions, run
from tracer.views import (
    Column,
    Navigator,
    ViewError,
    ViewSpec,
    all_views,
    capture_events,
    capture_table,
    capture_tables,
    drill_filter,
    find_view,
)

CAPS = Path(__file__).resolve().parents[2] / "captures"
WEB, SHELL, CONTAINER, CPU, FAIL = (str(CAPS / n) for n in (
    "01-webserver.kcap", "02-shell.kcap", "03-container.kcap", "04-cpu-burn.kcap", "05-failing-service.kcap"))
VIEWS = {k: f.view for k, f in all_views().items()}
EVERYDAY = ("procs", "procs_cpu", "threads", "containers", "connections", "incoming_connections", "sports", "files",
            "directories", "file_opens", "slow_io", "io_by_type", "errors", "procs_errors", "syscalls",
            "syscall_procs", "spy_users", "kubernetes_pods", "kubernetes_namespaces", "spectro_all")


def lines(cap: str, fmt: str, flt: str) -> list[list[str]]:
    """ktrace -r CAP -p FMT FLT, split on '|'."""
    out = io.StringIO()
    run(RunOptions(reads=[cap], fmt=fmt, filter_text=flt, stdout=out, stderr=io.StringIO()))
    return [ln.split("|") for ln in out.getvalue().splitlines() if ln]


def chisel_json(cap: str, name: str, *rest: str) -> list[list[object]]:
    """A table chisel's -j rows over a capture."""
    out = io.StringIO()
    chisel, left = load_chisel(name, list(rest), container_mode=False, json_out=True, render=RenderOptions(),
                               live=False, out=out)
    run(RunOptions(reads=[cap], chisel=chisel, filter_text=" ".join(left), stdout=out, stderr=io.StringIO()))
    return [row for doc in map(json.loads, out.getvalue().splitlines()) for row in doc["data"]]


def by_key(table: object) -> dict[object, dict[str, object]]:
    t = table  # a ViewTable
    return {r.key: {c.header: v for c, v in zip(t.columns, r.totals, strict=True)} for r in t.rows}  # type: ignore[attr-defined]


def test_everyday_views_exist_and_hold_together() -> None:
    for vid in EVERYDAY:
        assert vid in VIEWS, vid
        VIEWS[vid].check("test")
    assert VIEWS["procs"].root and VIEWS["procs"].sort == "CPU"
    chains = {"containers": "procs", "procs": "threads", "threads": "files", "connections": "incoming_connections",
              "errors": "procs_errors", "syscalls": "syscall_procs", "procs_errors": "errors", "sports": "connections",
              "directories": "files", "kubernetes_namespaces": "kubernetes_pods", "kubernetes_pods": "containers"}
    for src, dst in chains.items():
        assert VIEWS[src].drilldown == dst


def test_procs_cpu_equals_topprocs_cpu() -> None:
    t = capture_table(VIEWS["procs"], [CPU])
    cpu_col = [c.header for c in t.columns].index("CPU")
    # The chisel's -j value is the CPU time (ns) of each process; the view's totals carry the same.
    want = {int(row[1]): row[2] for row in chisel_json(CPU, "topprocs_cpu")}  # type: ignore[call-overload]
    assert len(want) == 2 and {r.key: r.totals[cpu_col] for r in t.rows if r.totals[cpu_col]} == want
    # And the percent shown is the chisel's printed figure.
    out = io.StringIO()
    chisel, _ = load_chisel("topprocs_cpu", [], container_mode=False, json_out=False, render=RenderOptions(),
                            live=False, out=out)
    run(RunOptions(reads=[CPU], chisel=chisel, stdout=out, stderr=io.StringIO()))
    printed = {int(ln.split()[2]): ln.split()[0].rstrip("%") for ln in out.getvalue().splitlines()[2:] if ln.strip()}
    assert {r.key: t.cell(r, cpu_col) for r in t.rows if r.key in printed} == printed
    assert t.sorted_rows()[0].key == max(want, key=lambda p: want[p])


def test_connections_equal_topconns_and_the_io_lines() -> None:
    t = capture_table(VIEWS["connections"], [WEB])
    rows = by_key(t)
    topconns = {row[1]: row[2] for row in chisel_json(WEB, "topconns")}
    assert topconns
    for conn, total in topconns.items():
        assert rows[conn]["BPS IN"] + rows[conn]["BPS OUT"] == total  # type: ignore[operator]
    # Independently: bytes of each read and write on an IPv4/IPv6 fd, from the event lines.
    io_in: Counter[str] = Counter()
    io_out: Counter[str] = Counter()
    calls: Counter[str] = Counter()
    for name, res, d in lines(WEB, "%fd.name|%evt.rawres|%evt.io_dir",
                              "(fd.type=ipv4 or fd.type=ipv6) and fd.name!='' and evt.is_io=true and evt.dir=<"):
        if int(res) > 0:
            (io_in if d == "r" else io_out)[name] += int(res)
    for (name,) in lines(WEB, "%fd.name", "(fd.type=ipv4 or fd.type=ipv6) and fd.name!=''"):
        calls[name] += 1
    for conn, r in rows.items():
        assert (r["BPS IN"], r["BPS OUT"], r["IOPS"]) == (io_in[conn], io_out[conn], calls[conn])  # type: ignore[index]
    span = t.span_ns / 1e9
    r0 = t.rows[0]
    assert r0.values[5] == pytest.approx(r0.totals[5] / span)  # a rate: the total over the capture's span


def test_files_and_directories_equal_the_event_lines() -> None:
    files = by_key(capture_table(VIEWS["files"], [WEB]))
    topfiles = {row[0]: row[1] for row in chisel_json(WEB, "topfiles_bytes")}
    for name, total in topfiles.items():
        assert files[name]["BYTES IN"] + files[name]["BYTES OUT"] == total  # type: ignore[operator]
    ops: Counter[str] = Counter()
    opens: Counter[str] = Counter()
    for name, d, t in lines(WEB, "%fd.name|%evt.dir|%evt.type", "(fd.type=file or fd.type=directory) and fd.name!=''"):
        if d == "<":
            ops[name] += 1
            if t in ("open", "openat", "openat2", "creat"):
                opens[name] += 1
    assert {k: v["OPS"] for k, v in files.items()} == dict(ops)
    assert {k: v["OPENS"] for k, v in files.items() if v["OPENS"]} == {k: v for k, v in opens.items() if v}
    dirs = by_key(capture_table(VIEWS["directories"], [WEB]))
    per_dir: Counter[str] = Counter()
    for name, n in ops.items():
        per_dir[name.rsplit("/", 1)[0] or "/"] += n
    assert {k: v["OPS"] for k, v in dirs.items()} == dict(per_dir)


def test_errors_and_procs_errors_equal_the_failed_calls() -> None:
    errs = by_key(capture_table(VIEWS["errors"], [FAIL]))
    want = Counter(res for (res,) in lines(FAIL, "%evt.res", "evt.failed=true"))
    assert {k: v["COUNT"] for k, v in errs.items()} == dict(want)
    assert errs["ENOENT"]["COUNT"] and errs["ECONNREFUSED"]["COUNT"] == 5  # 5 rounds of the failing service
    pe = by_key(capture_table(VIEWS["procs_errors"], [FAIL]))
    per_pid: Counter[int] = Counter(int(p) for (p,) in lines(FAIL, "%proc.pid", "evt.failed=true"))
    assert {k: sum(v[h] for h in ("FILE", "NET", "MEMORY", "OTHER")) for k, v in pe.items()} == dict(per_pid)  # type: ignore[misc]


def test_syscalls_equal_topscalls() -> None:
    t = capture_table(VIEWS["syscalls"], [FAIL])
    calls = {k: v["CALLS/S"] for k, v in by_key(t).items()}
    topscalls = {row[0]: row[1] for row in chisel_json(FAIL, "topscalls")}
    assert len(topscalls) == 30 and {k: calls[k] for k in topscalls} == topscalls  # the chisel keeps its top 30
    per_type = Counter(t for (t,) in lines(FAIL, "%evt.type", "syscall.type exists"))
    assert calls == dict(per_type)
    sp = capture_table(VIEWS["syscall_procs"], [FAIL], filter_text=drill_filter("evt.type", "fcntl"))
    assert sum(r.totals[0] for r in sp.rows) == per_type["fcntl"]


def test_lists_have_a_row_per_event() -> None:
    spy = capture_table(VIEWS["spy_users"], [SHELL])
    execs = lines(SHELL, "%evt.num|%proc.exeline", "evt.type=execve and evt.dir=< and evt.failed=false")
    cmds = [r.values[-1] for r in spy.rows]
    for _num, cmd in execs:
        assert cmd in cmds
    assert any("cat /etc/hostname" in c for c in cmds)
    opens = capture_table(VIEWS["file_opens"], [WEB])
    assert len(opens.rows) == len(lines(WEB, "%evt.num", "evt.type in (open, openat, openat2, creat) and evt.dir=<"))


def test_containers_with_pc() -> None:
    t = capture_table(VIEWS["containers"], [CONTAINER], container_mode=True)
    assert len(t.rows) == 1
    row = dict(zip([c.header for c in t.columns], t.rows[0].values, strict=True))
    assert row["ENGINE"] == "docker" and row["IMAGE"] == "ktrace-busybox:latest"
    pids = {int(p) for (p,) in lines(CONTAINER, "%proc.pid", "container.name != host")}
    assert row["PROCS"] == len(pids)
    procs = capture_table(VIEWS["procs"], [CONTAINER], container_mode=True)
    assert "CONTAINER" in [c.header for c in procs.columns] and "VPID" in [c.header for c in procs.columns]
    assert "CONTAINER" not in [c.header for c in capture_table(VIEWS["procs"], [CONTAINER]).columns]


def test_io_by_type_and_spectrogram() -> None:
    t = by_key(capture_table(VIEWS["io_by_type"], [WEB]))
    per_type: Counter[str] = Counter()
    for ftype, res, d in lines(WEB, "%fd.type|%evt.rawres|%evt.io_dir", "evt.is_io=true and evt.dir=<"):
        if int(res) > 0 and d == "r":
            per_type[ftype] += int(res)
    assert {k: v["BPS IN"] for k, v in t.items() if v["BPS IN"]} == {k: v for k, v in per_type.items() if v}
    spec = capture_table(VIEWS["spectro_all"], [FAIL])
    assert sum(spec.spectrum) == len(lines(FAIL, "%evt.num", "evt.dir=< and syscall.type exists"))


def test_slices_add_up_to_the_whole() -> None:
    whole = by_key(capture_table(VIEWS["syscalls"], [WEB]))
    slices = capture_tables(VIEWS["syscalls"], [WEB], slice_ns=1_000_000_000)
    assert len(slices) >= 10
    summed: Counter[str] = Counter()
    for s in slices:
        assert s.span_ns <= 1_000_000_000
        for r in s.rows:
            summed[r.key] += r.totals[0]
    assert dict(summed) == {k: v["CALLS/S"] for k, v in whole.items()}


def test_navigator_drills_and_goes_back() -> None:
    nav = Navigator(VIEWS, "containers", base_filter="proc.name!=ls")
    assert nav.drill("16297e43ae30").id == "procs"
    assert nav.filter_text() == '(proc.name!=ls) and (container.id="16297e43ae30")'
    nav.set_sort(3, True)
    assert nav.drill(42).id == "threads"
    assert nav.drill(43).id == "files"
    assert nav.filter_text().endswith("(proc.pid=42)) and (thread.tid=43)")
    assert nav.breadcrumbs()[-1] == "thread.tid=43 > Files"
    assert nav.back() and nav.back()
    assert nav.view.id == "procs" and (nav.level.sort_col, nav.level.ascending) == (3, True)
    assert nav.level.selected_key == 42
    nav.switch("connections")
    assert nav.drill("1.2.3.4:5->6.7.8.9:80").id == "incoming_connections"
    assert nav.filter_text().endswith('(fd.name="1.2.3.4:5->6.7.8.9:80")')
    assert nav.drill_target() is None  # a list
    nav = Navigator(VIEWS, "errors")
    nav.drill("ENOENT")
    assert nav.view.id == "procs_errors" and nav.filter_text() == 'evt.res="ENOENT"'
    nav = Navigator(VIEWS, "syscalls")
    nav.drill("fcntl")
    assert nav.view.id == "syscall_procs" and nav.filter_text() == 'evt.type="fcntl"'
    assert not Navigator(VIEWS, "procs").back()


def test_drill_filters_select_the_rows_they_name() -> None:
    """A drill-down's filter, run on the capture, keeps exactly that row's events."""
    errs = capture_table(VIEWS["errors"], [FAIL])
    for r in errs.rows:
        flt = drill_filter("evt.res", r.key)
        sub = capture_table(VIEWS["procs_errors"], [FAIL], filter_text=flt)
        assert sum(sum(x for x in row.totals[:4]) for row in sub.rows) == r.totals[0]


def test_dig_and_echo_of_a_selection() -> None:
    conn = capture_table(VIEWS["connections"], [WEB]).sorted_rows()[0].key  # the busiest
    flt = drill_filter("fd.name", conn)
    dig, cut = capture_events([WEB], flt, kind="dig")
    out = io.StringIO()
    run(RunOptions(reads=[WEB], filter_text=flt, stdout=out, stderr=io.StringIO()))
    assert not cut and dig == out.getvalue().splitlines() and len(dig) > 100
    echo, _ = capture_events([WEB], flt, kind="echo", mode="printable")
    assert any(line.startswith("------ Read") for line in echo) and any("GET /index.html" in line for line in echo)
    hexed, _ = capture_events([WEB], flt, kind="echo", mode="hex")
    assert any("4745 5420" in line for line in hexed)  # "GET " in hex


def test_bad_filters_and_views() -> None:
    with pytest.raises(FilterError):
        capture_table(VIEWS["procs"], [WEB], filter_text="proc.name=")
    with pytest.raises(UsageError, match="unknown view 'nope'"):
        find_view("nope")
    with pytest.raises(ViewError, match="unknown key field"):
        ViewSpec("x", "X", "", key="proc.nosuch", columns=(Column("A", "evt.count", "sum"),)).check()
    with pytest.raises(ViewError, match="aggregation"):
        ViewSpec("x", "X", "", key="proc.pid", columns=(Column("A", "evt.count", "median"),)).check()


def test_user_views_from_the_chisel_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "v_byname.py").write_text(
        "from tracer.views import Column, ViewSpec\n"
        "VIEW = ViewSpec('byname', 'By name', 'Calls by process name', key='proc.name',\n"
        "                columns=(Column('CALLS', 'evt.count', 'sum', 'count'), Column('NAME', 'proc.name')),\n"
        "                sort='CALLS')\n")
    (tmp_path / "v_broken.py").write_text("VIEW = 1/0\n")
    errors: list[str] = []
    found = all_views([str(tmp_path)], on_error=lambda e: errors.append(str(e)))
    assert found["byname"].origin.endswith("v_byname.py") and "ZeroDivisionError" in errors[0]
    t = capture_table(found["byname"].view, [FAIL])
    want = Counter(n for (n,) in lines(FAIL, "%proc.name", ""))
    assert {r.key: r.values[0] for r in t.rows} == {k: v for k, v in want.items()}
    # The chisel listing leaves view files alone.
    from tracer.chisel import all_chisels

    assert "v_byname" not in all_chisels([str(tmp_path)])
    monkeypatch.setenv("KTRACE_CHISEL_DIR", str(tmp_path))
    assert find_view("byname").id == "byname"


def test_json_slice_shape() -> None:
    t = capture_table(VIEWS["errors"], [FAIL])
    doc = json.loads(t.to_json(filter_text="proc.name=ktfail"))
    assert doc["progress"] == 100 and doc["count"] == len(t.rows)
    assert doc["info"]["drillDownKeyField"] == "evt.res" and doc["info"]["drillDownTarget"] == "procs_errors"
    assert doc["info"]["filterTemplate"] == "(proc.name=ktfail) and (evt.res=%key)"
    assert [c["name"] for c in doc["info"]["legend"]] == ["COUNT", "ERROR"]
    assert doc["data"][0]["d"][0] == max(r.values[0] for r in t.rows)


def test_capture_table_shows_what_each_capture_lost(tmp_path: Path) -> None:
    """The drops of a view over captures: each file's last stats block (cumulative), summed over
    the files, as `ktrace capinfo` reads them."""
    from tracer.capture import CaptureWriter
    from tracer.capture.capinfo import capinfo
    from tracer.testing import Synth

    paths = []
    for k, drops in enumerate(({"ring": 3, "filter": 1}, {"ring": 5})):
        path = tmp_path / f"{k}.kcap"
        with CaptureWriter(path, {"live": True, "command": ["test"]}) as w:
            b = Synth(pid=40 + k).open("/etc/hosts", 3).batch()
            w.write_events(b, 2, 1, 2)
            w.write_stats({"events": 2, "drops": {"ring": 1}})
            w.write_stats({"events": 2, "drops": drops})
        paths.append(str(path))
    want = sum(sum(capinfo(p)["drops"].values()) for p in paths)
    assert want == 9
    assert capture_table(VIEWS["procs"], paths).drops == want
