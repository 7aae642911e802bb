"""``ktrace -cl`` and ``ktrace -i NAME``: the chisel listings, in sysdig's layout."""

from __future__ import annotations

import sys
from collections.abc import Iterable
from typing import Final

from .contract import Chisel, ChiselError
from .registry import all_chisels, find_chisel

DESCRIPTION_TEXT_START: Final = 16
CONSOLE_LINE_LEN: Final = 79


def _list_lines(classes: Iterable[type[Chisel]]) -> list[str]:
    """sysdig's -cl body: a titled block per category, names padded to 16, descriptions wrapped."""
    out: list[str] = []
    last = None
    width = CONSOLE_LINE_LEN - DESCRIPTION_TEXT_START
    for cls in sorted(classes, key=lambda c: (c.category, c.name)):
        if cls.category != last:
            title = f"Category: {cls.category}"
            out += ["", title, "-" * len(title)]
            last = cls.category
        name = cls.name
        if len(name) >= DESCRIPTION_TEXT_START:
            out.append(name)
            name = ""
        desc = cls.short_description
        chunks = [desc[i:i + width] for i in range(0, len(desc), width)] or [""]
        out.append(name.ljust(DESCRIPTION_TEXT_START) + chunks[0])
        out += [" " * DESCRIPTION_TEXT_START + c for c in chunks[1:]]
    return out


def list_chisels(extra_dirs: Iterable[str] = ()) -> str:
    """``ktrace -cl``: sysdig's layout. A broken user chisel is reported on stderr and skipped."""

    def warn(e: ChiselError) -> None:
        print(e.show(), file=sys.stderr)

    found = all_chisels(extra_dirs, on_error=warn)
    lines = _list_lines(f.cls for f in found.values() if not f.cls.hidden)
    lines += ["", "Use the -i flag to get detailed information about a specific chisel"]
    return "\n".join(lines)


def chisel_info(name: str, extra_dirs: Iterable[str] = ()) -> str:
    """``ktrace -i NAME``: sysdig's layout (the -cl entry, the description, the typed args)."""
    cls = find_chisel(name, extra_dirs).cls
    parts = ["\n".join(_list_lines([cls])), ""]
    desc = cls.description or cls.short_description
    parts.append("\n".join(desc[i:i + CONSOLE_LINE_LEN] for i in range(0, len(desc), CONSOLE_LINE_LEN)))
    astr = "Args:\n"
    if cls.args:
        astr += "".join(f"[{a.type}] {a.name} - {a.description}\n" for a in cls.args)
    else:
        astr += "(None)"
    # The argument block wraps every 63 columns of a line, continuing under the description column.
    text: list[str] = []
    linepos = 0
    for ch in astr:
        if ch == "\n":
            linepos = -1
        elif linepos and linepos % (CONSOLE_LINE_LEN - DESCRIPTION_TEXT_START) == 0:
            text.append("\n" + " " * DESCRIPTION_TEXT_START)
        text.append(ch)
        linepos += 1
    parts.append("".join(text))
    return "\n".join(parts)
