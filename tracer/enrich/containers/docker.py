"""docker: its Engine API on ``/run/docker.sock`` (whose documents podman's compatible API also
sends), or its state under ``/var/lib/docker/containers`` when only that is mounted."""

from __future__ import annotations

import glob
import os
from typing import Any

from ..cgroup import CgroupMatch
from ..hostroot import host_path
from . import unixhttp
from .info import K8S_CONTAINER_NAME, NOT_POD_LABELS, Partial
from .paths import DOCKER_SOCKETS, DOCKER_STATE_DIR
from .sources import SourceError, first_socket, glob_id, loads, read_json


def docker_api(ident: str, hint: CgroupMatch | None, timeout: float) -> Partial | None:
    """docker's Engine API on its socket."""
    sock = first_socket(DOCKER_SOCKETS)
    return engine_api("docker", sock, ident, timeout)


def docker_disk(ident: str, hint: CgroupMatch | None, timeout: float) -> Partial | None:
    """docker's own state on disk, when its socket is not mounted but the directory is."""
    base = host_path(DOCKER_STATE_DIR)
    if not os.path.isdir(base):
        raise SourceError(f"docker: {base} not found (docker's state directory not mounted)")
    for path in sorted(glob.glob(os.path.join(base, glob_id(ident), "config.v2.json"))):
        doc = read_json(path)
        if doc is not None:
            host_cfg = read_json(os.path.join(os.path.dirname(path), "hostconfig.json")) or {}
            return from_docker_state(doc, host_cfg)
    raise SourceError(f"container gone: no docker state for {ident[:12]} under {base}")


def engine_api(what: str, sock: str, ident: str, timeout: float) -> Partial:
    """GET /containers/<id>/json on a docker-compatible API (docker's, podman's), and the image's
    digest from /images/<id>/json."""
    status, body = unixhttp.get(what, sock, f"/containers/{ident}/json", timeout)
    if status == 404:
        raise SourceError(f"container gone: {what} has no container {ident[:12]}")
    if status != 200:
        raise SourceError(f"{what}: {sock} answered HTTP {status} for container {ident[:12]}")
    doc = loads(body)
    if not isinstance(doc, dict):
        raise SourceError(f"{what}: {sock} sent an answer that is not a JSON object")
    part = from_engine_inspect(doc)
    image_id = doc.get("Image")
    if isinstance(image_id, str) and image_id:
        # The digest is the image's, not the container's: one more call, best effort.
        try:
            istatus, ibody = unixhttp.get(what, sock, f"/images/{image_id}/json", timeout)
        except SourceError:
            istatus, ibody = 0, b""
        if istatus == 200:
            idoc = loads(ibody)
            if isinstance(idoc, dict):
                digest = pick_digest(idoc.get("RepoDigests"), part.get("image_repository", ""))
                if digest:
                    part["image_digest"] = digest
    part["_final"] = True
    return part


def from_engine_inspect(doc: dict[str, Any]) -> Partial:
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
    mounts = engine_mounts(doc.get("Mounts") or [])
    # dockershim and cri-dockerd mark the pause container with this label.
    sandbox = labels.get("io.kubernetes.docker.type") == "podsandbox"
    part: Partial = {
        "full_id": doc.get("Id", ""),
        "name": str(doc.get("Name", "")).lstrip("/"),
        "image": cfg.get("Image", "") or doc.get("ImageName", ""),
        "image_id": doc.get("Image", ""),
        "labels": labels,
        "privileged": bool_or_none(host_cfg.get("Privileged")),
        "mounts": mounts,
        "ip": ip,
        "is_pod_sandbox": sandbox,
        "sandbox_id": labels.get("io.kubernetes.sandbox.id", ""),
        "k8s_container_name": labels.get(K8S_CONTAINER_NAME, ""),
    }
    if sandbox:
        part["pod_labels"] = {k: v for k, v in labels.items() if not k.startswith(NOT_POD_LABELS)}
    return part


def from_docker_state(doc: dict[str, Any], host_cfg: dict[str, Any]) -> Partial:
    """docker's own /var/lib/docker/containers/<id>/config.v2.json (+ hostconfig.json)."""
    cfg = doc.get("Config") or {}
    labels = {str(k): str(v) for k, v in (cfg.get("Labels") or {}).items()}
    ip = ""
    for n in ((doc.get("NetworkSettings") or {}).get("Networks") or {}).values():
        if isinstance(n, dict) and n.get("IPAddress"):
            ip = n["IPAddress"]
            break
    mounts = engine_mounts(list((doc.get("MountPoints") or {}).values()))
    sandbox = labels.get("io.kubernetes.docker.type") == "podsandbox"
    part: Partial = {
        "full_id": doc.get("ID", ""),
        "name": str(doc.get("Name", "")).lstrip("/"),
        "image": cfg.get("Image", ""),
        "image_id": doc.get("Image", ""),
        "labels": labels,
        "privileged": bool_or_none(host_cfg.get("Privileged")),
        "mounts": mounts,
        "ip": ip,
        "is_pod_sandbox": sandbox,
        "sandbox_id": labels.get("io.kubernetes.sandbox.id", ""),
        "k8s_container_name": labels.get(K8S_CONTAINER_NAME, ""),
    }
    if sandbox:
        part["pod_labels"] = {k: v for k, v in labels.items() if not k.startswith(NOT_POD_LABELS)}
    return part


def engine_mounts(items: list[Any]) -> list[dict[str, Any]]:
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


def bool_or_none(v: Any) -> bool | None:
    return v if isinstance(v, bool) else None


def pick_digest(repo_digests: Any, repository: str) -> str:
    if not isinstance(repo_digests, list):
        return ""
    digests = [d for d in repo_digests if isinstance(d, str) and "@" in d]
    for d in digests:
        if d.split("@", 1)[0] == repository:
            return d.split("@", 1)[1]
    return digests[0].split("@", 1)[1] if digests else ""
