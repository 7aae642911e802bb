"""capinfo: the summary of a capture, as a dict and as text."""

from __future__ import annotations

import os
import struct
from typing import Any

import pytest

from tracer.capture import format as fmt
from tracer.capture.blockcodec import CODEC_LZ4, CODEC_LZ4_64K, CODEC_NONE, CODEC_ZSTD, CODEC_ZSTD_T8
from tracer.capture.capinfo import capinfo, render_capinfo
from tracer.schema.record import syscall_evt

NAMES = {
    syscall_evt(nr, d): f"{'><'[d]} {name}" for nr, name in ((0, "read"), (1, "write"), (2, "open")) for d in (0, 1)
}


def test_capinfo_dict(capture: Any, kit: Any) -> None:
    info = capinfo(capture.path, NAMES.__getitem__)
    assert info["file_size"] == len(capture.raw) == os.path.getsize(capture.path)
    assert info["complete"] and info["notes"] == [] and info["version"] == f"{fmt.FORMAT_MAJOR}.{fmt.FORMAT_MINOR}"
    assert info["events"] == capture.events == 1200
    # Six batches of 200 alternating enter/exit records of read, write, open, read, write, open.
    assert info["events_by_type"] == {
        "< open": 200,
        "< read": 200,
        "< write": 200,
        "> open": 200,
        "> read": 200,
        "> write": 200,
    }
    assert info["first_ts"] == capture.batches[0].first_ts and info["last_ts"] == capture.batches[-1].last_ts
    assert info["duration_s"] == (capture.batches[-1].last_ts - capture.batches[0].first_ts) / 1e9
    assert info["drops"] == {"ringbuf_full": 7, "filtered": 0} and info["drops_total"] == 7
    assert info["blocks"] == {"table": 2, "events": 6, "stats": 2, "index": 1, "footer": 1}
    assert info["bytes_per_event"] == len(capture.raw) / 1200
    assert (info["threads"], info["processes"], info["containers"]) == (3, 2, 1)
    assert info["cmdline"] and info["hostname"]


def test_capinfo_without_names_or_tables(make_capture: Any) -> None:
    c = make_capture("c.kcap", 1, 4, tables=False, stats=False)
    info = capinfo(c.path)
    assert info["events_by_type"] == {"0": 2, "1": 2}
    assert (info["threads"], info["processes"], info["containers"], info["drops"]) == (None, None, None, {})


def event_block_codecs(path: str) -> list[int]:
    """The codec byte of every EVENTS block, walking the block heads without CaptureReader."""
    data = open(path, "rb").read()
    off = fmt.FILE_HEAD_SIZE + struct.unpack_from(fmt.FILE_HEAD_FMT, data)[3]
    codecs = []
    while off < len(data):
        _sync, kind, codec, _, stored_len, *_rest = struct.unpack_from(fmt.BLOCK_HEAD_FMT, data, off)
        if kind == fmt.KIND_EVENTS:
            codecs.append(codec)
        off += fmt.BLOCK_HEAD_SIZE + stored_len
    assert off == len(data)
    return codecs


@pytest.mark.parametrize(("codec", "shown"), [(CODEC_NONE, "none"), (CODEC_ZSTD, "zstd"), (CODEC_ZSTD_T8, "zstd+t8"),
                                                   (CODEC_LZ4, "lz4"), (CODEC_LZ4_64K, "lz4-64k")])
def test_compression_shown(make_capture: Any, codec: int, shown: str) -> None:
    c = make_capture("c.kcap", 3, 50, codec=codec)
    n = len(event_block_codecs(c.path))
    assert n == 3 and set(event_block_codecs(c.path)) == {codec}
    info = capinfo(c.path)
    assert info["event_codecs"] == {shown: n}
    assert f"Compression:   {shown}\n" in render_capinfo(info)


def test_render(capture: Any) -> None:
    text = render_capinfo(capinfo(capture.path, NAMES.__getitem__))
    lines = text.splitlines()
    assert lines[0] == f"File:          {capture.path}"
    assert "closed cleanly" in lines[1]
    assert "Events:        1,200 (" in text and "bytes/event)" in text
    assert "Drops:         7 (ringbuf_full 7)" in text
    assert "Blocks:        table 2, events 6, stats 2, index 1, footer 1" in text
    assert "Processes:     2 (3 threads)" in text and "Containers:    1" in text
    assert "  > read   200" in lines
    assert all(len(line) < 80 for line in lines if not line.startswith(("File:", "Command:", "Note:")))


def test_render_truncated_top(capture: Any, tmp_path: Any) -> None:
    p = tmp_path / "t.kcap"
    off = capture.event_blocks()[4][0]
    p.write_bytes(capture.raw[: off + 10])
    info = capinfo(p, NAMES.__getitem__)
    assert not info["complete"] and info["events"] == 800
    text = render_capinfo(info, top=2)
    assert "not closed: cut short" in text
    assert "(4 more)" in text
    assert f"Note: capture truncated: recovered 800 events in 4 blocks, lost the tail after byte {off}" in text


def test_filtered_capture_counts_what_its_blocks_hold(tmp_path: Any) -> None:
    """`-r SAMPLE -w out proc.name=nginx`: every block head counts the records it holds (exact matches reach
    the writer in runs of many records), and the index spans their times."""
    from pathlib import Path

    from tracer.capture import CaptureReader, EventBlock
    from tracer.capture.blockcodec import count_types
    from tracer.cli import main

    sample = Path(__file__).resolve().parents[2] / "captures" / "01-webserver.kcap"
    out = tmp_path / "f.kcap"
    with pytest.raises(SystemExit) as ei:
        main(["-r", str(sample), "-w", str(out), "proc.name=nginx"])
    assert ei.value.code == 0
    held = 0
    with CaptureReader(out) as r:
        for b in r:
            if isinstance(b, EventBlock):
                n = count_types(b.raw, {})
                assert n == b.count
                held += n
                ts = [int.from_bytes(b.raw[o:o + 8], "little") for o in _offsets(b.raw)]
                assert (b.first_ts, b.last_ts) == (ts[0], ts[-1])
    assert held > 1000 and capinfo(out)["events"] == held


def _offsets(raw: bytes) -> list[int]:
    out, off = [], 0
    while off < len(raw):
        out.append(off)
        off += int.from_bytes(raw[off + 20:off + 24], "little")
    return out
