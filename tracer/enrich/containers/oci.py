"""What any OCI runtime spec (an OCI bundle's ``config.json``) tells of its container."""

from __future__ import annotations

from typing import Any

from .info import Partial


def oci_common(spec: dict[str, Any]) -> Partial:
    """What any OCI runtime spec tells: bind mounts and whether the container is privileged."""
    mounts = []
    for m in spec.get("mounts") or []:
        if not isinstance(m, dict):
            continue
        opts = [o for o in m.get("options") or [] if isinstance(o, str)]
        if m.get("type") != "bind" and "bind" not in opts and "rbind" not in opts:
            continue
        prop = next((o for o in opts if o.endswith(("private", "shared", "slave"))), "")
        mounts.append(
            {
                "Source": str(m.get("source", "")),
                "Destination": str(m.get("destination", "")),
                "Mode": "",
                "RW": "ro" not in opts,
                "Propagation": prop,
            }
        )
    linux = spec.get("linux") or {}
    caps = ((spec.get("process") or {}).get("capabilities") or {}).get("bounding") or []
    # A privileged container keeps every capability and has no masked /proc paths; no other
    # OCI field says "privileged" outright.
    privileged = "CAP_SYS_ADMIN" in caps and not linux.get("maskedPaths")
    return {"mounts": mounts, "privileged": privileged}
