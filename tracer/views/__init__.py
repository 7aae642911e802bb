"""Views: csysdig's tables of processes, connections, files, errors... as data, and the engine
that fills them from the session's pipeline, live or from captures. ``ktrace top`` (the terminal
UI and ``-j``) and the capture inspection page are front ends of this package.

Public API:

- ``ViewSpec``, ``Column`` (spec): a view as data -- id, name, description, filter, key (and
  ``container_key`` for -pc), columns (header, field, aggregation ``sum | avg | time_avg | max |
  distinct | cpu | last``, units, ``containers_only``, ``where``), default ``sort``,
  ``drilldown`` target, ``applies_to`` fields, ``kind`` (table, list, spectrogram).
- ``all_views(extra_dirs)`` -> ``{id: FoundView(view, origin)}``, ``find_view(id)``,
  ``views_json()`` (registry): built-ins, ``v_*.py`` files in the chisel directories, the
  ``ktrace.views`` entry points.
- ``ViewTable`` (engine): one interval's result -- ``columns``, ``rows`` (``Row.key``,
  ``values``, ``totals``), ``start_ns``/``end_ns``, ``spectrum``, ``drops``, ``notes``;
  ``sorted_rows(col, ascending)``, ``cell(row, i)`` (text as shown), ``json_slice()`` /
  ``to_json()`` (csysdig's -j slice).
- ``ViewAggregator.record_counter(state, latency=)`` (engine, fast): a table view counted from
  records without Events (plans per event id, return class, thread and fd), the same numbers as
  ``add``; ``fast=False`` on ``capture_tables`` and ``LiveViews`` turns it off.
- ``capture_tables(view, reads, filter_text=, container_mode=, slice_ns=)`` and
  ``capture_table(...)`` (run): a view over captures, whole or sliced by event time (a time
  range is a filter: ``evt.rawtime >= A and evt.rawtime < B``).
- ``capture_events(reads, filter_text, kind="dig"|"echo", mode="printable"|"dotted"|"hex")``:
  the event lines or the I/O of a selection.
- ``LiveViews`` (run): a live run on a thread; ``set_view(view, filter)``, ``set_tap(filter,
  kind, mode)``, ``drops()``, ``stop()``; tables arrive at ``on_table`` every interval.
- ``Navigator`` (navigate): the drill-down stack -- ``drill(key)``, ``back()``, ``switch(id)``,
  ``set_filter``, ``set_sort``, ``filter_text()``, ``menu()``, ``breadcrumbs()``;
  ``drill_filter(field, value)`` and ``combine_filters(a, b)`` build filters as csysdig does.
"""

from __future__ import annotations

from .engine import (
                     Row,
                     ViewAggregator,
                     ViewChisel,
                     ViewTable,
                     combine_filters,
                     drill_filter,
                     format_cell,
                     spectro_bucket,
                     spectro_label,
)
from .navigate import Level, Navigator
from .registry import DEFAULT_VIEW, FoundView, all_views, find_view, views_json
from .run import LiveViews, Tap, capture_events, capture_table, capture_tables
from .spec import AGGREGATIONS, Column, ViewError, ViewSpec

__all__ = [
    "AGGREGATIONS", "DEFAULT_VIEW", "Column", "FoundView", "Level", "LiveViews", "Navigator", "Row", "Tap",
    "ViewAggregator", "ViewChisel", "ViewError", "ViewSpec", "ViewTable", "all_views", "capture_events",
    "capture_table", "capture_tables", "combine_filters", "drill_filter", "find_view", "format_cell",
    "spectro_bucket", "spectro_label", "views_json",
]
