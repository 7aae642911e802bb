"""Property tests over random filters and events.

- differential: random filter trees are rendered to text by this file's own renderer, compiled,
  and compared against a plain reference evaluator written here (a second implementation of the
  semantics in tracer/filter/compiler.py's docstring);
- soundness: whenever the compiled filter matches an event, its pushdown admits that event.
"""

from __future__ import annotations

import fnmatch
import ipaddress
import re
from typing import Any

from filter_fakes import TABLE
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tracer.errors import FilterError
from tracer.filter import compile_filter, derive, parse, render

# --- the fields, their literal pools and event value pools --------------------------------------

NAMES = ["nginx", "bash", "Nginx", "averyveryverylongname", "averyveryverylongother", "and", "a b"]
TYPES = ["open", "openat", "read", "close"]
PATHS = ["/etc", "/etc/passwd", "/etcd", "/", "/tmp/a b", "relative", ""]
IPS = ["10.0.0.1", "10.1.2.3", "192.168.1.5", "::1", "::ffff:10.0.0.2", "::a00:1", "bogus"]
IP_LITERALS = ["10.0.0.1", "10.0.0.0/8", "192.168.0.0/16", "::1", "::/0", "0.0.0.0/0",
               "::ffff:10.0.0.2", "::ffff:10.0.0.0/104", "10.0.0.2"]
GLOBS = ["*", "ng*", "/etc/*", "?ginx", "[ab]ash", "*very*", "/etc*", "NG*", "*[!a]"]
REGEXES = ["^ng", "x$", "a.b", "ng|ba", r"\w+long", "^/etc/", "(?i)NGINX", r"\d"]
PREFIXES = ["/etc", "/etc/", "/", "/tmp", "/et", "relative"]

# field text -> (kind, literal pool, event value pool)
FIELDS: dict[str, tuple[str, list[str], list[Any]]] = {
    "evt.type": ("str", [*TYPES, "x y"], TYPES),
    "evt.dir": ("str", ["<", ">"], ["<", ">"]),
    "proc.name": ("str", NAMES, NAMES),
    "container.id": ("str", ["host", "abc", "def"], ["host", "abc", "def"]),
    "fd.name": ("str", PATHS, PATHS),
    "evt.arg.fd": ("str", ["3", "4"], ["3", "4"]),
    "proc.aname": ("multi", NAMES, NAMES),
    "proc.aname[1]": ("str", NAMES, NAMES),
    "proc.pid": ("int", ["1", "2", "100", "-1", "0x64"], [1, 2, 100, -1]),
    "thread.tid": ("int", ["1", "2", "100"], [1, 2, 100]),
    "evt.rawres": ("int", ["-2", "0", "5"], [-2, 0, 5]),
    "fd.port": ("int", ["80", "443", "8080"], [80, 443, 8080]),
    "evt.latency": ("int", ["0", "1000", "1us", "2ms", "2000000"], [0, 1000, 2_000_000]),
    "thread.cpu": ("int", ["0", "0.5", "1.5"], [0.0, 0.5, 1.5]),
    "evt.failed": ("bool", ["true", "false", "1", "0", "TRUE"], [True, False]),
    "evt.buffer": ("bytes", ["HELLO", "hello world", "world", ""], [b"HELLO", b"hello world", b""]),
    "fd.ip": ("ip", IP_LITERALS, IPS),
}
ALWAYS = ("evt.type", "evt.dir", "proc.pid", "thread.tid")

OPS = {
    "str": ["=", "==", "!=", "in", "intersects", "exists", "contains", "icontains", "startswith",
            "endswith", "glob", "iglob", "regex", "pmatch", "bcontains", "bstartswith"],
    "multi": ["=", "!=", "in", "intersects", "exists", "contains", "startswith", "glob"],
    "int": ["=", "!=", "<", "<=", ">", ">=", "in", "exists"],
    "bool": ["=", "!=", "in", "exists"],
    "bytes": ["=", "!=", "contains", "icontains", "startswith", "bcontains", "bstartswith", "glob",
              "regex", "exists", "in"],
    "ip": ["=", "!=", "in", "exists"],
}
LIST_OPS = ("in", "intersects", "pmatch")

Tree = tuple[Any, ...]  # ("check", field, op, literals) | ("not", t) | ("and"/"or", [t...])


HEX = ["48", "4845", "6c6c", "2f657463", "6e67", "776f726c64"]


def literal_pool(field: str, op: str) -> list[str]:
    """The literals a check ``field op ...`` draws from."""
    special = {"glob": GLOBS, "iglob": GLOBS, "regex": REGEXES, "pmatch": PREFIXES,
               "bcontains": HEX, "bstartswith": HEX}
    return special.get(op, FIELDS[field][1])


@st.composite
def checks(draw: st.DrawFn) -> Tree:
    field = draw(st.sampled_from(sorted(FIELDS)))
    kind = FIELDS[field][0]
    op = draw(st.sampled_from(OPS[kind]))
    if op == "exists":
        return ("check", field, op, ())
    pool = literal_pool(field, op)
    if op in LIST_OPS:
        values = tuple(draw(st.lists(st.sampled_from(pool), min_size=1, max_size=3)))
    else:
        values = (draw(st.sampled_from(pool)),)
    return ("check", field, op, values)


trees = st.recursive(
    checks(),
    lambda sub: st.one_of(
        st.tuples(st.just("not"), sub),
        st.tuples(st.just("and"), st.lists(sub, min_size=2, max_size=3)),
        st.tuples(st.just("or"), st.lists(sub, min_size=2, max_size=3)),
    ),
    max_leaves=8,
)


def events() -> st.SearchStrategy[dict[str, Any]]:
    entries: dict[str, st.SearchStrategy[Any]] = {}
    for field, (kind, _, pool) in FIELDS.items():
        base = field.split("[")[0]
        if field in ("proc.aname[1]", "evt.arg.fd"):
            continue
        value = st.sampled_from(pool)
        if kind == "multi":
            value = st.lists(st.one_of(st.sampled_from(pool), st.none()), max_size=4)
        entries[base] = value if field in ALWAYS else st.one_of(st.none(), value)
    entries["evt.arg"] = st.one_of(
        st.none(), st.fixed_dictionaries({"fd": st.sampled_from(["3", "4"])}))
    return st.fixed_dictionaries(entries)


# --- our own renderer ---------------------------------------------------------------------------

_BARE = re.compile(r"[A-Za-z0-9_./:*?\[\]^$|+-]+")


@st.composite
def rendered(draw: st.DrawFn, tree: Tree) -> str:
    kind = tree[0]
    if kind == "check":
        _, field, op, values = tree
        if op == "exists":
            return f"{field} exists"
        lits = [draw(literal(v)) for v in values]
        if op in LIST_OPS:
            return f"{field} {op} ({', '.join(lits)})"
        sep = draw(st.sampled_from([" ", ""])) if not op.isalpha() else " "
        return f"{field}{sep}{op}{sep or ' ' if lits[0][0] in '=<>!' else sep}{lits[0]}"
    if kind == "not":
        return "not " + draw(grouped(tree[1]))
    word = f" {kind} "
    return word.join([draw(grouped(t)) for t in tree[1]])


@st.composite
def grouped(draw: st.DrawFn, tree: Tree) -> str:
    text = draw(rendered(tree))
    return f"({text})" if tree[0] in ("and", "or") else text


@st.composite
def literal(draw: st.DrawFn, value: str) -> str:
    if _BARE.fullmatch(value) and value not in ("and", "or", "not") and draw(st.booleans()):
        return value
    quote = draw(st.sampled_from(['"', "'"]))
    return quote + value.replace("\\", "\\\\").replace(quote, "\\" + quote) + quote


# --- the reference evaluator --------------------------------------------------------------------

UNITS = {"us": 1000, "ms": 1_000_000}


def ref_literal(kind: str, field: str, text: str) -> Any:
    if kind in ("str", "multi"):
        return text
    if kind == "bytes":
        return text.encode()
    if kind == "bool":
        return text.lower() in ("true", "1")
    if kind == "ip":
        return ref_ip(text)
    for unit, ns in UNITS.items():
        if text.endswith(unit):
            return int(text[: -len(unit)]) * ns
    if text.startswith("0x"):
        return int(text, 16)
    return float(text) if "." in text else int(text)


def ref_ip(text: str) -> Any:
    if "/" in text:
        net = ipaddress.ip_network(text, strict=False)
        if isinstance(net, ipaddress.IPv6Network) and net.network_address.ipv4_mapped:
            return ipaddress.ip_network(
                f"{net.network_address.ipv4_mapped}/{net.prefixlen - 96}")
        return net
    try:
        addr = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped:
        return addr.ipv4_mapped
    return addr


def ref_equal(kind: str, v: Any, c: Any) -> bool:
    if kind == "ip" and isinstance(c, (ipaddress.IPv4Network, ipaddress.IPv6Network)):
        return bool(v.version == c.version and v in c)
    return bool(v == c)


def ref_op(kind: str, op: str, v: Any, consts: list[Any], texts: tuple[str, ...]) -> bool:
    c: Any = consts[0] if consts else None
    as_bytes = v if isinstance(v, bytes) else str(v).encode()
    if op in ("=", "=="):
        return ref_equal(kind, v, c)
    if op == "!=":
        return not ref_equal(kind, v, c)
    if op in ("in", "intersects"):
        return any(ref_equal(kind, v, x) for x in consts)
    if op == "exists":
        return True
    if op in ("<", "<=", ">", ">="):
        return {"<": v < c, "<=": v <= c, ">": v > c, ">=": v >= c}[op]  # type: ignore[no-any-return]
    if op == "contains":
        return bool(c in v)
    if op == "icontains":
        return bool(c.lower() in v.lower())
    if op == "startswith":
        return bool(v.startswith(c))
    if op == "endswith":
        return bool(v.endswith(c))
    if op == "glob":
        return fnmatch.fnmatchcase(v, c)
    if op == "iglob":
        return fnmatch.fnmatchcase(v.lower(), c.lower())
    if op == "regex":
        return re.search(c, v) is not None
    if op == "bcontains":
        return bytes.fromhex(texts[0]) in as_bytes
    if op == "bstartswith":
        return as_bytes.startswith(bytes.fromhex(texts[0]))
    if op == "pmatch":
        for prefix in texts:
            p = prefix.rstrip("/")
            if (not p and v.startswith("/")) or (p and (v == p or v.startswith(p + "/"))):
                return True
        return False
    raise AssertionError(op)


def ref_extract(field: str, ev: dict[str, Any]) -> Any:
    if field == "proc.aname[1]":
        names = ev.get("proc.aname")
        return names[1] if names and len(names) > 1 else None
    if field == "evt.arg.fd":
        return (ev.get("evt.arg") or {}).get("fd")
    return ev.get(field)


def ref_eval(tree: Tree, ev: dict[str, Any]) -> bool:
    kind = tree[0]
    if kind == "not":
        return not ref_eval(tree[1], ev)
    if kind == "and":
        return all(ref_eval(t, ev) for t in tree[1])
    if kind == "or":
        return any(ref_eval(t, ev) for t in tree[1])
    _, field, op, texts = tree
    fkind = FIELDS[field][0]
    value_kind = "str" if fkind == "multi" else fkind
    if fkind == "bytes" and op in ("glob", "regex"):
        consts: list[Any] = [t.encode() for t in texts]
    elif op in ("glob", "iglob", "regex", "pmatch", "bcontains", "bstartswith"):
        consts = list(texts)
    else:
        consts = [ref_literal(value_kind, field, t) for t in texts]
    raw = ref_extract(field, ev)
    values = raw if fkind == "multi" else [raw]
    if value_kind == "ip":
        values = [None if v is None else ref_ip(v) for v in values]
    values = [v for v in values or [] if v is not None]
    if not values:
        return False  # <NA>: every check fails
    if fkind == "multi" and op == "!=":
        return not any(ref_equal(value_kind, v, consts[0]) for v in values)
    return any(ref_op(value_kind, op, v, consts, texts) for v in values)


# --- the properties -----------------------------------------------------------------------------

SETTINGS = settings(max_examples=300, deadline=None, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@SETTINGS
@given(data=st.data(), tree=trees, evs=st.lists(events(), min_size=1, max_size=5))
def test_compiled_matches_reference(data: st.DataObject, tree: Tree,
                                    evs: list[dict[str, Any]]) -> None:
    text = data.draw(rendered(tree))
    flt = compile_filter(text, TABLE)
    for ev in evs:
        assert flt.match(ev) == ref_eval(tree, ev), (text, ev)


@SETTINGS
@given(data=st.data(), tree=trees)
def test_render_round_trips(data: st.DataObject, tree: Tree) -> None:
    text = data.draw(rendered(tree))
    canonical = render(parse(text, TABLE))
    assert render(parse(canonical, TABLE)) == canonical


def kernel_views(ev: dict[str, Any]) -> list[dict[str, Any]]:
    """What the kernel may see for an event: the header fields as they are, and for a field that
    is <NA> in user space (proc.name, container.id) any value at all."""
    name, cid = ev.get("proc.name"), ev.get("container.id")
    comms = [name[:15]] if name is not None else [n[:15] for n in NAMES] + ["other"]
    cids = [cid] if cid is not None else ["host", "abc", "def", "other"]
    return [{"evt_type": ev["evt.type"], "dir": ev["evt.dir"], "pid": ev["proc.pid"],
             "tid": ev["thread.tid"], "comm": comm, "container_id": c}
            for comm in comms for c in cids]


def assert_sound(text: str, ev: dict[str, Any]) -> None:
    flt = compile_filter(text, TABLE)
    if not flt.match(ev):
        return
    with_universe = derive(flt.ast, universes={"evt.type": TYPES})
    for seen in kernel_views(ev):
        assert flt.pushdown.admits(**seen), (text, ev, flt.pushdown)
        assert with_universe.admits(**seen), (text, ev, with_universe)


@SETTINGS
@given(data=st.data(), tree=trees, evs=st.lists(events(), min_size=1, max_size=8))
def test_pushdown_is_sound(data: st.DataObject, tree: Tree, evs: list[dict[str, Any]]) -> None:
    text = data.draw(rendered(tree))
    for ev in evs:
        assert_sound(text, ev)


# --- every single check against every value -----------------------------------------------------

BASE: dict[str, Any] = {"evt.type": "open", "evt.dir": "<", "proc.pid": 1, "thread.tid": 1}
MULTI_VALUES: list[Any] = [[], [None], ["bash"], ["nginx", "bash"], [None, "Nginx"], NAMES]


def single_checks() -> list[Tree]:
    out: list[Tree] = []
    for field, (kind, _, _) in FIELDS.items():
        for op in OPS[kind]:
            if op == "exists":
                out.append(("check", field, op, ()))
                continue
            pool = literal_pool(field, op)
            out.extend(("check", field, op, (lit,)) for lit in pool)
            if op in LIST_OPS:
                out.extend(("check", field, op, (a, b)) for a in pool for b in pool if a < b)
    return out


def single_events(field: str) -> list[dict[str, Any]]:
    kind, _, pool = FIELDS[field]
    if field == "proc.aname[1]":
        return [{**BASE, "proc.aname": v} for v in MULTI_VALUES]
    if field == "evt.arg.fd":
        return [{**BASE, "evt.arg": v} for v in (None, {}, {"fd": "3"}, {"fd": "4"})]
    values = MULTI_VALUES if kind == "multi" else pool
    nones: list[Any] = [] if field in ALWAYS else [None]
    return [{**BASE, field: v} for v in [*values, *nones]]


def test_every_check_against_the_reference() -> None:
    """Exhaustive over the pools: each check, each value (and <NA>), both implementations,
    rendered through the quoting and spacing variants; then pushdown soundness."""
    count = 0
    for tree in single_checks():
        field = tree[1]
        texts = _variants(tree)
        texts.add(render(parse(next(iter(texts)), TABLE)))
        for text in texts:
            flt = compile_filter(text, TABLE)
            for ev in single_events(field):
                assert flt.match(ev) == ref_eval(tree, ev), (text, ev)
                for negated in (f"not ({text})",):
                    assert compile_filter(negated, TABLE).match(ev) != ref_eval(tree, ev)
                    assert_sound(negated, ev)
                assert_sound(text, ev)
                count += 1
    assert count > 5000


def _variants(tree: Tree) -> set[str]:
    """The check written with double quotes, single quotes, and bare (tight) where possible."""
    _, field, op, values = tree
    if op == "exists":
        return {f"{field} exists"}
    out = set()
    for style in ('"', "'", ""):
        lits = []
        for v in values:
            if style == "" and _BARE.fullmatch(v) and v not in ("and", "or", "not"):
                lits.append(v)
            else:
                q = style or '"'
                lits.append(q + v.replace("\\", "\\\\").replace(q, "\\" + q) + q)
        if op in LIST_OPS:
            out.add(f"{field} {op} ({', '.join(lits)})")
        elif op.isalpha():
            out.add(f"{field} {op} {lits[0]}")
        else:
            out.add(f"{field}{op}{lits[0]}" if style == "" else f"{field} {op} {lits[0]}")
    return out


# --- any text: a tree or a FilterError, never another exception ---------------------------------

PIECES = ["proc.name", "proc.aname[", "]", "1", "evt.arg.", "fd.ip", "fd.port", "=", "==", "!=",
          "<", ">=", " ", "\t", "(", ")", ",", "'", '"', "\\", "and", "or", "not", "in", "exists",
          "contains", "pmatch", "10.0.0.0/8", "::1", "0x1f", "-", "x", "*", "regex", "[", "é"]


@SETTINGS
@given(st.lists(st.sampled_from(PIECES), max_size=20).map("".join) | st.text(max_size=40))
def test_any_text_parses_or_fails_cleanly(text: str) -> None:
    try:
        flt = compile_filter(text, TABLE)
    except FilterError as e:
        assert 0 <= e.pos <= len(text)
        assert e.text == text
        return
    flt.match({"evt.type": "open", "proc.name": "x"})
    flt.explain()
