"""The resolver: container id -> :class:`ContainerInfo`, answered at once from a bounded cache
while a worker thread runs the lookups (see the package docstring)."""

from __future__ import annotations

import collections
import dataclasses
import heapq
import logging
import threading
import time
from collections.abc import Callable, Iterable, Sequence

from ...na import NA
from ..cgroup import HOST_ID, CgroupMatch, parse_cgroup
from .info import DONE, FAILED, HOST_INFO, ContainerInfo
from .lookup import Lookup

log = logging.getLogger(__name__)

OnUpdate = Callable[[ContainerInfo], None]


class ContainerResolver:
    """Container id -> :class:`ContainerInfo`, cached, looked up off the caller's thread.

    ``on_update(info)`` is called **on the worker thread** each time an entry reaches a final
    state (``done`` or ``failed``) or changes after a refresh; hand it over to your own thread
    (a queue) if the consumer is not thread-safe. ``live=False`` (replaying a capture) never
    looks anything up: entries come from :meth:`load`, and an unknown id stays ``<NA>``.
    """

    def __init__(
        self,
        on_update: OnUpdate | None = None,
        *,
        live: bool = True,
        max_entries: int = 4096,
        timeout: float = 2.0,
        retry_delays: Sequence[float] = (0.5, 2.0, 5.0),
        requery_after: float = 30.0,
    ) -> None:
        self._on_update = on_update
        self._live = live
        self._max = max_entries
        self._timeout = timeout
        self._retry_delays = tuple(retry_delays)
        self._requery_after = requery_after
        self._lock = threading.Lock()
        self._cond = threading.Condition(self._lock)
        self._cache: collections.OrderedDict[str, ContainerInfo] = collections.OrderedDict()
        self._hints: dict[str, CgroupMatch] = {}
        self._reasons: dict[str, list[str]] = {}
        self._attempts: dict[str, int] = {}
        self._failed_at: dict[str, float] = {}
        self._heap: list[tuple[float, int, str]] = []
        self._seq = 0
        self._busy = 0
        self._closed = False
        # Lookups by outcome (done, failed, retried), for the metrics endpoint.
        self.counts: dict[str, int] = {"done": 0, "failed": 0, "retried": 0}
        self._thread: threading.Thread | None = None

    # -- the caller's side: never blocks on I/O ------------------------------------------------

    def get(self, cid: str, hint: CgroupMatch | None = None) -> ContainerInfo:
        """The info for ``cid`` (12-char or full id, or ``"host"``) as known now.

        An unknown id gets a placeholder (``lookup == "pending"``) and is queued; ``hint`` (the
        :class:`~tracer.enrich.cgroup.CgroupMatch` the id came from) gives the full id, the runtime
        to ask first and the pod uid.
        """
        if not cid or cid == HOST_ID:
            return HOST_INFO
        key = cid[:12]
        with self._lock:
            info = self._cache.get(key)
            if info is not None:
                self._cache.move_to_end(key)
                if info.lookup == FAILED and self._live:
                    self._maybe_requery(key)
                return info
            if hint is None and len(cid) == 64:
                hint = CgroupMatch(key, cid, "", "", -1, (), "")
            info = _placeholder(key, hint)
            if not self._live:
                info = dataclasses.replace(info, lookup=FAILED)
                self._reasons[key] = ["the capture has no metadata for this container"]
            self._store(key, info)
            if hint is not None:
                self._hints[key] = hint
            if self._live:
                self._schedule(key, 0.0)
            return info

    def get_for_cgroup(self, cgroup_text: str) -> ContainerInfo:
        """Parse a /proc/PID/cgroup text and :meth:`get` its container."""
        m = parse_cgroup(cgroup_text)
        return HOST_INFO if m.id == HOST_ID else self.get(m.id, m)

    def reasons(self, cid: str) -> list[str]:
        """Why fields of ``cid`` are ``<NA>`` (empty when nothing is missing or nothing is known
        yet): socket not mounted, permission denied, runtime not found, container gone…"""
        with self._lock:
            return list(self._reasons.get(cid[:12], ()))

    def snapshot(self) -> list[ContainerInfo]:
        """Every cached entry, least recently used first (for a capture's container table)."""
        with self._lock:
            return list(self._cache.values())

    def load(self, infos: Iterable[ContainerInfo]) -> None:
        """Put known entries in the cache (from a capture's table); no callback, no lookup."""
        with self._lock:
            for info in infos:
                if not info.is_host:
                    self._store(info.id[:12], info)

    def refresh(self, cid: str) -> None:
        """Look ``cid`` up again (e.g. once a socket is mounted); the old entry stays meanwhile."""
        if self._live and cid and cid != HOST_ID:
            with self._lock:
                self._attempts.pop(cid[:12], None)
                self._schedule(cid[:12], 0.0)

    # -- life cycle -----------------------------------------------------------------------------

    def wait_idle(self, timeout: float = 10.0) -> bool:
        """Block until no lookup is queued or running (tests; flushing before a capture closes).
        Retries scheduled for later count as queued. True if idle before ``timeout``."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._heap or self._busy:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(min(left, 0.05))
            return True

    def close(self, timeout: float = 2.0) -> None:
        """Stop the worker; entries stay readable."""
        with self._cond:
            self._closed = True
            self._heap.clear()  # lookups not started are dropped; wait_idle() returns
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(timeout)

    def __enter__(self) -> ContainerResolver:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- internals (lock held) ------------------------------------------------------------------

    def _store(self, key: str, info: ContainerInfo) -> None:
        self._cache[key] = info
        self._cache.move_to_end(key)
        while len(self._cache) > self._max:
            old, _ = self._cache.popitem(last=False)
            for d in (self._hints, self._reasons, self._attempts, self._failed_at):
                d.pop(old, None)

    def _schedule(self, key: str, delay: float) -> None:
        self._seq += 1
        heapq.heappush(self._heap, (time.monotonic() + delay, self._seq, key))
        if self._thread is None and not self._closed:
            # Started on first need: a resolver that is only ever loaded costs no thread.
            self._thread = threading.Thread(target=self._run, name="ktrace-containers", daemon=True)
            self._thread.start()
        self._cond.notify_all()

    def _maybe_requery(self, key: str) -> None:
        # A failed lookup is not final: the socket may get mounted, the runtime may catch up
        # (libsinsp's async lookups leaving <NA> forever is a known complaint). Re-ask at most
        # every requery_after seconds.
        now = time.monotonic()
        if now - self._failed_at.get(key, now) >= self._requery_after:
            self._failed_at[key] = now
            self._attempts[key] = len(self._retry_delays)  # one try, no retry chain
            self._schedule(key, 0.0)

    # -- the worker -----------------------------------------------------------------------------

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._closed and (not self._heap or self._heap[0][0] > time.monotonic()):
                    wait = self._heap[0][0] - time.monotonic() if self._heap else None
                    self._cond.wait(wait)
                if self._closed:
                    return
                _, _, key = heapq.heappop(self._heap)
                hint = self._hints.get(key)
                old = self._cache.get(key)
                self._busy += 1
            try:
                self._lookup_and_store(key, hint, old)
            except Exception:  # a bug here must not kill the worker; the entry stays <NA>
                log.exception("container lookup of %s failed", key)
            finally:
                with self._cond:
                    self._busy -= 1
                    self._cond.notify_all()

    def _lookup_and_store(self, key: str, hint: CgroupMatch | None, old: ContainerInfo | None) -> None:
        lk = Lookup(self._timeout)
        info = lk.resolve(key, hint)
        updates: list[ContainerInfo] = []
        if info is not None and info.sandbox_id and not info.is_pod_sandbox:
            sandbox = self._sandbox(info, Lookup(self._timeout))
            if sandbox is not None:
                if sandbox[1]:
                    updates.append(sandbox[0])
                info = _with_pod_from_sandbox(info, sandbox[0])
        with self._lock:
            attempt = self._attempts.get(key, 0)
            if info is None:
                if attempt < len(self._retry_delays):
                    # Not there yet (cri-o answers only once the container runs; a short-lived
                    # process can beat the runtime's bookkeeping): try again a bit later.
                    self._attempts[key] = attempt + 1
                    self._reasons[key] = lk.reasons
                    self.counts["retried"] += 1
                    self._schedule(key, self._retry_delays[attempt])
                    return
                base = old if old is not None else _placeholder(key, hint)
                info = dataclasses.replace(base, lookup=FAILED) if base.lookup != DONE else base
                self._failed_at[key] = time.monotonic()
            self.counts["done" if info.lookup == DONE else "failed"] += 1
            self._reasons[key] = lk.reasons
            changed = old is None or old != info
            self._store(key, info)
            if changed:
                updates.append(info)
        for u in updates:
            self._notify(u)

    def _sandbox(self, info: ContainerInfo, lk: Lookup) -> tuple[ContainerInfo, bool] | None:
        """The pod's sandbox container, from the cache or looked up now (we are on the worker).
        The bool says whether it is new to the cache (and so needs an on_update)."""
        sid = info.sandbox_id
        skey = sid[:12]
        with self._lock:
            cached = self._cache.get(skey)
        if cached is not None and cached.lookup == DONE:
            return cached, False
        pod_uid = info.pod_uid if info.pod_uid != NA else ""
        hint = CgroupMatch(skey, sid if len(sid) == 64 else "", info.type, pod_uid, -1, (), "")
        sb = lk.resolve(skey, hint)
        if sb is None:
            return None
        with self._lock:
            self._store(skey, sb)
        return sb, True

    def _notify(self, info: ContainerInfo) -> None:
        if self._on_update is None:
            return
        try:
            self._on_update(info)
        except Exception:  # the callback is the caller's code: log, keep resolving
            log.exception("container on_update callback failed for %s", info.id)


def _placeholder(key: str, hint: CgroupMatch | None) -> ContainerInfo:
    if hint is None:
        return ContainerInfo(id=key)
    return ContainerInfo(
        id=key,
        full_id=hint.full_id,
        type=hint.type or NA,
        pod_uid=hint.pod_uid or NA,
    )


def _with_pod_from_sandbox(info: ContainerInfo, sandbox: ContainerInfo) -> ContainerInfo:
    return dataclasses.replace(
        info,
        pod_labels=info.pod_labels or dict(sandbox.pod_labels),
        ip=info.ip if info.ip != NA else sandbox.ip,
        pod_name=info.pod_name if info.pod_name != NA else sandbox.pod_name,
        pod_namespace=info.pod_namespace if info.pod_namespace != NA else sandbox.pod_namespace,
        pod_uid=info.pod_uid if info.pod_uid != NA else sandbox.pod_uid,
    )
