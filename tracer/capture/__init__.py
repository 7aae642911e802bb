"""The .kcap capture format: a header, then checksummed blocks of records, tables and stats.

``CaptureWriter`` writes (with sysdig-style rotation, ``RotatePolicy``), ``CaptureReader`` and
``read_captures`` read and recover, ``capinfo`` summarises. The layout is in ``format``.
"""

from __future__ import annotations

from tracer.capture.capinfo import capinfo, render_capinfo
from tracer.capture.files import open_capture, read_captures
from tracer.capture.format import FORMAT_MAJOR, FORMAT_MINOR, TABLE_KINDS, Upgrade, register_upgrade
from tracer.capture.reader import (
    CaptureReader,
    EventBlock,
    FileStart,
    IndexEntry,
    Item,
    StatsBlock,
    TableBlock,
)
from tracer.capture.rotate import RotatePolicy, capture_name
from tracer.capture.writer import CaptureWriter, machine_info

__all__ = [
    "FORMAT_MAJOR",
    "FORMAT_MINOR",
    "TABLE_KINDS",
    "CaptureReader",
    "CaptureWriter",
    "EventBlock",
    "FileStart",
    "IndexEntry",
    "Item",
    "RotatePolicy",
    "StatsBlock",
    "TableBlock",
    "Upgrade",
    "capinfo",
    "capture_name",
    "machine_info",
    "open_capture",
    "read_captures",
    "register_upgrade",
    "render_capinfo",
]
