"""The filter's syntax tree, and the field-table contract the parser resolves names against.

Nodes are frozen dataclasses that remember the 0-based column they start at, so any later stage
(type checks, pushdown, a Cython prefilter) can still point a caret at the source.  ``and``/``or``
are n-ary: ``a and b and c`` is one :class:`And` with three children; parentheses leave no node.

A :class:`Check` already carries its typed operand (``operand``): the parser converts literal
values against the field's type as it reads them, so an AST that exists is a valid one.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterator
from dataclasses import dataclass
from dataclasses import field as dc_field
from typing import Any, Protocol, TypeAlias

# --- the field-table contract -------------------------------------------------------------------


class FieldTypeLike(Protocol):
    """A member of the field table's ``FieldType`` enum; only ``name`` is read ("STR", "INT")."""

    @property
    def name(self) -> str: ...


class FieldDefLike(Protocol):
    """One row of the field table, as the filter uses it.

    ``arg`` says what may follow the name: ``""`` nothing, ``"index"`` a required ``[N]``,
    ``"index?"`` an optional ``[N]``, ``"name"`` a required ``.NAME`` or ``[NAME]``,
    ``"index_or_name"`` a required ``.NAME`` or ``[N]``.  ``extract(ev, arg)`` returns the value or
    ``None`` (``<NA>``); ``arg`` is ``None`` when the filter gave none, an ``int`` for ``[N]`` and a
    ``str`` for ``.NAME``/``[NAME]``.  A ``multi`` field used without an argument returns a list
    (any-match).  An optional ``cost: int`` attribute (default 1) orders ``and``/``or`` children.
    """

    @property
    def name(self) -> str: ...

    @property
    def type(self) -> FieldTypeLike: ...

    @property
    def arg(self) -> str: ...

    @property
    def multi(self) -> bool: ...

    def extract(self, ev: Any, arg: str | int | None, /) -> Any: ...


class FieldTable(Protocol):
    """What the parser needs of the field table: exact lookup by registered (base) name.

    A table that also has ``names() -> Iterable[str]`` (or a ``rows`` list of definitions) gets
    "did you mean" suggestions for unknown fields.
    """

    def lookup(self, name: str) -> FieldDefLike | None: ...


# --- operators ----------------------------------------------------------------------------------


class Op(enum.Enum):
    """Comparison operators; the value is the canonical spelling (``==`` is read as ``=``)."""

    EQ = "="
    NE = "!="
    LT = "<"
    LE = "<="
    GT = ">"
    GE = ">="
    CONTAINS = "contains"
    ICONTAINS = "icontains"
    BCONTAINS = "bcontains"
    BSTARTSWITH = "bstartswith"
    STARTSWITH = "startswith"
    ENDSWITH = "endswith"
    GLOB = "glob"
    IGLOB = "iglob"
    REGEX = "regex"
    IN = "in"
    INTERSECTS = "intersects"
    PMATCH = "pmatch"
    EXISTS = "exists"


LIST_OPS = frozenset({Op.IN, Op.INTERSECTS, Op.PMATCH})

# --- nodes --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FieldRef:
    """A field as written: ``proc.aname[2]`` is name ``proc.aname``, arg ``2``."""

    name: str
    arg: str | int | None
    text: str
    pos: int
    fdef: FieldDefLike = dc_field(repr=False, compare=False)

    @property
    def multi(self) -> bool:
        """True when ``extract`` returns a list: a multi field used without an argument."""
        return bool(self.fdef.multi) and self.arg is None


@dataclass(frozen=True)
class Value:
    """A literal as written: ``text`` is unescaped; ``quoted`` tells ``"1"`` from ``1``."""

    text: str
    pos: int
    quoted: bool = False


@dataclass(frozen=True)
class Check:
    """``field op values``: ``values`` is empty for ``exists``, one item for comparisons, the list
    for ``in``/``intersects``/``pmatch``.  ``operand`` is the typed constant made from the values
    (see :mod:`tracer.filter.checks`)."""

    field: FieldRef
    op: Op
    values: tuple[Value, ...]
    pos: int
    op_pos: int
    operand: Any = dc_field(default=None, repr=False, compare=False)


@dataclass(frozen=True)
class Not:
    operand: Node
    pos: int


@dataclass(frozen=True)
class And:
    children: tuple[Node, ...]
    pos: int


@dataclass(frozen=True)
class Or:
    children: tuple[Node, ...]
    pos: int


Node: TypeAlias = Check | Not | And | Or

# --- helpers over trees -------------------------------------------------------------------------


def walk(node: Node) -> Iterator[Node]:
    """Every node of the tree, parents before children."""
    stack: list[Node] = [node]
    while stack:
        n = stack.pop()
        yield n
        if isinstance(n, Not):
            stack.append(n.operand)
        elif isinstance(n, (And, Or)):
            stack.extend(reversed(n.children))


def checks(node: Node) -> Iterator[Check]:
    """Every check of the tree, left to right."""
    for n in walk(node):
        if isinstance(n, Check):
            yield n


def conjuncts(node: Node) -> tuple[Node, ...]:
    """The top-level ``and`` terms (one term when the root is not an ``and``).

    Each term must hold for an event to match, so a prefilter may evaluate any subset of them
    first (on evt.type, evt.dir, pid, tid, comm) and leave the rest to the compiled predicate.
    """
    if isinstance(node, And):
        out: list[Node] = []
        for child in node.children:
            out.extend(conjuncts(child))
        return tuple(out)
    return (node,)


# Bare values that read back as themselves; anything else is rendered quoted.
_BARE_SAFE = re.compile(r"[A-Za-z0-9_./:*?+@%~^$\[\]{}|-]+")
_KEYWORDS = frozenset({"and", "or", "not"})


def render_value(text: str) -> str:
    """A literal as filter text: bare when it reads back unchanged, else double-quoted."""
    if _BARE_SAFE.fullmatch(text) and text not in _KEYWORDS:
        return text
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def render_check(c: Check) -> str:
    """One check as filter text."""
    if c.op is Op.EXISTS:
        return f"{c.field.text} exists"
    if c.op in LIST_OPS:
        return f"{c.field.text} {c.op.value} ({', '.join(render_value(v.text) for v in c.values)})"
    return f"{c.field.text} {c.op.value} {render_value(c.values[0].text)}"


def render(node: Node) -> str:
    """The tree as filter text that parses back to an equal tree (parenthesised where needed)."""
    if isinstance(node, Check):
        return render_check(node)
    if isinstance(node, Not):
        return f"not {_group(node.operand)}"
    word = " and " if isinstance(node, And) else " or "
    return word.join(_group(c) for c in node.children)


def _group(node: Node) -> str:
    return render(node) if isinstance(node, (Check, Not)) else f"({render(node)})"


def field_names(node: Node) -> frozenset[str]:
    """The base names of the fields a tree reads (``proc.aname[2]`` counts as ``proc.aname``)."""
    return frozenset(c.field.name for c in checks(node))
