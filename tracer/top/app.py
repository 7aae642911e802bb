"""The terminal UI of ``ktrace top`` (textual): the table of a view, drill-down and back, the
views and sort menus, the filter box, search, echo, dig, legend, the spectrogram and help.

Every function key has a letter twin (consoles, PuTTY and browser terminals lose F-keys), and
nothing needs colour to be read: the sort column carries an arrow, states are words.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

from rich.text import Text
from textual import events
from textual.app import App, ComposeResult
from textual.binding import Binding, BindingType
from textual.widgets import DataTable, Input, Static

from ..chisel import looks_like_filter
from ..errors import FilterError, KtraceError
from ..views import LiveViews, Navigator, Row, ViewSpec, ViewTable, capture_table, combine_filters, drill_filter
from .pages import HelpPage, LegendPage, ListMenu, SpectroPage, SpyPage

KEYS_LINE = "h Help  v Views  \\ Filter  / Search  e Echo  d Dig  l Legend  > Sort  s Spectro  p Pause  q Quit"
SHIFT_DIGITS = "!@#$%^&*("  # Shift+1..9 on a US keyboard: sort by column n
NUMERIC_UNITS = frozenset({"bytes", "bytes/s", "time", "pct", "count", "rate"})


@dataclass
class TopConfig:
    """What ``ktrace top`` was asked for (the CLI's flags)."""

    views: dict[str, ViewSpec]
    start: str = "procs"
    reads: list[str] = field(default_factory=list)
    filter_text: str = ""
    refresh_ms: int = 2000
    container_mode: bool = False
    snaplen: int = 80
    echo_mode: str = "dotted"
    max_events: int | None = None

    @property
    def live(self) -> bool:
        return not self.reads


class TopApp(App[None]):
    """The views of the node (live) or of captures, csysdig's way."""

    TITLE = "ktrace top"
    CSS = """
    #crumbs { height: 1; text-style: bold; }
    DataTable { height: 1fr; }
    #filterbox { display: none; height: 3; }
    #filtermsg { display: none; height: auto; }
    #status { height: 1; }
    #keys { height: 1; text-style: reverse; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("q,f10", "quit", "Quit"),
        Binding("ctrl+c", "quit", "Quit", priority=True),
        Binding("f1,h,question_mark", "help", "Help"),
        Binding("f2,v", "views", "Views"),
        Binding("f4,backslash", "filter", "Filter"),
        Binding("ctrl+f,slash", "search", "Search"),
        Binding("f5,e", "echo", "Echo"),
        Binding("f6,d", "dig", "Dig"),
        Binding("f7,l", "legend", "Legend"),
        Binding("f9,greater_than_sign", "sort_menu", "Sort"),
        Binding("f12,s", "spectro", "Spectrogram"),
        Binding("p", "pause", "Pause"),
        Binding("c", "clear", "Clear"),
        Binding("backspace", "drill_up", "Back"),
        Binding("escape", "escape", "Back", show=False),
    ]

    def __init__(self, cfg: TopConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.nav = Navigator(cfg.views, cfg.start, cfg.filter_text, cfg.container_mode)
        self.live: LiveViews | None = None
        self.table: ViewTable | None = None  # the table on screen
        self.rows: list[Row] = []  # its rows, in screen order
        self.text_filter = ""  # free text the filter box narrows the rows to
        self.search_text = ""
        self.input_mode = ""  # "filter" | "search" while the box is open
        self.paused = False
        self.pending: ViewTable | None = None  # a live table that came while paused
        self.error: KtraceError | None = None  # what ended the app, re-raised by the CLI (exit 2)
        self.generation = 0  # bumps on every reload: a late capture result of an older screen is dropped
        self.updates = 0  # tables shown so far (tests wait on it)
        self.drops = 0
        self.notes: list[str] = []
        self.loading = False
        self.spectro_sink: Callable[[ViewTable], None] | None = None  # the open spectrogram page, live

    # --- layout ----------------------------------------------------------------------------------
    def compose(self) -> ComposeResult:
        yield Static(id="crumbs")
        table: DataTable[Any] = DataTable(id="table", cursor_type="row", zebra_stripes=False)
        yield table
        yield Input(id="filterbox")
        yield Static(id="filtermsg")
        yield Static(id="status")
        yield Static(KEYS_LINE, id="keys")

    @property
    def data_table(self) -> DataTable[Any]:
        return self.query_one("#table", DataTable)

    def on_mount(self) -> None:
        if self.cfg.live:
            self.live = LiveViews(on_table=self._live_table, on_error=self._live_error,
                                  base_filter=self.cfg.filter_text, interval_ms=self.cfg.refresh_ms,
                                  snaplen=self.cfg.snaplen, container_mode=self.cfg.container_mode,
                                  max_events=self.cfg.max_events)
        self.reload()
        if self.live is not None:
            self.live.start()
            self.set_interval(1.0, self._poll_live)
        self.data_table.focus()

    def on_unmount(self) -> None:
        if self.live is not None:
            self.live.stop()

    # --- data ------------------------------------------------------------------------------------
    def view_filter(self) -> str:
        """The current screen's filter, without the view's own."""
        return self.nav.filter_text()

    def reload(self) -> None:
        """Show the current view afresh: an empty table with its columns at once, its rows when
        the capture has been read (or the next live interval)."""
        self.generation += 1
        gen = self.generation
        view = self.nav.view
        self.text_filter = ""
        empty = ViewTable(view, self.cfg.container_mode, view.visible_columns(self.cfg.container_mode), [], 0, 0)
        self._render(empty)
        self.table = None
        if self.live is not None:
            try:
                self.live.set_view(view, self.view_filter())
            except FilterError as e:
                self._filter_message(e)
            self._status()
            return
        self.loading = True
        self._status()
        reads, flt, pc = self.cfg.reads, self.view_filter(), self.cfg.container_mode

        def work() -> None:
            try:
                table = capture_table(view, reads, filter_text=flt, container_mode=pc, max_events=self.cfg.max_events)
            except KtraceError as e:
                self.call_from_thread(self._fail, e)
                return
            self.call_from_thread(self._show, gen, table)

        self.run_worker(work, thread=True, exclusive=True, group="load")

    def _show(self, gen: int, table: ViewTable) -> None:
        if gen != self.generation:
            return
        self.loading = False
        self.drops = table.drops
        self.notes = table.notes
        self._render(table)

    def _live_table(self, table: ViewTable) -> None:
        """From the live run's thread."""
        self.call_from_thread(self._take_live, table)

    def _take_live(self, table: ViewTable) -> None:
        if table.view.kind == "spectrogram":
            if self.spectro_sink is not None:
                self.spectro_sink(table)
            return
        if table.view.id != self.nav.view.id:
            return
        if self.paused:
            self.pending = table
            return
        self._render(table)

    def _poll_live(self) -> None:
        if self.live is not None:
            self.drops = self.live.drops()
            self._status()

    def _live_error(self, e: KtraceError) -> None:
        self.call_from_thread(self._fail, e)

    def _fail(self, e: KtraceError) -> None:
        self.error = e
        self.exit()

    # --- rendering -------------------------------------------------------------------------------
    def _render(self, table: ViewTable) -> None:
        dt = self.data_table
        keep = self.rows[dt.cursor_row].key if self.rows and 0 <= dt.cursor_row < len(self.rows) else None
        if keep is None:
            keep = self.nav.level.selected_key
        self.table = table
        lv = self.nav.level
        rows = table.sorted_rows(lv.sort_col, lv.ascending)
        if self.text_filter:
            needle = self.text_filter.lower()
            rows = [r for r in rows if any(needle in table.cell(r, i).lower() for i in range(len(table.columns)))]
        self.rows = rows
        sort_col = lv.sort_col if lv.sort_col is not None else table.view.sort_index(table.container_mode)
        asc = lv.ascending if lv.sort_col is not None else table.view.sort_ascending
        dt.clear(columns=True)
        for i, c in enumerate(table.columns):
            label = c.header + ((" ^" if asc else " v") if i == sort_col else "")
            dt.add_column(Text(label, justify="right" if c.units in NUMERIC_UNITS else "left"), key=str(i))
        for n, r in enumerate(rows):
            cells = [Text(table.cell(r, i), justify="right" if c.units in NUMERIC_UNITS else "left")
                     for i, c in enumerate(table.columns)]
            dt.add_row(*cells, key=str(n))
        if keep is not None:
            for n, r in enumerate(rows):
                if r.key == keep:
                    dt.move_cursor(row=n)
                    break
        self.updates += 1
        self._status()

    def _status(self) -> None:
        crumbs = "  >  ".join(self.nav.breadcrumbs())
        self.query_one("#crumbs", Static).update(Text(crumbs, overflow="ellipsis", no_wrap=True))
        parts = ["live" if self.live is not None else "capture: " + ", ".join(self.cfg.reads)]
        parts.append(f"drops {self.drops}")
        if self.loading:
            parts.append("reading...")
        elif self.table is None and self.live is not None:
            parts.append(f"first refresh in {self.cfg.refresh_ms / 1000:g}s")
        else:
            parts.append(f"{len(self.rows)} rows")
        if self.paused:
            parts.append("PAUSED")
        flt = self.nav.level.manual_filter or self.text_filter
        if flt:
            parts.append(f"filter: {flt}")
        if self.notes:
            parts.append("; ".join(self.notes))
        self.query_one("#status", Static).update(Text(" | ".join(parts), overflow="ellipsis", no_wrap=True))

    def selected_row(self) -> Row | None:
        i = self.data_table.cursor_row
        return self.rows[i] if self.rows and 0 <= i < len(self.rows) else None

    # --- navigation ------------------------------------------------------------------------------
    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        self.action_drill()

    def action_drill(self) -> None:
        row = self.selected_row()
        if row is None or self.nav.drill_target() is None:
            return
        self.nav.drill(row.key)
        self.reload()

    def action_drill_up(self) -> None:
        if self.input_mode:
            return
        if self.nav.back():
            self.reload()

    def action_escape(self) -> None:
        if self.input_mode:
            self._close_input()
        elif self.text_filter or self.nav.level.manual_filter:
            self.nav.set_filter("")
            self.text_filter = ""
            self.reload()
        else:
            self.action_drill_up()

    def action_views(self) -> None:
        menu = self.nav.menu()
        items = [(v.name, v.description) for v in menu]
        current = next((i for i, v in enumerate(menu) if v.id == self.nav.view.id), 0)

        def chosen(i: int | None) -> None:
            if i is not None:
                self.nav.switch(menu[i].id)
                self.reload()

        self.push_screen(ListMenu("Views", items, current), chosen)

    def action_sort_menu(self) -> None:
        table = self.table or self._columns_only()
        items = [(c.header, c.desc or c.field) for c in table.columns]
        self.push_screen(ListMenu("Sort by", items, self.nav.level.sort_col or 0), self.sort_by)

    def sort_by(self, col: int | None) -> None:
        """Sort on column ``col``: descending first, the other way when it is already sorted on."""
        if col is None:
            return
        lv = self.nav.level
        current = lv.sort_col if lv.sort_col is not None else self.nav.view.sort_index(self.cfg.container_mode)
        asc = lv.ascending if lv.sort_col is not None else self.nav.view.sort_ascending
        self.nav.set_sort(col, (not asc) if col == current else False)
        if self.table is not None:
            self._render(self.table)

    def on_data_table_header_selected(self, event: DataTable.HeaderSelected) -> None:
        self.sort_by(event.column_index)

    def on_key(self, event: events.Key) -> None:
        if self.input_mode or event.character is None or event.character not in SHIFT_DIGITS:
            return
        col = SHIFT_DIGITS.index(event.character)
        if self.table is not None and col < len(self.table.columns):
            self.sort_by(col)
            event.stop()

    def action_pause(self) -> None:
        self.paused = not self.paused
        if not self.paused and self.pending is not None:
            table, self.pending = self.pending, None
            self._render(table)
        self._status()

    def action_clear(self) -> None:
        """Lists: start afresh (live); the capture's list is what it is."""
        if self.nav.view.kind == "list" and self.live is not None:
            self.reload()

    def _columns_only(self) -> ViewTable:
        v = self.nav.view
        return ViewTable(v, self.cfg.container_mode, v.visible_columns(self.cfg.container_mode), [], 0, 0)

    # --- filter and search -----------------------------------------------------------------------
    def action_filter(self) -> None:
        self._open_input("filter", self.nav.level.manual_filter or self.text_filter,
                         "Filter: a filter (proc.name=nginx) or text to find in the rows; Esc cancels")

    def action_search(self) -> None:
        self._open_input("search", self.search_text, "Search: text; Enter finds the next row holding it")

    def _open_input(self, mode: str, value: str, placeholder: str) -> None:
        self.input_mode = mode
        box = self.query_one("#filterbox", Input)
        box.placeholder = placeholder
        box.value = value
        box.display = True
        self.query_one("#filtermsg", Static).display = False
        box.focus()

    def _close_input(self) -> None:
        self.input_mode = ""
        self.query_one("#filterbox", Input).display = False
        self.query_one("#filtermsg", Static).display = False
        self.data_table.focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        text = event.value.strip()
        if self.input_mode == "search":
            self.search_text = text
            self._close_input()
            self.find_next(text)
            return
        if self.input_mode == "filter":
            self.apply_filter(text)

    def apply_filter(self, text: str) -> bool:
        """The filter box: a filter (checked: a bad one is shown with a caret, in place, and the
        box stays open) or free text narrowing the rows."""
        if text and looks_like_filter(text):
            from ..filter.compiler import compile_filter
            from ..schema.fields import FIELDS

            try:
                compile_filter(text, FIELDS)
            except FilterError as e:
                self._filter_message(e)
                return False
            self.nav.set_filter(text)
            self._close_input()
            self.reload()
            return True
        if self.nav.level.manual_filter:
            self.nav.set_filter("")
            self._close_input()
            self.reload()
        else:
            self._close_input()
        self.text_filter = text
        if self.table is not None:
            self._render(self.table)
        return True

    def _filter_message(self, e: FilterError) -> None:
        msg = self.query_one("#filtermsg", Static)
        text = e.text.replace("\t", " ").replace("\n", " ")
        msg.update(Text(f"Invalid filter: {e.message}\n  {text}\n  {' ' * e.pos}^", no_wrap=True))
        msg.display = True

    def find_next(self, text: str) -> bool:
        """Move to the next row (after the selected one, wrapping) that holds ``text``."""
        if not text or self.table is None or not self.rows:
            return False
        needle = text.lower()
        start = self.data_table.cursor_row
        n = len(self.rows)
        for step in range(1, n + 1):
            i = (start + step) % n
            r = self.rows[i]
            if any(needle in self.table.cell(r, c).lower() for c in range(len(self.table.columns))):
                self.data_table.move_cursor(row=i)
                return True
        self.notify(f"'{text}' not found", timeout=2)
        return False

    # --- pages -----------------------------------------------------------------------------------
    def row_filter(self, row: Row) -> str:
        """The selection a row stands for: the screen's filter and the row's key."""
        key = "evt.num" if self.nav.view.kind == "list" else self.nav.view.key_field(self.cfg.container_mode)
        return combine_filters(self.view_filter(), drill_filter(key, row.key))

    def action_echo(self) -> None:
        self._spy("echo")

    def action_dig(self) -> None:
        self._spy("dig")

    def _spy(self, kind: str) -> None:
        row = self.selected_row()
        if row is None:
            self.notify("no row selected", timeout=2)
            return
        flt = self.row_filter(row)
        self.push_screen(SpyPage(kind, flt, self.cfg, self.live, self.cfg.echo_mode))

    def action_legend(self) -> None:
        self.push_screen(LegendPage(self.nav.view, self.cfg.container_mode))

    def action_help(self) -> None:
        self.push_screen(HelpPage())

    def action_spectro(self) -> None:
        spectro = self.cfg.views.get("spectro_all")
        if spectro is None:
            return
        self.push_screen(SpectroPage(spectro, self.view_filter(), self.cfg, self.live), self._after_spectro)

    def _after_spectro(self, _result: Any = None) -> None:
        if self.live is not None:
            self.live.set_view(self.nav.view, self.view_filter())

    async def action_quit(self) -> None:
        self.exit()
