"""Container and pod metadata: name, image, labels, pod, mounts, IP, from the node's runtimes.

The capture path only ever calls :meth:`ContainerResolver.get`, which answers at once from a
cache, or with a placeholder whose unknown fields are ``<NA>`` while a background worker looks
the container up. When the worker learns something it replaces the cache entry and calls
``on_update`` (the live pipeline turns that into a container-metadata event, so captures hold
the same names the live run printed).

Lookup order, cheapest and most robust first:

1. **OCI bundle on disk**, no socket needed, there before the container runs:
   containerd ``/run/containerd/io.containerd.runtime.v2.task/<ns>/<id>/config.json`` (also k3s'
   ``/run/k3s/containerd/…``), annotations ``io.kubernetes.cri.*``; cri-o
   ``/run/containers/storage/overlay-containers/<id>/userdata/config.json``, annotations
   ``io.kubernetes.pod.*``, ``io.kubernetes.container.name``, ``io.kubernetes.cri-o.*``.
2. **Runtime sockets**: the docker Engine API on ``/run/docker.sock``; cri-o's HTTP inspect
   endpoint on ``/run/crio/crio.sock``; podman's docker-compatible API on
   ``/run/podman/podman.sock`` or ``/run/user/<uid>/podman/podman.sock`` (rootless). All plain
   HTTP over AF_UNIX with :mod:`http.client`. containerd's own API is gRPC, which ktrace does not
   speak: its containers get what the OCI bundle has, and :meth:`ContainerResolver.reasons` says so.
3. **docker's state on disk** (``/var/lib/docker/containers/<id>/config.v2.json``) when the socket
   is not mounted but the directory is.

Kubernetes fields come from the ``io.kubernetes.pod.name|namespace|uid`` and
``io.kubernetes.container.name`` labels (synthesized from the CRI annotations where the runtime
has no labels to give), pod labels from the pod's sandbox ("pause") container, which is itself
flagged ``is_pod_sandbox``. All host paths go through :func:`tracer.enrich.hostroot.host_path`.

Deleted containers keep their entry: the cache is bounded (least recently used goes first), not
cleaned on container exit, so a capture replays with the names of containers gone since.
"""

from __future__ import annotations

import collections
import dataclasses
import glob
import heapq
import http.client
import json
import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from tracer.enrich.cgroup import HOST_ID, CgroupMatch, parse_cgroup
from tracer.enrich.hostroot import host_path

log = logging.getLogger(__name__)

NA: Final = "<NA>"

# Lookup states of a ContainerInfo.
PENDING: Final = "pending"  # queued or being looked up; fields may still fill in
DONE: Final = "done"  # a source answered; fields it could not give stay <NA>
FAILED: Final = "failed"  # every source tried came back empty; reasons() says why

CONTAINERD_TASK_ROOTS: Final = (
    "/run/containerd/io.containerd.runtime.v2.task",
    "/run/k3s/containerd/io.containerd.runtime.v2.task",
)
CONTAINERD_SOCKETS: Final = (
    "/run/containerd/containerd.sock",
    "/run/k3s/containerd/containerd.sock",
)
# containers/storage's run root, where cri-o writes each container's OCI config (podman's go to
# its graph root under /var/lib, but podman containers are read from podman's API instead).
CONTAINERS_STORAGE_DIRS: Final = ("/run/containers/storage/overlay-containers",)
DOCKER_SOCKETS: Final = ("/run/docker.sock", "/var/run/docker.sock")
DOCKER_STATE_DIR: Final = "/var/lib/docker/containers"
CRIO_SOCKETS: Final = ("/run/crio/crio.sock", "/var/run/crio/crio.sock")
PODMAN_SOCKET: Final = "/run/podman/podman.sock"
PODMAN_USER_SOCKET: Final = "/run/user/{uid}/podman/podman.sock"

K8S_POD_NAME: Final = "io.kubernetes.pod.name"
K8S_POD_NAMESPACE: Final = "io.kubernetes.pod.namespace"
K8S_POD_UID: Final = "io.kubernetes.pod.uid"
K8S_CONTAINER_NAME: Final = "io.kubernetes.container.name"
# Label prefixes that are the runtime's bookkeeping, not the user's pod labels.
_NOT_POD_LABELS: Final = ("io.kubernetes.", "annotation.", "io.cri-containerd.")


@dataclass(frozen=True)
class ContainerInfo:
    """What is known of one container. Unknown strings are ``<NA>``, like sysdig's fields.

    Instances are never changed in place: the resolver swaps in a new one, so a reader holding
    an instance sees a consistent record. ``to_dict``/``from_dict`` give plain, msgpack-able
    data for the capture's container table; ``from_dict`` ignores keys it does not know and
    fills in missing ones, so captures written by other versions still read.
    """

    id: str
    full_id: str = ""
    type: str = NA
    name: str = NA
    image: str = NA
    image_id: str = NA
    image_repository: str = NA
    image_tag: str = NA
    image_digest: str = NA
    privileged: bool | None = None
    labels: dict[str, str] = field(default_factory=dict)
    pod_name: str = NA
    pod_namespace: str = NA
    pod_uid: str = NA
    pod_labels: dict[str, str] = field(default_factory=dict)
    mounts: list[dict[str, Any]] = field(default_factory=list)
    ip: str = NA
    is_pod_sandbox: bool = False
    sandbox_id: str = ""
    source: str = ""  # where the data came from, e.g. "oci:containerd+docker-api"
    lookup: str = PENDING

    def to_dict(self) -> dict[str, Any]:
        """Plain data (str, bool, None, dict, list) for msgpack or JSON."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ContainerInfo:
        """The inverse of :meth:`to_dict`; tolerant of unknown and missing keys."""
        known = {f.name for f in dataclasses.fields(cls)}
        kw = {k: v for k, v in d.items() if k in known}
        kw.setdefault("id", str(d.get("full_id", ""))[:12] or NA)
        return cls(**kw)

    @classmethod
    def host(cls) -> ContainerInfo:
        """The record for processes outside any container (sysdig shows ``host`` for both)."""
        return cls(id=HOST_ID, full_id=HOST_ID, type="host", name=HOST_ID, lookup=DONE)

    @property
    def is_host(self) -> bool:
        return self.id == HOST_ID


HOST_INFO: Final = ContainerInfo.host()

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
        lk = _Lookup(self._timeout)
        info = lk.resolve(key, hint)
        updates: list[ContainerInfo] = []
        if info is not None and info.sandbox_id and not info.is_pod_sandbox:
            sandbox = self._sandbox(info, _Lookup(self._timeout))
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

    def _sandbox(self, info: ContainerInfo, lk: _Lookup) -> tuple[ContainerInfo, bool] | None:
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


# ------------------------------------------------------------------------------------------------
# One lookup: runs the sources in order, merges what they give, collects reasons.
# ------------------------------------------------------------------------------------------------

Partial = dict[str, Any]


class _SourceError(Exception):
    """A source could not answer; the message is a reason for the user."""


class _Lookup:
    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        self.reasons: list[str] = []

    def resolve(self, key: str, hint: CgroupMatch | None) -> ContainerInfo | None:
        """Ask the sources for ``key``; None when none knows it (``self.reasons`` says why)."""
        self.reasons = []
        full = hint.full_id if hint is not None else ""
        ctype = hint.type if hint is not None else ""
        ident = full or key
        merged: Partial = {}
        used: list[str] = []
        won: str | None = None  # runtime type of the first source that answered
        notes: dict[str, list[str]] = collections.defaultdict(list)
        for rtype, name, fn in _sources_for(ctype):
            if won is not None and rtype != won:
                continue
            try:
                part = fn(self, ident, hint)
            except _SourceError as e:
                notes[rtype].append(str(e))
                continue
            if part is None:
                continue
            if won is None:
                won = rtype
            used.append(name)
            _merge(merged, part)
            if part.pop("_final", False):
                break
        if won is None:
            self.reasons = [r for rs in notes.values() for r in rs]
            self.reasons.append(f"no runtime knows container {key} (tried: {_tried(ctype)})")
            return None
        self.reasons = notes.get(won, [])
        if won == "containerd" and any(os.path.exists(host_path(s)) for s in CONTAINERD_SOCKETS):
            self.reasons.append("containerd socket present but its API needs gRPC; metadata from OCI bundle only")
        return _finish(key, merged, won, "+".join(used), hint)

    # -- sources ------------------------------------------------------------------------------

    def oci_containerd(self, ident: str, hint: CgroupMatch | None) -> Partial | None:
        roots = [r for r in CONTAINERD_TASK_ROOTS if os.path.isdir(host_path(r))]
        if not roots:
            raise _SourceError(
                f"containerd: {host_path(CONTAINERD_TASK_ROOTS[0])} not found "
                "(not a containerd node, or the host's /run/containerd is not mounted)"
            )
        for root in roots:
            pattern = os.path.join(host_path(root), "*", _glob_id(ident), "config.json")
            for path in sorted(glob.glob(pattern)):
                spec = _read_json(path)
                if spec is not None:
                    return _from_containerd_spec(spec, os.path.basename(os.path.dirname(path)))
        raise _SourceError(
            f"containerd: no OCI bundle for {ident[:12]} under {host_path(roots[0])} "
            "(container gone, or not a containerd container)"
        )

    def oci_storage(self, ident: str, hint: CgroupMatch | None) -> Partial | None:
        dirs = [d for d in CONTAINERS_STORAGE_DIRS if os.path.isdir(host_path(d))]
        if not dirs:
            raise _SourceError(
                f"cri-o: {host_path(CONTAINERS_STORAGE_DIRS[0])} not found "
                "(not a cri-o node, or the host's /run/containers is not mounted)"
            )
        for d in dirs:
            pattern = os.path.join(host_path(d), _glob_id(ident), "userdata", "config.json")
            for path in sorted(glob.glob(pattern)):
                spec = _read_json(path)
                if spec is not None:
                    full = os.path.basename(os.path.dirname(os.path.dirname(path)))
                    return _from_storage_spec(spec, full)
        raise _SourceError(f"cri-o: no OCI config for {ident[:12]} under {host_path(dirs[0])}")

    def docker_api(self, ident: str, hint: CgroupMatch | None) -> Partial | None:
        sock = _first_socket(DOCKER_SOCKETS)
        return self._engine_api("docker", sock, ident, "docker")

    def podman_api(self, ident: str, hint: CgroupMatch | None) -> Partial | None:
        socks = [host_path(PODMAN_SOCKET)]
        if hint is not None and hint.rootless_uid >= 0:
            socks.insert(0, host_path(PODMAN_USER_SOCKET.format(uid=hint.rootless_uid)))
        else:
            socks += sorted(glob.glob(host_path(PODMAN_USER_SOCKET.format(uid="*"))))
        errors: list[str] = []
        for sock in socks:
            try:
                return self._engine_api("podman", sock, ident, "podman")
            except _SourceError as e:
                errors.append(str(e))
        raise _SourceError("; ".join(errors))

    def crio_api(self, ident: str, hint: CgroupMatch | None) -> Partial | None:
        sock = _first_socket(CRIO_SOCKETS)
        status, body = self._http("cri-o", sock, f"/containers/{ident}")
        if status == 404 or (status >= 400 and b"not found" in body.lower()):
            raise _SourceError(f"container gone: cri-o has no container {ident[:12]}")
        if status != 200:
            raise _SourceError(f"cri-o: {sock} answered HTTP {status} for container {ident[:12]}")
        doc = _loads(body)
        if not isinstance(doc, dict):
            raise _SourceError(f"cri-o: {sock} sent an answer that is not a JSON object")
        part = _from_crio_inspect(doc)
        part["_final"] = True
        return part

    def docker_disk(self, ident: str, hint: CgroupMatch | None) -> Partial | None:
        base = host_path(DOCKER_STATE_DIR)
        if not os.path.isdir(base):
            raise _SourceError(f"docker: {base} not found (docker's state directory not mounted)")
        for path in sorted(glob.glob(os.path.join(base, _glob_id(ident), "config.v2.json"))):
            doc = _read_json(path)
            if doc is not None:
                host_cfg = _read_json(os.path.join(os.path.dirname(path), "hostconfig.json")) or {}
                return _from_docker_state(doc, host_cfg)
        raise _SourceError(f"container gone: no docker state for {ident[:12]} under {base}")

    # -- HTTP over AF_UNIX ---------------------------------------------------------------------

    def _engine_api(self, what: str, sock: str, ident: str, rtype: str) -> Partial:
        status, body = self._http(what, sock, f"/containers/{ident}/json")
        if status == 404:
            raise _SourceError(f"container gone: {what} has no container {ident[:12]}")
        if status != 200:
            raise _SourceError(f"{what}: {sock} answered HTTP {status} for container {ident[:12]}")
        doc = _loads(body)
        if not isinstance(doc, dict):
            raise _SourceError(f"{what}: {sock} sent an answer that is not a JSON object")
        part = _from_engine_inspect(doc, rtype)
        image_id = doc.get("Image")
        if isinstance(image_id, str) and image_id:
            # The digest is the image's, not the container's: one more call, best effort.
            try:
                istatus, ibody = self._http(what, sock, f"/images/{image_id}/json")
            except _SourceError:
                istatus, ibody = 0, b""
            if istatus == 200:
                idoc = _loads(ibody)
                if isinstance(idoc, dict):
                    digest = _pick_digest(idoc.get("RepoDigests"), part.get("image_repository", ""))
                    if digest:
                        part["image_digest"] = digest
        part["_final"] = True
        return part

    def _http(self, what: str, sock: str, url: str) -> tuple[int, bytes]:
        conn = _UnixHTTPConnection(sock, self.timeout)
        try:
            conn.request("GET", url, headers={"Host": "localhost", "Accept": "application/json"})
            resp = conn.getresponse()
            return resp.status, resp.read()
        except FileNotFoundError:
            raise _SourceError(
                f"{what}: socket {sock} not found (runtime not installed, or its socket not mounted)"
            ) from None
        except PermissionError:
            raise _SourceError(
                f"{what}: permission denied on {sock} (ktrace needs root, or the runtime's group)"
            ) from None
        except ConnectionRefusedError:
            raise _SourceError(f"{what}: nothing listens on {sock} (runtime stopped?)") from None
        except TimeoutError:
            raise _SourceError(f"{what}: no answer on {sock} within {self.timeout:g}s") from None
        except (OSError, http.client.HTTPException) as e:
            raise _SourceError(f"{what}: {sock}: {e}") from None
        finally:
            conn.close()


class _UnixHTTPConnection(http.client.HTTPConnection):
    """http.client over a unix socket: the runtimes' APIs need nothing more."""

    def __init__(self, path: str, timeout: float) -> None:
        super().__init__("localhost", timeout=timeout)
        self._path = path

    def connect(self) -> None:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(self.timeout)
        try:
            s.connect(self._path)
        except BaseException:
            s.close()
            raise
        self.sock = s


SourceFn = Callable[[_Lookup, str, CgroupMatch | None], Partial | None]

_ALL_SOURCES: Final[dict[str, tuple[str, str, SourceFn]]] = {
    "oci_containerd": ("containerd", "oci:containerd", _Lookup.oci_containerd),
    "oci_storage": ("cri-o", "oci:cri-o", _Lookup.oci_storage),
    "crio_api": ("cri-o", "cri-o-api", _Lookup.crio_api),
    "docker_api": ("docker", "docker-api", _Lookup.docker_api),
    "docker_disk": ("docker", "docker-state", _Lookup.docker_disk),
    "podman_api": ("podman", "podman-api", _Lookup.podman_api),
}
# Which sources, in which order, for the runtime the cgroup path suggests.
_ORDER: Final[dict[str, tuple[str, ...]]] = {
    "docker": ("docker_api", "docker_disk"),
    "containerd": ("oci_containerd",),
    "cri-o": ("oci_storage", "crio_api"),
    "podman": ("podman_api",),
    # Unknown (kubepods with the cgroupfs driver): containerd or docker via cri-dockerd.
    "": ("oci_containerd", "oci_storage", "crio_api", "docker_api", "podman_api", "docker_disk"),
}


def _sources_for(ctype: str) -> list[tuple[str, str, SourceFn]]:
    return [_ALL_SOURCES[n] for n in _ORDER.get(ctype, _ORDER[""])]


def _tried(ctype: str) -> str:
    return ", ".join(_ALL_SOURCES[n][1] for n in _ORDER.get(ctype, _ORDER[""]))


def _first_socket(paths: Sequence[str]) -> str:
    for p in paths:
        hp = host_path(p)
        if os.path.exists(hp):
            return hp
    return host_path(paths[0])


def _glob_id(ident: str) -> str:
    # A full id names the directory; a short one is a prefix of it. Only hex reaches glob.
    if not all(c in "0123456789abcdef" for c in ident):
        return "-invalid-"
    return ident if len(ident) == 64 else ident + "*"


def _read_json(path: str) -> dict[str, Any] | None:
    try:
        with open(path, "rb") as f:
            doc = _loads(f.read())
    except OSError:
        return None
    return doc if isinstance(doc, dict) else None


def _loads(body: bytes) -> Any:
    try:
        return json.loads(body)
    except ValueError:
        return None


def _merge(into: Partial, part: Partial) -> None:
    """First source wins per field; labels are united, earlier keys winning."""
    for k, v in part.items():
        if k.startswith("_") or v is None or v == NA or v == "" or v == {} or v == []:
            continue
        if k in ("labels", "pod_labels"):
            into[k] = {**v, **into.get(k, {})}
        elif k not in into:
            into[k] = v


def _finish(key: str, d: Partial, rtype: str, source: str, hint: CgroupMatch | None) -> ContainerInfo:
    labels: dict[str, str] = dict(d.get("labels", {}))
    pod_uid = d.get("pod_uid") or labels.get(K8S_POD_UID) or (hint.pod_uid if hint else "") or NA
    pod_name = d.get("pod_name") or labels.get(K8S_POD_NAME) or NA
    pod_ns = d.get("pod_namespace") or labels.get(K8S_POD_NAMESPACE) or NA
    name = d.get("name") or NA
    # Give every Kubernetes container the same io.kubernetes.* labels whatever the runtime, so a
    # filter on container.label.io.kubernetes.pod.name works on containerd too.
    if pod_name != NA:
        labels.setdefault(K8S_POD_NAME, pod_name)
        if pod_ns != NA:
            labels.setdefault(K8S_POD_NAMESPACE, pod_ns)
        if pod_uid != NA:
            labels.setdefault(K8S_POD_UID, pod_uid)
        if d.get("k8s_container_name"):
            labels.setdefault(K8S_CONTAINER_NAME, d["k8s_container_name"])
    image = d.get("image") or NA
    repo, tag, digest = split_image(image) if image != NA else (NA, NA, NA)
    is_sandbox = bool(d.get("is_pod_sandbox", False))
    pod_labels = dict(d.get("pod_labels", {}))
    if is_sandbox and not pod_labels:
        pod_labels = {k: v for k, v in labels.items() if not k.startswith(_NOT_POD_LABELS)}
    full = d.get("full_id") or (hint.full_id if hint else "") or ""
    return ContainerInfo(
        id=key,
        full_id=full,
        type=rtype,
        name=name,
        image=image,
        image_id=_strip_algo(d.get("image_id") or NA),
        image_repository=d.get("image_repository") or repo,
        image_tag=d.get("image_tag") or tag,
        image_digest=d.get("image_digest") or digest,
        privileged=d.get("privileged"),
        labels=labels,
        pod_name=pod_name,
        pod_namespace=pod_ns,
        pod_uid=pod_uid,
        pod_labels=pod_labels,
        mounts=list(d.get("mounts", [])),
        ip=d.get("ip") or NA,
        is_pod_sandbox=is_sandbox,
        sandbox_id=d.get("sandbox_id") or "",
        source=source,
        lookup=DONE,
    )


def split_image(ref: str) -> tuple[str, str, str]:
    """``(repository, tag, digest)`` of an image reference, ``<NA>`` for the missing parts.

    ``nginx`` -> ``("nginx", "latest", NA)``;
    ``reg:5000/a/b:1.2`` -> ``("reg:5000/a/b", "1.2", NA)``;
    ``b@sha256:…`` -> ``("b", NA, "sha256:…")``.
    An image named by its id (``sha256:…``) has no repository.
    """
    if not ref or ref == NA:
        return NA, NA, NA
    digest = NA
    if "@" in ref:
        ref, digest = ref.split("@", 1)
    if ref.startswith("sha256:") or (len(ref) == 64 and all(c in "0123456789abcdef" for c in ref)):
        return NA, NA, digest
    slash = ref.rfind("/")
    colon = ref.rfind(":")
    if colon > slash:
        return ref[:colon], ref[colon + 1 :], digest
    return ref, ("latest" if digest == NA else NA), digest


def _strip_algo(image_id: str) -> str:
    # sysdig's container.image.id is the bare hex, without the "sha256:" prefix.
    return image_id.split(":", 1)[1] if image_id.startswith("sha256:") else image_id


def _pick_digest(repo_digests: Any, repository: str) -> str:
    if not isinstance(repo_digests, list):
        return ""
    digests = [d for d in repo_digests if isinstance(d, str) and "@" in d]
    for d in digests:
        if d.split("@", 1)[0] == repository:
            return d.split("@", 1)[1]
    return digests[0].split("@", 1)[1] if digests else ""


# -- parsers: one per source's document --------------------------------------------------------


def _oci_common(spec: dict[str, Any]) -> Partial:
    """What any OCI runtime spec tells: bind mounts and whether the container is privileged."""
    mounts = []
    for m in spec.get("mounts") or []:
        if not isinstance(m, dict):
            continue
        opts = [o for o in m.get("options") or [] if isinstance(o, str)]
        if m.get("type") != "bind" and "bind" not in opts and "rbind" not in opts:
            continue
        prop = next((o for o in opts if o.endswith(("private", "shared", "slave"))), "")
        mounts.append(
            {
                "Source": str(m.get("source", "")),
                "Destination": str(m.get("destination", "")),
                "Mode": "",
                "RW": "ro" not in opts,
                "Propagation": prop,
            }
        )
    linux = spec.get("linux") or {}
    caps = ((spec.get("process") or {}).get("capabilities") or {}).get("bounding") or []
    # A privileged container keeps every capability and has no masked /proc paths; no other
    # OCI field says "privileged" outright.
    privileged = "CAP_SYS_ADMIN" in caps and not linux.get("maskedPaths")
    return {"mounts": mounts, "privileged": privileged}


def _from_containerd_spec(spec: dict[str, Any], full_id: str) -> Partial:
    ann = spec.get("annotations") or {}
    ctype = ann.get("io.kubernetes.cri.container-type", "")
    sandbox = ctype == "sandbox"
    part = _oci_common(spec)
    k8s_name = ann.get("io.kubernetes.cri.container-name", "")
    part.update(
        full_id=full_id,
        name=k8s_name or ("POD" if sandbox else ann.get("nerdctl/name", "")),
        k8s_container_name=k8s_name or ("POD" if sandbox else ""),
        pod_name=ann.get("io.kubernetes.cri.sandbox-name", ""),
        pod_namespace=ann.get("io.kubernetes.cri.sandbox-namespace", ""),
        pod_uid=ann.get("io.kubernetes.cri.sandbox-uid", ""),
        image=ann.get("io.kubernetes.cri.image-name") or ann.get("io.kubernetes.cri.podsandbox.image-name", ""),
        sandbox_id=ann.get("io.kubernetes.cri.sandbox-id", ""),
        is_pod_sandbox=sandbox,
    )
    return part


def _from_storage_spec(spec: dict[str, Any], full_id: str) -> Partial:
    ann = spec.get("annotations") or {}
    if ann.get("io.container.manager") == "libpod":
        # podman's config.json has no name or labels worth reading; its API has them.
        raise _SourceError("cri-o: this is a podman container (io.container.manager=libpod)")
    sandbox = ann.get("io.kubernetes.cri-o.ContainerType") == "sandbox"
    labels = _json_map(ann.get("io.kubernetes.cri-o.Labels"))
    part = _oci_common(spec)
    part.update(
        full_id=full_id,
        name=ann.get(K8S_CONTAINER_NAME, ""),
        k8s_container_name=ann.get(K8S_CONTAINER_NAME, ""),
        labels=labels,
        pod_name=ann.get(K8S_POD_NAME, ""),
        pod_namespace=ann.get(K8S_POD_NAMESPACE, ""),
        pod_uid=ann.get(K8S_POD_UID, ""),
        image=ann.get("io.kubernetes.cri-o.ImageName") or ann.get("io.kubernetes.cri-o.Image", ""),
        image_id=ann.get("io.kubernetes.cri-o.ImageRef", ""),
        sandbox_id=ann.get("io.kubernetes.cri-o.SandboxID", ""),
        ip=ann.get("io.kubernetes.cri-o.IP.0", ""),
        is_pod_sandbox=sandbox,
    )
    if sandbox:
        part["pod_labels"] = {k: v for k, v in labels.items() if not k.startswith(_NOT_POD_LABELS)}
    return part


def _from_engine_inspect(doc: dict[str, Any], rtype: str) -> Partial:
    """docker's (and podman's compatible) GET /containers/<id>/json."""
    cfg = doc.get("Config") or {}
    labels = {str(k): str(v) for k, v in (cfg.get("Labels") or {}).items()}
    host_cfg = doc.get("HostConfig") or {}
    net = doc.get("NetworkSettings") or {}
    ip = net.get("IPAddress") or ""
    if not ip:
        for n in (net.get("Networks") or {}).values():
            if isinstance(n, dict) and n.get("IPAddress"):
                ip = n["IPAddress"]
                break
    mounts = _engine_mounts(doc.get("Mounts") or [])
    # dockershim and cri-dockerd mark the pause container with this label.
    sandbox = labels.get("io.kubernetes.docker.type") == "podsandbox"
    part: Partial = {
        "full_id": doc.get("Id", ""),
        "name": str(doc.get("Name", "")).lstrip("/"),
        "image": cfg.get("Image", "") or doc.get("ImageName", ""),
        "image_id": doc.get("Image", ""),
        "labels": labels,
        "privileged": _bool_or_none(host_cfg.get("Privileged")),
        "mounts": mounts,
        "ip": ip,
        "is_pod_sandbox": sandbox,
        "sandbox_id": labels.get("io.kubernetes.sandbox.id", ""),
        "k8s_container_name": labels.get(K8S_CONTAINER_NAME, ""),
    }
    if sandbox:
        part["pod_labels"] = {k: v for k, v in labels.items() if not k.startswith(_NOT_POD_LABELS)}
    return part


def _from_docker_state(doc: dict[str, Any], host_cfg: dict[str, Any]) -> Partial:
    """docker's own /var/lib/docker/containers/<id>/config.v2.json (+ hostconfig.json)."""
    cfg = doc.get("Config") or {}
    labels = {str(k): str(v) for k, v in (cfg.get("Labels") or {}).items()}
    ip = ""
    for n in ((doc.get("NetworkSettings") or {}).get("Networks") or {}).values():
        if isinstance(n, dict) and n.get("IPAddress"):
            ip = n["IPAddress"]
            break
    mounts = _engine_mounts(list((doc.get("MountPoints") or {}).values()))
    sandbox = labels.get("io.kubernetes.docker.type") == "podsandbox"
    part: Partial = {
        "full_id": doc.get("ID", ""),
        "name": str(doc.get("Name", "")).lstrip("/"),
        "image": cfg.get("Image", ""),
        "image_id": doc.get("Image", ""),
        "labels": labels,
        "privileged": _bool_or_none(host_cfg.get("Privileged")),
        "mounts": mounts,
        "ip": ip,
        "is_pod_sandbox": sandbox,
        "sandbox_id": labels.get("io.kubernetes.sandbox.id", ""),
        "k8s_container_name": labels.get(K8S_CONTAINER_NAME, ""),
    }
    if sandbox:
        part["pod_labels"] = {k: v for k, v in labels.items() if not k.startswith(_NOT_POD_LABELS)}
    return part


def _from_crio_inspect(doc: dict[str, Any]) -> Partial:
    """cri-o's GET /containers/<id> on its socket."""
    labels = {str(k): str(v) for k, v in (doc.get("labels") or {}).items()}
    ann = doc.get("crio_annotations") or {}
    ips = doc.get("ip_addresses") or ([doc["ip_address"]] if doc.get("ip_address") else [])
    sandbox = ann.get("io.kubernetes.cri-o.ContainerType") == "sandbox"
    part: Partial = {
        "name": labels.get(K8S_CONTAINER_NAME) or doc.get("name", ""),
        "k8s_container_name": labels.get(K8S_CONTAINER_NAME, ""),
        "image": doc.get("image", ""),
        "image_id": doc.get("image_ref", ""),
        "labels": labels,
        "sandbox_id": doc.get("sandbox", ""),
        "ip": ips[0] if ips and isinstance(ips[0], str) else "",
        "is_pod_sandbox": sandbox,
    }
    if sandbox:
        part["pod_labels"] = {k: v for k, v in labels.items() if not k.startswith(_NOT_POD_LABELS)}
    return part


def _engine_mounts(items: list[Any]) -> list[dict[str, Any]]:
    # The keys of docker's inspect, which sysdig's container JSON uses too.
    return [
        {
            "Source": str(m.get("Source", "")),
            "Destination": str(m.get("Destination", "")),
            "Mode": str(m.get("Mode", "")),
            "RW": bool(m.get("RW", True)),
            "Propagation": str(m.get("Propagation", "")),
        }
        for m in items
        if isinstance(m, dict)
    ]


def _bool_or_none(v: Any) -> bool | None:
    return v if isinstance(v, bool) else None


def _json_map(text: Any) -> dict[str, str]:
    if not isinstance(text, str):
        return {}
    doc = _loads(text.encode())
    return {str(k): str(v) for k, v in doc.items()} if isinstance(doc, dict) else {}


# -- for `ktrace doctor` -----------------------------------------------------------------------


def runtime_report(timeout: float = 1.0) -> list[str]:
    """One line per runtime source: found, missing, unreadable; for ``ktrace doctor``."""
    lines: list[str] = []
    lk = _Lookup(timeout)
    for what, socks, url in (
        ("docker", DOCKER_SOCKETS, "/version"),
        ("podman", (PODMAN_SOCKET,), "/version"),
        ("cri-o", CRIO_SOCKETS, "/info"),
    ):
        sock = _first_socket(socks)
        if not os.path.exists(sock):
            lines.append(f"{what}: socket {sock} not found")
            continue
        try:
            status, body = lk._http(what, sock, url)
        except _SourceError as e:
            lines.append(str(e))
            continue
        doc = _loads(body)
        version = doc.get("Version", "") if isinstance(doc, dict) else ""
        lines.append(f"{what}: {sock}: HTTP {status}" + (f", version {version}" if version else ""))
    for sock in CONTAINERD_SOCKETS:
        if os.path.exists(host_path(sock)):
            lines.append(
                f"containerd: {host_path(sock)} present; its API needs gRPC, so metadata comes from OCI bundles only"
            )
    for root in CONTAINERD_TASK_ROOTS + CONTAINERS_STORAGE_DIRS:
        hp = host_path(root)
        if os.path.isdir(hp):
            readable = os.access(hp, os.R_OK | os.X_OK)
            note = "" if readable else " (not readable: permission denied)"
            lines.append(f"OCI state: {hp}{note}")
    return lines
