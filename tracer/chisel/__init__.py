"""Chisels: the contract (sysdig's, as a typed class), the generic table chisel, and the registry.

A chisel is a class: metadata (name, descriptions, category, typed arguments) and hooks the session
calls -- ``on_capture_start(live)``, ``on_event(ev)`` for every event that passes both the user's
filter and the chisel's own ``filter``, ``on_interval(ts_ns)`` every ``interval_ns`` (live only),
``on_capture_end(ts_ns)``. ``on_init`` runs once the arguments are known and says what the chisel
needs: ``filter`` (sysdig syntax; the session ANDs it with the user's and pushes both down),
``fields`` (what it reads, e.g. ``evt.latency`` makes the session pair enters with exits),
``interval_ns``, ``needs_cpu`` (live CPU samples) and ``snaplen``. Setting ``done`` asks the session
to stop reading, like sysdig's ``end_capture()``.

Where chisels come from, first match wins: ``--chisel-dir`` directories, then ``$KTRACE_CHISEL_DIR``
(``os.pathsep``-separated), then the ``ktrace.chisels`` entry-point group, then the built-ins (the
top-level ``chisels`` package, one module per chisel). A directory chisel is ``NAME.py`` defining
one Chisel subclass (or ``CHISEL = TheClass``).

Arguments on the command line (``ktrace -c NAME [ARGS] [FILTER]``): like sysdig, declared arguments
are taken positionally, required ones first. An optional argument takes the next token only when
the token fits it -- an integer for ``int``, one of its ``choices`` for a keyword, anything for a
``filter`` argument (which takes every remaining token: ps/lsof/netstat), and for other strings
any token that does not look like a filter (no ``= < > ! ( )``, not a field name or ``and``/``or``/
``not``). An optional argument that does not fit is left at its default and the next one is tried
with the same token; the first token no remaining argument fits starts the filter.

The package, one module per concept: :mod:`.contract` (the base class, its arguments and context),
:mod:`.format` (sysdig's column and unit helpers), :mod:`.table` and :mod:`.counter` (table
chisels and their Event-free fast path), :mod:`.statedump` (ps, lsof, netstat), :mod:`.registry`
(finding, loading and configuring a chisel) and :mod:`.listing` (``-cl`` and ``-i``).
"""

from __future__ import annotations

from .contract import ARG_TYPES, Chisel, ChiselArg, ChiselContext, ChiselError, Extractor, looks_like_filter
from .format import ONE_SECOND, Palette, extend_string, format_bytes, format_time_interval, lua_str
from .listing import chisel_info, list_chisels
from .registry import ENTRY_POINT_GROUP, ENV_DIRS, Found, all_chisels, find_chisel, load_chisel, parse_args
from .statedump import StateDumpChisel
from .table import (
    FILE_IO,
    KEY_WIDTH,
    NET_IO,
    PC_DESC,
    UNITS,
    CpuTableChisel,
    TableChisel,
    TableSpec,
    json_table,
    plain_table,
)

__all__ = [
    "ARG_TYPES", "ENTRY_POINT_GROUP", "ENV_DIRS", "FILE_IO", "KEY_WIDTH", "NET_IO", "ONE_SECOND", "PC_DESC",
    "UNITS", "Chisel", "ChiselArg", "ChiselContext", "ChiselError", "CpuTableChisel", "Extractor", "Found",
    "Palette", "StateDumpChisel", "TableChisel", "TableSpec", "all_chisels", "chisel_info", "extend_string",
    "find_chisel", "format_bytes", "format_time_interval", "json_table", "list_chisels", "load_chisel",
    "looks_like_filter", "lua_str", "parse_args", "plain_table",
]
