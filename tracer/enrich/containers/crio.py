"""cri-o: the OCI config it writes under containers/storage's run root, and its HTTP inspect
endpoint on its socket (annotations ``io.kubernetes.pod.*`` and ``io.kubernetes.cri-o.*``)."""

from __future__ import annotations

import glob
import os
from typing import Any

from ..cgroup import CgroupMatch
from ..hostroot import host_path
from . import unixhttp
from .info import K8S_CONTAINER_NAME, K8S_POD_NAME, K8S_POD_NAMESPACE, K8S_POD_UID, NOT_POD_LABELS, Partial
from .oci import oci_common
from .paths import CONTAINERS_STORAGE_DIRS, CRIO_SOCKETS
from .sources import SourceError, first_socket, glob_id, json_map, loads, read_json


def oci_storage(ident: str, hint: CgroupMatch | None, timeout: float) -> Partial | None:
    """The OCI config cri-o wrote for ``ident`` under containers/storage's run root."""
    dirs = [d for d in CONTAINERS_STORAGE_DIRS if os.path.isdir(host_path(d))]
    if not dirs:
        raise SourceError(
            f"cri-o: {host_path(CONTAINERS_STORAGE_DIRS[0])} not found "
            "(not a cri-o node, or the host's /run/containers is not mounted)"
        )
    for d in dirs:
        pattern = os.path.join(host_path(d), glob_id(ident), "userdata", "config.json")
        for path in sorted(glob.glob(pattern)):
            spec = read_json(path)
            if spec is not None:
                full = os.path.basename(os.path.dirname(os.path.dirname(path)))
                return from_storage_spec(spec, full)
    raise SourceError(f"cri-o: no OCI config for {ident[:12]} under {host_path(dirs[0])}")


def crio_api(ident: str, hint: CgroupMatch | None, timeout: float) -> Partial | None:
    """cri-o's inspect endpoint on its socket."""
    sock = first_socket(CRIO_SOCKETS)
    status, body = unixhttp.get("cri-o", sock, f"/containers/{ident}", timeout)
    if status == 404 or (status >= 400 and b"not found" in body.lower()):
        raise SourceError(f"container gone: cri-o has no container {ident[:12]}")
    if status != 200:
        raise SourceError(f"cri-o: {sock} answered HTTP {status} for container {ident[:12]}")
    doc = loads(body)
    if not isinstance(doc, dict):
        raise SourceError(f"cri-o: {sock} sent an answer that is not a JSON object")
    part = from_crio_inspect(doc)
    part["_final"] = True
    return part


def from_storage_spec(spec: dict[str, Any], full_id: str) -> Partial:
    ann = spec.get("annotations") or {}
    if ann.get("io.container.manager") == "libpod":
        # podman's config.json has no name or labels worth reading; its API has them.
        raise SourceError("cri-o: this is a podman container (io.container.manager=libpod)")
    sandbox = ann.get("io.kubernetes.cri-o.ContainerType") == "sandbox"
    labels = json_map(ann.get("io.kubernetes.cri-o.Labels"))
    part = oci_common(spec)
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
        part["pod_labels"] = {k: v for k, v in labels.items() if not k.startswith(NOT_POD_LABELS)}
    return part


def from_crio_inspect(doc: dict[str, Any]) -> Partial:
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
        part["pod_labels"] = {k: v for k, v in labels.items() if not k.startswith(NOT_POD_LABELS)}
    return part
