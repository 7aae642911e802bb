"""Parsing: what is accepted and how it reads back; what is rejected, where and why."""

from __future__ import annotations

import re

import pytest
from filter_fakes import TABLE

from tracer.errors import FilterError
from tracer.filter import parse, render
from tracer.filter.ast import And, Check, Not, Op, Or

# (filter, canonical rendering)
ACCEPTED = [
    ("proc.name=nginx", "proc.name = nginx"),
    ("proc.name==nginx", "proc.name = nginx"),  # sysdig 0.29 silently matched nothing
    ("proc.name = nginx", "proc.name = nginx"),
    ("proc.name != 'ng inx'", 'proc.name != "ng inx"'),
    ('proc.name="a\\"b"', 'proc.name = "a\\"b"'),
    ("evt.type in (open,openat, 'close')", "evt.type in (open, openat, close)"),
    ("evt.type in(open)", "evt.type in (open)"),
    ("evt.dir=<", 'evt.dir = "<"'),
    ("evt.dir = >", 'evt.dir = ">"'),
    ("evt.rawres<0", "evt.rawres < 0"),
    ("evt.rawres<=-2", "evt.rawres <= -2"),
    ("evt.rawres >= 0x10", "evt.rawres >= 0x10"),
    ("evt.rawres > 1", "evt.rawres > 1"),
    ("thread.cpu > 0.5", "thread.cpu > 0.5"),
    ("evt.latency > 1ms", "evt.latency > 1ms"),
    ("fd.name exists", "fd.name exists"),
    ("fd.name contains /etc", "fd.name contains /etc"),
    ("fd.name icontains ETC", "fd.name icontains ETC"),
    ("fd.name startswith /etc and fd.name endswith .conf",
     "fd.name startswith /etc and fd.name endswith .conf"),
    ("fd.name glob /etc/*", "fd.name glob /etc/*"),
    ("fd.name iglob '/ETC/*'", "fd.name iglob /ETC/*"),
    ('fd.name regex "^/etc/\\w+$"', 'fd.name regex "^/etc/\\\\w+$"'),
    ("fd.name pmatch (/etc, /usr/lib)", "fd.name pmatch (/etc, /usr/lib)"),
    ("evt.buffer bcontains 48454c4c4f", "evt.buffer bcontains 48454c4c4f"),
    ("evt.buffer bstartswith 4845", "evt.buffer bstartswith 4845"),
    ("thread.cgroups intersects (a, b)", "thread.cgroups intersects (a, b)"),
    ("fd.ip=10.0.0.1", "fd.ip = 10.0.0.1"),
    ("fd.ip=10.0.0.0/8", "fd.ip = 10.0.0.0/8"),
    ("fd.ip=::1", "fd.ip = ::1"),
    ("fd.net=2607:f8b0::/32", "fd.net = 2607:f8b0::/32"),  # failed in sysdig 0.29
    ("fd.ip in (10.0.0.1, 192.168.0.0/16)", "fd.ip in (10.0.0.1, 192.168.0.0/16)"),
    ("fd.port=80", "fd.port = 80"),
    ("evt.failed=true", "evt.failed = true"),
    ("proc.aname[2]=bash", "proc.aname[2] = bash"),
    ("proc.aname=bash", "proc.aname = bash"),
    ("proc.apid[1]=1", "proc.apid[1] = 1"),
    ("evt.arg.fd=3", "evt.arg.fd = 3"),
    ("evt.arg[1] contains passwd", "evt.arg[1] contains passwd"),
    ("evt.rawarg.res<0", "evt.rawarg.res < 0"),
    ("k8s.pod.label.app=web", "k8s.pod.label.app = web"),
    ("k8s.pod.label.app.kubernetes.io/name=web", "k8s.pod.label.app.kubernetes.io/name = web"),
    ("k8s.pod.label[app.kubernetes.io/name]=web", "k8s.pod.label[app.kubernetes.io/name] = web"),
    ("thread.cgroup.cpuacct=/x", "thread.cgroup.cpuacct = /x"),
    ("container.mount[/path/*] exists", "container.mount[/path/*] exists"),
    ("not proc.name=x", "not proc.name = x"),
    ("not(proc.name=x)", "not proc.name = x"),
    ("not not proc.name=x", "not not proc.name = x"),
    ("proc.pid=1 or proc.name=x", "proc.pid = 1 or proc.name = x"),
    ("proc.pid=1 or proc.pid=2 and proc.name=x",
     "proc.pid = 1 or (proc.pid = 2 and proc.name = x)"),
    ("(proc.pid=1 or proc.pid=2) and proc.name=x",
     "(proc.pid = 1 or proc.pid = 2) and proc.name = x"),
    ("not proc.pid=1 and proc.name=x", "not proc.pid = 1 and proc.name = x"),
    ("not (proc.pid=1 and proc.name=x)", "not (proc.pid = 1 and proc.name = x)"),
    ("((((proc.name=x))))", "proc.name = x"),
    ("proc.name=and_more", "proc.name = and_more"),
    ("proc.name='and'", 'proc.name = "and"'),
    ("evt.info contains 'a=b' and evt.info contains a=b",
     'evt.info contains "a=b" and evt.info contains "a=b"'),
]


def _spaces_to(text: str, blank: str) -> str:
    """Replace the blanks outside quotes: inside them they are part of a value."""
    return re.sub(r"""("(?:\\.|[^"\\])*"|'(?:\\.|[^'\\])*')|( )""",
                  lambda m: m.group(1) or blank, text)


@pytest.mark.parametrize(("text", "expected"), ACCEPTED)
def test_accepted(text: str, expected: str) -> None:
    tree = parse(text, TABLE)
    assert render(tree) == expected
    # The rendering parses back to the same tree.
    assert render(parse(expected, TABLE)) == expected


@pytest.mark.parametrize(("text", "expected"), ACCEPTED)
@pytest.mark.parametrize("blank", ["\t", "\n", " \r\n\t ", "  "])
def test_accepted_with_other_blanks(text: str, expected: str, blank: str) -> None:
    assert render(parse(_spaces_to(text, blank), TABLE)) == expected


# (filter, column of the caret, part of the message)
REJECTED = [
    ("", 0, "empty filter"),
    ("   ", 3, "empty filter"),
    ("proc.nme=x", 0, "unknown field 'proc.nme'; did you mean 'proc.name'?"),
    ("x and proc.name=1", 0, "unknown field 'x'"),
    ("proc.name.x=1", 0, "unknown field 'proc.name.x'"),
    ("AND=x", 0, "keywords are lowercase: and"),
    ("proc.name containz x", 10, "unknown operator 'containz'; did you mean 'contains'?"),
    ("proc.name ~ x", 10, "unknown operator '~'"),
    ("proc.name !x", 10, "unknown operator '!'"),
    ("proc.pid=abc", 9, "proc.pid expects an integer, got 'abc'"),
    ("proc.pid=1.5", 9, "proc.pid expects an integer"),
    ("proc.pid=99999999999999999999", 9, "proc.pid expects an integer"),
    ("fd.port=70000", 8, "fd.port expects a port number (0-65535), got '70000'"),
    ("fd.port=-1", 8, "expects a port number"),
    ("evt.num=-1", 8, "evt.num expects a non-negative integer"),
    ("fd.ip=10.0.0.300", 6, "fd.ip expects an IP address or network, got '10.0.0.300'"),
    ("fd.ip in (10.0.0.1, nope)", 20, "fd.ip expects an IP address or network, got 'nope'"),
    ("fd.net=abc", 7, "fd.net expects a network (like 10.0.0.0/8)"),
    ("evt.failed=maybe", 11, "evt.failed expects true or false, got 'maybe'"),
    ("thread.cpu = abc", 13, "thread.cpu expects a number"),
    ("evt.latency > 5parsecs", 14, "evt.latency expects a time in ns"),
    ("(proc.name=x", 0, "unbalanced parentheses: this '(' is never closed"),
    ("((proc.name=x)", 0, "unbalanced parentheses: this '(' is never closed"),
    ("proc.name=x)", 11, "unbalanced parentheses: ')' without a matching '('"),
    (")", 0, "unbalanced parentheses: ')' without a matching '('"),
    ("(proc.name=x evt.type=open)", 13, "expected 'and', 'or' or ')', got 'evt.type'"),
    ("()", 0, "empty parentheses"),
    ("proc.name=x and", 12, "dangling 'and': expected a check after it"),
    ("proc.name=x or", 12, "dangling 'or'"),
    ("not", 0, "dangling 'not'"),
    ("proc.name=x or not", 15, "dangling 'not'"),
    ("(proc.name=x and)", 13, "dangling 'and'"),
    ("proc.name=x and (evt.type=open or)", 31, "dangling 'or'"),
    ("proc.name=x and and evt.type=open", 16, "expected a check, got 'and'"),
    ("proc.name=", 9, "missing value after '='"),
    ("proc.name contains", 10, "missing value after 'contains'"),
    ("proc.name= and evt.type=open", 9, "missing value after '=' (quote 'and'"),
    ("proc.name = (a)", 12, "operator '=' takes one value; for a list use 'in'"),
    ("proc.name", 9, "expected an operator after proc.name, got end of filter"),
    ("proc.name and evt.type=open", 10, "expected an operator after proc.name, got 'and'"),
    ("proc.name=x y", 12, "expected 'and', 'or' or end of filter, got 'y'"),
    ("proc.name=x AND evt.type=open", 12, "expected 'and', 'or' or end of filter, got 'AND'"),
    ("proc.name exists x", 17, "expected 'and', 'or' or end of filter, got 'x'"),
    ("=x", 0, "expected a field name, 'not' or '(', got '=x'"),
    ("proc.apid=3", 0, "field proc.apid needs an index, as in proc.apid[1]"),
    ("k8s.pod.label=x", 0, "field k8s.pod.label needs an argument, as in k8s.pod.label.NAME"),
    ("evt.arg=x", 0, "field evt.arg needs an argument, as in evt.arg.NAME or evt.arg[N]"),
    ("proc.aname[x]=a", 11, "index of proc.aname must be a non-negative integer, got 'x'"),
    ("proc.aname[]=a", 11, "index of proc.aname must be a non-negative integer"),
    ("proc.aname[-1]=a", 11, "non-negative integer"),
    ("k8s.pod.label[]=x", 14, "empty argument for k8s.pod.label"),
    ("proc.name[1]=a", 9, "field proc.name takes no argument"),
    ("evt.arg.fd[1]=x", 10, "takes one argument"),
    ("proc.aname[1=a", 10, "missing ']'"),
    ("proc.name in a", 13, "'in' needs a list in parentheses, as in in (a, b); got 'a'"),
    ("proc.name pmatch /etc", 17, "'pmatch' needs a list in parentheses"),
    ("proc.name in ()", 13, "empty list after 'in'"),
    ("proc.name in (a,,b)", 16, "missing value before ','"),
    ("proc.name in (a b)", 16, "expected ',' or ')' in the list, got 'b'"),
    ("proc.name in (a, b", 13, "unbalanced parentheses: this '(' is never closed"),
    ("proc.name in (a,", 13, "unbalanced parentheses: this '(' is never closed"),
    ("proc.name in (a, (b))", 17, "expected a value, got '('"),
    ('proc.name in (a, "b', 17, "unterminated string: missing closing \""),
    ("proc.name='abc", 10, "unterminated string: missing closing '"),
    ("proc.pid contains 1", 9, "operator 'contains' does not apply to proc.pid (INT); use one of"),
    ("proc.name > 1", 10, "operator '>' does not apply to proc.name (STR)"),
    ("fd.ip contains 1", 6, "operator 'contains' does not apply to fd.ip (IPADDR)"),
    ("evt.buffer pmatch (/a)", 11, "operator 'pmatch' does not apply to evt.buffer (BYTES)"),
    ("fd.name pmatch (/etc, '')", 22, "empty path in pmatch list"),
    ('proc.name regex "("', 16, "invalid regular expression"),
    ("evt.buffer bcontains xyz", 21, "bcontains expects hex bytes"),
    ("proc.name bstartswith 4", 22, "bstartswith expects hex bytes"),
]


@pytest.mark.parametrize(("text", "column", "message"), REJECTED)
def test_rejected(text: str, column: int, message: str) -> None:
    with pytest.raises(FilterError) as e:
        parse(text, TABLE)
    assert message in e.value.message
    assert e.value.pos == column
    assert e.value.text == text
    shown = e.value.show()
    assert shown.splitlines()[-1] == "  " + " " * column + "^" if text else True


def test_deep_nesting_is_a_clean_error() -> None:
    for text in ("(" * 100000, "not " * 100000 + "proc.name=x",
                 "(" * 101 + "proc.name=x" + ")" * 101):
        with pytest.raises(FilterError) as e:
            parse(text, TABLE)
        assert e.value.message == "exceeded max nesting depth of 100"
    # 100 levels are fine.
    tree = parse("(" * 100 + "proc.name=x" + ")" * 100, TABLE)
    assert isinstance(tree, Check)
    tree = parse("not " * 100 + "proc.name=x", TABLE)
    assert isinstance(tree, Not)


def test_deep_nesting_column() -> None:
    with pytest.raises(FilterError) as e:
        parse("(" * 200, TABLE)
    assert e.value.pos == 100


def test_long_flat_chains_do_not_recurse() -> None:
    text = " and ".join(f"proc.pid={i}" for i in range(5000))
    tree = parse(text, TABLE)
    assert isinstance(tree, And)
    assert len(tree.children) == 5000


def test_tree_shape_and_positions() -> None:
    tree = parse("proc.name=a or not (proc.pid!=1 and fd.name exists)", TABLE)
    assert isinstance(tree, Or)
    left, right = tree.children
    assert isinstance(left, Check)
    assert (left.pos, left.op_pos, left.values[0].pos) == (0, 9, 10)
    assert isinstance(right, Not)
    assert right.pos == 15
    inner = right.operand
    assert isinstance(inner, And)
    assert inner.pos == 20
    c = inner.children[0]
    assert isinstance(c, Check)
    assert (c.field.name, c.op, c.operand, c.op_pos) == ("proc.pid", Op.NE, 1, 28)


@pytest.mark.parametrize(("text", "name", "arg"), [
    ("proc.aname[2]=x", "proc.aname", 2),
    ("proc.aname=x", "proc.aname", None),
    ("evt.arg[1]=x", "evt.arg", 1),
    ("evt.arg.fd=x", "evt.arg", "fd"),
    ("evt.arg[fd]=x", "evt.arg", "fd"),
    ("evt.rawarg.res=1", "evt.rawarg", "res"),
    ("k8s.pod.label.app.kubernetes.io/name=x", "k8s.pod.label", "app.kubernetes.io/name"),
    ("k8s.pod.label[a b]=x", "k8s.pod.label", "a b"),
    ("container.mount[/path/*]=x", "container.mount", "/path/*"),
])
def test_field_arguments(text: str, name: str, arg: str | int | None) -> None:
    tree = parse(text, TABLE)
    assert isinstance(tree, Check)
    assert (tree.field.name, tree.field.arg) == (name, arg)


def test_table_without_names_still_works() -> None:
    class Bare:
        def lookup(self, name: str) -> object:
            return TABLE.lookup(name)

    with pytest.raises(FilterError) as e:
        parse("proc.nme=x", Bare())  # type: ignore[arg-type]
    assert e.value.message == "unknown field 'proc.nme'"
