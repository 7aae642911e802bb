"""Where each container runtime keeps its API socket and its state, as paths on the host.

The one table of these paths: the lookups read them, ``ktrace doctor`` checks them, and the
deploy manifests mount them (tests/deploy checks that). Every one goes through
:func:`tracer.enrich.hostroot.host_path` before use.
"""

from __future__ import annotations

from typing import Final

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

# The socket ``ktrace doctor`` checks for each runtime, by the name it prints.
RUNTIME_SOCKETS: Final = (
    ("docker", DOCKER_SOCKETS[0]),
    ("containerd", CONTAINERD_SOCKETS[0]),
    ("cri-o", CRIO_SOCKETS[0]),
    ("podman", PODMAN_SOCKET),
    ("k3s containerd", CONTAINERD_SOCKETS[1]),
)
