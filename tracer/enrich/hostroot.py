"""Where the host's filesystem is seen from: one setting, like sysdig's HOST_ROOT.

On a node ktrace reads /proc, /etc/passwd, /etc/group, the runtime sockets and the OCI state
directories where they are. In a debug pod or a container those belong to the container, and the
host's are mounted under a prefix (the manifests in deploy/ mount them under /host). Every path
that means "the host's" goes through :func:`host_path`, so one setting moves them all:

- the environment variable ``KTRACE_HOST_ROOT`` (default ``/``), read at each call so a test or a
  wrapper script can set it late;
- :func:`set_host_root`, which the CLI flag calls and which wins over the environment.

Only absolute paths are prefixed: a relative path is the caller's own business.

:class:`Roots` is the same setting as a value, for code that checks a given tree (``ktrace
doctor``, its tests): the host's root, and the root of what this process sees as its own (/sys,
/lib/modules, /usr/src, /proc/self).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Final

ENV_VAR: Final = "KTRACE_HOST_ROOT"

# None: follow the environment; a string: set by the CLI and fixed from then on.
_override: str | None = None


def set_host_root(root: str | None) -> None:
    """Fix the host root (the CLI flag calls this); ``None`` goes back to the environment."""
    global _override
    _override = None if root is None else _normalize(root)


@contextlib.contextmanager
def using(root: str) -> Iterator[None]:
    """Within the block, the host root is ``root`` (``ktrace doctor`` checking a given root);
    whatever was in force before comes back after, an environment-following state included."""
    global _override
    saved = _override
    _override = _normalize(root)
    try:
        yield
    finally:
        _override = saved


def host_root() -> str:
    """The host root in force: ``/`` when ktrace runs on the host itself."""
    if _override is not None:
        return _override
    return _normalize(os.environ.get(ENV_VAR, "") or "/")


def host_path(p: str) -> str:
    """``p`` (a path on the host, like ``/proc/1/cgroup``) as seen from this process.

    >>> set_host_root("/host"); host_path("/proc/1/cgroup")
    '/host/proc/1/cgroup'
    >>> set_host_root(None)
    """
    root = host_root()
    if root == "/" or not p.startswith("/"):
        return p
    return root + p


@dataclass(frozen=True)
class Roots:
    """Where a check looks: ``host`` prefixes the host's paths (/proc, /run), ``local`` the rest."""

    host: str = "/"
    local: str = "/"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Roots:
        env = os.environ if env is None else env
        return cls(host=env.get(ENV_VAR) or "/")

    def host_path(self, path: str) -> str:
        return os.path.join(self.host, path.lstrip("/"))

    def local_path(self, path: str) -> str:
        return os.path.join(self.local, path.lstrip("/"))


def _normalize(root: str) -> str:
    # "/host/" and "/host" mean the same; "" and "/" mean no prefix.
    stripped = root.rstrip("/")
    return stripped if stripped else "/"
