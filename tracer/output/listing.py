"""`ktrace -l` / `-lv` / `--list-markdown` (fields) and `ktrace -L` (events), from the tables."""

from __future__ import annotations

from ..schema import record as R
from ..schema.events import OTHER_EVENTS, SYSCALLS, EventInfo
from ..schema.fields import FIELDS, FieldDef

_ARGS = {"index": "[N]", "index?": "[N]", "name": ".NAME", "index_or_name": ".NAME or [N]"}


def _name(f: FieldDef) -> str:
    return f.name + (_ARGS[f.arg] if f.arg and f.arg != "index_or_name" else "") + (
        ".NAME" if f.arg == "index_or_name" else "")


def list_fields(markdown: bool = False, verbose: bool = False) -> str:
    lines: list[str] = []
    if markdown:
        lines += ["| Field | Type | Description |", "|---|---|---|"]
        for f in FIELDS.rows:
            lines.append(f"| `{_name(f)}` | {f.type.value} | {f.desc} |")
        return "\n".join(lines)
    for cls, rows in FIELDS.classes().items():
        lines.append("")
        lines.append(f"Field Class: {cls}")
        lines.append("")
        for f in rows:
            name = _name(f)
            if verbose:
                lines.append(f"{name:<28}{f.type.value:<10}{f.desc}")
            else:
                lines.append(f"{name:<28}{f.desc}")
    return "\n".join(lines).lstrip("\n")


def _sig(info: EventInfo, direction: int) -> str:
    params = info.params(direction)
    inner = ", ".join(f"{p.type.name} {p.name}" for p in params)
    return f"{'<' if direction else '>'} {info.name}({inner})"


def list_events() -> str:
    lines = []
    for info in SYSCALLS:
        if info is None:
            continue
        lines.append(_sig(info, R.DIR_ENTER))
        lines.append(_sig(info, R.DIR_EXIT))
    for info in OTHER_EVENTS.values():
        lines.append(_sig(info, R.DIR_ENTER) + (" [internal]" if info.category == "internal" else ""))
    return "\n".join(lines)
