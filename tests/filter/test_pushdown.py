"""Pushdown: what a filter lets the kernel drop."""

from __future__ import annotations

from typing import Any

import pytest
from filter_fakes import TABLE

from tracer.filter import UNRESTRICTED, Pushdown, ValueSet, compile_filter, derive, merge, parse


def only(*values: Any) -> ValueSet[Any]:
    return ValueSet(frozenset(values))


def all_but(*values: Any) -> ValueSet[Any]:
    return ValueSet(frozenset(values), exclude=True)


# (filter, the Pushdown fields that are restricted; all others must be None)
PUSHDOWN: list[tuple[str, dict[str, ValueSet[Any]]]] = [
    ("evt.type=open", {"evt_types": only("open")}),
    ("evt.type==open", {"evt_types": only("open")}),
    ("evt.type in (open, read)", {"evt_types": only("open", "read")}),
    ("evt.type!=read", {"evt_types": all_but("read")}),
    ("evt.type=open or evt.type=read", {"evt_types": only("open", "read")}),
    ("evt.type=open and evt.type=read", {"evt_types": only()}),
    ("evt.type in (open, read) and evt.type!=read", {"evt_types": only("open")}),
    ("evt.type!=open and evt.type!=read", {"evt_types": all_but("open", "read")}),
    ("evt.type!=open or evt.type!=read", {}),
    ("evt.type!=open or evt.type=read", {"evt_types": all_but("open")}),
    ("evt.type=open or proc.name=x", {}),
    ("not evt.type=open", {"evt_types": all_but("open")}),
    ("not evt.type in (open, read)", {"evt_types": all_but("open", "read")}),
    ("not (evt.type=open or evt.type=read)", {"evt_types": all_but("open", "read")}),
    ("not (evt.type=open and proc.pid=1)", {}),
    ("not evt.type!=open", {"evt_types": only("open")}),
    ("not not evt.type=open", {"evt_types": only("open")}),
    ("evt.type contains open", {}),
    ("evt.type exists", {}),
    ("proc.name=nginx", {"comms": only("nginx")}),
    ("proc.name=averyveryverylongname", {"comms": only("averyveryverylo")}),
    ("proc.name in (a, averyveryverylongname)", {"comms": only("a", "averyveryverylo")}),
    ("proc.name!=nginx", {}),
    ("not proc.name=nginx", {}),
    ("proc.name startswith ng", {}),
    ("proc.pid=1 and thread.tid in (2, 3)", {"pids": only(1), "tids": only(2, 3)}),
    ("proc.pid=0x10", {"pids": only(16)}),
    ("proc.pid!=5", {"pids": all_but(5)}),
    ("not proc.pid in (5, 6)", {"pids": all_but(5, 6)}),
    ("proc.pid>5", {}),
    ("container.id=abc", {"container_ids": only("abc")}),
    ("container.id!=host", {"container_ids": all_but("host")}),
    ("not container.id=abc", {}),  # container.id may be <NA>
    ("evt.dir=<", {"dirs": only("<")}),
    ("evt.dir!=<", {"dirs": only(">")}),
    ("not evt.dir=<", {"dirs": only(">")}),
    ("evt.dir=x", {"dirs": only()}),
    ("evt.dir in (<, >)", {"dirs": only("<", ">")}),
    ("proc.aname=bash", {}),
    ("proc.aname[0]=bash", {}),
    ("evt.type=open and (proc.pid=1 or proc.pid=2)",
     {"evt_types": only("open"), "pids": only(1, 2)}),
    ("(evt.type=open and proc.pid=1) or (evt.type=read and proc.pid=2)",
     {"evt_types": only("open", "read"), "pids": only(1, 2)}),
    ("(evt.type=open and proc.pid=1) or evt.type=read",
     {"evt_types": only("open", "read")}),
    ("evt.type=open and evt.dir=< and proc.name=curl and container.id=c1 and thread.tid=9",
     {"evt_types": only("open"), "dirs": only("<"), "comms": only("curl"),
      "container_ids": only("c1"), "tids": only(9)}),
]


@pytest.mark.parametrize(("text", "expected"), PUSHDOWN)
def test_pushdown(text: str, expected: dict[str, ValueSet[Any]]) -> None:
    assert compile_filter(text, TABLE).pushdown == Pushdown(**expected)


def test_merge_is_intersection() -> None:
    user = derive(parse("evt.type in (a, b) and proc.pid!=1", TABLE))
    chisel = derive(parse("evt.type in (b, c) and proc.pid!=2", TABLE))
    assert merge(user, chisel) == Pushdown(evt_types=only("b"), pids=all_but(1, 2))
    assert user.merge(UNRESTRICTED) == user
    assert merge(UNRESTRICTED, chisel) == chisel
    assert merge(UNRESTRICTED, UNRESTRICTED).unrestricted


def test_admits() -> None:
    pd = compile_filter("evt.type in (open, read) and proc.name=averyveryverylongname "
                        "and proc.pid!=1", TABLE).pushdown
    assert pd.admits(evt_type="open", comm="averyveryverylo", pid=2)
    assert pd.admits(evt_type="open", comm="averyveryverylongname")
    assert not pd.admits(evt_type="close")
    assert not pd.admits(pid=1)
    assert not pd.admits(comm="averyveryveryl")
    assert pd.admits()  # nothing known: admitted
    assert not pd.matches_nothing
    assert compile_filter("evt.type=a and evt.type=b", TABLE).pushdown.matches_nothing


def test_universe_resolves_other_operators() -> None:
    types = ["open", "openat", "read", "close"]
    tree = parse("evt.type startswith open or evt.type glob 'cl*'", TABLE)
    pd = derive(tree, universes={"evt.type": types})
    assert pd.evt_types == only("open", "openat", "close")
    pd = derive(parse("evt.type!=read", TABLE), universes={"evt.type": types})
    assert pd.evt_types == only("open", "openat", "close")
    pd = derive(parse("not evt.type contains en", TABLE), universes={"evt.type": types})
    assert pd.evt_types == only("read", "close")


def test_always_present_is_configurable() -> None:
    tree = parse("not evt.type=open", TABLE)
    assert derive(tree, always_present=()).evt_types is None
    tree = parse("not container.id=abc", TABLE)
    assert derive(tree, always_present={"container.id"}).container_ids == all_but("abc")


def test_describe() -> None:
    pd = compile_filter("evt.type!=read and proc.name=nginx", TABLE).pushdown
    assert pd.describe() == ["evt.type not in (read)", "proc.name (comm) in (nginx)"]
    assert UNRESTRICTED.describe() == ["none: every event reaches user space"]


@pytest.mark.parametrize(("a", "b", "union", "inter"), [
    (only(1, 2), only(2, 3), only(1, 2, 3), only(2)),
    (only(1, 2), all_but(2, 3), all_but(3), only(1)),
    (all_but(1, 2), only(2, 3), all_but(1), only(3)),
    (all_but(1, 2), all_but(2, 3), all_but(2), all_but(1, 2, 3)),
    (only(1), all_but(1), None, only()),
])
def test_value_set_algebra(a: ValueSet[int], b: ValueSet[int], union: ValueSet[int] | None,
                           inter: ValueSet[int]) -> None:
    assert a.union(b) == union
    assert a.intersect(b) == inter
    for v in range(5):
        assert (union is None or union.admits(v)) == (a.admits(v) or b.admits(v))
        assert inter.admits(v) == (a.admits(v) and b.admits(v))
