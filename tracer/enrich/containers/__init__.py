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

One module per runtime, as falcosecurity/libs' ``container_engine/`` keeps them: :mod:`.docker`,
:mod:`.containerd`, :mod:`.crio`, :mod:`.podman` (each a source function and the parser of the
documents it reads), :mod:`.oci` (what any OCI bundle's config.json says); around them
:mod:`.paths` (the runtimes' sockets and state directories), :mod:`.unixhttp` (HTTP over a unix
socket), :mod:`.sources` (what sources share), :mod:`.lookup` (one lookup: sources in order,
answers merged), :mod:`.info` (:class:`ContainerInfo`) and :mod:`.resolver` (cache and worker).
"""

from __future__ import annotations

from ...na import NA
from .info import DONE, FAILED, HOST_INFO, PENDING, ContainerInfo, split_image
from .paths import (
    CONTAINERD_SOCKETS,
    CONTAINERD_TASK_ROOTS,
    CONTAINERS_STORAGE_DIRS,
    CRIO_SOCKETS,
    DOCKER_SOCKETS,
    DOCKER_STATE_DIR,
    PODMAN_SOCKET,
    PODMAN_USER_SOCKET,
    RUNTIME_SOCKETS,
)
from .resolver import ContainerResolver, OnUpdate

__all__ = [
    "CONTAINERD_SOCKETS", "CONTAINERD_TASK_ROOTS", "CONTAINERS_STORAGE_DIRS", "CRIO_SOCKETS", "DOCKER_SOCKETS",
    "DOCKER_STATE_DIR", "DONE", "FAILED", "HOST_INFO", "NA", "PENDING", "PODMAN_SOCKET", "PODMAN_USER_SOCKET",
    "RUNTIME_SOCKETS", "ContainerInfo", "ContainerResolver", "OnUpdate", "split_image",
]
