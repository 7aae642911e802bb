"""What the runtime sources share: their error, and reading the documents and paths they use.

A source is a function ``(ident, hint, timeout) -> Partial | None`` in one runtime's module; it
raises :class:`SourceError` with a reason the user can act on when it cannot answer.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from typing import Any

from ..cgroup import CgroupMatch
from ..hostroot import host_path
from .info import Partial

SourceFn = Callable[[str, CgroupMatch | None, float], Partial | None]


class SourceError(Exception):
    """A source could not answer; the message is a reason for the user."""


def first_socket(paths: Sequence[str]) -> str:
    """The first of ``paths`` present on the host (as seen from here), else the first one."""
    for p in paths:
        hp = host_path(p)
        if os.path.exists(hp):
            return hp
    return host_path(paths[0])


def glob_id(ident: str) -> str:
    """The glob for a container's directory: a full id names it; a short one is a prefix of it."""
    if not all(c in "0123456789abcdef" for c in ident):  # only hex reaches glob
        return "-invalid-"
    return ident if len(ident) == 64 else ident + "*"


def read_json(path: str) -> dict[str, Any] | None:
    try:
        with open(path, "rb") as f:
            doc = loads(f.read())
    except OSError:
        return None
    return doc if isinstance(doc, dict) else None


def loads(body: bytes) -> Any:
    try:
        return json.loads(body)
    except ValueError:
        return None


def json_map(text: Any) -> dict[str, str]:
    """A JSON object held in a string (an annotation), as str -> str; {} for anything else."""
    if not isinstance(text, str):
        return {}
    doc = loads(text.encode())
    return {str(k): str(v) for k, v in doc.items()} if isinstance(doc, dict) else {}
