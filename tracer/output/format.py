"""Line formats: sysdig's default line, -pc, -pk, -p "%field" formats, -j JSON, and -t time modes.

Unlike sysdig, a line whose field is unset is printed with <NA> rather than hidden (sysdig hides it
unless the format starts with '*', which users meet as "lost" events); a leading '*' is accepted
and means the same.
"""

from __future__ import annotations

import dataclasses
import json
import re
import time
from dataclasses import dataclass
from typing import Any

from ..errors import UsageError
from ..event import Event, RenderOptions
from ..na import NA
from ..schema.fields import FIELDS, FieldDef, FieldTable, FieldType

DEFAULT_FORMAT = "%evt.num %evt.outputtime %evt.cpu %proc.name (%thread.tid) %evt.dir %evt.type %evt.info"
CONTAINER_FORMAT = ("%evt.num %evt.outputtime %evt.cpu %container.name (%container.id) %proc.name "
                    "(%thread.tid:%thread.vtid) %evt.dir %evt.type %evt.info")
K8S_FORMAT = ("%evt.num %evt.outputtime %evt.cpu %k8s.pod.name (%container.id) %proc.name "
              "(%thread.tid:%thread.vtid) %evt.dir %evt.type %evt.info")
PRESETS = {"c": CONTAINER_FORMAT, "container": CONTAINER_FORMAT, "k": K8S_FORMAT, "kubernetes": K8S_FORMAT}
DEFAULT_JSON_FIELDS = ("evt.cpu", "evt.dir", "evt.info", "evt.num", "evt.outputtime", "evt.type",
                       "proc.name", "thread.tid")

_TOKEN = re.compile(r"%(\d*)([a-zA-Z0-9_]+(?:\.[a-zA-Z0-9_]+)*)(\[[^\]]*\])?")


@dataclass(frozen=True)
class Piece:
    field: FieldDef
    arg: Any
    width: int
    key: str  # the field as written, e.g. proc.aname[2]


def resolve_field(name: str, table: FieldTable = FIELDS) -> tuple[FieldDef, Any] | None:
    """'evt.arg.fd' -> (evt.arg, 'fd'); 'proc.aname[2]' -> (proc.aname, 2); 'proc.name' -> (it, None)."""
    m = re.fullmatch(r"([a-zA-Z0-9_.]+?)(?:\[([^\]]*)\])?", name)
    if not m:
        return None
    base, idx = m[1], m[2]
    f = table.lookup(base)
    if f is not None:
        if idx is None:
            return f, None
        return f, int(idx) if idx.lstrip("-").isdigit() else idx
    if idx is None:
        parts = base.split(".")
        for cut in range(len(parts) - 1, 0, -1):
            f = table.lookup(".".join(parts[:cut]))
            if f is not None and f.arg in ("name", "index_or_name"):
                return f, ".".join(parts[cut:])
    return None


class Formatter:
    """Turns events into output lines (or JSON objects) for one format."""

    def __init__(self, fmt: str | None = None, *, json_out: bool = False, time_mode: str = "h",
                 opts: RenderOptions | None = None, table: FieldTable = FIELDS) -> None:
        self.json_out = json_out
        self.time_mode = time_mode
        self.opts = opts or RenderOptions()
        # sysdig's -j prints buffers whole, whatever -v says.
        self._json_opts = dataclasses.replace(self.opts, verbose=True)
        self.custom = fmt is not None
        fmt = fmt if fmt is not None else DEFAULT_FORMAT
        if fmt.startswith("*"):
            fmt = fmt[1:]
        self.pieces: list[str | Piece] = []
        pos = 0
        for m in _TOKEN.finditer(fmt):
            if m.start() > pos:
                self.pieces.append(fmt[pos:m.start()])
            name = m[2] + (m[3] or "")
            found = resolve_field(name, table)
            if found is None:
                raise UsageError(f"unknown field '{name}' in the output format; `ktrace -l` lists fields")
            self.pieces.append(Piece(found[0], found[1], int(m[1]) if m[1] else 0, name))
            pos = m.end()
        if pos < len(fmt):
            self.pieces.append(fmt[pos:])
        self._prev_ts = 0
        self._first_ts = 0

    @property
    def fields(self) -> list[str]:
        return [p.field.name for p in self.pieces if isinstance(p, Piece)]

    def value(self, ev: Event, p: Piece) -> Any:
        name = p.field.name
        if name == "evt.outputtime":
            return self._outputtime(ev)
        if name in ("evt.info", "evt.args"):
            # As sysdig prints it, each parameter followed by a space, the last one's too.
            return ev.info_str(self._json_opts if self.json_out else self.opts)
        return p.field.extract(ev, p.arg)

    def _outputtime(self, ev: Event) -> Any:
        ts = ev.ts
        if not self._first_ts:
            self._first_ts = ts
        mode = self.time_mode
        if self.json_out:
            return ts
        if mode == "a":
            return f"{ts // 10**9}.{ts % 10**9:09d}"
        if mode == "r":
            d = ts - self._first_ts
            return f"{d // 10**9}.{d % 10**9:09d}"
        if mode == "d":
            d = ev.latency if ev.direction else 0
            return f"{d // 10**9}.{d % 10**9:09d}"
        if mode == "D":
            d = ts - self._prev_ts if self._prev_ts else 0
            self._prev_ts = ts
            return f"{d // 10**9}.{d % 10**9:09d}"
        return time.strftime("%H:%M:%S", time.localtime(ts // 10**9)) + f".{ts % 10**9:09d}"

    def line(self, ev: Event) -> str:
        if self.json_out:
            return self.json_line(ev)
        out = []
        for p in self.pieces:
            if isinstance(p, str):
                out.append(p)
                continue
            v = self.value(ev, p)
            text = NA if v is None else _text(v)
            # %N: exactly N characters, padded or cut, as sysdig prints them.
            out.append(text[:p.width].ljust(p.width) if p.width else text)
        return "".join(out)

    def json_line(self, ev: Event) -> str:
        obj: dict[str, Any] = {}
        if self.custom:
            keys = [(p.key, p) for p in self.pieces if isinstance(p, Piece)]
        else:
            keys = [(k, Piece(FIELDS.lookup(k), None, 0, k)) for k in DEFAULT_JSON_FIELDS]  # type: ignore[arg-type]
        for key, p in sorted(keys, key=lambda kp: kp[0]):
            v = self.value(ev, p)
            if v is None:
                obj[key] = NA
            elif p.field.type in (FieldType.IPADDR, FieldType.IPNET):
                obj[key] = str(v)
            elif isinstance(v, bytes):
                obj[key] = v.decode(errors="replace")
            elif isinstance(v, list):
                obj[key] = [str(x) for x in v]
            else:
                obj[key] = v
        return json.dumps(obj, separators=(",", ":"))


def _text(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        return f"{v:.2f}"
    if isinstance(v, bytes):
        return "".join(chr(b) if 32 <= b < 127 else "." for b in v)
    if isinstance(v, list):
        return ",".join(str(x) for x in v)
    return str(v)
