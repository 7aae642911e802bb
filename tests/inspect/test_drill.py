"""The drill-down tables: no row cap, sorting and paging over a computed view table, drill filters."""

from __future__ import annotations

from inspectkit import CAPTURES, chisel_rows

from tracer.inspect.drill import Drill
from tracer.inspect.index import build
from tracer.inspect.queries import Window
from tracer.views import Row, ViewTable


def test_a_million_rows_page_and_sort_without_a_cap() -> None:
    idx = build([str(CAPTURES / "05-failing-service.kcap")])
    d = Drill(idx)
    view = d.views["procs"]
    cols = view.visible_columns(False)
    n = 1_000_000
    rows = [Row(pid, [pid if c.header == "PID" else None for c in cols], []) for pid in range(n)]
    d._tables[(view.id, 0, 0, "", False)] = ViewTable(view, False, cols, rows, 0, 0)
    page = d.rows("procs", Window(), "", "PID", "asc", 999_900, 200, False)
    assert page["total"] == n and len(page["rows"]) == 100
    assert [r["key"] for r in page["rows"]] == list(range(999_900, n))
    desc = d.rows("procs", Window(), "", "PID", "desc", 0, 3, False)
    assert [r["key"] for r in desc["rows"]] == [n - 1, n - 2, n - 3] and desc["order"] == "desc"
    assert desc["rows"][0]["drill"] == f"proc.pid={n - 1}"


def test_connections_view_over_a_capture_and_its_drill_filter() -> None:
    path = CAPTURES / "01-webserver.kcap"
    d = Drill(build([str(path)]))
    page = d.rows("connections", Window(), "", "", "desc", 0, 100, False)
    keys = {r["key"] for r in page["rows"]}
    assert {r[1] for r in chisel_rows([path], ["topconns"])} <= keys
    assert page["drilldown"] == "incoming_connections" and page["key_field"] == "fd.name"
    assert all(r["drill"] == f'fd.name="{r["key"]}"' for r in page["rows"])
