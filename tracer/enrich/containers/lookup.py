"""One lookup of one container: the runtime sources asked in order, their answers merged, and
the reasons for what stays unknown.

The cgroup path says which runtime to ask first; when it cannot tell (kubepods with the cgroupfs
driver) every source is tried, cheapest first. Once a source of one runtime has answered, only
that runtime's other sources are asked (a bundle on disk, then the API for what it lacks).
"""

from __future__ import annotations

import collections
import os
from typing import Final

from ..cgroup import CgroupMatch
from ..hostroot import host_path
from .containerd import oci_containerd
from .crio import crio_api, oci_storage
from .docker import docker_api, docker_disk
from .info import ContainerInfo, Partial, finish, merge
from .paths import CONTAINERD_SOCKETS
from .podman import podman_api
from .sources import SourceError, SourceFn

# name: (runtime type, the name ContainerInfo.source shows, the function)
_ALL_SOURCES: Final[dict[str, tuple[str, str, SourceFn]]] = {
    "oci_containerd": ("containerd", "oci:containerd", oci_containerd),
    "oci_storage": ("cri-o", "oci:cri-o", oci_storage),
    "crio_api": ("cri-o", "cri-o-api", crio_api),
    "docker_api": ("docker", "docker-api", docker_api),
    "docker_disk": ("docker", "docker-state", docker_disk),
    "podman_api": ("podman", "podman-api", podman_api),
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


class Lookup:
    """One lookup's settings and findings: the sources' ``timeout``, and the ``reasons`` the last
    :meth:`resolve` collected for what it could not learn."""

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
                part = fn(ident, hint, self.timeout)
            except SourceError as e:
                notes[rtype].append(str(e))
                continue
            if part is None:
                continue
            if won is None:
                won = rtype
            used.append(name)
            merge(merged, part)
            if part.pop("_final", False):
                break
        if won is None:
            self.reasons = [r for rs in notes.values() for r in rs]
            self.reasons.append(f"no runtime knows container {key} (tried: {_tried(ctype)})")
            return None
        self.reasons = notes.get(won, [])
        if won == "containerd" and any(os.path.exists(host_path(s)) for s in CONTAINERD_SOCKETS):
            self.reasons.append("containerd socket present but its API needs gRPC; metadata from OCI bundle only")
        return finish(key, merged, won, "+".join(used), hint)
