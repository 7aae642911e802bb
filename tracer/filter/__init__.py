"""The filter language: lexer -> parser -> typed AST -> compiled predicate, plus kernel pushdown.

Typical use::

    flt = compile_filter("proc.name=nginx and evt.type in (accept, accept4)", FIELDS)
    flt.match(ev)          # -> bool, pure
    flt.pushdown           # what the probe may pre-filter on
    flt.explain()          # the tree and the pushdown, for -v / debugging

Errors are :class:`tracer.errors.FilterError` with the 0-based column of the problem.
"""

from __future__ import annotations

from tracer.filter.ast import FieldDefLike, FieldRef, FieldTable, Node, Op, conjuncts, render
from tracer.filter.compiler import CompiledFilter, compile_ast, compile_filter
from tracer.filter.parser import MAX_DEPTH, parse
from tracer.filter.pushdown import UNRESTRICTED, Pushdown, ValueSet, derive, merge

__all__ = [
    "MAX_DEPTH",
    "UNRESTRICTED",
    "CompiledFilter",
    "FieldDefLike",
    "FieldRef",
    "FieldTable",
    "Node",
    "Op",
    "Pushdown",
    "ValueSet",
    "compile_ast",
    "compile_filter",
    "conjuncts",
    "derive",
    "merge",
    "parse",
    "render",
]
