"""Parse a filter into a typed AST, resolving fields against the field table.

Grammar (EBNF; ``{x}`` repeats, ``[x]`` is optional; keywords are lowercase)::

    filter    ::= or_expr END
    or_expr   ::= and_expr { "or" and_expr }
    and_expr  ::= not_expr { "and" not_expr }
    not_expr  ::= "not" not_expr | primary
    primary   ::= "(" or_expr ")" | check
    check     ::= field ( "exists"
                        | cmp_op value
                        | list_op "(" value { "," value } ")" )
    cmp_op    ::= "=" | "==" | "!=" | "<" | "<=" | ">" | ">="
                | "contains" | "icontains" | "bcontains" | "bstartswith"
                | "startswith" | "endswith" | "glob" | "iglob" | "regex"
    list_op   ::= "in" | "intersects" | "pmatch"
    field     ::= NAME [ "[" ARG "]" ]
    value     ::= QUOTED | BARE

    NAME      ::= [A-Za-z_] [A-Za-z0-9_./-]*
    ARG       ::= [^\\]]*
    QUOTED    ::= '"' ( "\\" ANY | [^"\\] )* '"'  |  "'" ( "\\" ANY | [^'\\] )* "'"
    BARE      ::= [^ \\t\\n\\r\\f\\v(),]+          (read only where a value is expected)

``and`` binds tighter than ``or``; ``not`` tighter than both.  ``==`` is ``=``.  A NAME is split
into a registered field and its argument by the longest registered dotted prefix:
``k8s.pod.label.app`` is ``k8s.pod.label`` with argument ``app``; ``proc.aname[2]`` is
``proc.aname`` with index 2.  What a value may be (number, address, network, hex bytes...) depends
on the field's type; see :mod:`tracer.filter.checks`.

Nesting (parentheses and ``not``) is limited to ``max_depth`` levels (100), so no input can
exhaust the Python stack.  Every error is a :class:`~tracer.errors.FilterError` whose ``pos`` is
the 0-based column of the offending token.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Final

from tracer.errors import FilterError
from tracer.filter.ast import (
    LIST_OPS,
    And,
    Check,
    FieldDefLike,
    FieldRef,
    FieldTable,
    Node,
    Not,
    Op,
    Or,
    Value,
)
from tracer.filter.checks import make_operand
from tracer.filter.lexer import KEYWORDS, Lexer, Token

MAX_DEPTH: Final = 100


def parse(text: str, table: FieldTable, *, max_depth: int = MAX_DEPTH) -> Node:
    """Parse and type-check ``text``; raise :class:`~tracer.errors.FilterError` on any error."""
    return _Parser(text, table, max_depth).filter()


class _Parser:
    """One function per production; ``lex`` hands out the tokens each one expects."""

    def __init__(self, text: str, table: FieldTable, max_depth: int) -> None:
        self.text = text
        self.table = table
        self.lex = Lexer(text)
        self.max_depth = max_depth
        self.depth = 0

    def error(self, message: str, pos: int) -> FilterError:
        return FilterError(message, self.text, pos)

    @contextmanager
    def nested(self, tok: Token) -> Iterator[None]:
        self.depth += 1
        if self.depth > self.max_depth:
            raise self.error(f"exceeded max nesting depth of {self.max_depth}", tok.pos)
        try:
            yield
        finally:
            self.depth -= 1

    # --- productions ------------------------------------------------------------------------------

    def filter(self) -> Node:
        if self.lex.at_end():
            raise self.error("empty filter", self.lex.pos)
        node = self.or_expr()
        if not self.lex.at_end():
            got, pos = self.lex.describe_next()
            if got == "')'":
                raise self.error("unbalanced parentheses: ')' without a matching '('", pos)
            raise self.error(f"expected 'and', 'or' or end of filter, got {got}", pos)
        return node

    def or_expr(self) -> Node:
        children = [self.and_expr()]
        while tok := self.lex.lex_keyword("or"):
            self.need_operand(tok)
            children.append(self.and_expr())
        return children[0] if len(children) == 1 else Or(tuple(children), children[0].pos)

    def and_expr(self) -> Node:
        children = [self.not_expr()]
        while tok := self.lex.lex_keyword("and"):
            self.need_operand(tok)
            children.append(self.not_expr())
        return children[0] if len(children) == 1 else And(tuple(children), children[0].pos)

    def not_expr(self) -> Node:
        tok = self.lex.lex_keyword("not")
        if tok is None:
            return self.primary()
        self.need_operand(tok)
        with self.nested(tok):
            return Not(self.not_expr(), tok.pos)

    def primary(self) -> Node:
        tok = self.lex.lex_punct("(")
        if tok is None:
            return self.check()
        with self.nested(tok):
            if self.lex.peek_char() == ")":
                raise self.error("empty parentheses: expected a check inside", tok.pos)
            node = self.or_expr()
        if self.lex.lex_punct(")") is None:
            if self.lex.at_end():
                raise self.error("unbalanced parentheses: this '(' is never closed", tok.pos)
            got, pos = self.lex.describe_next()
            raise self.error(f"expected 'and', 'or' or ')', got {got}", pos)
        return node

    def check(self) -> Node:
        field = self.field()
        op_tok = self.lex.lex_operator()
        if op_tok is None:
            got, pos = self.lex.describe_next()
            raise self.error(f"expected an operator after {field.text}, got {got}", pos)
        op = Op(op_tok.value)
        if op is Op.EXISTS:
            values: tuple[Value, ...] = ()
        elif op in LIST_OPS:
            values = self.value_list(op_tok)
        else:
            values = (self.value(op_tok),)
        operand = make_operand(field, op, values, op_tok.pos, self.text)
        return Check(field, op, values, field.pos, op_tok.pos, operand)

    def value_list(self, op_tok: Token) -> tuple[Value, ...]:
        open_tok = self.lex.lex_punct("(")
        if open_tok is None:
            got, pos = self.lex.describe_next()
            raise self.error(
                f"'{op_tok.text}' needs a list in parentheses, as in "
                f"{op_tok.text} (a, b); got {got}", pos)
        if self.lex.peek_char() == ")":
            raise self.error(f"empty list after '{op_tok.text}'", open_tok.pos)
        values: list[Value] = []
        while True:
            tok = self.lex.lex_value()
            if tok is None:
                got, pos = self.lex.describe_next()
                if got == "end of filter":
                    raise self.error("unbalanced parentheses: this '(' is never closed",
                                     open_tok.pos)
                if got == "','":
                    raise self.error("missing value before ','", pos)
                raise self.error(f"expected a value, got {got}", pos)
            values.append(Value(tok.value, tok.pos, tok.quoted))
            if self.lex.lex_punct(",") is not None:
                continue
            if self.lex.lex_punct(")") is not None:
                return tuple(values)
            got, pos = self.lex.describe_next()
            if got == "end of filter":
                raise self.error("unbalanced parentheses: this '(' is never closed",
                                 open_tok.pos)
            raise self.error(f"expected ',' or ')' in the list, got {got}", pos)

    def value(self, op_tok: Token) -> Value:
        tok = self.lex.lex_value()
        if tok is None:
            if self.lex.peek_char() == "(":
                raise self.error(
                    f"operator '{op_tok.text}' takes one value; for a list use 'in'",
                    self.lex.pos)
            raise self.error(f"missing value after '{op_tok.text}'", op_tok.pos)
        if not tok.quoted and tok.value in KEYWORDS:
            # "proc.name= and x": the user left the value out; a real "and" must be quoted.
            raise self.error(
                f"missing value after '{op_tok.text}' (quote '{tok.value}' to compare with "
                "the word)", op_tok.pos)
        return Value(tok.value, tok.pos, tok.quoted)

    def field(self) -> FieldRef:
        tok = self.lex.lex_field()
        if tok is None:
            got, pos = self.lex.describe_next()
            if got == "')'":
                raise self.error("unbalanced parentheses: ')' without a matching '('", pos)
            raise self.error(f"expected a field name, 'not' or '(', got {got}", pos)
        return self.resolve(tok)

    def need_operand(self, tok: Token) -> None:
        """A keyword must be followed by something it applies to."""
        nxt = self.lex.peek_char()
        if nxt in ("", ")"):
            raise self.error(f"dangling '{tok.text}': expected a check after it", tok.pos)

    # --- field names ------------------------------------------------------------------------------

    def resolve(self, tok: Token) -> FieldRef:
        """Split ``tok`` into a registered field and its argument (longest registered prefix)."""
        name = tok.value
        prefix, rest = name, ""
        while True:
            fdef = self.table.lookup(prefix)
            if fdef is not None:
                return self.bind(tok, fdef, prefix, rest)
            cut = prefix.rfind(".")
            if cut <= 0:
                break
            prefix, rest = prefix[:cut], prefix[cut + 1:] + ("." + rest if rest else "")
        if name in KEYWORDS:
            raise self.error(f"expected a check, got '{name}'", tok.pos)
        raise self.error(f"unknown field '{name}'{self.suggest(name)}", tok.pos)

    def bind(self, tok: Token, fdef: FieldDefLike, name: str, rest: str) -> FieldRef:
        """Check the argument against what the field takes (``fdef.arg``)."""
        spec = fdef.arg
        takes_name = spec in ("name", "index_or_name")
        if rest and not takes_name:
            raise self.error(f"unknown field '{tok.value}'{self.suggest(tok.value)}", tok.pos)
        if rest and tok.arg is not None:
            raise self.error(f"field {name} takes one argument: .NAME or [ARG], not both",
                             tok.arg_pos - 1)
        arg: str | int | None = rest or None
        if tok.arg is not None:
            if spec in ("index", "index?") or (spec == "index_or_name" and tok.arg.isdigit()):
                if not (tok.arg.isascii() and tok.arg.isdigit()):
                    raise self.error(f"index of {name} must be a non-negative integer, "
                                     f"got '{tok.arg}'", tok.arg_pos)
                arg = int(tok.arg)
            elif takes_name:
                if not tok.arg:
                    raise self.error(f"empty argument for {name}", tok.arg_pos)
                arg = tok.arg
            else:
                raise self.error(f"field {name} takes no argument", tok.arg_pos - 1)
        elif not rest:
            example = {"index": f"{name}[1]", "name": f"{name}.NAME or {name}[NAME]",
                       "index_or_name": f"{name}.NAME or {name}[N]"}.get(spec)
            if example is not None:
                what = "an index" if spec == "index" else "an argument"
                raise self.error(f"field {name} needs {what}, as in {example}", tok.pos)
        return FieldRef(name, arg, tok.text, tok.pos, fdef)

    def suggest(self, name: str) -> str:
        if name.lower() in KEYWORDS:
            return f"; keywords are lowercase: {name.lower()}"
        names = getattr(self.table, "names", None)
        if names is not None:
            candidates = list(names())
        else:  # a table that keeps its rows in ``rows`` (tracer.schema.fields.FieldTable)
            candidates = [row.name for row in getattr(self.table, "rows", ())]
        close = difflib.get_close_matches(name, candidates, n=1)
        return f"; did you mean '{close[0]}'?" if close else ""
