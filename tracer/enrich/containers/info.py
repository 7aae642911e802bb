"""What ktrace knows of one container (:class:`ContainerInfo`), and how the lookups' partial
answers are merged into one."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Final

from ...na import NA
from ..cgroup import HOST_ID, CgroupMatch

# Lookup states of a ContainerInfo.
PENDING: Final = "pending"  # queued or being looked up; fields may still fill in
DONE: Final = "done"  # a source answered; fields it could not give stay <NA>
FAILED: Final = "failed"  # every source tried came back empty; reasons() says why

K8S_POD_NAME: Final = "io.kubernetes.pod.name"
K8S_POD_NAMESPACE: Final = "io.kubernetes.pod.namespace"
K8S_POD_UID: Final = "io.kubernetes.pod.uid"
K8S_CONTAINER_NAME: Final = "io.kubernetes.container.name"
# Label prefixes that are the runtime's bookkeeping, not the user's pod labels.
NOT_POD_LABELS: Final = ("io.kubernetes.", "annotation.", "io.cri-containerd.")


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

# What one source tells of a container: ContainerInfo's fields by name, and ``k8s_container_name``;
# ``_final`` says no later source needs asking.
Partial = dict[str, Any]


def merge(into: Partial, part: Partial) -> None:
    """First source wins per field; labels are united, earlier keys winning."""
    for k, v in part.items():
        if k.startswith("_") or v is None or v == NA or v == "" or v == {} or v == []:
            continue
        if k in ("labels", "pod_labels"):
            into[k] = {**v, **into.get(k, {})}
        elif k not in into:
            into[k] = v


def finish(key: str, d: Partial, rtype: str, source: str, hint: CgroupMatch | None) -> ContainerInfo:
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
        pod_labels = {k: v for k, v in labels.items() if not k.startswith(NOT_POD_LABELS)}
    full = d.get("full_id") or (hint.full_id if hint else "") or ""
    return ContainerInfo(
        id=key,
        full_id=full,
        type=rtype,
        name=name,
        image=image,
        image_id=strip_algo(d.get("image_id") or NA),
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


def strip_algo(image_id: str) -> str:
    # sysdig's container.image.id is the bare hex, without the "sha256:" prefix.
    return image_id.split(":", 1)[1] if image_id.startswith("sha256:") else image_id
