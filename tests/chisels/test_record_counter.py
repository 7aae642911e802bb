"""Table chisels count exactly matched records without Events (TableChisel.record_counter): the
tables must be those of the Event path, over random streams of fd, socket and process events."""

from __future__ import annotations

import io
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rich.console import Console

from tracer.chisel import TableChisel, load_chisel
from tracer.event import RenderOptions
from tracer.session import Runner, RunOptions
from tracer.testing import build_stream, fd_row, tables, thread_row

P = 100
# Few fds, so that reads and writes often land on sockets and files opened before them.
OPS = st.sampled_from(["open", "openrel", "close", "read", "write", "socket", "connect", "exec", "clone", "thread",
                       "procexit", "dup"])
step_st = st.tuples(st.sampled_from([P, 101, 200]), OPS, st.integers(3, 4), st.booleans())


def tabs() -> dict[str, list[Any]]:
    """Connections open before the capture, on the fds the stream reads and writes."""
    def conn(fd: int, port: int) -> list[Any]:
        return fd_row(fd, "ipv4", f"10.0.0.2:{port}->10.0.0.9:80", l4proto="tcp", cip="10.0.0.2", cport=port,
                      sip="10.0.0.9", sport=80, is_server=False)

    return tables(threads=[thread_row(P, comm="app", cwd="/home/u"), thread_row(200, comm="peer", cwd="/")],
                  fds={P: [conn(3, 41000), conn(4, 41001)], 200: [conn(3, 42000), fd_row(4, "file", "/var/log")]})


CHISELS = [("topconns", False), ("topconns", True), ("topprocs_net", False), ("topfiles_bytes", False),
           ("topprocs_file", False), ("topcontainers_file", False)]


def run(batches: list[bytes], name: str, pc: bool, counter: bool, monkeypatch: pytest.MonkeyPatch) -> tuple[Any, bool]:
    """The chisel's table after the batches went, one feed each, through ``ktrace -c name``'s pipeline."""
    console = Console(file=io.StringIO(), width=100)
    chisel, _ = load_chisel(name, [], container_mode=pc, json_out=False, render=RenderOptions(), live=False,
                            console=console)
    assert isinstance(chisel, TableChisel)
    with monkeypatch.context() as m:
        if not counter:
            m.setattr(TableChisel, "record_counter", lambda self, state: None)
        runner = Runner(RunOptions(reads=["unused.kcap"], chisel=chisel))
    for kind, rows in tabs().items():
        runner.state.load_table(kind, rows)
    chisel.on_capture_start(False)
    for b in batches:
        runner.pipeline.feed(b)
    return chisel.table, runner.pipeline.on_record is not None


@pytest.mark.parametrize(("name", "pc"), CHISELS)
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                HealthCheck.function_scoped_fixture])
@given(steps=st.lists(step_st, max_size=40))
def test_record_counter_counts_what_on_event_counts(name: str, pc: bool, steps: list[tuple[int, str, int, bool]],
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    batches = build_stream(steps)
    by_events, used = run(batches, name, pc, False, monkeypatch)
    assert not used
    by_records, used = run(batches, name, pc, True, monkeypatch)
    assert used
    assert by_records == by_events


def test_record_counter_on_a_known_stream(monkeypatch: pytest.MonkeyPatch) -> None:
    steps = [(P, "socket", 3, False), (P, "connect", 3, False), (P, "write", 3, True), (P, "read", 3, False),
             (P, "close", 3, False), (P, "open", 3, False), (P, "read", 3, False)]
    batches = build_stream(steps)
    assert run(batches, "topconns", False, True, monkeypatch) == ({("tcp", "0.0.0.0:0->10.0.0.1:80"): 8}, True)
    assert run(batches, "topfiles_bytes", False, True, monkeypatch) == ({("/etc/f3",): 4}, True)
    steps = [(P, "write", 3, False), (200, "read", 3, False), (P, "read", 4, False), (200, "write", 4, False)]
    assert run(build_stream(steps), "topconns", False, True, monkeypatch) == ({
        ("tcp", "10.0.0.2:41000->10.0.0.9:80"): 4, ("tcp", "10.0.0.2:42000->10.0.0.9:80"): 4,
        ("tcp", "10.0.0.2:41001->10.0.0.9:80"): 4}, True)


def test_record_counter_sees_an_fd_changed_in_place(monkeypatch: pytest.MonkeyPatch) -> None:
    """A connect renames the fd object the counter has a key for: the next batch gets the new name."""
    steps = [(P, "write", 3, True), (P, "connect", 3, True), (P, "write", 3, True)]
    batches = build_stream(steps)
    by_events, _ = run(batches, "topconns", False, False, monkeypatch)
    by_records, used = run(batches, "topconns", False, True, monkeypatch)
    assert used
    assert by_records == by_events == {("tcp", "10.0.0.2:41000->10.0.0.9:80"): 4,
                                       ("tcp", "10.0.0.2:41000->10.0.0.1:80"): 4}
