"""The live source: the probe's ring buffer drained by a consumer thread into batches.

The consumer thread only copies (in C, without the GIL in the Cython engine) and queues one bytes
object per drain; parsing, filtering and writing happen on the main thread. Nothing it does
waits for the main thread, so a slow consumer shows up as kernel-counted drops, never as a stall
of the traced programs.
"""

from __future__ import annotations

import os
import queue
import sys
import threading
import time
from collections.abc import Iterator

from ..engine import ring as _ring
from ..probe.loader import Probe, ProbeConfig

POLL_S = 0.0005  # the shortest drain period: 0.5 ms
# After an empty or small drain: 2 ms. Longer lets short-lived processes vanish before /proc is read.
IDLE_POLL_S = 0.002
SMALL_DRAIN = 64 << 10
# Under load, a drain every ~1 MB: each drain costs every ktrace thread a wake-up and a batch's fixed
# work (bench/live_threads.py under nginx: main thread -30%, consumer -15% from 2 to 10 ms), and
# each wake-up may take a CPU from the traced programs. 10 ms at most, so a process's first event
# still reaches the main thread (which reads /proc for it) soon after it happened.
DRAIN_TARGET = 1 << 20
MAX_POLL_S = 0.010
MAX_QUEUED = 256 << 20  # bytes queued for the main thread before the consumer pauses


def next_poll(drained: int, since: float) -> float:
    """Seconds to sleep after a drain of ``drained`` bytes that came ``since`` seconds after the
    previous one: short when idle, else long enough for about DRAIN_TARGET bytes at the rate just
    seen. The ring holds far more than the longest pause lets in, so pausing never drops."""
    if drained < SMALL_DRAIN:
        return IDLE_POLL_S
    rate = drained / max(since, POLL_S)
    return min(MAX_POLL_S, max(POLL_S, DRAIN_TARGET / rate))


def yield_to_traced() -> str:
    """Put every thread of this process in SCHED_BATCH; threads started later inherit it.

    A normal thread that wakes up preempts the program running on its CPU, and ktrace's threads
    wake over a thousand times a second: under nginx + wrk each preemption stalled the server or
    its client while a third of a CPU sat idle. Batch threads never preempt on wake-up; they run
    on an idle CPU or when the running task's slice ends, still with their full fair share of CPU
    time (the ring holds far more than that delay lets in), so nothing is dropped. Measured in
    bench/sched.py: nginx at 0.88x the floor's rate instead of 0.78x. KTRACE_SCHED=normal keeps
    the default policy. Returns a note for -v.
    """
    if os.environ.get("KTRACE_SCHED") == "normal":
        return "scheduling: normal (KTRACE_SCHED=normal)"
    failed = 0
    tasks = os.listdir("/proc/self/task")
    for tid in tasks:
        try:
            os.sched_setscheduler(int(tid), os.SCHED_BATCH, os.sched_param(0))
        except OSError:  # a thread that just ended, or a seccomp policy that refuses it
            failed += 1
    if failed:
        return f"scheduling: {failed} of {len(tasks)} threads could not be put in SCHED_BATCH"
    return "scheduling: SCHED_BATCH (ktrace's threads never preempt the traced programs on wake-up)"


class LiveSource:
    live = True

    def __init__(self, cfg: ProbeConfig) -> None:
        self.cfg = cfg
        self.sched_note = yield_to_traced()
        self.probe = Probe(cfg)
        # bpf_ktime_get_ns() is CLOCK_MONOTONIC: the consumer turns it into epoch ns.
        self.ts_offset = time.time_ns() - time.monotonic_ns()
        self.ring = _ring.Ring(self.probe.ring_fd, self.ts_offset)
        self._q: queue.SimpleQueue[bytes] = queue.SimpleQueue()
        self._queued = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self.paused = 0  # drains skipped because the main thread fell MAX_QUEUED behind
        self._error: BaseException | None = None  # what stopped the consumer thread
        sys.setswitchinterval(0.0005)  # let the consumer thread run soon after it wakes
        self._thread = threading.Thread(target=self._consume, name="ktrace-consumer", daemon=True)
        self._thread.start()

    def _consume(self) -> None:
        try:
            self._drain_until_stopped()
        except BaseException as e:  # raised by batches() on the main thread
            self._error = e
        self._q.put(b"")  # end marker

    def _drain_until_stopped(self) -> None:
        ring = self.ring
        stop = self._stop
        last = time.monotonic()
        while not stop.is_set():
            if self._queued > MAX_QUEUED:
                self.paused += 1
                time.sleep(POLL_S)
                continue
            b = ring.drain()
            now = time.monotonic()
            if b:
                with self._lock:
                    self._queued += len(b)
                self._q.put(b)
            time.sleep(next_poll(len(b), now - last))
            last = now
        b = ring.drain()  # what arrived before the stop
        if b:
            self._q.put(b)

    def batches(self, tick: float = 1.0) -> Iterator[bytes | None]:
        """Batches as they come; None when ``tick`` seconds pass without one; ends after stop()."""
        while True:
            try:
                b = self._q.get(timeout=tick)
            except queue.Empty:
                yield None
                continue
            if not b:
                if self._error is not None:
                    raise self._error  # the consumer stopped on it
                if self._stop.is_set():
                    return
                continue
            with self._lock:
                self._queued -= len(b)
            yield b

    def discard(self) -> int:
        """Empty the queue without processing it; returns how many records were in it."""
        from ..engine import scan

        counter = scan.Scanner(b"", b"")
        n = 0
        while True:
            try:
                b = self._q.get_nowait()
            except queue.Empty:
                return n
            if b:
                with self._lock:
                    self._queued -= len(b)
                n += counter.scan(b)[1]

    def queued(self) -> int:
        """Bytes taken from the ring and not handed to the main thread yet."""
        return self._queued

    def stop(self) -> None:
        """Stop draining: ``batches`` ends once the consumer has flushed what it had."""
        self._stop.set()

    def stats(self) -> dict[str, int]:
        s = self.probe.stats()
        s["drops_user"] = int(self.ring.lost)
        return s

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)
        self.ring.close()
        self.probe.close()
