"""The terminal UI through textual's pilot, over the sample captures: each view's columns and
numbers (against the views engine's table and the chisels), drill-down and back, sorting, the
filter box, search, echo, dig, the spectrogram."""

from __future__ import annotations

import asyncio
import io
import json
import threading
from collections.abc import Awaitable
from pathlib import Path
from typing import Any

import pytest
from textual.widgets import DataTable, Log, Static

from tracer.chisel import load_chisel
from tracer.event import RenderOptions
from tracer.session import RunOptions, run
from tracer.top.app import TopApp, TopConfig
from tracer.top.pages import SpectroPage, SpyPage
from tracer.views import all_views, capture_table


def pilot(coro: Awaitable[None]) -> None:
    """Run the pilot's coroutine on an event loop of its own thread: a test elsewhere in the session
    (playwright's sync API, say) may leave a loop running in this one."""
    failure: list[BaseException] = []

    def main() -> None:
        try:
            asyncio.run(coro)  # type: ignore[arg-type]
        except BaseException as e:  # noqa: BLE001 - handed to the test's thread
            failure.append(e)

    t = threading.Thread(target=main)
    t.start()
    t.join()
    if failure:
        raise failure[0]

CAPS = Path(__file__).resolve().parents[2] / "captures"
WEB, SHELL, CONTAINER, CPU, FAIL = (str(CAPS / n) for n in (
    "01-webserver.kcap", "02-shell.kcap", "03-container.kcap", "04-cpu-burn.kcap", "05-failing-service.kcap"))
VIEWS = {k: f.view for k, f in all_views().items()}
# A capture each view has rows on.
VIEW_CAPTURES = {
    "procs": CPU, "procs_cpu": CPU, "threads": WEB, "containers": CONTAINER, "connections": WEB,
    "incoming_connections": WEB, "sports": WEB, "files": WEB, "directories": WEB, "file_opens": WEB,
    "io_by_type": WEB, "errors": FAIL, "procs_errors": FAIL, "syscalls": FAIL, "syscall_procs": FAIL,
    "spy_users": SHELL, "slow_io": WEB, "kubernetes_pods": CONTAINER, "kubernetes_namespaces": CONTAINER,
}


def app_for(view: str, cap: str, **kw: Any) -> TopApp:
    return TopApp(TopConfig(views=VIEWS, start=view, reads=[cap], **kw))


async def settle(app: TopApp, pilot: Any, updates: int = 1) -> None:
    """Wait until the app has shown ``updates`` tables with data (capture reads run on a thread)."""
    for _ in range(400):
        await pilot.pause(0.02)
        if app.updates >= updates + 1 and not app.loading:  # +1: the empty table shown at once
            return
    raise AssertionError("no table came")


def screen_rows(app: TopApp) -> list[list[str]]:
    dt = app.query_one(DataTable)
    return [[str(c) for c in dt.get_row_at(i)] for i in range(dt.row_count)]


def headers(app: TopApp) -> list[str]:
    dt = app.query_one(DataTable)
    return [str(c.label).removesuffix(" v").removesuffix(" ^") for c in dt.columns.values()]


@pytest.mark.parametrize("view", sorted(VIEW_CAPTURES))
def test_each_view_renders_its_columns_and_numbers(view: str) -> None:
    cap = VIEW_CAPTURES[view]
    pc = view in ("containers",)
    want = capture_table(VIEWS[view], [cap], container_mode=pc)

    async def go() -> None:
        app = app_for(view, cap, container_mode=pc)
        async with app.run_test(size=(160, 50)) as pilot:
            await settle(app, pilot)
            assert headers(app) == [c.header for c in VIEWS[view].visible_columns(pc)]
            shown = screen_rows(app)
            rows = want.sorted_rows()
            assert len(shown) == len(rows)
            assert shown == [[want.cell(r, i) for i in range(len(want.columns))] for r in rows]
            assert "Ctrl" not in app.query_one("#status", Static).render().plain  # (the status is words)

    pilot(go())


def test_numbers_on_screen_equal_the_chisels() -> None:
    """topconns' bytes and topprocs_cpu's percent, as the screen shows them."""
    out = io.StringIO()
    chisel, _ = load_chisel("topprocs_cpu", [], container_mode=False, json_out=False, render=RenderOptions(),
                            live=False, out=out)
    run(RunOptions(reads=[CPU], chisel=chisel, stdout=out, stderr=io.StringIO()))
    cpu = {ln.split()[2]: ln.split()[0].rstrip("%") for ln in out.getvalue().splitlines()[2:] if ln.strip()}
    out = io.StringIO()
    chisel, _ = load_chisel("topscalls", [], container_mode=False, json_out=True, render=RenderOptions(),
                            live=False, out=out)
    run(RunOptions(reads=[FAIL], chisel=chisel, stdout=out, stderr=io.StringIO()))
    scalls = {row[0]: row[1] for row in json.loads(out.getvalue().splitlines()[-1])["data"]}

    async def go() -> None:
        app = app_for("procs", CPU)
        async with app.run_test(size=(160, 50)) as pilot:
            await settle(app, pilot)
            h = headers(app)
            got = {r[h.index("PID")]: r[h.index("CPU")] for r in screen_rows(app)}
            assert {k: got[k] for k in cpu} == cpu
        app = app_for("syscalls", FAIL)
        async with app.run_test(size=(160, 50)) as pilot:
            await settle(app, pilot)
            assert app.table is not None
            span = app.table.span_ns / 1e9
            got2 = {r[3]: float(r[0]) for r in screen_rows(app)}
            for name, n in scalls.items():
                assert got2[name] == pytest.approx(n / span, abs=0.006)

    pilot(go())


def test_drill_down_sets_the_filter_and_back_restores() -> None:
    async def go() -> None:
        app = app_for("containers", CONTAINER, container_mode=True)
        async with app.run_test(size=(160, 50)) as pilot:
            await settle(app, pilot)
            cid = app.rows[0].key
            await pilot.press("enter")
            await settle(app, pilot, 2)
            assert app.nav.view.id == "procs" and app.view_filter() == f'container.id="{cid}"'
            assert app.table is not None and app.table.rows
            # Every process shown is the container's: the engine with that filter gives the same rows.
            want = capture_table(VIEWS["procs"], [CONTAINER], filter_text=f'container.id="{cid}"', container_mode=True)
            assert sorted(r.key for r in app.rows) == sorted(r.key for r in want.rows)
            await pilot.press("greater_than_sign")  # the sort menu: sort by the first column
            await pilot.pause(0.1)
            await pilot.press("enter")
            await pilot.pause(0.1)
            assert app.rows[0].key == max(r.key for r in app.rows)  # PID, descending
            sel = app.selected_row()
            assert sel is not None
            pid = sel.key  # the selection stays on its row across a re-sort
            await pilot.press("enter")
            await settle(app, pilot, 4)
            assert app.nav.view.id == "threads"
            assert app.view_filter() == f'(container.id="{cid}") and (proc.pid={pid})'
            crumbs = app.query_one("#crumbs", Static).render().plain
            assert "Containers" in crumbs and f"proc.pid={pid} > Threads" in crumbs
            await pilot.press("backspace")
            await settle(app, pilot, 5)
            assert app.nav.view.id == "procs" and app.nav.level.sort_col == 0
            assert app.selected_row() is not None and app.selected_row().key == pid  # type: ignore[union-attr]
            await pilot.press("backspace")
            await settle(app, pilot, 6)
            assert app.nav.view.id == "containers" and app.view_filter() == ""

    pilot(go())


def test_errors_to_procs_errors_and_syscalls_to_callers() -> None:
    async def go() -> None:
        app = app_for("errors", FAIL)
        async with app.run_test(size=(120, 40)) as pilot:
            await settle(app, pilot)
            assert app.rows[0].key == "ENOENT"
            await pilot.press("enter")
            await settle(app, pilot, 2)
            assert app.nav.view.id == "procs_errors" and app.view_filter() == 'evt.res="ENOENT"'
        app = app_for("syscalls", FAIL)
        async with app.run_test(size=(120, 40)) as pilot:
            await settle(app, pilot)
            top = app.rows[0].key
            await pilot.press("enter")
            await settle(app, pilot, 2)
            assert app.nav.view.id == "syscall_procs" and app.view_filter() == f'evt.type="{top}"'
        app = app_for("connections", WEB)
        async with app.run_test(size=(120, 40)) as pilot:
            await settle(app, pilot)
            conn = app.rows[0].key
            await pilot.press("enter")
            await settle(app, pilot, 2)
            assert app.nav.view.id == "incoming_connections" and app.view_filter() == f'fd.name="{conn}"'

    pilot(go())


def test_filter_box_rejects_a_bad_filter_with_a_caret() -> None:
    async def go() -> None:
        app = app_for("syscalls", FAIL)
        async with app.run_test(size=(120, 40)) as pilot:
            await settle(app, pilot)
            n = len(app.rows)
            await pilot.press("backslash")
            await pilot.press(*"evt.type=")
            await pilot.press("enter")
            await pilot.pause(0.1)
            msg = app.query_one("#filtermsg", Static)
            assert msg.display
            text = msg.render().plain.splitlines()
            assert text[0].startswith("Invalid filter:") and text[1].strip() == "evt.type="
            assert text[2].index("^") == text[1].index("=")  # under the spot: nothing after the =
            assert app.input_mode == "filter" and len(app.rows) == n  # still open, nothing changed
            await pilot.press("escape")
            await pilot.press("backslash", "ctrl+u", *"evt.type=fcntl", "enter")
            await settle(app, pilot, 2)
            assert [r.key for r in app.rows] == ["fcntl"] and app.nav.level.manual_filter == "evt.type=fcntl"
            await pilot.press("backslash", "ctrl+u", *"sig", "enter")  # free text: rows holding it
            await pilot.pause(0.2)
            await settle(app, pilot, 3)
            assert app.rows and all("sig" in r.key for r in app.rows)
            # Search moves the cursor to the next row holding the text.
            await pilot.press("slash", *"rt_sigaction", "enter")
            await pilot.pause(0.1)
            assert app.selected_row() is not None and app.selected_row().key == "rt_sigaction"  # type: ignore[union-attr]

    pilot(go())


def test_echo_dig_legend_help_spectrogram_pause() -> None:
    async def go() -> None:
        app = app_for("connections", WEB)
        async with app.run_test(size=(100, 30)) as pilot:
            await settle(app, pilot)
            await pilot.press("e")
            for _ in range(200):
                await pilot.pause(0.02)
                if isinstance(app.screen, SpyPage) and app.screen.lines:
                    break
            page = app.screen
            assert isinstance(page, SpyPage) and page.kind == "echo"
            assert any("GET /index.html HTTP/1.1.." in ln for ln in page.lines)  # dotted by default
            for want_mode in ("hex", "printable"):  # view as: the next mode
                await pilot.press("v")
                for _ in range(200):
                    await pilot.pause(0.02)
                    if page.mode == want_mode and page.lines:
                        break
                assert page.mode == want_mode
            # printable drops the dots of CR LF that dotted showed
            assert not any("HTTP/1.1.." in ln for ln in page.lines)
            assert any("GET /index.html" in ln for ln in page.lines)
            await pilot.press("escape")
            await pilot.press("f6")
            for _ in range(200):
                await pilot.pause(0.02)
                if isinstance(app.screen, SpyPage) and app.screen.lines:
                    break
            assert isinstance(app.screen, SpyPage) and app.screen.kind == "dig"
            assert any(" recvfrom " in ln or " writev " in ln for ln in app.screen.lines)
            await pilot.press("backspace")
            await pilot.press("l")
            await pilot.pause(0.1)
            assert any("BPS IN" in ln and "evt.buflen.net.in" in ln for ln in app.screen.lines)  # type: ignore[attr-defined]
            await pilot.press("escape", "h")
            await pilot.pause(0.1)
            assert any("F5  e" in ln for ln in app.screen.lines)  # type: ignore[attr-defined]
            await pilot.press("escape", "s")
            for _ in range(200):
                await pilot.pause(0.02)
                if isinstance(app.screen, SpectroPage) and len(app.screen.lines) > 3:
                    break
            assert isinstance(app.screen, SpectroPage)
            counts = [int(ln.rsplit("|", 1)[1]) for ln in app.screen.lines[2:]]
            want = capture_table(VIEWS["spectro_all"], [WEB])
            assert sum(counts) == sum(want.spectrum) and len(counts) > 3
            assert isinstance(app.screen.query_one(Log), Log)
            await pilot.press("escape", "p")
            assert "PAUSED" in app.query_one("#status", Static).render().plain
            await pilot.press("q")
        assert app.return_code in (0, None)

    pilot(go())


def test_small_terminal_80x24() -> None:
    async def go() -> None:
        app = app_for("procs", CPU)
        async with app.run_test(size=(80, 24)) as pilot:
            await settle(app, pilot)
            assert headers(app)[:3] == ["PID", "PPID", "CPU"]
            assert app.query_one("#keys", Static).region.width == 80
            await pilot.press("ctrl+c")
        assert app.error is None

    pilot(go())
