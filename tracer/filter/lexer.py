"""Tokens of the filter language, read on demand, each with the column it starts at.

The language is context-sensitive at the token level: after a field, ``<`` starts an operator
(``evt.rawres<0``); after an operator it is an ordinary character of a bare value (``evt.dir=<``).
So rather than scanning the whole text up front, the parser asks for the token the grammar
expects next, one ``lex_*`` method per token kind.  Token rules (see the grammar in
:mod:`tracer.filter.parser`):

- a field name starts with a letter or ``_`` and goes on with letters, digits and ``_ . - /``,
  optionally followed by ``[ARG]`` (anything but ``]``);
- a word operator is a run of letters; a symbol operator is ``= == != < <= > >=``;
- a quoted value is ``"..."`` or ``'...'``; backslash escapes ``\\\\ \\" \\' \\n \\t \\r``, and
  any other backslash is kept as written (so ``"\\d+"`` reaches ``regex`` intact);
- a bare value runs to the next blank, parenthesis or comma.

Errors are :class:`~tracer.errors.FilterError` with the 0-based column of the offending text.
"""

from __future__ import annotations

import difflib
import enum
from dataclasses import dataclass
from typing import Final

from tracer.errors import FilterError
from tracer.filter.ast import Op


class TokenKind(enum.Enum):
    """Token kinds; the values read well in error messages."""

    FIELD = "field name"
    OPERATOR = "operator"
    VALUE = "value"
    LPAREN = "'('"
    RPAREN = "')'"
    COMMA = "','"
    AND = "'and'"
    OR = "'or'"
    NOT = "'not'"


@dataclass(frozen=True)
class Token:
    """One token.  ``text`` is the source slice; ``value`` is what it means: the unescaped string
    of a value, the name part of a field (before ``[``), the canonical spelling of an operator.
    A field's bracket argument is ``arg`` (``None`` without brackets), starting at ``arg_pos``."""

    kind: TokenKind
    text: str
    pos: int
    value: str
    quoted: bool = False
    arg: str | None = None
    arg_pos: int = -1


SPACE: Final = frozenset(" \t\n\r\f\v")
_LETTERS: Final = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")
_FIELD_START: Final = _LETTERS | {"_"}
_FIELD_CHARS: Final = _FIELD_START | frozenset("0123456789.-/")
_WORD_CHARS: Final = _FIELD_START | frozenset("0123456789")
_BARE_STOP: Final = SPACE | frozenset("(),")
_ESCAPES: Final = {"\\": "\\", '"': '"', "'": "'", "n": "\n", "t": "\t", "r": "\r"}

KEYWORDS: Final = {"and": TokenKind.AND, "or": TokenKind.OR, "not": TokenKind.NOT}
WORD_OPS: Final = {op.value: op for op in Op if op.value.isalpha()}
# Longest first, so "<=" wins over "<".
_SYMBOL_OPS: Final = (("==", Op.EQ), ("!=", Op.NE), ("<=", Op.LE), (">=", Op.GE),
                      ("=", Op.EQ), ("<", Op.LT), (">", Op.GT))
ALL_OP_SPELLINGS: Final = tuple(WORD_OPS) + tuple(s for s, _ in _SYMBOL_OPS)


class Lexer:
    """Reads tokens from ``text`` at ``pos``, skipping blanks before each one."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0

    def error(self, message: str, pos: int) -> FilterError:
        return FilterError(message, self.text, pos)

    # --- looking ahead --------------------------------------------------------------------------

    def skip_space(self) -> int:
        """Move past blanks; return the new position."""
        text, pos, n = self.text, self.pos, len(self.text)
        while pos < n and text[pos] in SPACE:
            pos += 1
        self.pos = pos
        return pos

    def at_end(self) -> bool:
        return self.skip_space() >= len(self.text)

    def peek_char(self) -> str:
        """The next non-blank character, or ``""`` at the end."""
        pos = self.skip_space()
        return self.text[pos] if pos < len(self.text) else ""

    def _word_at(self, pos: int) -> str:
        end = pos
        while end < len(self.text) and self.text[end] in _FIELD_CHARS:
            end += 1
        return self.text[pos:end]

    def describe_next(self) -> tuple[str, int]:
        """What comes next, for an error message ("'foo'", "')'", "end of filter"), and where."""
        pos = self.skip_space()
        if pos >= len(self.text):
            return "end of filter", pos
        word = self._word_at(pos)
        if not word:
            end = pos
            while end < len(self.text) and self.text[end] not in _BARE_STOP and end - pos < 20:
                end += 1
            word = self.text[pos:max(end, pos + 1)]
        return f"'{word}'", pos

    # --- one method per token kind ----------------------------------------------------------------

    def lex_punct(self, ch: str) -> Token | None:
        """``(``, ``)`` or ``,`` if it comes next."""
        pos = self.skip_space()
        if self.text.startswith(ch, pos):
            self.pos = pos + 1
            kind = {"(": TokenKind.LPAREN, ")": TokenKind.RPAREN, ",": TokenKind.COMMA}[ch]
            return Token(kind, ch, pos, ch)
        return None

    def lex_keyword(self, word: str) -> Token | None:
        """The keyword ``word`` (and, or, not) if it comes next as a whole word."""
        pos = self.skip_space()
        if self._word_at(pos) == word:
            self.pos = pos + len(word)
            return Token(KEYWORDS[word], word, pos, word)
        return None

    def lex_field(self) -> Token | None:
        """A field name with its optional ``[ARG]``, or ``None`` if no name starts here."""
        pos = self.skip_space()
        if pos >= len(self.text) or self.text[pos] not in _FIELD_START:
            return None
        name = self._word_at(pos)
        end = pos + len(name)
        arg: str | None = None
        arg_pos = -1
        if self.text.startswith("[", end):
            close = self.text.find("]", end + 1)
            if close < 0:
                raise self.error(f"missing ']' after '{self.text[end:end + 20]}'", end)
            arg, arg_pos = self.text[end + 1:close], end + 1
            end = close + 1
        self.pos = end
        return Token(TokenKind.FIELD, self.text[pos:end], pos, name, arg=arg, arg_pos=arg_pos)

    def lex_operator(self) -> Token | None:
        """An operator, or ``None`` at the end, before a parenthesis or comma, or before a keyword
        (all of which mean it is missing).  An unknown word or symbol is an error here."""
        pos = self.skip_space()
        text = self.text
        for spelling, op in _SYMBOL_OPS:
            if text.startswith(spelling, pos):
                self.pos = pos + len(spelling)
                return Token(TokenKind.OPERATOR, spelling, pos, op.value)
        end = pos
        while end < len(text) and text[end] in _LETTERS:
            end += 1
        word = text[pos:end]
        # "containsx" is one unknown word, not "contains" + "x"; "glob/etc/*" is fine.
        joined = end < len(text) and text[end] in _WORD_CHARS
        if word in WORD_OPS and not joined:
            self.pos = end
            return Token(TokenKind.OPERATOR, word, pos, word)
        if pos >= len(text) or text[pos] in "()," or (word in KEYWORDS and not joined):
            return None
        if word:
            shown = self._word_at(pos)
        else:
            end = pos
            while end < len(text) and text[end] not in _BARE_STOP | _WORD_CHARS | {'"', "'"}:
                end += 1
            shown = text[pos:max(end, pos + 1)]
        hint = difflib.get_close_matches(shown, ALL_OP_SPELLINGS, n=1)
        suffix = f"; did you mean '{hint[0]}'?" if hint else ""
        raise self.error(f"unknown operator '{shown}'{suffix}", pos)

    def lex_value(self) -> Token | None:
        """A quoted or bare value, or ``None`` if the next thing cannot start one."""
        pos = self.skip_space()
        text = self.text
        if pos >= len(text) or text[pos] in "(),":
            return None
        quote = text[pos]
        if quote in "\"'":
            return self._quoted(pos, quote)
        end = pos
        while end < len(text) and text[end] not in _BARE_STOP:
            end += 1
        self.pos = end
        return Token(TokenKind.VALUE, text[pos:end], pos, text[pos:end])

    def _quoted(self, pos: int, quote: str) -> Token:
        text = self.text
        out: list[str] = []
        i = pos + 1
        while i < len(text):
            ch = text[i]
            if ch == quote:
                self.pos = i + 1
                return Token(TokenKind.VALUE, text[pos:i + 1], pos, "".join(out), quoted=True)
            if ch == "\\" and i + 1 < len(text):
                nxt = text[i + 1]
                out.append(_ESCAPES.get(nxt, "\\" + nxt))
                i += 2
                continue
            out.append(ch)
            i += 1
        raise self.error(f"unterminated string: missing closing {quote}", pos)
