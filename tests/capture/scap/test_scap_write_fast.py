"""The export's compiled recipes (recipe.py, the engine's scapwrite) against the exporter's
event-by-event path: the same bytes for every sample capture, whole and cut into small batches.

Run under both engines (KTRACE_PUREPYTHON=1 picks the pure twin of scapwrite).
"""

from __future__ import annotations

import contextlib
import io
from pathlib import Path
from typing import Any

import pytest

from tracer.capture import CaptureReader, EventBlock, TableBlock
from tracer.capture.scap import export
from tracer.capture.scap import writer as scap_writer
from tracer.capture.scap.recipe import F_APPLY, F_FAST, F_PEEK, compile_plan
from tracer.schema import record as R
from tracer.schema.events import SYSCALL_NR
from tracer.state.state import State

ROOT = Path(__file__).resolve().parents[3]
KCAPS = sorted(p.name for p in (ROOT / "captures").glob("*.kcap"))


def ktrace(*args: str) -> None:
    from tracer.cli import main

    err = io.StringIO()
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(err):
        try:
            main(list(args))
        except SystemExit as e:
            assert not e.code, err.getvalue()


@pytest.mark.parametrize("name", KCAPS)
def test_ktrace_w_writes_the_same_file_by_recipe(name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    src = str(ROOT / "captures" / name)
    ktrace("-r", src, "-w", str(tmp_path / "fast.scap"))
    monkeypatch.setattr(scap_writer, "compile_plan", lambda: None)  # every event the reference way
    ktrace("-r", src, "-w", str(tmp_path / "slow.scap"))
    fast, slow = (tmp_path / "fast.scap").read_bytes(), (tmp_path / "slow.scap").read_bytes()
    assert len(fast) == len(slow)
    assert fast == slow


class _Sink(list[bytes]):
    """A list of blocks that counts the ones the recipes wrote."""

    by_recipe = 0

    def append_run(self, blocks: bytes, count: int) -> None:
        self.by_recipe += count
        self.extend(export.split_blocks(blocks))


def _records(raw: bytes) -> list[bytes]:
    out, off = [], 0
    while off + R.REC_FIXED <= len(raw):
        length = int.from_bytes(raw[off + R.OFF_LEN:off + R.OFF_LEN + 4], "little")
        out.append(raw[off:off + length])
        off += length
    return out


def _export(name: str, fast: bool, chunk: int) -> tuple[bytes, int, Any]:
    """The event blocks of a capture, its records fed ``chunk`` at a time."""
    ex = export.Exporter(State(), compile_plan() if fast else None)
    sink = _Sink()
    with CaptureReader(ROOT / "captures" / name) as r:
        for item in r:
            if isinstance(item, TableBlock) and not ex.events:
                ex.state.load_table(item.kind, item.rows)
            elif isinstance(item, EventBlock):
                recs = _records(bytes(item.raw))
                for i in range(0, len(recs), chunk):
                    ex.feed(b"".join(recs[i:i + chunk]), out=sink)
    ex.finish(out=sink)
    return b"".join(sink), sink.by_recipe, ex


@pytest.mark.parametrize("chunk", [1, 2, 7])
@pytest.mark.parametrize("name", KCAPS)
def test_batches_cut_anywhere_give_the_same_blocks(name: str, chunk: int) -> None:
    fast, by_recipe, ex = _export(name, True, chunk)
    slow, none, ref = _export(name, False, chunk)
    assert none == 0
    assert (ex.events, ex.first_ts, ex.last_ts) == (ref.events, ref.first_ts, ref.last_ts)
    assert fast == slow
    if chunk > 1:  # one record a batch: every exit is the last of its batch, held for what follows
        assert by_recipe > ex.events // 4, "the recipes wrote too few of the events to be tested"


def test_what_needs_the_state_is_applied_first_or_left_to_the_exporter() -> None:
    plan = compile_plan()
    for name in ("open", "openat", "close", "accept", "connect", "socket", "dup2", "fcntl"):
        f = plan.flags[SYSCALL_NR[name] * 2 + 1]
        assert not f or f & F_APPLY, name
    for name in ("clone", "clone3", "fork", "vfork", "execve", "execveat"):
        assert not plan.flags[SYSCALL_NR[name] * 2 + 1], name
    for name in ("clone", "clone3", "fork", "vfork"):  # their enters keep what a clone's child needs
        assert not plan.flags[SYSCALL_NR[name] * 2], name
    for name in ("open", "openat", "creat"):  # their enters take the path from their exits
        assert plan.flags[SYSCALL_NR[name] * 2] & (F_FAST | F_PEEK) == F_FAST | F_PEEK, name
    for name in ("read", "write", "epoll_wait", "sendfile", "futex", "recvfrom"):
        f = plan.flags[SYSCALL_NR[name] * 2 + 1]
        assert f & F_FAST and not f & F_APPLY, name
