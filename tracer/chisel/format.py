"""sysdig's formatting helpers (its chisels' common.lua and ansiterminal.lua): padded columns,
byte and duration units, Lua's ``tostring`` of a field value, colours."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal
from typing import Any, ClassVar, Final

ONE_SECOND: Final = 1_000_000_000


def extend_string(s: str, width: int) -> str:
    """Pad to ``width``; a string that long or longer is cut to ``width - 1`` plus a space."""
    if len(s) < width:
        return s.ljust(width)
    return s[: width - 1] + " " if width > 0 else ""


def format_bytes(val: float) -> str:
    """1230 -> ``1.20KB``: a unit switches only once the value is strictly above 1024^k."""
    for power, unit in ((5, "P"), (4, "T"), (3, "G"), (2, "M"), (1, "KB")):
        if val > 1024**power:
            return f"{_half_up(val / 1024**power)}{unit}"
    return f"{int(val)}B"


def _half_up(v: float) -> str:
    """Two decimals, halves rounded up as sysdig's Lua formats them (10.625 -> 10.63), where
    Python's formatting rounds them to even."""
    return str(Decimal(v).quantize(Decimal("0.01"), ROUND_HALF_UP))


def format_time_interval(ns: float) -> str:
    """A duration in ns the way sysdig prints it: ``1.50s``, ``12ms``, ``3.25ms``, ``15us``, ``7ns``."""
    v = int(ns)
    if v >= ONE_SECOND:
        return f"{v // ONE_SECOND}.{(v % ONE_SECOND) // 10_000_000:02d}s"
    if v >= 10_000_000:
        return f"{v // 1_000_000}ms"
    if v >= 1_000_000:
        return f"{v // 1_000_000}.{(v % 1_000_000) // 10_000:02d}ms"
    if v >= 10_000:
        return f"{v // 1_000}us"
    if v >= 1_000:
        return f"{v // 1_000}.{(v % 1_000) // 10:02d}us"
    return f"{v}ns"


def lua_str(v: Any) -> str:
    """A field value as sysdig's chisels turn it into text (Lua ``tostring``)."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        return str(int(v)) if v.is_integer() and abs(v) < 1e15 else f"{v:.14g}"
    if isinstance(v, bytes):
        return v.decode(errors="replace")
    if isinstance(v, list):
        return ",".join(lua_str(x) for x in v)
    return str(v)


class Palette:
    """ANSI colours (ansiterminal.lua), or empty strings when colour is off."""

    _CODES: ClassVar[dict[str, int]] = {"reset": 0, "red": 31, "green": 32, "yellow": 33, "blue": 34,
                                        "magenta": 35, "cyan": 36}

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        for name, code in self._CODES.items():
            setattr(self, name, f"\x1b[{code}m" if enabled else "")

    reset: str
    red: str
    green: str
    yellow: str
    blue: str
    magenta: str
    cyan: str

