"""What any event matching a filter must satisfy, in terms the probe can check in the kernel.

From a filter's AST, :func:`derive` computes, for each of a few *dimensions* (evt.type, evt.dir,
proc.pid, thread.tid, the comm behind proc.name, container.id, container.name, k8s.pod.name), a
:class:`ValueSet` every matching event's value must be in, or ``None`` when the filter does not
restrict it.  The probe (or a user-space prefilter) may drop any event a dimension does not
admit, and the compiled predicate still runs on what is left: pushdown only needs to be *sound*
(never exclude an event that could match), not exact.

How sets combine: a check ``f = v`` / ``f in (...)`` gives ``{v...}``; ``f != v`` gives
"everything but v" (a check on a missing value is false, so the complement is sound); ``or``
takes the union per dimension, ``and`` the intersection; a check on any other field leaves every
dimension unrestricted.  ``not`` is pushed inward (De Morgan); a negated check restricts its field
only when the field is in ``always_present`` (``not (f = v)`` also matches events where ``f`` is
``<NA>``, so its complement is sound only for fields that are never missing).

``proc.name`` is compared in the kernel against the 15-character comm, so its values are cut to
15 characters (``proc.name=averyveryverylongname`` pushes ``averyveryverylo``), and only
positive sets are pushed: "every comm but x" could drop a process whose long name merely shares
x's first 15 characters.  This assumes proc.name's first 15 characters equal the comm the
kernel sees for every thread of the process.

:func:`merge` combines two pushdowns that must both hold (the user's filter and a chisel's).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass, fields, replace
from typing import Any, Final, Generic, TypeVar

from tracer.filter.ast import And, Check, Node, Not, Op, Or, conjuncts
from tracer.filter.checks import Kind, kind_of, value_test

T = TypeVar("T", str, int)

COMM_LEN: Final = 15  # TASK_COMM_LEN - 1: the kernel keeps this many characters of a comm

# Field name -> Pushdown attribute.
DIMENSIONS: Final = {
    "evt.type": "evt_types",
    "evt.dir": "dirs",
    "proc.pid": "pids",
    "thread.tid": "tids",
    "proc.name": "comms",
    "container.id": "container_ids",
    "fd.type": "fd_types",
    "container.name": "container_names",
    "k8s.pod.name": "pod_names",
}

# Dimensions only the live run's start turns into something checkable (container names and pod
# names into cgroup ids): a filter on them is never exact for the scanner.
RESOLVED_LATER: Final = frozenset({"container.name", "k8s.pod.name"})

# Fields every event has (from the record header); the lead's table must never return <NA> for
# them, or pushing a negated check on them would be unsound.
ALWAYS_PRESENT: Final = frozenset({"evt.type", "evt.dir", "proc.pid", "thread.tid"})

# Complete value sets: a check on these fields becomes the set of values it accepts.
DEFAULT_UNIVERSES: Final[Mapping[str, Collection[Any]]] = {"evt.dir": ("<", ">")}


@dataclass(frozen=True)
class ValueSet(Generic[T]):
    """``values`` (``exclude=False``) or every value but ``values`` (``exclude=True``)."""

    values: frozenset[T]
    exclude: bool = False

    def admits(self, value: T) -> bool:
        return (value in self.values) != self.exclude

    def union(self, other: ValueSet[T]) -> ValueSet[T] | None:
        """Values either set admits; ``None`` when that is everything."""
        if not self.exclude and not other.exclude:
            return ValueSet(self.values | other.values)
        if self.exclude and other.exclude:
            out = self.values & other.values
        elif self.exclude:
            out = self.values - other.values
        else:
            out = other.values - self.values
        return ValueSet(out, exclude=True) if out else None

    def intersect(self, other: ValueSet[T]) -> ValueSet[T]:
        """Values both sets admit."""
        if not self.exclude and not other.exclude:
            return ValueSet(self.values & other.values)
        if self.exclude and other.exclude:
            return ValueSet(self.values | other.values, exclude=True)
        if self.exclude:
            return ValueSet(other.values - self.values)
        return ValueSet(self.values - other.values)

    def describe(self) -> str:
        items = ", ".join(sorted(str(v) for v in self.values))
        return f"{'not in' if self.exclude else 'in'} ({items})"


def _union(a: ValueSet[Any] | None, b: ValueSet[Any] | None) -> ValueSet[Any] | None:
    if a is None or b is None:
        return None
    return a.union(b)


def _intersect(a: ValueSet[Any] | None, b: ValueSet[Any] | None) -> ValueSet[Any] | None:
    if a is None:
        return b
    if b is None:
        return a
    return a.intersect(b)


@dataclass(frozen=True)
class Pushdown:
    """Per dimension, the values a matching event can have; ``None`` = unrestricted.

    ``comms`` holds comm values (at most 15 characters), never an exclusion; ``dirs`` is always a
    plain set of ``"<"``/``">"``.
    """

    evt_types: ValueSet[str] | None = None
    dirs: ValueSet[str] | None = None
    pids: ValueSet[int] | None = None
    tids: ValueSet[int] | None = None
    comms: ValueSet[str] | None = None
    container_ids: ValueSet[str] | None = None
    fd_types: ValueSet[str] | None = None  # user space only: the kernel does not know fd types
    # Turned into containers, then cgroup ids, when a live run starts (tracer.enrich.cgroupid).
    container_names: ValueSet[str] | None = None
    pod_names: ValueSet[str] | None = None

    @property
    def unrestricted(self) -> bool:
        return all(getattr(self, f.name) is None for f in fields(self))

    @property
    def matches_nothing(self) -> bool:
        """True when some dimension admits no value at all: no event can match."""
        return any(s is not None and not s.exclude and not s.values
                   for s in (getattr(self, f.name) for f in fields(self)))

    def admits(self, *, evt_type: str | None = None, dir: str | None = None,
               pid: int | None = None, tid: int | None = None, comm: str | None = None,
               container_id: str | None = None, fd_type: str | None = None,
               container_name: str | None = None, pod_name: str | None = None) -> bool:
        """Whether an event with these values passes; ``None`` (not known) passes a dimension."""
        pairs: tuple[tuple[ValueSet[Any] | None, Any], ...] = (
            (self.evt_types, evt_type), (self.dirs, dir), (self.pids, pid), (self.tids, tid),
            (self.comms, None if comm is None else comm[:COMM_LEN]),
            (self.container_ids, container_id), (self.fd_types, fd_type),
            (self.container_names, container_name), (self.pod_names, pod_name))
        return all(s is None or v is None or s.admits(v) for s, v in pairs)

    def merge(self, other: Pushdown) -> Pushdown:
        """Both must hold: the intersection, dimension by dimension."""
        return merge(self, other)

    def describe(self) -> list[str]:
        """One line per restricted dimension (none: one line saying so)."""
        names = {attr: name for name, attr in DIMENSIONS.items()}
        lines = []
        for f in fields(self):
            s = getattr(self, f.name)
            if s is not None:
                label = "proc.name (comm)" if f.name == "comms" else names[f.name]
                lines.append(f"{label} {s.describe()}")
        return lines or ["none: every event reaches user space"]


UNRESTRICTED: Final = Pushdown()


def merge(a: Pushdown, b: Pushdown) -> Pushdown:
    """The pushdown of ``(a) and (b)``: what both filters require."""
    return Pushdown(**{f.name: _intersect(getattr(a, f.name), getattr(b, f.name))
                       for f in fields(Pushdown)})


_Dims = dict[str, ValueSet[Any]]  # attribute -> set; a missing key is unrestricted


def derive(node: Node, *, always_present: Iterable[str] = ALWAYS_PRESENT,
           universes: Mapping[str, Collection[Any]] | None = None) -> Pushdown:
    """The pushdown of a parsed filter.

    Args:
        node: the filter's AST (``CompiledFilter.ast``).
        always_present: fields that never extract ``<NA>``; negated checks on them are pushed.
        universes: for a field name, every value it can take (default: evt.dir's ``<``/``>``).
            A check with any operator on such a field becomes the set of values it accepts, so
            ``evt.type startswith sched`` can be pushed if evt.type's universe is given.  The
            universe must be complete, or pushdown is unsound.
    """
    ctx = _Context(frozenset(always_present), {**DEFAULT_UNIVERSES, **(universes or {})})
    dims = ctx.derive(node, negated=False)
    if "dirs" in dims:
        dims["dirs"] = _within(dims["dirs"], DEFAULT_UNIVERSES["evt.dir"])
    return replace(UNRESTRICTED, **dims)


def exact(node: Node) -> bool:
    """True when the pushdown of ``node`` says everything about it: the filter is an ``and`` of
    =, != and in checks on the dimension fields (proc.name values within the 15 characters of a
    comm; an ``or`` of such checks on one field counts as an ``in``), and of any check on a property
    of the event type, so an event every dimension admits, with every value known, matches."""
    return all(_exact_term(c) for c in conjuncts(node))


def _exact_term(c: Node) -> bool:
    if isinstance(c, Or):
        names = {x.field.name for x in c.children if isinstance(x, Check)}
        return len(names) == 1 and all(
            isinstance(x, Check) and x.op in (Op.EQ, Op.IN) and _exact_term(x) for x in c.children)
    if not isinstance(c, Check) or c.field.arg is not None:
        return False
    if _per_event(c) is not None:
        return True
    if c.field.name not in DIMENSIONS or c.field.name in RESOLVED_LATER:
        return False  # RESOLVED_LATER: no per-thread check in the scanner for these
    if c.op not in (Op.EQ, Op.NE, Op.IN):
        return False
    if c.field.name == "proc.name":
        values = c.operand if c.op is Op.IN else {c.operand}
        if c.op is Op.NE or any(len(v) > COMM_LEN for v in values):
            return False
    return True


def _per_event(c: Check) -> Mapping[str, Any] | None:
    """The field's value for every event type, when the field table gives one (``by_event``)."""
    if c.field.arg is not None or c.field.multi:
        return None
    per: Mapping[str, Any] | None = getattr(c.field.fdef, "by_event", None)
    return per


def _within(s: ValueSet[Any], universe: Collection[Any]) -> ValueSet[Any]:
    """The plain set of the universe's values ``s`` admits."""
    return ValueSet(frozenset(u for u in universe if s.admits(u)))


@dataclass(frozen=True)
class _Context:
    always_present: frozenset[str]
    universes: Mapping[str, Collection[Any]]

    def derive(self, node: Node, negated: bool) -> _Dims:
        if isinstance(node, Check):
            return self.check(node, negated)
        if isinstance(node, Not):
            return self.derive(node.operand, not negated)
        parts = [self.derive(c, negated) for c in node.children]
        # De Morgan: a negated "or" is an "and" of negations, and the other way round.
        conjunctive = isinstance(node, And) != negated
        assert isinstance(node, (And, Or))
        return _conjoin(parts) if conjunctive else _disjoin(parts)

    def check(self, c: Check, negated: bool) -> _Dims:
        name = c.field.name
        per_event = _per_event(c)
        if per_event is not None:
            # A property of the event type (evt.is_io, evt.category...): the check is the set of
            # event types it holds for, over the field's complete table.
            test = value_test(kind_of(c.field), c.op, c.operand)
            types = frozenset(t for t, v in per_event.items() if v is not None and test(v) != negated)
            return {"evt_types": ValueSet(types)}
        dim = DIMENSIONS.get(name)
        kind = kind_of(c.field)
        if dim is None or c.field.arg is not None or c.field.multi or \
                kind not in (Kind.STRING, Kind.NUMBER):
            return {}
        if negated and name not in self.always_present:
            return {}
        accepted = self.accepted(c)
        if accepted is None:
            return {}
        s = accepted
        if negated:
            s = ValueSet(s.values, exclude=not s.exclude)
        universe = self.universes.get(name)
        if universe is not None:
            s = _within(s, universe)
        if dim == "comms":
            if s.exclude:
                return {}
            s = ValueSet(frozenset(v[:COMM_LEN] for v in s.values))
        return {dim: s}

    def accepted(self, c: Check) -> ValueSet[Any] | None:
        """The values for which the check (not negated) is true, when that is known."""
        if c.op is Op.EQ:
            return ValueSet(frozenset({c.operand}))
        if c.op in (Op.IN, Op.INTERSECTS):
            return ValueSet(frozenset(c.operand))
        if c.op is Op.NE:
            return ValueSet(frozenset({c.operand}), exclude=True)
        universe = self.universes.get(c.field.name)
        if universe is None:
            return None
        test: Callable[[Any], bool] = value_test(kind_of(c.field), c.op, c.operand)
        return ValueSet(frozenset(u for u in universe if test(u)))


def _conjoin(parts: list[_Dims]) -> _Dims:
    out: _Dims = {}
    for p in parts:
        for dim, s in p.items():
            both = _intersect(out.get(dim), s)
            assert both is not None
            out[dim] = both
    return out


def _disjoin(parts: list[_Dims]) -> _Dims:
    out = dict(parts[0])
    for p in parts[1:]:
        for dim in list(out):
            either = _union(out[dim], p.get(dim))
            if either is None:
                del out[dim]
            else:
                out[dim] = either
    return out
