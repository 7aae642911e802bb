"""sysdig's units and column helpers, as tables of (input, expected)."""

from __future__ import annotations

import json

import pytest

from tracer.chisel import (
    TableSpec,
    extend_string,
    format_bytes,
    format_time_interval,
    json_table,
    lua_str,
    plain_table,
)


@pytest.mark.parametrize(("value", "text"), [
    (0, "0B"),
    (1, "1B"),
    (1024, "1024B"),  # a unit switches only above 1024^k
    (1025, "1.00KB"),
    (1536, "1.50KB"),
    (1024**2, "1024.00KB"),
    (1024**2 + 1, "1.00M"),
    (5 * 1024**3 // 2, "2.50G"),
    (3 * 1024**4, "3.00T"),
    (2 * 1024**5, "2.00P"),
    (2 * 1024**6, "2048.00P"),
])
def test_format_bytes(value: int, text: str) -> None:
    assert format_bytes(value) == text


@pytest.mark.parametrize(("ns", "text"), [
    (0, "0ns"),
    (999, "999ns"),
    (1_000, "1.00us"),
    (1_505, "1.50us"),
    (9_999, "9.99us"),
    (10_000, "10us"),
    (999_999, "999us"),
    (1_000_000, "1.00ms"),
    (1_234_567, "1.23ms"),
    (9_999_999, "9.99ms"),
    (10_000_000, "10ms"),
    (999_999_999, "999ms"),
    (1_000_000_000, "1.00s"),
    (1_509_000_000, "1.50s"),
    (61_230_000_000, "61.23s"),
])
def test_format_time_interval(ns: int, text: str) -> None:
    assert format_time_interval(ns) == text


@pytest.mark.parametrize(("s", "width", "out"), [
    ("abc", 5, "abc  "),
    ("abcd", 5, "abcd "),
    ("abcde", 5, "abcd "),  # as long as the width: cut to width - 1, then a space
    ("abcdefgh", 5, "abcd "),
    ("", 3, "   "),
    ("", 0, ""),
    ("x", 0, ""),
])
def test_extend_string(s: str, width: int, out: str) -> None:
    assert extend_string(s, width) == out


@pytest.mark.parametrize(("value", "text"), [
    (True, "true"), (False, "false"), (3, "3"), (3.0, "3"), (0.25, "0.25"), (b"ab", "ab"), ("x", "x"),
    ([1, "a"], "1,a"),
])
def test_lua_str(value: object, text: str) -> None:
    assert lua_str(value) == text


SPEC = TableSpec(("a", "b", "c"), ("Alpha", "A-very-long-description", "Last"), "v", "Value")


def test_plain_table_layout() -> None:
    rows: list[tuple[tuple[str, ...], str]] = [(("k" * 25, "short", "the last key is never cut " * 3), "12B")]
    lines = plain_table(SPEC, rows)
    assert lines[0] == "Value               Alpha               A-very-long-descrip Last                "
    assert lines[1] == "-" * 80
    assert lines[2] == "12B                 " + "k" * 19 + " " + "short".ljust(20) + "the last key is never cut " * 3


def test_json_table_puts_the_value_after_every_key() -> None:
    doc = json.loads(json_table(SPEC, [["x", "y", "z", 5]], 1_700_000_000_123_000_000))
    assert [i["name"] for i in doc["info"]] == ["a", "b", "c", "v"]
    assert [i["is_key"] for i in doc["info"]] == [True, True, True, False]
    assert doc["info"][3]["desc"] == "Value"
    assert doc["ts"] == "1700000000123000000"
    assert doc["data"] == [["x", "y", "z", 5]]
