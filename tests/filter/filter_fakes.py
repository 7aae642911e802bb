"""A small fake field table implementing the contract the filter codes against.

Events are dicts keyed by base field name.  Fields with arguments hold a list (index arguments)
or a dict (name arguments); ``proc.aname`` without index returns the whole list (any-match).
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any


class FieldType(enum.Enum):
    STR = "str"
    INT = "int"
    UINT = "uint"
    BOOL = "bool"
    IPADDR = "ipaddr"
    IPNET = "ipnet"
    PORT = "port"
    RELTIME = "reltime"
    ABSTIME = "abstime"
    BYTES = "bytes"
    DOUBLE = "double"
    CHARBUF = "charbuf"


@dataclass(frozen=True)
class FieldDef:
    name: str
    type: FieldType
    desc: str = ""
    arg: str = ""
    multi: bool = False
    filter_only: bool = False
    cost: int = 1

    def extract(self, ev: dict[str, Any], arg: str | int | None, /) -> Any:
        v = ev.get(self.name)
        if v is None or arg is None:
            return v
        if isinstance(v, dict):
            return v.get(arg)
        if isinstance(v, list) and isinstance(arg, int):
            return v[arg] if arg < len(v) else None
        return None


S, N, U = FieldType.STR, FieldType.INT, FieldType.UINT
FIELDS = [
    FieldDef("evt.type", S),
    FieldDef("evt.dir", S),
    FieldDef("evt.num", U),
    FieldDef("evt.rawres", N),
    FieldDef("evt.latency", FieldType.RELTIME),
    FieldDef("evt.rawtime", FieldType.ABSTIME),
    FieldDef("evt.failed", FieldType.BOOL),
    FieldDef("evt.buffer", FieldType.BYTES),
    FieldDef("evt.info", FieldType.CHARBUF),
    FieldDef("evt.arg", FieldType.CHARBUF, arg="index_or_name"),
    FieldDef("evt.rawarg", N, arg="name"),
    FieldDef("proc.name", S),
    FieldDef("proc.pid", N),
    FieldDef("proc.aname", S, arg="index?", multi=True, cost=5),
    FieldDef("proc.apid", N, arg="index"),
    FieldDef("thread.tid", N),
    FieldDef("thread.cpu", FieldType.DOUBLE),
    FieldDef("thread.cgroup", S, arg="name"),
    FieldDef("thread.cgroups", S, multi=True),
    FieldDef("container.id", S),
    FieldDef("container.mount", S, arg="name"),
    FieldDef("k8s.pod.label", S, arg="name"),
    FieldDef("fd.name", S, cost=2),
    FieldDef("fd.num", N),
    FieldDef("fd.ip", FieldType.IPADDR),
    FieldDef("fd.net", FieldType.IPNET),
    FieldDef("fd.port", FieldType.PORT),
]


class FakeTable:
    def __init__(self, fields: Iterable[FieldDef]) -> None:
        self._by_name = {f.name: f for f in fields}

    def lookup(self, name: str) -> FieldDef | None:
        return self._by_name.get(name)

    def names(self) -> list[str]:
        return sorted(self._by_name)


TABLE = FakeTable(FIELDS)
