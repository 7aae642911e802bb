"""The export's compiled recipes (recipe.py, the engine's scapwrite) against the exporter's
event-by-event path: the same bytes for every sample capture, whole and cut into small batches.

Run under both engines (KTRACE_PUREPYTHON=1 picks the pure twin of scapwrite).
"""

from __future__ import annotations

import contextlib
import errno
import io
import os
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tracer.capture import CaptureReader, EventBlock, TableBlock
from tracer.capture.scap import export, recipe
from tracer.capture.scap import writer as scap_writer
from tracer.capture.scap.recipe import F_APPLY, F_FAST, F_PEEK, compile_plan
from tracer.engine import scapwrite
from tracer.schema import record as R
from tracer.schema.events import SYSCALL_NR
from tracer.state.state import State
from tracer.testing import (
    AT_FDCWD,
    STREAM_OPS,
    Synth,
    build_stream,
    fd_row,
    random_capture,
    split,
    state_from,
    tables,
    thread_row,
)

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
    monkeypatch.setattr(scap_writer, "compile_plan", lambda **_: None)  # every event the reference way
    ktrace("-r", src, "-w", str(tmp_path / "slow.scap"))
    fast, slow = (tmp_path / "fast.scap").read_bytes(), (tmp_path / "slow.scap").read_bytes()
    assert len(fast) == len(slow)
    assert fast == slow


@pytest.mark.parametrize("rotation", [("-e", "37"), ("-C", "1"), ("-G", "1")])
@pytest.mark.parametrize("name", ["01-webserver.kcap", "03-container.kcap"])
def test_rotated_files_by_recipe_as_event_by_event(name: str, rotation: tuple[str, str], tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    # Each file starts with the state as the block before it left it (its fd tables, its
    # container events' time), though the recipes write a run of blocks at once.
    src = str(ROOT / "captures" / name)
    (tmp_path / "fast").mkdir()
    (tmp_path / "slow").mkdir()
    ktrace("-r", src, "-w", str(tmp_path / "fast" / "x.scap"), *rotation)
    monkeypatch.setattr(scap_writer, "compile_plan", lambda **_: None)
    ktrace("-r", src, "-w", str(tmp_path / "slow" / "x.scap"), *rotation)
    fast = {p.name: p.read_bytes() for p in (tmp_path / "fast").iterdir()}
    slow = {p.name: p.read_bytes() for p in (tmp_path / "slow").iterdir()}
    assert sorted(fast) == sorted(slow)
    assert len(fast) > 1 or rotation[0] != "-e"
    assert [n for n in sorted(fast) if fast[n] != slow[n]] == []


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


# --- every operation of the recipes, one case at a time ------------------------------------------------
def _hide(batch: bytes) -> bytes:
    """The records of ``batch``, hidden (kept for the state only)."""
    out = bytearray(batch)
    off = 0
    while off < len(out):
        flags = int.from_bytes(out[off + R.OFF_FLAGS:off + R.OFF_FLAGS + 4], "little") | R.RF_HIDDEN
        out[off + R.OFF_FLAGS:off + R.OFF_FLAGS + 4] = flags.to_bytes(4, "little")
        off += int.from_bytes(out[off + R.OFF_LEN:off + R.OFF_LEN + 4], "little")
    return bytes(out)


def _cases() -> tuple[dict[str, list[Any]], list[bytes]]:
    """Tables and records that go through each thing the run does beside plain recipes."""
    tabs = tables(threads=[thread_row(100, comm="app", cwd="/home"), thread_row(101, 100, comm="app"),
                           thread_row(200, comm="client")],
                  fds={100: [fd_row(1, "file", "/dev/null")]})
    s = Synth(pid=100)
    t101, p200, stranger = s.on(101, 100), s.on(200), s.on(300)
    parts = []
    # An open's enter takes its exit's parameters: right after it, after another thread's records,
    # or not at all (its exit lost); open and creat too.
    s.open("/etc/passwd", 3, dirfd=AT_FDCWD)
    s.syscall("openat", (AT_FDCWD, None, os.O_RDONLY | os.O_CLOEXEC, 0), ret=4, seg0=b"/etc/hosts", exit=False)
    t101.read(9, b"between")
    s.syscall("openat", (AT_FDCWD, None, os.O_RDONLY | os.O_CLOEXEC, 0), ret=4, seg0=b"/etc/hosts", enter=False)
    s.syscall("openat", (AT_FDCWD, None, os.O_RDONLY, 0), ret=5, seg0=b"/lost", exit=False)
    s.read(3, b"x")
    s.open("/etc/group", 6)
    s.syscall("creat", (None, 0o644), ret=7, seg0=b"/tmp/new")
    s.syscall("access", (None, os.R_OK | os.W_OK), ret=-errno.EACCES, seg0=b"/etc/shadow")
    s.syscall("mkdir", (None, 0o750), ret=0, seg0=b"/tmp/d")
    s.syscall("mount", (None, None, None, 1), ret=0, seg0=b"/dev/sda1", seg1=b"/mnt")
    s.syscall("umount2", (None, 2), ret=0, seg0=b"/mnt")
    s.syscall("openat2", (AT_FDCWD, None, None, 24), ret=16, seg0=b"/etc/fstab",
              seg1=(os.O_RDONLY | os.O_CLOEXEC).to_bytes(8, "little") + bytes(16))
    # Opens kept back: closed unseen, kept by a failed close, read by a relative open and a dup.
    s.open("/srv", 8, os.O_RDONLY | os.O_DIRECTORY, dirfd=AT_FDCWD)
    s.open("www/index.html", 9, dirfd=8)
    s.open("rel.txt", 12, dirfd=AT_FDCWD)
    s.close(9)
    s.open("/var/log/a.log", 10, os.O_WRONLY, dirfd=AT_FDCWD)
    s.close(10, ret=-errno.EINTR)
    s.dup2(10, 11)
    s.dup3(11, 13, os.O_CLOEXEC)
    s.dup2(10, 14, ret=-errno.EBADF)
    s.open("/tmp/gone", 15, dirfd=AT_FDCWD)
    s.close(15)
    s.open("/tmp/over", 1, dirfd=AT_FDCWD)  # an fd the state has (it missed a close): replaced
    s.close(1)  # and gone, with the open kept back
    s.open("/tmp/failed", -errno.ENOENT, dirfd=AT_FDCWD)
    # Socket tuples: remembered, then the fd changes in the run (dup, close, open) or by the exporter
    # (socket, connect).
    p200.socket(5).connect(5, ("10.0.0.1", 80)).recvfrom(5, b"a").recvfrom(5, b"b")
    p200.dup2(5, 6).recvfrom(6, b"c")
    p200.close(5).syscall("recvfrom", (5, None, 10, 0), ret=-errno.EBADF)
    p200.socket(5).connect(5, ("10.0.0.2", 443)).recvfrom(5, b"d")
    p200.close(6).open("/etc/six", 6, dirfd=AT_FDCWD).recvfrom(6, b"e")
    parts.append(s.batch())
    # Hidden enters: of a thread the state does not know, only noted (its exec's exit takes its
    # program from it); of a known one, or an open's, written state-only by the exporter.
    stranger.syscall("execve", seg0=b"/bin/cat", seg1=b"cat\0/etc/passwd\0", exit=False)
    stranger.syscall("read", (3, None, 10))
    stranger.syscall("openat", (AT_FDCWD, None, 0, 0), ret=3, seg0=b"/etc/motd", exit=False)
    parts.append(_hide(s.batch()))
    stranger.syscall("execve", ret=0, seg0=b"cat", enter=False)
    s.read(3, b"y")
    parts.append(s.batch())
    s.syscall("read", (3, None, 10), exit=False)
    parts.append(_hide(s.batch()))
    s.syscall("read", (3, None, 10), ret=1, seg0=b"z", enter=False)
    s.close(3)
    parts.append(s.batch())
    return tabs, parts


class _Kinds(_Sink):
    """A sink that also counts the PPM event types the recipes wrote."""

    def __init__(self) -> None:
        super().__init__()
        self.kinds: Counter[int] = Counter()

    def append_run(self, blocks: bytes, count: int) -> None:
        for b in export.split_blocks(blocks):
            self.kinds[int.from_bytes(b[30:32], "little")] += 1
        super().append_run(blocks, count)


def _fds(state: State) -> dict[int, dict[int, list[Any]]]:
    return {pid: {n: f.to_row() for n, f in table.items()} for pid, table in state.fds.items()}


def _feed_all(plan: Any, tabs: dict[str, list[Any]], batches: list[bytes],
              chunk: int) -> tuple[bytes, list[Any], _Kinds]:
    """The blocks of ``batches`` fed ``chunk`` records at a time, and the state after each feed."""
    ex = export.Exporter(state_from(tabs), plan)
    sink = _Kinds()
    seen = []
    recs = [r for b in batches for r in split(b)]
    for i in range(0, len(recs), chunk):
        ex.feed(b"".join(recs[i:i + chunk]), out=sink)
        seen.append((_fds(ex.state), dict(ex.state._pending), set(ex.state.threads)))
    ex.finish(out=sink)
    seen.append((_fds(ex.state), dict(ex.state._pending), set(ex.state.threads)))
    return b"".join(sink), seen, sink


@pytest.mark.parametrize("chunk", [1, 2, 3, 5, 1000])
def test_each_case_by_recipe_as_event_by_event(chunk: int) -> None:
    tabs, batches = _cases()
    fast, fast_seen, sink = _feed_all(compile_plan(), tabs, batches, chunk)
    slow, slow_seen, _ = _feed_all(None, tabs, batches, chunk)
    assert fast == slow
    assert fast_seen == slow_seen
    if chunk == 1000:
        # What the cases are for was written by the recipes: open enters with their exits'
        # parameters (openat, open, creat), the opens, closes and dups, socket tuples.
        for name, direction in (("openat", 0), ("open", 0), ("creat", 0), ("access", 0), ("mkdir", 0),
                                ("mount", 0), ("umount2", 0), ("openat2", 0), ("openat", 1), ("openat2", 1),
                                ("close", 1), ("dup2", 1), ("dup3", 1), ("recvfrom", 1)):
            assert sink.kinds[export.PPM_IDS[(name, direction)]], (name, direction)


@pytest.mark.parametrize("seed", range(1, 9))
@pytest.mark.parametrize("chunk", [7, 100000])
def test_random_captures_by_recipe_as_event_by_event(seed: int, chunk: int, tmp_path: Path) -> None:
    path = random_capture(tmp_path / "r.kcap", seed)
    with CaptureReader(path) as r:
        batches = [bytes(item.raw) for item in r if isinstance(item, EventBlock)]
    fast, fast_seen, sink = _feed_all(compile_plan(), {}, batches, chunk)
    slow, slow_seen, _ = _feed_all(None, {}, batches, chunk)
    assert fast == slow
    assert fast_seen == slow_seen
    assert sink.by_recipe > len(fast_seen) and sum(sink.kinds.values()) == sink.by_recipe


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(steps=st.lists(st.tuples(st.sampled_from([100, 101, 200]), st.sampled_from(STREAM_OPS), st.integers(3, 5),
                                st.booleans()), max_size=40))
def test_streams_by_recipe_as_event_by_event(steps: list[tuple[int, str, int, bool]]) -> None:
    tabs = tables(threads=[thread_row(100, comm="app", cwd="/srv")])
    batches = build_stream(steps)
    for chunk in (1, 1000):
        fast, fast_seen, _ = _feed_all(compile_plan(), tabs, batches, chunk)
        slow, slow_seen, _ = _feed_all(None, tabs, batches, chunk)
        assert fast == slow
        assert fast_seen == slow_seen


# --- a wrong recipe is seen ---------------------------------------------------------------------------
def _broken(change: Callable[[recipe.Recipes], recipe.Recipes]) -> Any:
    return scapwrite.Plan(*change(recipe.compile_recipes()))


def _strip_peek(rs: recipe.Recipes) -> recipe.Recipes:
    """openat's enter made from its own record only."""
    evt = SYSCALL_NR["openat"] * 2
    rs.ops[evt] = [(code & ~recipe.OP_PEEK, a, b, w) for code, a, b, w in rs.ops[evt]]
    return rs


def _no_tuple(rs: recipe.Recipes) -> recipe.Recipes:
    """recvfrom's exit without its socket tuple."""
    evt = SYSCALL_NR["recvfrom"] * 2 + 1
    rs.objs.append(b"")
    rs.ops[evt] = [(recipe.OP_CONST, len(rs.objs) - 1, 0, 0) if code == recipe.OP_TUPLE else (code, a, b, w)
                   for code, a, b, w in rs.ops[evt]]
    return rs


def _fast_code(name: str, code: int) -> Callable[[recipe.Recipes], recipe.Recipes]:
    """``name``'s exit applied as another fd change."""
    def change(rs: recipe.Recipes) -> recipe.Recipes:
        fast = bytearray(rs.fast)
        fast[SYSCALL_NR[name] * 2 + 1] = code
        return rs._replace(fast=bytes(fast))
    return change


@pytest.mark.parametrize("change", [_strip_peek, _no_tuple, _fast_code("close", R.FAST_DUP),
                                    _fast_code("openat", R.FAST_OPEN_A1), _fast_code("dup2", R.FAST_CLOSE)],
                         ids=["no-peek", "no-tuple", "close-as-dup", "openat-flags-from-a1", "dup-as-close"])
def test_a_wrong_recipe_is_seen(change: Callable[[recipe.Recipes], recipe.Recipes]) -> None:
    tabs, batches = _cases()
    slow, slow_seen, _ = _feed_all(None, tabs, batches, 1000)
    fast, fast_seen, _ = _feed_all(compile_plan(), tabs, batches, 1000)
    assert (fast, fast_seen) == (slow, slow_seen)
    wrong, wrong_seen, _ = _feed_all(_broken(change), tabs, batches, 1000)
    assert (wrong, wrong_seen) != (slow, slow_seen)
