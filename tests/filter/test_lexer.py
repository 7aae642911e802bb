"""Tokens and their positions."""

from __future__ import annotations

import pytest

from tracer.errors import FilterError
from tracer.filter.lexer import Lexer, TokenKind


def test_field_operator_value_positions() -> None:
    lex = Lexer("  proc.aname[2] >= 0x10")
    f = lex.lex_field()
    assert f is not None
    assert (f.kind, f.text, f.pos, f.value, f.arg, f.arg_pos) == (
        TokenKind.FIELD, "proc.aname[2]", 2, "proc.aname", "2", 13)
    op = lex.lex_operator()
    assert op is not None
    assert (op.kind, op.text, op.pos, op.value) == (TokenKind.OPERATOR, ">=", 16, ">=")
    v = lex.lex_value()
    assert v is not None
    assert (v.kind, v.text, v.pos, v.value, v.quoted) == (
        TokenKind.VALUE, "0x10", 19, "0x10", False)
    assert lex.at_end()


@pytest.mark.parametrize(("text", "value"), [
    ('"a b"', "a b"),
    ("'a b'", "a b"),
    (r'"a\"b"', 'a"b'),
    (r"'it\'s'", "it's"),
    (r'"back\\slash"', "back\\slash"),
    (r'"tab\there"', "tab\there"),
    (r'"nl\n"', "nl\n"),
    (r'"\d+\.\w"', r"\d+\.\w"),  # unknown escapes stay, for regex
    ('"it\'s"', "it's"),
    ("'say \"hi\"'", 'say "hi"'),
    ('""', ""),
])
def test_quoted_values(text: str, value: str) -> None:
    tok = Lexer(text).lex_value()
    assert tok is not None
    assert tok.value == value
    assert tok.quoted
    assert tok.text == text


@pytest.mark.parametrize(("text", "value"), [
    ("<", "<"),
    (">", ">"),
    ("/etc/*.conf", "/etc/*.conf"),
    ("10.0.0.0/8", "10.0.0.0/8"),
    ("fe80::1", "fe80::1"),
    ("a=b", "a=b"),
    ("O_RDONLY|O_CLOEXEC", "O_RDONLY|O_CLOEXEC"),
    ("x)", "x"),
    ("x,y", "x"),
    ("x\ty", "x"),
])
def test_bare_values(text: str, value: str) -> None:
    tok = Lexer(text).lex_value()
    assert tok is not None
    assert tok.value == value
    assert not tok.quoted


@pytest.mark.parametrize(("text", "op"), [
    ("=", "="), ("==", "="), ("!=", "!="), ("<", "<"), ("<=", "<="), (">", ">"), (">=", ">="),
    ("contains x", "contains"), ("in(", "in"), ("glob/etc/*", "glob"), ('contains"x"', "contains"),
    ("exists", "exists"), ("bstartswith 00", "bstartswith"),
])
def test_operators(text: str, op: str) -> None:
    tok = Lexer(text).lex_operator()
    assert tok is not None
    assert tok.value == op


@pytest.mark.parametrize("text", ["", ")", ",", "and x", "or", "(a)"])
def test_missing_operator_is_none(text: str) -> None:
    assert Lexer(text).lex_operator() is None


def test_keywords_are_whole_words() -> None:
    assert Lexer("andrew").lex_keyword("and") is None
    assert Lexer("not.x").lex_keyword("not") is None
    tok = Lexer("  not(").lex_keyword("not")
    assert tok is not None
    assert (tok.kind, tok.pos) == (TokenKind.NOT, 2)


def test_unterminated_string() -> None:
    with pytest.raises(FilterError) as e:
        Lexer('  "abc').lex_value()
    assert e.value.pos == 2
    assert "unterminated string" in e.value.message
