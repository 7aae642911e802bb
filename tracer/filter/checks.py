"""What one check means: which operators a field type takes, how literals become typed operands,
and the test an operand applies to one present value.

Field types fall into five kinds:

=========  =====================================  ==========================================
kind       field types                            operators beyond ``= != in intersects exists``
=========  =====================================  ==========================================
string     STR, CHARBUF (and unknown types)       contains icontains startswith endswith glob
                                                  iglob regex bcontains bstartswith pmatch
bytes      BYTES                                  as string, without pmatch
number     INT UINT PORT RELTIME ABSTIME DOUBLE   < <= > >=
bool       BOOL                                   --
ip         IPADDR IPNET                           --
=========  =====================================  ==========================================

Literals: numbers are decimal or ``0x`` hex, with a sign for INT (DOUBLE also takes floats;
RELTIME also takes a unit: ``1.5ms``, ``2s``); UINT and PORT are range-checked; BOOL is
``true false 1 0``; IPADDR takes an address or a network (``fd.ip=10.0.0.0/8`` means "in that
network"), IPNET a network or an address (a /32 or /128); ``bcontains``/``bstartswith`` take hex
bytes.  Everything is converted once, here, at compile time.
"""

from __future__ import annotations

import enum
import fnmatch
import functools
import ipaddress
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

from tracer.errors import FilterError
from tracer.filter.ast import FieldRef, Op, Value

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
Test = Callable[[Any], bool]


class Kind(enum.Enum):
    STRING = "string"
    BYTES = "bytes"
    NUMBER = "number"
    BOOL = "bool"
    IP = "ip"


_KIND_OF_TYPE: Final = {
    "STR": Kind.STRING, "CHARBUF": Kind.STRING, "BYTES": Kind.BYTES,
    "INT": Kind.NUMBER, "UINT": Kind.NUMBER, "PORT": Kind.NUMBER, "RELTIME": Kind.NUMBER,
    "ABSTIME": Kind.NUMBER, "DOUBLE": Kind.NUMBER, "BOOL": Kind.BOOL,
    "IPADDR": Kind.IP, "IPNET": Kind.IP,
}

_COMMON: Final = frozenset({Op.EQ, Op.NE, Op.IN, Op.INTERSECTS, Op.EXISTS})
_TEXT_OPS: Final = frozenset({Op.CONTAINS, Op.ICONTAINS, Op.STARTSWITH, Op.ENDSWITH, Op.GLOB,
                              Op.IGLOB, Op.REGEX, Op.BCONTAINS, Op.BSTARTSWITH})
ALLOWED: Final = {
    Kind.STRING: _COMMON | _TEXT_OPS | {Op.PMATCH},
    Kind.BYTES: _COMMON | _TEXT_OPS,
    Kind.NUMBER: _COMMON | {Op.LT, Op.LE, Op.GT, Op.GE},
    Kind.BOOL: _COMMON,
    Kind.IP: _COMMON,
}

_INT_RE: Final = re.compile(r"[+-]?(?:0[xX][0-9a-fA-F]+|[0-9]+)")
_DURATION_RE: Final = re.compile(r"([0-9]+(?:\.[0-9]*)?|\.[0-9]+)(ns|us|ms|s|m|h)")
_UNIT_NS: Final = {"ns": 1, "us": 1_000, "ms": 1_000_000, "s": 10**9, "m": 60 * 10**9,
                   "h": 3600 * 10**9}
_RANGES: Final = {
    "INT": (-(2**63), 2**63 - 1, "an integer"),
    "UINT": (0, 2**64 - 1, "a non-negative integer"),
    "PORT": (0, 65535, "a port number (0-65535)"),
    "RELTIME": (-(2**63), 2**63 - 1, "a time in ns (or with a unit: 10ms)"),
    "ABSTIME": (0, 2**64 - 1, "a time in ns since the epoch"),
}


def type_name(ref: FieldRef) -> str:
    return ref.fdef.type.name


def kind_of(ref: FieldRef) -> Kind:
    """The kind of a field's values; an unknown type reads as a string."""
    return _KIND_OF_TYPE.get(type_name(ref), Kind.STRING)


# --- operands -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class IPOperand:
    """Addresses and networks of an IP check (a single ``=`` has exactly one of either)."""

    addrs: frozenset[IPAddress]
    nets: tuple[IPNetwork, ...]


@dataclass(frozen=True)
class PathPrefixes:
    """``pmatch`` prefixes: a path matches when it equals one of ``exact`` or starts with one of
    ``dirs`` (each prefix plus ``/``), so ``/etc`` matches ``/etc/passwd`` but not ``/etcd``."""

    exact: frozenset[str]
    dirs: tuple[str, ...]


def check_operator(ref: FieldRef, op: Op, op_pos: int, text: str) -> None:
    """Raise unless ``op`` applies to the field's type."""
    kind = kind_of(ref)
    if op in ALLOWED[kind]:
        return
    allowed = ", ".join(o.value for o in Op if o in ALLOWED[kind])
    raise FilterError(
        f"operator '{op.value}' does not apply to {ref.text} ({type_name(ref)}); "
        f"use one of: {allowed}", text, op_pos)


def make_operand(ref: FieldRef, op: Op, values: tuple[Value, ...], op_pos: int,
                 text: str) -> Any:
    """The typed constant for ``ref op values``; a FilterError at the offending literal."""
    check_operator(ref, op, op_pos, text)
    kind = kind_of(ref)
    if op is Op.EXISTS:
        return None
    if op in (Op.IN, Op.INTERSECTS):
        items = [_scalar(ref, kind, v, text) for v in values]
        if kind is Kind.IP:
            return _ip_operand(items)
        return frozenset(items)
    if op is Op.PMATCH:
        return _path_prefixes(values, text)
    (value,) = values
    if op in (Op.EQ, Op.NE):
        item = _scalar(ref, kind, value, text)
        return _ip_operand([item]) if kind is Kind.IP else item
    if op in (Op.LT, Op.LE, Op.GT, Op.GE):
        return _number(ref, value, text)
    if op in (Op.BCONTAINS, Op.BSTARTSWITH):
        try:
            return bytes.fromhex(value.text)
        except ValueError:
            raise FilterError(f"{op.value} expects hex bytes (like 48454c4c4f), got "
                              f"'{value.text}'", text, value.pos) from None
    literal: str | bytes = value.text
    if kind is Kind.BYTES:
        literal = value.text.encode("utf-8", "surrogateescape")
    if op is Op.ICONTAINS:
        return literal.lower()
    if op in (Op.GLOB, Op.IGLOB):
        return _glob(value.text, op is Op.IGLOB, kind is Kind.BYTES)
    if op is Op.REGEX:
        return _regex(value, kind is Kind.BYTES, text)
    return literal  # contains, startswith, endswith


def _scalar(ref: FieldRef, kind: Kind, value: Value, text: str) -> Any:
    """One literal for equality or membership."""
    if kind is Kind.STRING:
        return value.text
    if kind is Kind.BYTES:
        return value.text.encode("utf-8", "surrogateescape")
    if kind is Kind.NUMBER:
        return _number(ref, value, text)
    if kind is Kind.BOOL:
        word = value.text.lower()
        if word in ("true", "1"):
            return True
        if word in ("false", "0"):
            return False
        raise FilterError(f"{ref.text} expects true or false, got '{value.text}'", text,
                          value.pos)
    return _ip_literal(ref, value, text)


def _number(ref: FieldRef, value: Value, text: str) -> int | float:
    tname = type_name(ref)
    s = value.text.strip()
    if tname == "DOUBLE":
        if _INT_RE.fullmatch(s):
            return _int(s)
        try:
            return float(s)
        except ValueError:
            raise FilterError(f"{ref.text} expects a number, got '{value.text}'", text,
                              value.pos) from None
    low, high, what = _RANGES.get(tname, _RANGES["INT"])
    number: int | None = None
    if _INT_RE.fullmatch(s):
        number = _int(s)
    elif tname == "RELTIME" and (m := _DURATION_RE.fullmatch(s)):
        number = round(float(m.group(1)) * _UNIT_NS[m.group(2)])
    if number is None or not low <= number <= high:
        raise FilterError(f"{ref.text} expects {what}, got '{value.text}'", text, value.pos)
    return number


def _int(s: str) -> int:
    """A literal that matched ``_INT_RE``: decimal (leading zeros allowed) or 0x hex."""
    return int(s, 16) if "x" in s or "X" in s else int(s)


def _ip_literal(ref: FieldRef, value: Value, text: str) -> IPAddress | IPNetwork:
    s = value.text.strip()
    try:
        if "/" in s:
            return normalize_net(ipaddress.ip_network(s, strict=False))
        addr = normalize_ip(ipaddress.ip_address(s))
    except ValueError:
        what = "a network (like 10.0.0.0/8)" if type_name(ref) == "IPNET" else \
            "an IP address or network"
        raise FilterError(f"{ref.text} expects {what}, got '{value.text}'", text,
                          value.pos) from None
    if type_name(ref) == "IPNET":
        # An address given for a network field is the one-address network.
        return ipaddress.ip_network(addr)
    return addr


def _ip_operand(items: list[Any]) -> IPOperand:
    nets = tuple(i for i in items if isinstance(i, (ipaddress.IPv4Network, ipaddress.IPv6Network)))
    addrs = frozenset(i for i in items if i not in nets)
    return IPOperand(addrs, nets)


def normalize_ip(addr: IPAddress) -> IPAddress:
    """An IPv4-mapped IPv6 address (``::ffff:10.0.0.1``) is the IPv4 address it carries."""
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        return addr.ipv4_mapped
    return addr


def normalize_net(net: IPNetwork) -> IPNetwork:
    """``::ffff:10.0.0.0/104`` is ``10.0.0.0/8``, to match what :func:`normalize_ip` makes."""
    if isinstance(net, ipaddress.IPv6Network) and net.prefixlen >= 96:
        mapped = net.network_address.ipv4_mapped
        if mapped is not None:
            return ipaddress.ip_network(f"{mapped}/{net.prefixlen - 96}")
    return net


IPKey = tuple[int, int]  # (version, address as an integer): hashes and masks fast


def ip_key(v: Any) -> IPKey | None:
    """An extracted value (address object, text, packed bytes or int) as a normalized
    ``(version, int)`` key; ``None`` when it is not an address."""
    if isinstance(v, (ipaddress.IPv4Address, ipaddress.IPv6Address)):
        a = normalize_ip(v)
        return (a.version, int(a))
    try:
        return _parse_ip_key(v)
    except TypeError:  # unhashable: not an address anyway
        return None


@functools.lru_cache(maxsize=4096)
def _parse_ip_key(v: str | bytes | int) -> IPKey | None:
    # Cached: the same few peers' addresses come back event after event, and parsing one costs
    # microseconds.
    try:
        a = normalize_ip(ipaddress.ip_address(v))
    except ValueError:
        return None
    return (a.version, int(a))


def ip_key_test(operand: IPOperand) -> Callable[[IPKey], bool]:
    """Whether a normalized address key is one of the operand's addresses or in its networks."""
    addrs = frozenset((a.version, int(a)) for a in operand.addrs)
    nets = tuple((n.version, int(n.network_address), int(n.netmask)) for n in operand.nets)
    if not nets:
        return addrs.__contains__
    if not addrs and len(nets) == 1:
        ((version, base, mask),) = nets
        return lambda k: k[0] == version and k[1] & mask == base

    def test(k: IPKey) -> bool:
        if k in addrs:
            return True
        version, value = k
        return any(v == version and value & m == b for v, b, m in nets)

    return test


def _path_prefixes(values: tuple[Value, ...], text: str) -> PathPrefixes:
    exact: set[str] = set()
    dirs: list[str] = []
    for v in values:
        if not v.text:
            raise FilterError("empty path in pmatch list", text, v.pos)
        p = v.text.rstrip("/") or "/"
        exact.add(p)
        dirs.append("/" if p == "/" else p + "/")
    return PathPrefixes(frozenset(exact), tuple(dirs))


def _glob(pattern: str, ignore_case: bool, as_bytes: bool) -> re.Pattern[Any]:
    flags = re.IGNORECASE if ignore_case else 0
    if as_bytes:
        # Match bytes byte for byte: the pattern's UTF-8 bytes, each as one latin-1 character.
        latin = pattern.encode("utf-8", "surrogateescape").decode("latin-1")
        return re.compile(fnmatch.translate(latin).encode("latin-1"), flags)
    return re.compile(fnmatch.translate(pattern), flags)


def _regex(value: Value, as_bytes: bool, text: str) -> re.Pattern[Any]:
    try:
        if as_bytes:
            return re.compile(value.text.encode("utf-8", "surrogateescape"))
        return re.compile(value.text)
    except re.error as e:
        raise FilterError(f"invalid regular expression: {e}", text, value.pos) from None


# --- tests on one present value -----------------------------------------------------------------


def value_test(kind: Kind, op: Op, operand: Any) -> Test:
    """The test ``op operand`` applies to one present (non-``None``) value of a field of ``kind``.

    ``!=`` is the negation of ``=``; multi-valued fields use ``=``'s test (see the compiler).
    An IP field's value that is not an address (say ``""``) counts as missing: every test fails.
    """
    if kind is Kind.IP and op in (Op.EQ, Op.NE, Op.IN, Op.INTERSECTS):
        return _ip_test(operand, negate=op is Op.NE)
    if op is Op.NE:
        eq = value_test(kind, Op.EQ, operand)
        return lambda v: not eq(v)
    tests: dict[Op, Test] = {
        Op.EQ: lambda v: bool(v == operand),
        Op.IN: lambda v: v in operand,
        Op.INTERSECTS: lambda v: v in operand,
        Op.LT: lambda v: bool(v < operand),
        Op.LE: lambda v: bool(v <= operand),
        Op.GT: lambda v: bool(v > operand),
        Op.GE: lambda v: bool(v >= operand),
        Op.EXISTS: lambda v: True,
        Op.PMATCH: lambda v: v in operand.exact or v.startswith(operand.dirs),
        Op.GLOB: lambda v: operand.match(v) is not None,
        Op.IGLOB: lambda v: operand.match(v) is not None,
        Op.REGEX: lambda v: operand.search(v) is not None,
    }
    if op in tests:
        return tests[op]
    if kind is Kind.STRING and op in (Op.BCONTAINS, Op.BSTARTSWITH):
        if op is Op.BCONTAINS:
            return lambda v: operand in v.encode("utf-8", "surrogateescape")
        return lambda v: bool(v.encode("utf-8", "surrogateescape").startswith(operand))
    text_tests: dict[Op, Test] = {
        Op.CONTAINS: lambda v: operand in v,
        Op.BCONTAINS: lambda v: operand in v,
        Op.ICONTAINS: lambda v: operand in v.lower(),
        Op.STARTSWITH: lambda v: bool(v.startswith(operand)),
        Op.BSTARTSWITH: lambda v: bool(v.startswith(operand)),
        Op.ENDSWITH: lambda v: bool(v.endswith(operand)),
    }
    return text_tests[op]


def _ip_test(operand: IPOperand, negate: bool) -> Test:
    key_test = ip_key_test(operand)
    if negate:
        return lambda v: (k := ip_key(v)) is not None and not key_test(k)
    return lambda v: (k := ip_key(v)) is not None and key_test(k)
