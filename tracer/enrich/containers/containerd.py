"""containerd: the OCI bundle of each task on disk (its gRPC API is not spoken), with the
``io.kubernetes.cri.*`` annotations its CRI plugin writes."""

from __future__ import annotations

import glob
import os
from typing import Any

from ..cgroup import CgroupMatch
from ..hostroot import host_path
from .info import Partial
from .oci import oci_common
from .paths import CONTAINERD_TASK_ROOTS
from .sources import SourceError, glob_id, read_json


def oci_containerd(ident: str, hint: CgroupMatch | None, timeout: float) -> Partial | None:
    """The containerd task whose bundle directory is ``ident``."""
    roots = [r for r in CONTAINERD_TASK_ROOTS if os.path.isdir(host_path(r))]
    if not roots:
        raise SourceError(
            f"containerd: {host_path(CONTAINERD_TASK_ROOTS[0])} not found "
            "(not a containerd node, or the host's /run/containerd is not mounted)"
        )
    for root in roots:
        pattern = os.path.join(host_path(root), "*", glob_id(ident), "config.json")
        for path in sorted(glob.glob(pattern)):
            spec = read_json(path)
            if spec is not None:
                return from_containerd_spec(spec, os.path.basename(os.path.dirname(path)))
    raise SourceError(
        f"containerd: no OCI bundle for {ident[:12]} under {host_path(roots[0])} "
        "(container gone, or not a containerd container)"
    )


def from_containerd_spec(spec: dict[str, Any], full_id: str) -> Partial:
    ann = spec.get("annotations") or {}
    ctype = ann.get("io.kubernetes.cri.container-type", "")
    sandbox = ctype == "sandbox"
    part = oci_common(spec)
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
