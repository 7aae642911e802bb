"""Container id from a task's cgroup path (the text of /proc/PID/cgroup).

Every runtime puts a container's processes in a cgroup whose path holds the container's 64-hex
id; only the decoration around it differs. The shapes handled, one path component each:

==============================  ================================================================
``/docker/<id>``                docker, cgroupfs driver (the parent component says "docker")
``docker-<id>.scope``           docker, systemd driver; also cri-dockerd under ``kubepods``
``/kubepods/<qos>/pod<uid>/<id>``  kubelet, cgroupfs driver (containerd, or dockershim/cri-dockerd:
                                the path alone cannot tell, so the type is left ``""``; Guaranteed
                                pods have no ``<qos>`` level)
``cri-containerd-<id>.scope``   containerd with ``SystemdCgroup = true``
``...slice:cri-containerd:<id>``  containerd given a systemd-style cgroupsPath on cgroupfs
``crio-<id>.scope``, ``crio-<id>``  cri-o, systemd and cgroupfs drivers
``libpod-<id>.scope``           podman (root: ``/machine.slice/…``; rootless: ``/user.slice/…``)
``libpod-<id>.scope/container``  podman with crun on cgroup v2 (a sub-cgroup for the payload)
``/libpod-<id>``                podman, cgroupfs driver (e.g. Alpine)
``podman-<pid>.scope/<id>``     rootless podman, cgroupfs-like layout
``/user.slice/…/<unit>/<id>``   rootless podman run as a systemd service: nothing names podman,
                                so a bare id under ``user.slice`` is taken for podman
==============================  ================================================================

Components are read from the end of the path toward the root, so trailing sub-cgroups
(``…/container``, ``…/<id>/kube-proxy``) do not hide the id. Both cgroup versions work the same:
v1 lines are ``N:controllers:path``, the v2 line is ``0::path``; the first line (in file order)
whose path holds an id decides. A path seen from a private cgroup namespace (``/../../kubepods…``)
still ends in the same components.

**Nested containers (docker-in-docker, kind, sysbox):** a path like
``/docker/<outer>/docker/<inner>`` holds two ids. The **innermost** wins: it is the container the
process runs in, and it is the id libsinsp (hence sysdig) reports. The enclosing ids are kept in
:attr:`CgroupMatch.outer_ids`, since the host's runtime only knows the outermost one.

A process outside any container is ``"host"``, like sysdig's ``container.id``.
"""

from __future__ import annotations

import functools
import re
from typing import Final, NamedTuple

from tracer.enrich.hostroot import host_path

HOST_ID: Final = "host"

# One path component that holds an id; fullmatch'ed, so "docker-<id>.scope-foo" is not one.
_COMPONENT: Final = re.compile(
    r"(?:(?P<pfx>docker|cri-containerd|containerd|crio|libpod)-"
    r"|.*:(?P<cpfx>cri-containerd|crio|docker):)?"
    r"(?P<id>[0-9a-f]{64})(?:\.scope)?"
)
# Cheap gate: most threads on a node are host threads, and this one C-level scan answers them.
_HEX64: Final = re.compile(r"[0-9a-f]{64}")
# pod<uid>: the kubelet writes the uid with dashes (cgroupfs) or underscores (systemd slices);
# static pods have a 32-hex config hash for a uid.
_POD_UID: Final = re.compile(
    r"(?:^|[/-])pod("
    r"[0-9a-f]{8}[-_][0-9a-f]{4}[-_][0-9a-f]{4}[-_][0-9a-f]{4}[-_][0-9a-f]{12}"
    r"|[0-9a-f]{32})(?=$|[/.:])"
)
_USER_SLICE: Final = re.compile(r"/user-(\d+)\.slice(?:/|$)")
_PODMAN_SCOPE: Final = re.compile(r"^podman-\d+\.scope$")

_PREFIX_TYPE: Final = {
    "docker": "docker",
    "cri-containerd": "containerd",
    "containerd": "containerd",
    "crio": "cri-o",
    "libpod": "podman",
}


class CgroupMatch(NamedTuple):
    """What a cgroup file says about the container a task runs in."""

    id: str  # 12-char container id, or "host"
    full_id: str  # 64-hex id, "" for the host
    type: str  # docker | containerd | cri-o | podman | "" (unknown or host)
    pod_uid: str  # Kubernetes pod uid with dashes, "" when the path has none
    rootless_uid: int  # owner uid of a rootless container (from user-<uid>.slice), else -1
    outer_ids: tuple[str, ...]  # full ids of enclosing containers, outermost first
    path: str  # the cgroup path the id was read from


HOST: Final = CgroupMatch(HOST_ID, "", "", "", -1, (), "")


def container_id_from_cgroup(lines: str) -> tuple[str, str]:
    """``(id, type)`` from the text of /proc/PID/cgroup: a 12-char id or ``"host"``, and a guess
    of the runtime (``docker``, ``containerd``, ``cri-o``, ``podman`` or ``""``)."""
    m = parse_cgroup(lines)
    return m.id, m.type


@functools.lru_cache(maxsize=2048)
def parse_cgroup(lines: str) -> CgroupMatch:
    """Everything :func:`container_id_from_cgroup` reads, and more (pod uid, nesting, rootless).

    Cached on the text: the threads of one container share one cgroup file's content, so after
    the first thread of a container the answer is a dictionary hit.
    """
    if _HEX64.search(lines) is None:
        return HOST
    for line in lines.splitlines():
        parts = line.strip().split(":", 2)
        if len(parts) != 3:
            continue
        m = _parse_path(parts[2])
        if m is not None:
            return m
    return HOST


def read_cgroup(pid: int) -> str:
    """The text of the host's /proc/PID/cgroup, or ``""`` when the task is gone or unreadable."""
    try:
        with open(host_path(f"/proc/{pid}/cgroup"), encoding="utf-8", errors="replace") as f:
            return f.read()
    except OSError:
        return ""


def _parse_path(path: str) -> CgroupMatch | None:
    comps = path.split("/")
    found: list[tuple[int, re.Match[str]]] = []
    for i, comp in enumerate(comps):
        if len(comp) < 64:
            continue
        m = _COMPONENT.fullmatch(comp)
        if m is not None:
            found.append((i, m))
    if not found:
        return None
    idx, m = found[-1]  # innermost wins (see the module docstring)
    full = m.group("id")
    ctype = _type_of(m, comps, idx, path)
    uid_m = _POD_UID.search(path)
    pod_uid = uid_m.group(1).replace("_", "-") if uid_m else ""
    user_m = _USER_SLICE.search(path)
    rootless = int(user_m.group(1)) if user_m and ctype == "podman" else -1
    outer = tuple(o.group("id") for _, o in found[:-1])
    return CgroupMatch(full[:12], full, ctype, pod_uid, rootless, outer, path)


def _type_of(m: re.Match[str], comps: list[str], idx: int, path: str) -> str:
    pfx = m.group("pfx") or m.group("cpfx")
    if pfx:
        return _PREFIX_TYPE[pfx]
    parent = comps[idx - 1] if idx > 0 else ""
    if parent == "docker":
        return "docker"
    if _PODMAN_SCOPE.match(parent) or path.startswith("/user.slice/"):
        return "podman"
    if "kubepods" in path:
        # containerd or docker (dockershim, cri-dockerd) with the cgroupfs driver: ambiguous.
        return ""
    # A bare id elsewhere: libsinsp's docker layout ("/", "") takes it, and so do we.
    return "docker"
