"""The .kcap capture format: a header, then checksummed blocks of records, tables and stats.

``CaptureWriter`` writes (with sysdig-style rotation, ``RotatePolicy``), ``CaptureReader`` reads
and recovers. ``files.read_captures`` reads files of either format (.kcap, sysdig's .scap) in
sequence, ``capinfo`` summarises one. The layout is in ``format``.
"""

from __future__ import annotations

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
    "capture_name",
    "machine_info",
    "register_upgrade",
]
