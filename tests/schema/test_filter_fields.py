"""The filter over the real field table: checks on properties of the event type become event-type
sets (pushdown), judged against the event table itself."""

from __future__ import annotations

import pytest

from tracer.filter import compile_filter
from tracer.filter.pushdown import exact
from tracer.schema.events import SYSCALLS, event_names
from tracer.schema.fields import FIELDS


def _io_names() -> set[str]:
    return {i.name for i in SYSCALLS if i is not None and ("io_read" in i.flags or "io_write" in i.flags)}


@pytest.mark.parametrize(("text", "expected"), [
    ("evt.is_io=true", _io_names()),
    ("evt.is_io=false", set(event_names()) - _io_names()),
    ("not evt.is_io=true", set(event_names()) - _io_names()),
    ("evt.category=net and evt.is_io_read=true",
     {i.name for i in SYSCALLS if i is not None and i.category == "net" and "io_read" in i.flags}),
])
def test_event_type_properties_push_down(text: str, expected: set[str]) -> None:
    pd = compile_filter(text, FIELDS).pushdown
    assert pd.evt_types is not None
    admitted = {n for n in event_names() if pd.evt_types.admits(n)}
    assert admitted == expected


@pytest.mark.parametrize(("text", "is_exact"), [
    ("(fd.type=ipv4 or fd.type=ipv6) and evt.is_io=true", True),  # topconns' own filter
    ("fd.type=file and evt.is_io=true", True),
    ("evt.type=read and proc.name=nginx", True),
    ("(fd.type=ipv4 or proc.name=x) and evt.is_io=true", False),  # an or across fields
    ("fd.name contains /etc", False),
    ("proc.name=averyveryverylongname", False),  # longer than a comm
])
def test_exactness(text: str, is_exact: bool) -> None:
    assert exact(compile_filter(text, FIELDS).ast) is is_exact
