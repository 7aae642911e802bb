"""podman: its docker-compatible API on the system socket or a rootless user's socket."""

from __future__ import annotations

import glob

from ..cgroup import CgroupMatch
from ..hostroot import host_path
from .docker import engine_api
from .info import Partial
from .paths import PODMAN_SOCKET, PODMAN_USER_SOCKET
from .sources import SourceError


def podman_api(ident: str, hint: CgroupMatch | None, timeout: float) -> Partial | None:
    """podman's docker-compatible API: the system socket, and the rootless user's."""
    socks = [host_path(PODMAN_SOCKET)]
    if hint is not None and hint.rootless_uid >= 0:
        socks.insert(0, host_path(PODMAN_USER_SOCKET.format(uid=hint.rootless_uid)))
    else:
        socks += sorted(glob.glob(host_path(PODMAN_USER_SOCKET.format(uid="*"))))
    errors: list[str] = []
    for sock in socks:
        try:
            return engine_api("podman", sock, ident, timeout)
        except SourceError as e:
            errors.append(str(e))
    raise SourceError("; ".join(errors))

