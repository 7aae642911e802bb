"""Compile a parsed filter into a fast predicate over events.

Semantics (what ``CompiledFilter.match(ev)`` returns):

- A field is read with ``fdef.extract(ev, arg)``; ``None`` is ``<NA>``.  **Every check on
  ``<NA>`` is false**, whatever the operator, ``!=`` and ``exists`` included (sysdig: a check on
  a missing field fails).  ``not`` is plain negation, so ``not (x = y)`` is true on ``<NA>``.
- ``=`` (also spelled ``==``) and ``!=`` compare for equality; ``a != v`` is exactly
  ``a exists and not (a = v)``.  ``< <= > >=`` compare numbers.
- ``contains``/``startswith``/``endswith`` are case-sensitive; ``icontains`` lowercases both
  sides.  ``bcontains``/``bstartswith`` take hex bytes and compare against the value's bytes
  (UTF-8 for strings).
- ``glob`` is :func:`fnmatch.fnmatchcase` (whole value, ``*`` crosses ``/``); ``iglob`` is the
  same ignoring case.  ``regex`` is :func:`re.search` (unanchored), compiled once.
- ``pmatch (p, ...)`` is a path-prefix match on ``/`` boundaries: ``/etc`` matches ``/etc`` and
  ``/etc/passwd``, not ``/etcd``; ``/`` matches every absolute path.
- ``in (v, ...)`` is membership; ``intersects (v, ...)`` is the same test (for a multi-valued
  field: some value is in the list).
- IP fields compare as addresses (:mod:`ipaddress`; IPv4-mapped IPv6 equals its IPv4 address);
  a network operand (``fd.ip=10.0.0.0/8``, ``fd.net=...``) means "in that network".
- A value of the wrong type for an ordering, text or membership operator (a string where a
  number is expected, say) counts as ``<NA>`` for that check: the predicate never raises on odd
  values (for ``=``/``!=`` it is simply unequal).
- A multi-valued field (a ``multi`` field without argument, e.g. ``proc.aname``: every ancestor)
  extracts a list.  A check is true when **any** value passes, except ``!=``, which is true when
  **no** value equals the operand (``proc.aname != sshd``: not started under sshd).  An empty list
  (or one of only ``None``) is ``<NA>``.

All checks are pure, so ``and``/``or`` children are evaluated cheapest first (a static cost from
the operator and the field's optional ``cost`` attribute); ``f = a or f = b`` is merged into one
set lookup.  Nothing is parsed or converted per event.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final, final

from tracer.filter.ast import (
    And,
    Check,
    FieldTable,
    Node,
    Not,
    Op,
    Or,
    Value,
    field_names,
    render_check,
)
from tracer.filter.checks import IPKey, Kind, ip_key, ip_key_test, kind_of, value_test
from tracer.filter.parser import parse
from tracer.filter.pushdown import Pushdown, derive

Predicate = Callable[[Any], bool]

_OP_COST: Final = {
    Op.REGEX: 8, Op.IGLOB: 5, Op.GLOB: 4, Op.ICONTAINS: 3, Op.PMATCH: 3, Op.BCONTAINS: 3,
    Op.CONTAINS: 2, Op.STARTSWITH: 2, Op.ENDSWITH: 2, Op.BSTARTSWITH: 2,
}
_HASHABLE_KINDS: Final = frozenset({Kind.STRING, Kind.BYTES, Kind.NUMBER, Kind.BOOL})


@final
class CompiledFilter:
    """A filter ready to run: ``match(ev)`` is the predicate (a plain closure, no method lookup
    per event), ``ast`` the parsed tree, ``fields`` the base names of the fields it reads,
    ``pushdown`` what the kernel may pre-filter on."""

    __slots__ = ("ast", "fields", "match", "pushdown", "text")

    def __init__(self, text: str, ast: Node) -> None:
        self.text = text
        self.ast = ast
        self.fields: frozenset[str] = field_names(ast)
        self.pushdown: Pushdown = derive(ast)
        self.match: Predicate = build(ast)

    def explain(self) -> str:
        """The parsed tree, one node per line (checks with their cost), then the pushdown."""
        lines: list[str] = []
        _explain(self.ast, 0, lines)
        lines.append("pushdown:")
        lines.extend("  " + line for line in self.pushdown.describe())
        return "\n".join(lines)

    def __repr__(self) -> str:
        return f"CompiledFilter({self.text!r})"


def compile_filter(text: str, table: FieldTable) -> CompiledFilter:
    """Parse, type-check and compile ``text``; raise :class:`~tracer.errors.FilterError`."""
    return CompiledFilter(text, parse(text, table))


def compile_ast(node: Node, text: str = "") -> CompiledFilter:
    """Compile an already parsed tree (or part of one, e.g. the conjuncts a prefilter leaves)."""
    return CompiledFilter(text, node)


# --- cost ---------------------------------------------------------------------------------------


def cost(node: Node) -> int:
    """A static estimate of evaluation cost, used to order ``and``/``or`` children."""
    if isinstance(node, Check):
        c = int(getattr(node.field.fdef, "cost", 1)) + _OP_COST.get(node.op, 1)
        if kind_of(node.field) is Kind.IP:
            c += 2
        return c * 4 if node.field.multi else c
    if isinstance(node, Not):
        return cost(node.operand)
    return sum(cost(c) for c in node.children)


def _explain(node: Node, depth: int, lines: list[str]) -> None:
    pad = "  " * depth
    if isinstance(node, Check):
        lines.append(f"{pad}{render_check(node)}  [cost {cost(node)}]")
    elif isinstance(node, Not):
        lines.append(f"{pad}not")
        _explain(node.operand, depth + 1, lines)
    else:
        lines.append(f"{pad}{'and' if isinstance(node, And) else 'or'}")
        for child in node.children:
            _explain(child, depth + 1, lines)


# --- building closures --------------------------------------------------------------------------


def build(node: Node) -> Predicate:
    """The predicate of a tree."""
    if isinstance(node, Check):
        return _check(node)
    if isinstance(node, Not):
        inner = build(node.operand)
        return lambda ev: not inner(ev)
    children = _flatten(node)
    if isinstance(node, Or):
        children = _merge_equalities(children)
    preds = [build(c) for c in sorted(children, key=cost)]
    return _all(preds) if isinstance(node, And) else _any(preds)


def _flatten(node: And | Or) -> list[Node]:
    """``(a and b) and c`` is ``a and b and c``: one level to sort."""
    out: list[Node] = []
    for c in node.children:
        if type(c) is type(node):
            assert isinstance(c, (And, Or))
            out.extend(_flatten(c))
        else:
            out.append(c)
    return out


def _mergeable(node: Node) -> bool:
    return (isinstance(node, Check) and node.op in (Op.EQ, Op.IN, Op.INTERSECTS)
            and not node.field.multi and kind_of(node.field) in _HASHABLE_KINDS)


def _merge_equalities(children: list[Node]) -> list[Node]:
    """``f = a or f in (b, c)`` becomes ``f in (a, b, c)``: one hash lookup, same meaning."""
    groups: dict[tuple[str, str | int | None], list[Check]] = {}
    for c in children:
        if _mergeable(c):
            assert isinstance(c, Check)
            groups.setdefault((c.field.name, c.field.arg), []).append(c)
    out: list[Node] = []
    done: set[tuple[str, str | int | None]] = set()
    for c in children:
        if not _mergeable(c):
            out.append(c)
            continue
        assert isinstance(c, Check)
        key = (c.field.name, c.field.arg)
        group = groups[key]
        if len(group) == 1:
            out.append(c)
        elif key not in done:
            done.add(key)
            values: tuple[Value, ...] = tuple(v for g in group for v in g.values)
            operand: frozenset[Any] = frozenset().union(
                *({g.operand} if g.op is Op.EQ else g.operand for g in group))
            out.append(Check(c.field, Op.IN, values, c.pos, c.op_pos, operand))
    return out


def _all(preds: list[Predicate]) -> Predicate:
    if len(preds) == 1:
        return preds[0]
    if len(preds) == 2:
        a, b = preds
        return lambda ev: a(ev) and b(ev)
    if len(preds) == 3:
        a, b, c = preds
        return lambda ev: a(ev) and b(ev) and c(ev)
    ps = tuple(preds)

    def all_of(ev: Any) -> bool:
        for p in ps:  # noqa: SIM110 -- a plain loop beats all() and its generator per event
            if not p(ev):
                return False
        return True

    return all_of


def _any(preds: list[Predicate]) -> Predicate:
    if len(preds) == 1:
        return preds[0]
    if len(preds) == 2:
        a, b = preds
        return lambda ev: a(ev) or b(ev)
    if len(preds) == 3:
        a, b, c = preds
        return lambda ev: a(ev) or b(ev) or c(ev)
    ps = tuple(preds)

    def any_of(ev: Any) -> bool:
        for p in ps:  # noqa: SIM110 -- a plain loop beats any() and its generator per event
            if p(ev):
                return True
        return False

    return any_of


def _check(c: Check) -> Predicate:
    extract = c.field.fdef.extract
    arg = c.field.arg
    kind = kind_of(c.field)
    op, x = c.op, c.operand
    if c.field.multi:
        return _multi(c, kind)
    if op is Op.EXISTS:
        if kind is Kind.IP:
            return lambda ev: (v := extract(ev, arg)) is not None and ip_key(v) is not None
        return lambda ev: extract(ev, arg) is not None
    if kind is not Kind.IP:
        # Fast paths for the common operators: one call, one comparison.  ``x`` is never None,
        # so ``== x`` is already false on <NA>.  (try costs nothing in 3.11 until it catches.)
        if op is Op.EQ:
            return lambda ev: bool(extract(ev, arg) == x)
        if op is Op.NE:
            def ne(ev: Any) -> bool:
                v = extract(ev, arg)
                return v is not None and bool(v != x)
            return ne
        if op in (Op.IN, Op.INTERSECTS) and kind in _HASHABLE_KINDS:
            def member(ev: Any) -> bool:
                try:
                    return extract(ev, arg) in x
                except TypeError:  # an unhashable value: of the wrong type
                    return False
            return member
        if op is Op.GT:
            def gt(ev: Any) -> bool:
                v = extract(ev, arg)
                try:
                    return v is not None and bool(v > x)
                except TypeError:
                    return False
            return gt
        if op is Op.LT:
            def lt(ev: Any) -> bool:
                v = extract(ev, arg)
                try:
                    return v is not None and bool(v < x)
                except TypeError:
                    return False
            return lt
    test = value_test(kind, op, x)

    def check(ev: Any) -> bool:
        v = extract(ev, arg)
        try:
            return v is not None and test(v)
        except (TypeError, AttributeError):  # a value of the wrong type counts as missing
            return False

    return check


def _multi(c: Check, kind: Kind) -> Predicate:
    extract = c.field.fdef.extract
    arg = c.field.arg
    if kind is Kind.IP:
        return _multi_ip(c)
    if c.op is Op.EXISTS:
        return lambda ev: any(v is not None for v in extract(ev, arg) or ())
    if c.op is Op.NE:
        eq = value_test(kind, Op.EQ, c.operand)

        def none_equal(ev: Any) -> bool:
            seen = False
            for v in extract(ev, arg) or ():
                if v is not None:
                    if eq(v):
                        return False
                    seen = True
            return seen

        return none_equal
    test = value_test(kind, c.op, c.operand)

    def any_passes(ev: Any) -> bool:
        for v in extract(ev, arg) or ():
            try:
                if v is not None and test(v):
                    return True
            except (TypeError, AttributeError):  # a value of the wrong type counts as missing
                pass
        return False

    return any_passes


def _multi_ip(c: Check) -> Predicate:
    """A multi-valued IP field (fd.ip: either end); a value that is not an address is missing."""
    extract = c.field.fdef.extract
    arg = c.field.arg

    def keys(ev: Any) -> list[IPKey]:
        return [k for v in extract(ev, arg) or () if (k := ip_key(v)) is not None]

    if c.op is Op.EXISTS:
        return lambda ev: bool(keys(ev))
    test = ip_key_test(c.operand)
    if c.op is Op.NE:
        return lambda ev: bool(ks := keys(ev)) and not any(test(k) for k in ks)
    return lambda ev: any(test(k) for k in keys(ev))
