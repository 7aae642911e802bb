"""A view as data: what csysdig's ``v_*.lua`` files declare, as typed, frozen records.

A **table** view groups the events its filter admits by ``key`` (a field; ``container_key`` with
-pc) and aggregates each column over an interval. A **list** view makes one row per event. Columns
say which field they read and how it is aggregated:

``sum``       the total over the interval
``avg``       the mean of the values seen
``time_avg``  the total divided by the interval's seconds (a rate: bytes/s, calls/s)
``max``       the largest value seen
``distinct``  how many different values were seen (processes in a container)
``cpu``       the CPU share of the row's threads, from the CPU samples (as ``topprocs_cpu``)
``last``      the last value seen (names, commands); the default for text

A column's ``where`` (a filter) narrows the events it counts. A **spectrogram** view counts the
events its filter admits by latency range (log scale), one line per interval.

Drill-down from a row of a view goes to ``drilldown`` with the filter ``KEY=VALUE`` added; a
view's ``applies_to`` lists the key fields it can take such a filter on (the views menu of a
drilled-down screen shows only those).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Final

from ..errors import KtraceError

AGGREGATIONS: Final = ("sum", "avg", "time_avg", "max", "distinct", "cpu", "last")
KINDS: Final = ("table", "list", "spectrogram")
UNITS: Final = ("bytes", "bytes/s", "time", "pct", "count", "rate", "text")


class ViewError(KtraceError):
    """A view that cannot be loaded or does not hold together (unknown field, bad aggregation)."""


@dataclass(frozen=True)
class Column:
    """One column: ``header`` as shown, the ``field`` it reads, its aggregation and units."""

    header: str
    field: str
    agg: str = "last"
    units: str = "text"
    desc: str = ""
    containers_only: bool = False  # shown only with -pc (csysdig's ``tags = {"containers"}``)
    width: int = 0  # 0: sized to the content
    where: str | None = None  # only events this filter admits count in this column


@dataclass(frozen=True)
class ViewSpec:
    """A view. ``sort`` names the header of the column sorted on by default (descending);
    ``root`` views are the ones offered before any drill-down."""

    id: str
    name: str
    description: str
    key: str
    columns: tuple[Column, ...]
    kind: str = "table"
    filter: str | None = None
    container_key: str | None = None
    sort: str | None = None
    sort_ascending: bool = False
    drilldown: str | None = None
    applies_to: tuple[str, ...] = ()
    root: bool = False
    tags: tuple[str, ...] = field(default_factory=tuple)

    def key_field(self, container_mode: bool) -> str:
        return self.container_key if container_mode and self.container_key else self.key

    def visible_columns(self, container_mode: bool) -> tuple[Column, ...]:
        return tuple(c for c in self.columns if container_mode or not c.containers_only)

    def sort_index(self, container_mode: bool) -> int | None:
        """Index of the default sort column among the visible ones (None: arrival order)."""
        if self.sort is None:
            return None
        for i, c in enumerate(self.visible_columns(container_mode)):
            if c.header == self.sort:
                return i
        return None

    def applies(self, field_name: str) -> bool:
        return field_name in self.applies_to

    def with_(self, **changes: object) -> ViewSpec:
        return replace(self, **changes)  # type: ignore[arg-type]

    def check(self, origin: str = "") -> None:
        """Raise ViewError when the view does not hold together: unknown fields or aggregations,
        a sort column it does not have, a bad filter."""
        from ..output.format import resolve_field

        where = f"{origin}: view {self.id}" if origin else f"view {self.id}"
        if not self.id or not self.name:
            raise ViewError(f"{where}: a view needs an id and a name")
        if self.kind not in KINDS:
            raise ViewError(f"{where}: kind must be one of {', '.join(KINDS)}, not {self.kind!r}")
        if not self.columns:
            raise ViewError(f"{where}: no columns")
        for f in (self.key, self.container_key):
            if f and resolve_field(f) is None:
                raise ViewError(f"{where}: unknown key field '{f}'; `ktrace -l` lists fields")
        for c in self.columns:
            if c.agg not in AGGREGATIONS:
                raise ViewError(f"{where}: column {c.header}: aggregation must be one of "
                                f"{', '.join(AGGREGATIONS)}, not {c.agg!r}")
            if c.units not in UNITS:
                raise ViewError(f"{where}: column {c.header}: units must be one of {', '.join(UNITS)}")
            if resolve_field(c.field) is None:
                raise ViewError(f"{where}: column {c.header}: unknown field '{c.field}'")
        if self.sort is not None and all(c.header != self.sort for c in self.columns):
            raise ViewError(f"{where}: sort column {self.sort!r} is not one of its columns")
        from ..errors import FilterError
        from ..filter.compiler import compile_filter
        from ..schema.fields import FIELDS

        for text in (self.filter, *(c.where for c in self.columns)):
            if text:
                try:
                    compile_filter(text, FIELDS)
                except FilterError as e:
                    raise ViewError(f"{where}: bad filter {text!r}: {e.message}") from None
