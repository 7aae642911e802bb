"""The inspection page in a real browser (Debian's chromium, headless, driven by playwright).

Each test saves a screenshot of the screen it checked (see conftest.screens)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from inspectkit import Server, copy_captures, expected, run

FIRST_CELLS = "#view-table tbody tr td:first-child"
TILES_CHECKED = ("procs", "containers", "syscalls", "connections", "net_in", "net_out", "files", "file_in",
                 "file_out", "errors")


def open_page(page: Any, srv: Server) -> None:
    page.goto(srv.url)
    page.wait_for_selector("body[data-ready='1']", timeout=30000)


def tile_values(page: Any) -> dict[str, int]:
    return {el.get_attribute("data-tile"): int(el.query_selector(".total").get_attribute("data-value"))
            for el in page.query_selector_all("#screen-overview .tile")}


def wait_ready(page: Any, screen: str, before: str | None) -> None:
    """Until the screen has been drawn again since ``before`` (its data-ready counter)."""
    page.wait_for_function(
        "([s, b]) => { const el = document.querySelector('#screen-' + s);"
        " return el.dataset.ready && el.dataset.ready !== b && !el.classList.contains('loading'); }",
        arg=[screen, before or ""], timeout=60000)


def ready_mark(page: Any, screen: str) -> str | None:
    return page.get_attribute(f"#screen-{screen}", "data-ready")


@pytest.fixture
def caps(tmp_path: Path) -> Path:
    return tmp_path


@pytest.mark.parametrize("name", ["01-webserver.kcap", "03-container.kcap", "05-failing-service.kcap"])
def test_overview_tiles_equal_the_chisels(page: Any, caps: Path, screens: Path, name: str) -> None:
    files = copy_captures(caps, [name])
    with Server(files) as srv:
        open_page(page, srv)
        got = tile_values(page)
        page.screenshot(path=str(screens / f"overview-{name}.png"), full_page=True)
    want = expected(files)
    for k in TILES_CHECKED:
        assert got[k] == want[k], (name, k, got[k], want[k])
    # what the tile shows is the number, formatted
    assert got["net_in"] + got["net_out"] == want["net_total"]


def test_brushing_a_range_applies_it_to_the_tiles(page: Any, caps: Path, screens: Path) -> None:
    files = copy_captures(caps, ["01-webserver.kcap"])
    with Server(files) as srv:
        open_page(page, srv)
        whole = tile_values(page)
        box = page.locator("#timeline .u-over").bounding_box()
        before = ready_mark(page, "overview")
        # From the left edge to two fifths: the burst of requests, not the idle end.
        page.mouse.move(box["x"] + 1, box["y"] + box["height"] / 2)
        page.mouse.down()
        page.mouse.move(box["x"] + box["width"] * 0.4, box["y"] + box["height"] / 2, steps=8)
        page.mouse.up()
        wait_ready(page, "overview", before)
        sel = page.locator("#selection")
        start, end = int(sel.get_attribute("data-from")), int(sel.get_attribute("data-to"))
        ranged = tile_values(page)
        page.screenshot(path=str(screens / "overview-brushed.png"), full_page=True)
        before = ready_mark(page, "overview")
        page.click("#reset")
        wait_ready(page, "overview", before)
        assert tile_values(page) == whole
    want = expected(files, f"evt.rawtime >= {start} and evt.rawtime < {end}")
    for k in TILES_CHECKED:
        assert ranged[k] == want[k], (k, ranged[k], want[k])
    assert ranged["syscalls"] < whole["syscalls"]


def test_tile_to_table_to_io_shows_the_bytes_sent(page: Any, caps: Path, screens: Path) -> None:
    files = copy_captures(caps, ["01-webserver.kcap"])
    with Server(files) as srv:
        open_page(page, srv)
        before = ready_mark(page, "views")
        page.click("[data-tile=connections]")
        wait_ready(page, "views", before)
        assert page.get_attribute("#view-table", "data-view") == "connections"
        rows = {r.get_attribute("data-key"): r for r in page.query_selector_all("#view-table tbody tr")}
        conns = [r[1] for r in _chisel(files, "topconns")]
        # topconns' connections (those that moved bytes), and the others with no bytes
        assert set(conns) <= set(rows)
        for key, r in rows.items():
            moved = sum(float(r.query_selector(f"td:nth-child({i})").get_attribute("data-value")) for i in (6, 7))
            assert (moved > 0) == (key in conns), key
        page.screenshot(path=str(screens / "views-connections.png"), full_page=True)
        before = ready_mark(page, "io")
        row = rows[conns[0]]
        row.query_selector("[data-act=io]").click()
        wait_ready(page, "io", before)
        text = page.inner_text("#io-chunks")
        page.screenshot(path=str(screens / "io-printable.png"))
        # wrk's request (captures/README.md: GET /index.html over 2 keep-alive connections)
        assert "GET /index.html HTTP/1.1\nHost: 127.0.0.1:50605" in text and "HTTP/1.1 200 OK" in text
        filt = page.input_value("#io-filter")
        assert conns[0] in filt
        page.select_option("#io-mode", "hex")
        hexed = page.inner_text("#io-chunks")
        assert "47 45 54 20 2f 69 6e 64" in hexed  # "GET /ind"
        page.screenshot(path=str(screens / "io-hex.png"))
        page.select_option("#io-mode", "dotted")
        assert "GET /index.html HTTP/1.1..Host" in page.inner_text("#io-chunks")


def _chisel(files: list[Path], *args: str) -> list[list[Any]]:
    from inspectkit import chisel_rows

    return chisel_rows(files, list(args))


def test_drill_down_back_and_a_bad_filter(page: Any, caps: Path, screens: Path) -> None:
    files = copy_captures(caps, ["03-container.kcap"])
    with Server(files) as srv:
        open_page(page, srv)
        before = ready_mark(page, "views")
        page.click("#tabs button[data-screen=views]")
        wait_ready(page, "views", before)
        assert page.get_attribute("#view-table", "data-view") == "procs"
        n_procs = len(page.query_selector_all("#view-table tbody tr"))
        assert n_procs == expected(files)["procs"]
        # sort by PID, ascending on the second click
        page.click("#view-table th:text-is('PID')")
        page.wait_for_selector("#view-table th.sorted.desc:text-is('PID')")
        pids = [int(c.get_attribute("data-value")) for c in page.query_selector_all(FIRST_CELLS)]
        assert pids == sorted(pids, reverse=True)
        page.click("#view-table th:text-is('PID')")
        page.wait_for_selector("#view-table th.sorted.asc:text-is('PID')")
        pids = [int(c.get_attribute("data-value")) for c in page.query_selector_all(FIRST_CELLS)]
        assert pids == sorted(pids)
        row = page.query_selector("#view-table tbody tr")
        key = row.get_attribute("data-key")
        row.dblclick()
        page.wait_for_selector("#view-table[data-view=threads]")
        crumbs = page.inner_text("#crumbs")
        assert "Processes" in crumbs and key in crumbs
        tids = {c.get_attribute("data-value") for c in page.query_selector_all("#view-table tbody tr td:nth-child(2)")}
        want = {ln for ln in run(["-r", str(files[0]), "-p", "%thread.tid", f"proc.pid={key}"]).stdout.split()}
        assert tids == want
        page.screenshot(path=str(screens / "views-drilled.png"), full_page=True)
        page.click("#back")
        page.wait_for_selector("#view-table[data-view=procs]")
        assert len(page.query_selector_all("#view-table tbody tr")) == n_procs
        page.fill("#view-filter", "proc.name=exe and (fd.num>3")
        page.press("#view-filter", "Enter")
        page.wait_for_selector("#screen-views .caret:not([hidden])")
        caret = page.inner_text("#screen-views .caret")
        first, second = caret.split("\n")[:2]
        assert first == "proc.name=exe and (fd.num>3"
        assert re.fullmatch(r" *\^ .+", second)
        page.screenshot(path=str(screens / "views-bad-filter.png"))


def test_syscalls_spy_users_and_graph(page: Any, caps: Path, screens: Path) -> None:
    files = copy_captures(caps, ["02-shell.kcap", "01-webserver.kcap"])
    with Server(files[:1]) as srv:
        open_page(page, srv)
        before = ready_mark(page, "events")
        page.click("#tabs button[data-screen=events]")
        wait_ready(page, "events", before)
        shown = page.inner_text("#events-lines").splitlines()
        cli = run(["-r", str(files[0])]).stdout.splitlines()
        assert shown[0] == cli[0].rstrip() or shown[0] == cli[0]
        page.screenshot(path=str(screens / "syscalls.png"))
        before = ready_mark(page, "spy")
        page.click("#tabs button[data-screen=spy]")
        wait_ready(page, "spy", before)
        spy = page.inner_text("#spy-lines").splitlines()
        want = [ln for ln in run(["-r", str(files[0]), "-pc", "-c", "spy_users", "disable_colors"]).stdout.splitlines()
                if ln.strip()]
        assert [s.strip() for s in spy] == [w.strip() for w in want] and any("cat" in s for s in spy)
        page.screenshot(path=str(screens / "spy-users.png"))
    with Server(files[1:]) as srv:
        open_page(page, srv)
        before = ready_mark(page, "graph")
        page.click("#tabs button[data-screen=graph]")
        wait_ready(page, "graph", before)
        labels = page.text_content("#graph") or ""
        assert "nginx" in labels
        edge_bytes = sum(int(t.get_attribute("data-bytes")) for t in page.query_selector_all("#graph .edge text"))
        assert edge_bytes == expected(files[1:])["net_total"]
        page.screenshot(path=str(screens / "graph.png"))
