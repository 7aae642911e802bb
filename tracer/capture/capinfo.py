"""``ktrace capinfo FILE``: what a capture holds, as a dict and as text."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Any

from tracer.capture.blockcodec import CODEC_NAMES, BlockError, count_types
from tracer.capture.files import open_capture
from tracer.capture.reader import EventBlock, StatsBlock, TableBlock


def capinfo(path: str | os.PathLike[str], evt_name: Callable[[int], str] | None = None) -> dict[str, Any]:
    """Summarise a capture: size, time span, events (by type), drops, blocks, tables, notes.

    ``evt_name`` names an event id (the event table's job); without it ids are shown as numbers.
    Raises CaptureError only where CaptureReader does; damage shows up in ``notes``.
    """
    name = evt_name or str
    by_id: dict[int, int] = {}
    blocks_first: int | None = None
    blocks_last: int | None = None
    events = 0
    stats: dict[str, Any] = {}
    latest_rows: dict[str, list[Any]] = {}
    notes: list[str] = []
    codecs: dict[str, int] = {}
    with open_capture(os.fspath(path)) as r:
        for item in r:
            if isinstance(item, EventBlock):
                events += item.count
                codec = CODEC_NAMES.get(item.codec, str(item.codec))
                codecs[codec] = codecs.get(codec, 0) + 1
                if item.count:
                    blocks_first = item.first_ts if blocks_first is None else min(blocks_first, item.first_ts)
                    blocks_last = item.last_ts if blocks_last is None else max(blocks_last, item.last_ts)
                try:
                    n = count_types(item.raw, by_id)
                except BlockError as e:
                    notes.append(f"malformed records in the block at byte {item.offset}: {e}")
                    continue
                if n != item.count:
                    notes.append(f"block at byte {item.offset} says {item.count} events but holds {n}")
            elif isinstance(item, TableBlock):
                latest_rows[item.kind] = item.rows
            elif isinstance(item, StatsBlock):
                stats = item.stats
        header = r.header
        version = r.version
        size = r.size
        complete = r.complete
        block_counts = dict(r.block_counts)
        notes = r.notes + notes

    by_type: dict[str, int] = {}
    for evt, n in by_id.items():
        k = name(evt)
        by_type[k] = by_type.get(k, 0) + n
    drops_raw = stats.get("drops")
    drops = {str(k): v for k, v in drops_raw.items() if isinstance(v, int)} if isinstance(drops_raw, dict) else {}
    threads = latest_rows.get("threads")
    pids = {row.get("pid") for row in threads if isinstance(row, dict)} if threads is not None else set()
    pids.discard(None)
    machine = header.get("machine") if isinstance(header.get("machine"), dict) else {}
    assert isinstance(machine, dict)
    return {
        "path": os.fspath(path),
        "file_size": size,
        "version": f"{version[0]}.{version[1]}",
        "complete": complete,
        "hostname": machine.get("hostname"),
        "kernel": machine.get("kernel"),
        "cpus": machine.get("cpus"),
        "start_time": header.get("start_time"),
        "cmdline": header.get("cmdline"),
        "first_ts": blocks_first,
        "last_ts": blocks_last,
        "duration_s": (blocks_last - blocks_first) / 1e9
        if blocks_first is not None and blocks_last is not None
        else 0.0,
        "events": events,
        "events_by_type": dict(sorted(by_type.items(), key=lambda kv: (-kv[1], kv[0]))),
        "drops": drops,
        "drops_total": sum(drops.values()),
        "blocks": block_counts,
        "event_codecs": dict(sorted(codecs.items())),
        "bytes_per_event": size / events if events else None,
        "threads": len(threads) if threads is not None else None,
        "processes": len(pids) if pids else (len(threads) if threads is not None else None),
        "containers": len(latest_rows["containers"]) if "containers" in latest_rows else None,
        "notes": notes,
    }


def _when(ns: int | None) -> str:
    if ns is None:
        return "-"
    s, frac = divmod(ns, 1_000_000_000)
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(s)) + f".{frac:09d}"


def _size(n: int) -> str:
    for unit in ("B", "kB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000  # type: ignore[assignment]
    return f"{n} B"  # pragma: no cover


def render_capinfo(info: dict[str, Any], top: int = 20) -> str:
    """The text ``ktrace capinfo`` prints for ``info`` (from ``capinfo``); ``top`` event types."""
    lines = [
        f"File:          {info['path']}",
        f"Size:          {_size(info['file_size'])} (format {info['version']}, "
        f"{'closed cleanly' if info['complete'] else 'not closed: cut short'})",
        f"Host:          {info['hostname'] or '-'} (kernel {info['kernel'] or '-'}, {info['cpus'] or '-'} cpus)",
    ]
    if info.get("cmdline"):
        lines.append(f"Command:       {' '.join(str(a) for a in info['cmdline'])}")
    lines += [
        f"First event:   {_when(info['first_ts'])}",
        f"Last event:    {_when(info['last_ts'])}",
        f"Duration:      {info['duration_s']:.3f} s",
        f"Events:        {info['events']:,}"
        + (f" ({info['bytes_per_event']:.2f} bytes/event)" if info["bytes_per_event"] else ""),
    ]
    drops = info["drops"]
    detail = ", ".join(f"{k} {v:,}" for k, v in sorted(drops.items()) if v)
    lines.append(f"Drops:         {info['drops_total']:,}" + (f" ({detail})" if detail else ""))
    lines.append("Blocks:        " + (", ".join(f"{k} {v}" for k, v in info["blocks"].items()) or "none"))
    codecs = info["event_codecs"]
    if codecs:  # how the event blocks are stored (blockcodec.CODEC_NAMES)
        lines.append("Compression:   " + (next(iter(codecs)) if len(codecs) == 1
                                          else ", ".join(f"{k} {v}" for k, v in codecs.items())))
    if info["threads"] is not None:
        lines.append(f"Processes:     {info['processes']:,} ({info['threads']:,} threads)")
    if info["containers"] is not None:
        lines.append(f"Containers:    {info['containers']:,}")
    if info["events_by_type"]:
        lines.append("Events by type:")
        items = list(info["events_by_type"].items())
        shown = items[:top]
        if len(items) > top:
            shown.append((f"({len(items) - top} more)", sum(v for _, v in items[top:])))
        width = max(len(k) for k, _ in shown)
        nwidth = max(len(f"{v:,}") for _, v in shown)
        for k, v in shown:
            lines.append(f"  {k:<{width}}  {v:>{nwidth},}")
    for n in info["notes"]:
        lines.append(f"Note: {n}")
    return "\n".join(lines) + "\n"
