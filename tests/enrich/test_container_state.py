"""Containers in the state and in captures, from synthetic streams: forks inside a container's pid
namespace, container metadata and thread context in filtered captures, and where a replay applies
the metadata live mode inserted."""

from __future__ import annotations

from pathlib import Path

import msgpack
import pytest

from tracer.enrich import hostroot
from tracer.event import Event
from tracer.filter import compile_filter
from tracer.output.format import CONTAINER_FORMAT
from tracer.pipeline import Pipeline
from tracer.schema import record as R
from tracer.schema.fields import FIELDS
from tracer.state.proc import thread_facts
from tracer.state.state import State
from tracer.testing import Synth, fd_row, lines, state_from, tables, thread_row

CID = "abc123abc123"
FORK = 0x1200011  # CLONE_CHILD_SETTID | CLONE_CHILD_CLEARTID | SIGCHLD
FMT = "%container.name %container.id %proc.name %thread.tid %thread.vtid %evt.type %evt.rawres"


def node() -> State:
    """A container's shell (host tid 500, pid 1 inside) and a host thread whose tid (7) is also an
    id the container's pid namespace will hand out."""
    return state_from(tables(
        threads=[thread_row(500, comm="sh", vtid=1, vpid=1, cwd="/", container_id=CID),
                 thread_row(7, comm="hostd", vtid=7, vpid=7, cwd="/")],
        fds={500: [fd_row(1, "file", "/dev/null")], 7: []},
        containers=[{"id": CID, "name": "web", "lookup": "done"}],
    ))


def rows(st: State, batch: bytes, filter: str | None = None) -> list[list[str]]:
    return [line.split() for line in lines(batch, state=st, fmt=FMT, filter=filter)]


def test_fork_in_a_container_parent_returns_first() -> None:
    st = node()
    s = Synth(pid=500)
    s.syscall("clone", (FORK,), ret=7)  # the child's id in the container, not a host tid
    s.on(900).syscall("clone", (FORK,), ret=0, enter=False)
    s.on(900).write(1, b"x")
    s.on(7).syscall("getpid", ret=7)
    out = rows(st, s.batch(), "evt.dir=<")
    assert out[1] == ["web", CID, "sh", "900", "7", "clone", "0"]
    assert out[2] == ["web", CID, "sh", "900", "7", "write", "1"]
    assert out[3] == ["host", "host", "hostd", "7", "7", "getpid", "7"]  # not overwritten by the fork
    assert st.fds[900][1].name == "/dev/null"  # the child's copy of the parent's fds


def test_fork_in_a_container_child_returns_first() -> None:
    st = node()
    s = Synth(pid=500)
    s.on(900).syscall("clone", (FORK,), ret=0, enter=False)
    s.syscall("clone", (FORK,), ret=7)
    s.on(900).write(1, b"x")
    out = rows(st, s.batch(), "evt.type=write and evt.dir=<")
    assert out == [["web", CID, "sh", "900", "7", "write", "1"]]


def test_two_forks_in_flight_keep_the_container_but_not_a_guessed_vtid() -> None:
    st = node()
    s = Synth(pid=500)
    s.syscall("clone", (FORK,), ret=7)
    s.syscall("clone", (FORK,), ret=8)
    s.on(901).syscall("clone", (FORK,), ret=0, enter=False)  # which of 7 and 8 is this one?
    s.on(900).syscall("clone", (FORK,), ret=0, enter=False)
    s.on(901).write(1, b"x")
    s.on(900).write(1, b"x")
    out = rows(st, s.batch(), "evt.type=write and evt.dir=<")
    assert [r[:3] for r in out] == [["web", CID, "sh"]] * 2
    assert out[0][4] == "<NA>"
    assert out[1][4] == "8"  # the last one in flight: no doubt left


def test_fork_on_the_host_knows_the_childs_vtid() -> None:
    st = node()
    s = Synth(pid=7)
    s.clone(300)
    s.on(300).write(1, b"x")
    out = rows(st, s.batch(), "evt.type=write and evt.dir=<")
    assert out == [["host", "host", "hostd", "300", "300", "write", "1"]]


def _filtered_capture(batch: bytes, text: str) -> bytes:
    p = Pipeline(State(), predicate=compile_filter(text, FIELDS), on_event=lambda ev: None, keep=True)
    return p.feed(batch)


def test_filtered_capture_keeps_container_metadata_and_thread_context() -> None:
    s = Synth(pid=900)
    s.container(CID, name="web", image="busybox", lookup="done")
    s.threadinfo(comm="app", container_id=CID, vtid=3, vpid=3, cwd="/")  # on its own: not kept
    s.on(950).syscall("getpid", ret=950)  # another thread, not kept
    s.open("/etc/passwd", 3)
    kept = _filtered_capture(s.batch(), "container.name=web and evt.type=open")
    evts = [int.from_bytes(r[16:18], "little") for r in _split(kept)]
    assert R.EVT_CONTAINER in evts
    # Read "elsewhere": a fresh state, no tables, no runtime.
    out = [line.split()[3:8] for line in lines(kept, state=State(), fmt=CONTAINER_FORMAT)]
    assert out[0] == ["web", f"({CID})", "app", "(900:3)", ">"]
    assert all(r[:2] == ["web", f"({CID})"] for r in out)


def test_metadata_inserted_for_an_event_is_applied_before_it_is_shown() -> None:
    st = state_from(tables(threads=[thread_row(900, comm="sh", cwd="/")]))
    s = Synth(pid=900)
    s.execve("/bin/app", ["app"])
    s.threadinfo(container_id=CID, vtid=1, vpid=1)
    s.record(R.EVT_CONTAINER, seg0=msgpack.packb({"id": CID, "name": "web", "lookup": "done"}))  # tid 900
    out = rows(st, s.batch(), "evt.type=execve and evt.dir=<")
    assert out == [["web", CID, "app", "900", "1", "execve", "0"]]


def test_metadata_that_merely_arrived_waits_its_turn() -> None:
    st = state_from(tables(threads=[thread_row(900, comm="sh", cwd="/", container_id=CID)]))
    s = Synth(pid=900)
    s.execve("/bin/app", ["app"])
    s.on(0, 0).record(R.EVT_CONTAINER, seg0=msgpack.packb({"id": CID, "name": "web", "lookup": "done"}))
    s.syscall("getpid", ret=900)
    out = rows(st, s.batch(), "evt.dir=<")
    assert out[0][:3] == ["<NA>", CID, "app"]  # as live mode printed it: the name came later
    assert out[-1][:3] == ["web", CID, "app"]


def _split(batch: bytes) -> list[bytes]:
    out, off = [], 0
    while off < len(batch):
        n = int.from_bytes(batch[off + 20:off + 24], "little")
        out.append(batch[off:off + n])
        off += n
    return out



def test_thread_facts_of_an_exiting_task_claim_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A task caught exiting: its stat still reads, its cgroup file, status and cwd no longer. A
    thread info read then must not move the thread out of its container (to the host), nor clear
    the ids the state knew."""
    task = tmp_path / "proc" / "900" / "task" / "900"
    task.mkdir(parents=True)
    (task / "stat").write_text("900 (app) Z 500 900 900 0 -1 4227148 69 0 0 0 0 0 0 0 20 0 1 0 5 0 0\n")
    monkeypatch.setenv(hostroot.ENV_VAR, str(tmp_path))
    facts = thread_facts(900, 900)
    assert facts is not None and facts["ptid"] == 500
    for gone in ("container_id", "cgroups", "cwd", "vtid", "vpid", "uid", "gid", "exepath"):
        assert gone not in facts
    st = state_from(tables(threads=[thread_row(900, comm="app", vtid=3, vpid=3, cwd="/", container_id=CID)]))
    s = Synth(pid=900)
    s.threadinfo(**facts)
    st.apply(Event(s.batch(), 0, 1, st))
    t = st.threads[900]
    assert (t.container_id, t.vtid, t.cwd) == (CID, 3, "/")
