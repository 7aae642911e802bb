"""ThreadTable's index of threads by process against a walk over every thread, after any sequence
of the dict operations the state uses (and pids changed in place, told with ``moved``)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from tracer.event import Event
from tracer.schema import record as R
from tracer.state.state import State
from tracer.state.tables import Thread, ThreadTable
from tracer.testing import Synth

TIDS = st.integers(1, 12)
OPS = st.lists(st.one_of(
    st.tuples(st.just("set"), TIDS, TIDS),
    st.tuples(st.just("del"), TIDS, TIDS),
    st.tuples(st.just("pop"), TIDS, TIDS),
    st.tuples(st.just("setdefault"), TIDS, TIDS),
    st.tuples(st.just("update"), TIDS, TIDS),
    st.tuples(st.just("move"), TIDS, TIDS),
    st.tuples(st.just("clear"), TIDS, TIDS),
    st.tuples(st.just("popitem"), TIDS, TIDS),
), max_size=60)


def _walk(table: dict[int, Thread], pid: int) -> set[int]:
    return {tid for tid, t in table.items() if t.pid == pid}


@settings(max_examples=300)
@given(OPS)
def test_index_matches_a_walk(ops: list[tuple[str, int, int]]) -> None:
    table = ThreadTable()
    for op, tid, pid in ops:
        if op == "set":
            table[tid] = Thread(tid, pid)
        elif op == "del" and tid in table:
            del table[tid]
        elif op == "pop":
            table.pop(tid, None)
        elif op == "setdefault":
            table.setdefault(tid, Thread(tid, pid))
        elif op == "update":
            table.update({tid: Thread(tid, pid), tid + 20: Thread(tid + 20, pid)})
        elif op == "move" and tid in table:
            old = table[tid].pid
            table[tid].pid = pid
            table.moved(tid, old)
        elif op == "clear":
            table.clear()
        elif op == "popitem" and table:
            table.popitem()
        for p in range(1, 13):
            assert set(table.of_process(p)) == _walk(table, p)
            assert table.has_process(p) == bool(_walk(table, p))


def test_exec_leaves_one_thread_and_reap_frees_the_fds_with_the_last() -> None:
    """Through the state: an exec in a threaded process drops the other threads (found by the
    index), and the fd table goes when the process's last thread is reaped."""
    s = Synth(pid=100)
    main = s.on(100, 100)
    main.clone(101, thread=True).clone(102, thread=True).open("/etc/hosts", 3)
    s.on(101, 100).execve("/bin/ls", ["ls"])
    st_ = State()
    batch = s.batch()
    off = 0
    while off < len(batch):
        st_.apply(Event(batch, off, 0, st_))
        off += int.from_bytes(batch[off + R.OFF_LEN:off + R.OFF_LEN + 4], "little")
    assert sorted(st_.threads) == [101] and st_.threads[101].comm == "ls"
    assert st_.threads.of_process(100) == [101]
    s.on(101, 100).procexit()
    batch = s.batch()
    st_.apply(Event(batch, 0, 0, st_))
    st_.reap()
    assert 100 not in st_.fds and not st_.threads.has_process(100)
