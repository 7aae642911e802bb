"""What compiled filters match: one table per concern, plus ordering, fields and explain."""

from __future__ import annotations

import ipaddress
from typing import Any

import pytest
from filter_fakes import FIELDS, TABLE, FieldDef

from tracer.filter import compile_ast, compile_filter, conjuncts, parse

EV: dict[str, Any] = {
    "evt.type": "open",
    "evt.dir": "<",
    "evt.num": 7,
    "evt.rawres": -2,
    "evt.latency": 2_000_000,
    "evt.failed": True,
    "evt.buffer": b"HELLO world",
    "evt.info": "fd=3 name=/etc/passwd",
    "evt.arg": {"fd": "3", "name": "/etc/passwd", 0: "3", 1: "/etc/passwd"},
    "evt.rawarg": {"res": -2, "flags": 0},
    "proc.name": "nginx",
    "proc.pid": 100,
    "proc.aname": ["nginx", "bash", "sshd", "systemd"],
    "proc.apid": [100, 50, 10, 1],
    "thread.tid": 101,
    "thread.cpu": 0.5,
    "thread.cgroup": {"cpuacct": "/docker/abc"},
    "thread.cgroups": ["cpu=/a", "mem=/b"],
    "container.id": "abc123",
    "container.mount": {"/data": "/var/lib/data"},
    "k8s.pod.label": {"app": "web", "app.kubernetes.io/name": "web"},
    "fd.name": "/etc/passwd",
    "fd.num": 3,
    "fd.ip": "10.1.2.3",
    "fd.net": ipaddress.ip_address("10.1.2.3"),
    "fd.port": 443,
}

MATCHES = [
    # equality; == is =
    ("proc.name=nginx", True),
    ("proc.name==nginx", True),
    ("proc.name=NGINX", False),
    ("proc.name!=nginx", False),
    ("proc.name!=curl", True),
    ("proc.name in (curl, nginx)", True),
    ("proc.name in (curl)", False),
    ("proc.name intersects (curl, nginx)", True),
    # string operators
    ("proc.name contains gin", True),
    ("proc.name contains GIN", False),
    ("proc.name icontains GIN", True),
    ("proc.name startswith ng", True),
    ("proc.name startswith gin", False),
    ("proc.name endswith inx", True),
    ("proc.name glob 'ng*'", True),
    ("proc.name glob 'NG*'", False),
    ("proc.name iglob 'NG*'", True),
    ("proc.name glob n?inx", True),
    ("proc.name glob [mn]ginx", True),
    ("proc.name glob gin", False),  # glob matches the whole value
    ("fd.name glob /etc/*", True),
    ("fd.name glob /*", True),  # * crosses /
    ("proc.name regex gin", True),  # search, unanchored
    ("proc.name regex ^gin", False),
    ('proc.name regex "^ng\\w+$"', True),
    # pmatch: path prefixes on / boundaries
    ("fd.name pmatch (/etc)", True),
    ("fd.name pmatch (/etc/)", True),
    ("fd.name pmatch (/et)", False),
    ("fd.name pmatch (/)", True),
    ("fd.name pmatch (/usr, /etc/passwd)", True),
    ("fd.name pmatch (/etc/passwd/x)", False),
    ("fd.name pmatch (/etc/passw)", False),
    # bytes
    ("evt.buffer bcontains 776f726c64", True),
    ("evt.buffer bstartswith 48454c4c4f", True),
    ("evt.buffer bstartswith 776f", False),
    ("evt.buffer contains world", True),
    ("evt.buffer icontains WORLD", True),
    ("evt.buffer startswith HELLO", True),
    ("evt.buffer = 'HELLO world'", True),
    ("evt.buffer glob 'HELLO*'", True),
    ("evt.buffer regex 'w.rld'", True),
    ("evt.info bcontains 2f657463", True),
    ("evt.info bstartswith 2f657463", False),
    # numbers
    ("proc.pid=100", True),
    ("proc.pid=0x64", True),
    ("proc.pid=0100", True),
    ("proc.pid>99", True),
    ("proc.pid<100", False),
    ("proc.pid<=100", True),
    ("proc.pid>=101", False),
    ("proc.pid in (1, 100)", True),
    ("proc.pid!=100", False),
    ("evt.rawres<0", True),
    ("evt.rawres=-2", True),
    ("evt.num=7", True),
    ("evt.latency>1ms", True),
    ("evt.latency>2ms", False),
    ("evt.latency>=2ms", True),
    ("evt.latency>=0.002s", True),
    ("evt.latency=2000000", True),
    ("thread.cpu>0.4", True),
    ("thread.cpu=0.5", True),
    ("thread.cpu<1", True),
    ("fd.port=443", True),
    ("fd.port in (80, 443)", True),
    ("fd.port>1024", False),
    # bool
    ("evt.failed=true", True),
    ("evt.failed=TRUE", True),
    ("evt.failed=false", False),
    ("evt.failed=1", True),
    ("evt.failed!=false", True),
    # IP
    ("fd.ip=10.1.2.3", True),
    ("fd.ip=10.1.2.4", False),
    ("fd.ip=10.0.0.0/8", True),
    ("fd.ip!=10.0.0.0/8", False),
    ("fd.ip!=11.0.0.0/8", True),
    ("fd.ip=192.168.0.0/16", False),
    ("fd.ip in (1.1.1.1, 10.1.0.0/16)", True),
    ("fd.ip in (1.1.1.1, 10.2.0.0/16)", False),
    ("fd.ip=::ffff:10.1.2.3", True),  # IPv4-mapped
    ("fd.ip=::ffff:10.0.0.0/104", True),
    ("fd.ip=::a01:203", False),  # same integer, other family
    ("fd.net=10.0.0.0/8", True),
    ("fd.net=10.1.2.3", True),
    ("fd.net=11.0.0.0/8", False),
    # multi-valued: any value; != is "none equal"
    ("proc.aname=bash", True),
    ("proc.aname=init", False),
    ("proc.aname!=sshd", False),
    ("proc.aname!=init", True),
    ("proc.aname contains ssh", True),
    ("proc.aname in (init, systemd)", True),
    ("proc.aname intersects (systemd)", True),
    ("proc.aname exists", True),
    ("proc.aname[0]=nginx", True),
    ("proc.aname[1]=bash", True),
    ("proc.aname[1]=sshd", False),
    ("proc.aname[9]=x", False),
    ("proc.aname[9] exists", False),
    ("proc.aname[9]!=x", False),
    ("proc.apid[3]=1", True),
    ("thread.cgroups intersects (cpu=/a, x)", True),
    ("thread.cgroups intersects (x)", False),
    # field arguments
    ("evt.arg.fd=3", True),
    ("evt.arg[0]=3", True),
    ("evt.arg[1]=/etc/passwd", True),
    ("evt.arg.name contains passwd", True),
    ("evt.arg.nope exists", False),
    ("evt.rawarg.res<0", True),
    ("k8s.pod.label.app=web", True),
    ("k8s.pod.label[app.kubernetes.io/name]=web", True),
    ("k8s.pod.label.app.kubernetes.io/name=web", True),
    ("thread.cgroup.cpuacct startswith /docker", True),
    ("container.mount[/data]=/var/lib/data", True),
    # boolean structure
    ("proc.name=nginx and not evt.type=read", True),
    ("proc.name=x or evt.type=open", True),
    ("not (proc.name=nginx or evt.type=x)", False),
    ("proc.name=nginx and (evt.type=read or evt.dir=<)", True),
    ("evt.type=open or evt.type=read or evt.type=close", True),
    ("evt.type=read or evt.type=close or evt.type in (x, y)", False),
    ("evt.type in (read) or evt.type=open", True),
    ("evt.type=read or proc.pid=100 or evt.type=write", True),
    ("proc.pid=1 or proc.pid=2 or proc.pid in (3, 100)", True),
]


@pytest.mark.parametrize(("text", "expected"), MATCHES)
def test_matches(text: str, expected: bool) -> None:
    assert compile_filter(text, TABLE).match(EV) is expected


NA_EV: dict[str, Any] = {
    **EV, "fd.name": None, "fd.ip": None, "proc.aname": [], "thread.cgroups": [None, None],
    "evt.latency": None, "evt.failed": None,
}
# On <NA> every check is false, != and exists included; not inverts.
NA = [
    ("fd.name=x", False),
    ("fd.name!=x", False),
    ("fd.name exists", False),
    ("not fd.name exists", True),
    ("not fd.name=x", True),
    ("not fd.name!=x", True),
    ("fd.name contains x", False),
    ("fd.name pmatch (/)", False),
    ("fd.name in (a, b)", False),
    ("fd.name glob *", False),
    ("fd.name regex .*", False),
    ("fd.name bcontains 00", False),
    ("fd.ip=1.1.1.1", False),
    ("fd.ip!=1.1.1.1", False),
    ("fd.ip!=0.0.0.0/0", False),
    ("evt.latency>0", False),
    ("evt.latency<1", False),
    ("evt.latency!=0", False),
    ("evt.failed=false", False),
    ("evt.failed!=true", False),
    ("proc.aname=x", False),
    ("proc.aname!=x", False),
    ("proc.aname exists", False),
    ("not proc.aname!=x", True),
    ("proc.aname[0]=x", False),
    ("thread.cgroups exists", False),
    ("thread.cgroups!=x", False),
    ("thread.cgroups intersects (x)", False),
    ("fd.name=x or not fd.name=x", True),
    ("fd.name=x or fd.name!=x", False),
]


@pytest.mark.parametrize(("text", "expected"), NA)
def test_missing_values(text: str, expected: bool) -> None:
    assert compile_filter(text, TABLE).match(NA_EV) is expected


def test_unparsable_ip_value_is_missing() -> None:
    ev = {**EV, "fd.ip": ""}
    for text in ("fd.ip=1.1.1.1", "fd.ip!=1.1.1.1", "fd.ip in (0.0.0.0/0)"):
        assert not compile_filter(text, TABLE).match(ev)
    for value in (ipaddress.ip_address("10.1.2.3"), int(ipaddress.ip_address("10.1.2.3")),
                  ipaddress.ip_address("10.1.2.3").packed):
        assert compile_filter("fd.ip=10.1.2.3", TABLE).match({**EV, "fd.ip": value})


@pytest.mark.parametrize(("text", "field", "value"), [
    ("proc.pid > 5", "proc.pid", "abc"),
    ("proc.pid < 5", "proc.pid", "abc"),
    ("proc.pid >= 5", "proc.pid", "abc"),
    ("proc.pid in (1, 2)", "proc.pid", [1]),
    ("fd.name contains x", "fd.name", 5),
    ("fd.name startswith x", "fd.name", 5),
    ("fd.name pmatch (/x)", "fd.name", 5),
    ("fd.name glob *", "fd.name", 5),
    ("evt.buffer contains x", "evt.buffer", "x"),
    ("proc.aname contains x", "proc.aname", [5, 6]),
    ("proc.apid[0] > 1", "proc.apid", ["x"]),
])
def test_values_of_the_wrong_type_count_as_missing(text: str, field: str, value: Any) -> None:
    assert compile_filter(text, TABLE).match({**EV, field: value}) is False


def test_ipv6_value_against_ipv4_network() -> None:
    flt = compile_filter("fd.ip=10.0.0.0/8", TABLE)
    assert not flt.match({**EV, "fd.ip": "::a00:1"})
    assert flt.match({**EV, "fd.ip": "::ffff:10.0.0.1"})
    assert compile_filter("fd.ip=2607:f8b0::/32", TABLE).match({**EV, "fd.ip": "2607:f8b0::1"})


def test_fields() -> None:
    flt = compile_filter("proc.aname[2]=x or (evt.arg.fd=3 and not fd.name exists)", TABLE)
    assert flt.fields == {"proc.aname", "evt.arg", "fd.name"}


class CountingTable:
    """Records which fields get extracted, to see evaluation order."""

    def __init__(self) -> None:
        self.calls: list[str] = []
        self._by_name = {f.name: _Counting(f, self.calls) for f in FIELDS}

    def lookup(self, name: str) -> _Counting | None:
        return self._by_name.get(name)


class _Counting:
    def __init__(self, inner: FieldDef, calls: list[str]) -> None:
        self._inner = inner
        self._calls = calls
        self.name, self.type, self.arg = inner.name, inner.type, inner.arg
        self.multi, self.cost = inner.multi, inner.cost

    def extract(self, ev: dict[str, Any], arg: str | int | None, /) -> Any:
        self._calls.append(self.name)
        return self._inner.extract(ev, arg)


def test_and_evaluates_cheapest_first() -> None:
    table = CountingTable()
    # proc.aname is multi-valued with cost 5, regex costs more than =: both go last.
    flt = compile_filter("proc.aname=bash and fd.name regex x and proc.name=curl", table)
    assert flt.match(EV) is False
    assert table.calls == ["proc.name"]


def test_or_evaluates_cheapest_first_and_merges_equalities() -> None:
    table = CountingTable()
    flt = compile_filter(
        "fd.name regex passwd or evt.type=read or evt.type=open or evt.type=write", table)
    assert flt.match(EV) is True
    assert table.calls == ["evt.type"]  # one lookup for the three equalities, regex skipped


def test_explain() -> None:
    flt = compile_filter("evt.type in (accept, accept4) and not (proc.name=x or fd.port>80)",
                         TABLE)
    assert flt.explain() == """\
and
  evt.type in (accept, accept4)  [cost 2]
  not
    or
      proc.name = x  [cost 2]
      fd.port > 80  [cost 2]
pushdown:
  evt.type in (accept, accept4)"""
    assert compile_filter("fd.name exists", TABLE).explain().endswith(
        "pushdown:\n  none: every event reaches user space")


def test_conjuncts_and_compile_ast() -> None:
    tree = parse("evt.type=open and (proc.pid=1 and fd.name contains x) and "
                 "(proc.name=a or proc.name=b)", TABLE)
    parts = conjuncts(tree)
    assert len(parts) == 4
    rest = compile_ast(parts[2])
    assert rest.match({**EV, "fd.name": "axb"})
    assert not rest.match(EV)


def test_match_is_a_plain_function_and_pure() -> None:
    flt = compile_filter("proc.name=nginx", TABLE)
    ev = dict(EV)
    assert flt.match(ev) and flt.match(ev)
    assert ev == EV
    assert callable(flt.match)
    assert repr(flt) == "CompiledFilter('proc.name=nginx')"
