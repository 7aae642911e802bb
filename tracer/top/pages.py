"""The pages ``ktrace top`` opens over its table: menus (views, sort), echo and dig, legend,
help, and the spectrogram. Each closes on Escape or Backspace; F-keys have letter twins."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.screen import ModalScreen, Screen
from textual.widgets import Input, Log, OptionList, Static
from textual.widgets.option_list import Option

from ..errors import KtraceError
from ..views import ViewSpec, capture_events, capture_tables
from ..views.engine import SPECTRO_BUCKETS, SPECTRO_PER_DECADE
from ..views.run import ECHO_MODES

if TYPE_CHECKING:
    from ..views import LiveViews, ViewTable
    from .app import TopConfig

PAGE_CSS = """
#title { height: 1; text-style: bold; }
#body { height: 1fr; }
#desc { height: 3; }
#foot { height: 1; text-style: reverse; }
#findbox { display: none; }
"""


class ListMenu(ModalScreen[int | None]):
    """A menu of named entries with a description of the highlighted one (views, sort columns)."""

    CSS = PAGE_CSS
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape,backspace,q", "cancel", "Back")]

    def __init__(self, title: str, items: list[tuple[str, str]], current: int = 0) -> None:
        super().__init__()
        self.title_text = title
        self.items = items
        self.current = current

    def compose(self) -> ComposeResult:
        yield Static(Text(self.title_text), id="title")
        yield OptionList(*[Option(Text(name), id=str(i)) for i, (name, _d) in enumerate(self.items)], id="body")
        yield Static(id="desc")
        yield Static(Text("Enter choose  Esc back"), id="foot")

    def on_mount(self) -> None:
        ol = self.query_one(OptionList)
        ol.highlighted = min(self.current, len(self.items) - 1) if self.items else None
        ol.focus()

    def on_option_list_option_highlighted(self, event: OptionList.OptionHighlighted) -> None:
        i = event.option_index
        if 0 <= i < len(self.items):
            self.query_one("#desc", Static).update(Text(self.items[i][1]))

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(event.option_index)

    def action_cancel(self) -> None:
        self.dismiss(None)


class TextPage(Screen[None]):
    """Lines in a scrolling log, with find (/ or Ctrl+F, Enter again finds the next)."""

    CSS = PAGE_CSS
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,backspace,q", "close", "Back"),
        Binding("ctrl+f,slash,f3", "find", "Find"),
    ]

    def __init__(self, title: str) -> None:
        super().__init__()
        self.title_text = title
        self.lines: list[str] = []
        self.find_text = ""
        self.find_pos = -1

    def compose(self) -> ComposeResult:
        yield Static(Text(self.title_text, no_wrap=True, overflow="ellipsis"), id="title")
        yield Log(id="body", highlight=False)
        yield Input(id="findbox", placeholder="Find: text; Enter finds the next line holding it")
        yield Static(Text(self.footer(), no_wrap=True, overflow="ellipsis"), id="foot")

    def footer(self) -> str:
        return "/ Find  Esc back"

    def write(self, lines: list[str]) -> None:
        self.lines.extend(lines)
        self.query_one(Log).write_lines(lines)

    def reset(self) -> None:
        self.lines = []
        self.query_one(Log).clear()

    def action_close(self) -> None:
        if self.query_one("#findbox", Input).display:
            self.query_one("#findbox", Input).display = False
            self.query_one(Log).focus()
            return
        self.dismiss(None)

    def action_find(self) -> None:
        box = self.query_one("#findbox", Input)
        box.value = self.find_text
        box.display = True
        box.focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.input.id != "findbox":
            return
        self.find_text = event.value
        event.input.display = False
        self.query_one(Log).focus()
        self.find_next()

    def find_next(self) -> int:
        """Scroll to the next line holding the find text; its index, or -1."""
        needle = self.find_text.lower()
        if not needle:
            return -1
        n = len(self.lines)
        for step in range(1, n + 1):
            i = (self.find_pos + step) % n
            if needle in self.lines[i].lower():
                self.find_pos = i
                self.query_one(Log).scroll_to(y=i, animate=False)
                return i
        self.notify(f"'{self.find_text}' not found", timeout=2)
        return -1


class SpyPage(TextPage):
    """Echo (the I/O of a selection) or dig (its events), from the captures or live."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("f2,v", "view_as", "View as"),
        Binding("p", "pause", "Pause"),
        Binding("c", "clear", "Clear"),
    ]

    def __init__(self, kind: str, filter_text: str, cfg: TopConfig, live: LiveViews | None, mode: str) -> None:
        super().__init__(f"{'Echo' if kind == 'echo' else 'Dig'}: {filter_text}")
        self.kind = kind
        self.filter_text = filter_text
        self.cfg = cfg
        self.live = live
        self.mode = mode if mode in ECHO_MODES else "dotted"
        self.paused = False
        self.tap: Any = None
        self.truncated = False

    def footer(self) -> str:
        view_as = f"v View as ({self.mode})  " if self.kind == "echo" else ""
        return f"{view_as}/ Find  p Pause  c Clear  Esc back"

    def on_mount(self) -> None:
        self.load()
        if self.live is not None:
            self.set_interval(0.5, self.drain)

    def on_unmount(self) -> None:
        if self.live is not None:
            self.live.set_tap(None)

    def load(self) -> None:
        self.reset()
        self.query_one("#foot", Static).update(Text(self.footer(), no_wrap=True, overflow="ellipsis"))
        if self.live is not None:
            self.tap = self.live.set_tap(self.filter_text, self.kind, self.mode)
            return
        reads, flt, kind, mode, pc = self.cfg.reads, self.filter_text, self.kind, self.mode, self.cfg.container_mode

        def work() -> None:
            try:
                lines, cut = capture_events(reads, flt, kind=kind, mode=mode, container_mode=pc)
            except KtraceError as e:
                lines, cut = [e.show()], False
            self.app.call_from_thread(self.loaded, lines, cut)

        self.run_worker(work, thread=True, exclusive=True)

    def loaded(self, lines: list[str], cut: bool) -> None:
        self.truncated = cut
        if not lines:
            lines = ["(no events)" if self.kind == "dig" else "(no I/O)"]
        if cut:
            lines = [*lines, f"(the first {len(lines)} lines; narrow the filter to see the rest)"]
        self.write(lines)

    def drain(self) -> None:
        tap = self.tap
        if tap is None or self.paused or not tap.buffer:
            return
        lines = []
        while tap.buffer:
            lines.append(tap.buffer.popleft())
        self.write(lines)

    def action_view_as(self) -> None:
        if self.kind != "echo":
            return
        modes = list(ECHO_MODES)
        self.mode = modes[(modes.index(self.mode) + 1) % len(modes)]
        self.load()

    def action_pause(self) -> None:
        self.paused = not self.paused

    def action_clear(self) -> None:
        self.reset()


class LegendPage(TextPage):
    """The view's columns: what each shows, from which field, aggregated how."""

    def __init__(self, view: ViewSpec, container_mode: bool) -> None:
        super().__init__(f"Legend: {view.name} ({view.id})")
        self.view = view
        self.container_mode = container_mode

    def on_mount(self) -> None:
        v = self.view
        lines = [v.description, "", f"Filter: {v.filter or '(none)'}",
                 f"Key: {v.key_field(self.container_mode)}   Enter goes to: {v.drilldown or '-'}", ""]
        for c in v.visible_columns(self.container_mode):
            how = {"time_avg": "per second", "sum": "total", "avg": "average", "max": "maximum",
                   "distinct": "distinct values", "cpu": "CPU share", "last": "value"}[c.agg]
            extra = f", where {c.where}" if c.where else ""
            lines.append(f"{c.header:<12} {c.desc or c.field}  [{c.field}, {how}{extra}]")
        self.write(lines)


HELP = """ktrace top: views of what the node's processes do (live) or did (a capture).

Keys (every function key has a letter):
  Up/Down PgUp/PgDn Home/End   move
  Enter                        drill down into the selected row
  Backspace                    back up (Esc also clears a filter first)
  F1  h  ?                     this help
  F2  v                        views (with their descriptions)
  F4  \\                        filter: a filter (proc.name=nginx) or text to find in the rows
  Ctrl+F  /                    search for text; Enter again finds the next
  F5  e                        echo: the I/O of the selected row (v: printable, dotted, hex)
  F6  d                        dig: the events of the selected row
  F7  l                        legend: what the columns mean
  F9  >                        sort menu; Shift+1..9 sort by column 1..9; click a header
  F12 s                        spectrogram of system call latency
  p                            pause the refresh
  c                            clear a list
  F10 q  Ctrl+C                quit

The status line shows where the data comes from, the events the probe dropped (never hidden),
the rows and the filter in force. Views are data: `ktrace top --list-views` lists them; a file
v_NAME.py beside your chisels adds one.
"""


class HelpPage(TextPage):
    def __init__(self) -> None:
        super().__init__("Help")

    def on_mount(self) -> None:
        self.write(HELP.splitlines())


# --- the spectrogram -------------------------------------------------------------------------------
SHADES = " .:+*#"  # counts 0, 1, 2-3, 4-15, 16-63, 64+: readable without colour


def shade(n: int) -> str:
    if n <= 0:
        return SHADES[0]
    if n == 1:
        return SHADES[1]
    if n < 4:
        return SHADES[2]
    if n < 16:
        return SHADES[3]
    if n < 64:
        return SHADES[4]
    return SHADES[5]


AXIS_LABELS = ("1ns", "100ns", "10us", "1ms", "100ms", "10s")  # every other decade: 8 columns apart


def spectro_axis() -> str:
    """Latency labels over the bucket columns, one every two decades."""
    cells = [" "] * (SPECTRO_BUCKETS + 8)
    for k, label in enumerate(AXIS_LABELS):
        b = 2 * k * SPECTRO_PER_DECADE
        for j, ch in enumerate(label):
            if b + j < len(cells):
                cells[b + j] = ch
    return "".join(cells).rstrip()


def spectro_line(table: ViewTable) -> str:
    """One interval: its time, then a character per latency bucket, darker for more calls."""
    import time

    stamp = time.strftime("%H:%M:%S", time.localtime(table.end_ns / 1e9)) if table.end_ns else "--:--:--"
    return f"{stamp} |{''.join(shade(n) for n in table.spectrum)}| {sum(table.spectrum)}"


class SpectroPage(TextPage):
    """System call latency over time: a line per interval, a column per latency range (log
    scale), the character's weight the number of calls."""

    def __init__(self, view: ViewSpec, filter_text: str, cfg: TopConfig, live: LiveViews | None) -> None:
        super().__init__(f"Spectrogram: {filter_text or 'all system calls'}")
        self.view = view
        self.filter_text = filter_text
        self.cfg = cfg
        self.live = live
        self.lines_shown = 0

    def footer(self) -> str:
        return f"latency: {' '.join(repr(c) for c in SHADES[1:])} = 1, 2-3, 4-15, 16-63, 64+ calls  Esc back"

    def on_mount(self) -> None:
        self.write([" " * 9 + " " + spectro_axis(), ""])
        if self.live is not None:
            self.app.spectro_sink = self.add  # type: ignore[attr-defined]
            self.live.set_view(self.view, self.filter_text)
            return
        reads, flt, pc = self.cfg.reads, self.filter_text, self.cfg.container_mode
        slice_ns = self.cfg.refresh_ms * 1_000_000

        def work() -> None:
            try:
                from ..capture.capinfo import capinfo

                span = sum(int(capinfo(p).get("duration_s", 0) * 1e9) for p in reads)
                step = max(min(slice_ns, span // 40), 1_000_000) if span else slice_ns
                tables = capture_tables(self.view, reads, filter_text=flt, container_mode=pc, slice_ns=step)
            except KtraceError as e:
                self.app.call_from_thread(self.write, [e.show()])
                return
            self.app.call_from_thread(self.write, [spectro_line(t) for t in tables])

        self.run_worker(work, thread=True)

    def add(self, table: ViewTable) -> None:
        self.write([spectro_line(table)])

    def on_unmount(self) -> None:
        if self.live is not None:
            self.app.spectro_sink = None  # type: ignore[attr-defined]
