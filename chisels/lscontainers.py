"""lscontainers: the containers the state knows, as a table or (desc) as a data dump."""

from __future__ import annotations

import json
from typing import Any

from tracer.chisel import ChiselArg, StateDumpChisel, extend_string
from tracer.na import NA
from tracer.state.state import State


def _dump(val: Any, name: str | None = None, depth: int = 0) -> str:
    """A nested table the way sysdig's ``desc`` prints it: ``name = {``, one entry per line."""
    pad = " " * depth
    head = f"{pad}{name} = " if name is not None else pad
    if isinstance(val, dict):
        items = "".join(_dump(v, str(k), depth + 1) + ",\n" for k, v in sorted(val.items(), key=lambda kv: str(kv[0])))
        return f"{head}{{\n{items}{pad}}}"
    if isinstance(val, list):
        return _dump({i + 1: v for i, v in enumerate(val)}, name, depth)
    if isinstance(val, bool):
        return head + ("true" if val else "false")
    if isinstance(val, (int, float)):
        return head + str(val)
    if val is None:
        return head + "nil"
    return head + json.dumps(str(val))


class LsContainers(StateDumpChisel):
    """Unlike ps and lsof it also prints without any event: the containers the capture's tables
    (or the live bootstrap) know."""

    name = "lscontainers"
    category = "System State"
    short_description = "List the running containers"
    description = "List the running containers and the metadata"
    args = (ChiselArg("desc", "Prints the result set as a data structure", optional=True, choices=("desc",)),)
    need_event = False

    def dump(self, state: State) -> list[str]:
        containers = {cid: info for cid, info in sorted(state.containers.items()) if cid != "host"}
        if self.arg["desc"]:
            return [_dump(containers)]
        e = extend_string
        lines = [e("container.type", 15) + e("container.image", 16) + e("container.name", 20) + e("container.id", 13),
                 e("-" * 15, 15) + e("-" * 16, 16) + e("-" * 20, 20) + e("-" * 13, 13)]
        for cid, info in containers.items():
            lines.append(e(str(info.get("type") or NA), 15) + e(str(info.get("image") or NA), 16)
                         + e(str(info.get("name") or NA), 20) + e(str(info.get("id") or cid), 13))
        return lines
