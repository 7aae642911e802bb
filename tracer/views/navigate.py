"""Where a user is among the views: the drill-down stack both front ends keep (the terminal UI
and the inspection page), and the filter it makes.

Each drill-down remembers the view left, the row's key field and value (``KEY=VALUE`` joins the
filter from then on), and the sort and manual filter in force, so ``back`` restores them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .engine import combine_filters, drill_filter
from .spec import ViewSpec


@dataclass
class Level:
    """One screen: a view, how it was reached (``field=value``; none for the first), and its
    sort column, direction and manual filter."""

    view: ViewSpec
    field: str | None = None
    value: Any = None
    sort_col: int | None = None
    ascending: bool | None = None
    manual_filter: str = ""
    selected_key: Any = None

    @property
    def selection(self) -> str:
        return drill_filter(self.field, self.value) if self.field else ""


@dataclass
class Navigator:
    """The stack of screens over a set of views. ``base_filter`` is the command line's."""

    views: dict[str, ViewSpec]
    start: str
    base_filter: str = ""
    container_mode: bool = False
    stack: list[Level] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not self.stack:
            self.stack.append(Level(self.views[self.start]))

    @property
    def level(self) -> Level:
        return self.stack[-1]

    @property
    def view(self) -> ViewSpec:
        return self.level.view

    def filter_text(self) -> str:
        """The filter of the current screen without the view's own: the command line's, every
        drill-down's ``KEY=VALUE`` and the screen's manual filter."""
        text = self.base_filter
        for lv in self.stack:
            text = combine_filters(text, lv.selection)
        return combine_filters(text, self.level.manual_filter)

    def drill_target(self) -> ViewSpec | None:
        """Where Enter goes from this view: its drill-down target, else the first view that
        applies to its key field (csysdig's rule); None for lists and spectrograms."""
        v = self.view
        if v.kind != "table":
            return None
        if v.drilldown and v.drilldown in self.views:
            return self.views[v.drilldown]
        key = v.key_field(self.container_mode)
        return next((w for w in self.views.values() if w.applies(key) and w.id != v.id), None)

    def drill(self, key_value: Any) -> ViewSpec | None:
        """Drill down on the row whose key is ``key_value``; the new view, or None if there is none."""
        target = self.drill_target()
        if target is None:
            return None
        self.level.selected_key = key_value
        self.stack.append(Level(target, self.view.key_field(self.container_mode), key_value))
        return target

    def back(self) -> bool:
        """Go back up one level; False at the top."""
        if len(self.stack) == 1:
            return False
        self.stack.pop()
        return True

    def switch(self, view_id: str) -> ViewSpec:
        """Show another view at this level (the views menu): the drill-down filter stays."""
        lv = self.level
        self.stack[-1] = Level(self.views[view_id], lv.field, lv.value)
        return self.stack[-1].view

    def set_sort(self, col: int | None, ascending: bool | None) -> None:
        self.level.sort_col, self.level.ascending = col, ascending

    def set_filter(self, text: str) -> None:
        self.level.manual_filter = text.strip()

    def menu(self) -> list[ViewSpec]:
        """The views the views menu offers: after a drill-down, those that apply to its field."""
        f = self.level.field
        if f is None:
            return [v for v in self.views.values() if v.kind != "spectrogram"]
        return [v for v in self.views.values() if v.applies(f) and v.kind != "spectrogram"]

    def breadcrumbs(self) -> list[str]:
        """``Processes``, ``proc.pid=42 > Threads``... one entry per level."""
        out = []
        for lv in self.stack:
            out.append(f"{lv.selection} > {lv.view.name}" if lv.selection else lv.view.name)
        return out
