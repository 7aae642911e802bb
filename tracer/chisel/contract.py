"""The chisel contract: the ``Chisel`` base class, its typed arguments and the run's context.

See the package docstring for the hooks and how arguments are taken from the command line.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import IO, TYPE_CHECKING, Any, ClassVar, Final

from ..errors import KtraceError, UsageError
from ..event import Event, RenderOptions
from ..output.format import resolve_field
from .format import Palette

if TYPE_CHECKING:
    from rich.console import Console

    from ..state.state import State


class ChiselError(KtraceError):
    """A chisel that cannot be loaded: a syntax or import error, or missing metadata."""


ARG_TYPES: Final = ("int", "string", "filter")
_FILTER_WORDS: Final = frozenset({"and", "or", "not"})
_INT_RE: Final = re.compile(r"-?\d+")


def unquote(token: str) -> str:
    """sysdig passes an argument with spaces as one token in single quotes: ``"'a and b'"``."""
    if len(token) >= 2 and token[0] == token[-1] == "'":
        return token[1:-1]
    return token


def looks_like_filter(token: str) -> bool:
    """True for a token that starts (or is) a filter expression rather than a chisel argument."""
    if any(c in token for c in "=<>!()"):
        return True
    first = token.split()[0] if token.split() else ""
    return first in _FILTER_WORDS or resolve_field(first) is not None


@dataclass(frozen=True)
class ChiselArg:
    """One declared argument. ``type`` is what ``-i`` shows (sysdig's int, string, filter);
    ``choices`` makes an optional string a keyword that only those tokens fill."""

    name: str
    description: str
    type: str = "string"
    optional: bool = False
    choices: tuple[str, ...] = ()
    default: Any = None

    def fits(self, token: str) -> bool:
        """Whether an optional argument should take this token (see the package docstring)."""
        if self.type == "int":
            return bool(_INT_RE.fullmatch(token))
        if self.choices:
            return token in self.choices
        if self.type == "filter":
            return True
        return not looks_like_filter(token)

    def convert(self, token: str, chisel: str) -> Any:
        token = unquote(token)
        if self.type == "int":
            if not _INT_RE.fullmatch(token.strip()):
                raise UsageError(f"chisel {chisel}: argument '{self.name}' must be a number, not '{token}'")
            return int(token)
        return token


@dataclass
class ChiselContext:
    """How the run looks to a chisel: -pc, -j, buffer rendering, live or not, where to write.

    ``console`` (a rich Console) decides terminal or not; tests pass one with a fixed width.
    """

    container_mode: bool = False
    json_out: bool = False
    render: RenderOptions = field(default_factory=RenderOptions)
    live: bool = False
    out: IO[str] | None = None
    console: Console | None = None

    def stream(self) -> IO[str]:
        if self.console is not None:
            return self.console.file
        return self.out if self.out is not None else sys.stdout

    def get_console(self) -> Console:
        if self.console is None:
            from rich.console import Console

            self.console = Console(file=self.stream(), highlight=False)
        return self.console

    @property
    def terminal(self) -> bool:
        return self.get_console().is_terminal

    @property
    def colors(self) -> bool:
        """Colour escapes only on a terminal: a pipe gets what sysdig prints with colours off."""
        c = self.get_console()
        return c.is_terminal and not c.no_color


Extractor = Callable[[Event], Any]


class Chisel:
    """Base of every chisel. Subclasses set the metadata and override the hooks they need.

    Construction takes the context and the parsed arguments, then calls ``on_init``: anything an
    argument changes (the filter, the fields) is settled there, before the session starts.
    """

    name: ClassVar[str] = ""
    short_description: ClassVar[str] = ""
    description: ClassVar[str] = ""
    category: ClassVar[str] = ""
    args: ClassVar[tuple[ChiselArg, ...]] = ()
    hidden: ClassVar[bool] = False

    def __init__(self, ctx: ChiselContext | None = None, args: Mapping[str, Any] | None = None) -> None:
        self.ctx = ctx if ctx is not None else ChiselContext()
        self.arg: dict[str, Any] = {a.name: a.default for a in self.args}
        self.arg.update(args or {})
        self.filter: str | None = None
        self.fields: set[str] = set()
        self.interval_ns = 0
        self.needs_cpu = False
        self.snaplen: int | None = None
        self.done = False
        self.state: State | None = None  # the session's state tables, set before the run starts
        self.live = self.ctx.live
        self.out = self.ctx.stream()
        self.on_init()

    # --- hooks ---------------------------------------------------------------------------------
    def on_init(self) -> None:
        """Settle filter, fields, interval and the like from the arguments."""

    def on_capture_start(self, live: bool) -> None:
        self.live = live

    def on_event(self, ev: Event) -> None:
        """One event that passed the filters."""

    def on_interval(self, ts_ns: int) -> None:
        """Every ``interval_ns`` of a live run."""

    def on_capture_end(self, ts_ns: int) -> None:
        """The end of the file(s), Ctrl-C, -M or -n."""

    # --- helpers -------------------------------------------------------------------------------
    def field(self, name: str) -> Extractor:
        """An extractor for a field as written in sysdig (``evt.rawarg.res``, ``proc.aname[2]``)."""
        found = resolve_field(name)
        if found is None:
            raise UsageError(f"chisel {self.name}: unknown field '{name}'; `ktrace -l` lists fields")
        fdef, arg = found
        self.fields.add(fdef.name)
        return lambda ev: fdef.extract(ev, arg)

    def print(self, line: str = "") -> None:
        self.out.write(line + "\n")

    def flush(self) -> None:
        """Live output reaches a pipe at once (``ktrace -c spy_users | grep``), not at exit."""
        if self.live:
            self.out.flush()

    def palette(self, disabled: bool = False) -> Palette:
        return Palette(self.ctx.colors and not disabled)

    @classmethod
    def check_metadata(cls, origin: str) -> None:
        """Raise ChiselError when the class lacks what -cl and -i need."""
        for attr in ("name", "short_description", "category"):
            v = getattr(cls, attr, None)
            if not isinstance(v, str) or not v:
                raise ChiselError(f"{origin}: chisel {cls.__name__} has no {attr}")
        if not isinstance(cls.args, tuple) or not all(isinstance(a, ChiselArg) for a in cls.args):
            raise ChiselError(f"{origin}: chisel {cls.name}: args must be a tuple of ChiselArg")
        for a in cls.args:
            if a.type not in ARG_TYPES:
                raise ChiselError(f"{origin}: chisel {cls.name}: argument {a.name} has unknown type {a.type!r}")

