"""Output lines: sysdig's default line, the -pc/-pk presets, -p formats (%Nfield, '*', <NA>),
-j (default keys and -p keys), and the -t time modes. Timestamps are made by the test and their
text is computed with datetime, independently of the formatter.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import time

import pytest

from tracer.errors import UsageError
from tracer.event import RenderOptions
from tracer.output.format import PRESETS, Formatter
from tracer.testing import Synth, fd_row, lines, state_from, tables, thread_row

UTC = dt.UTC
TS = int(dt.datetime(2018, 8, 17, 17, 35, 48, tzinfo=UTC).timestamp()) * 10**9 + 514682170


pytestmark = pytest.mark.usefixtures("utc")  # sysdig's times are local: compared in UTC


def curl() -> dict[str, list[object]]:
    return tables(threads=[thread_row(17497, comm="curl", cwd="/root", uid=0, exe="curl",
                                      args=["-6", "http://www.google.com"])],
                  fds={17497: [fd_row(1, "file", "/dev/pts/0")]})


def open_at_219() -> Synth:
    """218 records, then curl's open of /etc/ld.so.cache as evt.num 219-220 at TS."""
    s = Synth(start_ts=TS - 219_000, pid=17497, step=1000)
    for _ in range(109):
        s.syscall("brk", (0,), ret=0x55D5A4E1F000)
    s.open("/etc/ld.so.cache", 3, os.O_RDONLY | os.O_CLOEXEC)
    return s


OPEN_INFO = "fd=3(<f>/etc/ld.so.cache) name=/etc/ld.so.cache flags=524288(O_RDONLY|O_CLOEXEC) mode=0 "


def test_default_line_like_sysdig() -> None:
    out = lines(open_at_219().batch(), state=state_from(curl()), filter="evt.num=220")
    assert out == [f"220 17:35:48.514682170 0 curl (17497) < open {OPEN_INFO}"]


def test_default_line_of_enter_without_params_keeps_separator() -> None:
    out = lines(open_at_219().batch(), state=state_from(curl()), filter="evt.num=219")
    assert out == ["219 17:35:48.514681170 0 curl (17497) > open "]


def test_default_line_local_time() -> None:
    os.environ["TZ"] = "XXX-05:30"  # POSIX: 5h30 east of UTC
    time.tzset()
    want = dt.datetime.fromtimestamp(TS // 10**9, dt.timezone(dt.timedelta(hours=5, minutes=30)))
    out = lines(open_at_219().batch(), state=state_from(curl()), filter="evt.num=220")
    assert out[0].split()[1] == want.strftime("%H:%M:%S") + ".514682170"


@pytest.mark.parametrize(
    ("preset", "expected"),
    [
        ("c", f"220 17:35:48.514682170 0 host (host) curl (17497:<NA>) < open {OPEN_INFO}"),
        ("container", f"220 17:35:48.514682170 0 host (host) curl (17497:<NA>) < open {OPEN_INFO}"),
        ("k", f"220 17:35:48.514682170 0 <NA> (host) curl (17497:<NA>) < open {OPEN_INFO}"),
    ],
)
def test_container_presets(preset: str, expected: str) -> None:
    out = lines(open_at_219().batch(), state=state_from(curl()), fmt=PRESETS[preset], filter="evt.num=220")
    assert out == [expected]


def in_container() -> Synth:
    s = Synth(start_ts=TS, pid=17497).threadinfo(container_id="3ad7b26ded6d", vtid=12, vpid=12)
    s.container("3ad7b26ded6d", name="web", pod_name="web-7d4b9", image="nginx")
    return s.write(1, b"hi")


@pytest.mark.parametrize(
    ("preset", "expected"),
    [
        ("c", "4 17:35:48.514685170 0 web (3ad7b26ded6d) curl (17497:12) < write res=2 data=hi "),
        ("k", "4 17:35:48.514685170 0 web-7d4b9 (3ad7b26ded6d) curl (17497:12) < write res=2 data=hi "),
    ],
)
def test_container_presets_in_a_container(preset: str, expected: str) -> None:
    got = lines(in_container().batch(), state=state_from(curl()), fmt=PRESETS[preset],
                filter="evt.type=write and evt.dir=<")
    assert got == [expected]


# --- -p formats -----------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("fmt", "expected"),
    [
        ("%proc.name", "curl"),
        ("%10proc.name|", "curl      |"),  # sysdig's own example
        ("%3proc.name|", "cur|"),  # cut to 3, as sysdig 0.29 does (tests/capture/scap: against its lines)
        ("*%proc.name %fd.name", "curl /etc/ld.so.cache"),
        ("%evt.num %evt.dir %evt.type", "220 < open"),
        ("[%thread.tid:%proc.pid] %user.uid %proc.cwd", "[17497:17497] 0 /root"),
        ("%fd.num %fd.type %fd.typechar %fd.directory %fd.filename", "3 file f /etc ld.so.cache"),
        ("%evt.arg.name %evt.arg[0] %evt.arg.flags", "/etc/ld.so.cache 3(<f>/etc/ld.so.cache) "
                                                     "524288(O_RDONLY|O_CLOEXEC)"),
        ("%evt.rawarg.flags %evt.rawres %evt.res %evt.failed", "524288 3 SUCCESS false"),
        ("%evt.info", OPEN_INFO),  # the last parameter's space too, as sysdig 0.29 prints it
        ("%proc.cmdline | %proc.exeline", "curl -6 http://www.google.com | curl -6 http://www.google.com"),
        ("%fd.cip %fd.sport %container.image %proc.pname", "<NA> <NA> <NA> <NA>"),  # unset fields
        ("%10fd.cip|", "<NA>      |"),
        ("100% %proc.name", "100% curl"),  # a lone % is text
        ("%evt.time", "17:35:48.514682170"),
        ("%evt.datetime", "2018-08-17 17:35:48.514682170"),
        ("%evt.rawtime %evt.rawtime.s %evt.rawtime.ns", f"{TS} {TS // 10**9} 514682170"),
    ],
)
def test_custom_formats(fmt: str, expected: str) -> None:
    assert lines(open_at_219().batch(), state=state_from(curl()), fmt=fmt, filter="evt.num=220") == [expected]


@pytest.mark.parametrize("fmt", ["%bogus.field", "%proc.nam", "x %evt.nosuch", "%fd.name %nothere[2]"])
def test_unknown_field_is_a_usage_error(fmt: str) -> None:
    with pytest.raises(UsageError) as ei:
        Formatter(fmt)
    assert "unknown field" in str(ei.value)


# --- -j ------------------------------------------------------------------------------------------------
def test_json_default_keys() -> None:
    out = lines(open_at_219().batch(), state=state_from(curl()), json_out=True, filter="evt.num in (219, 220)")
    objs = [json.loads(x) for x in out]
    assert list(objs[1]) == sorted(objs[1])
    assert objs == [
        {"evt.cpu": 0, "evt.dir": ">", "evt.info": "", "evt.num": 219, "evt.outputtime": TS - 1000,
         "evt.type": "open", "proc.name": "curl", "thread.tid": 17497},
        {"evt.cpu": 0, "evt.dir": "<", "evt.info": OPEN_INFO, "evt.num": 220, "evt.outputtime": TS,
         "evt.type": "open", "proc.name": "curl", "thread.tid": 17497},
    ]
    assert out[1].startswith('{"evt.cpu":0,"evt.dir":"<","evt.info":"fd=3(<f>/etc/ld.so.cache) name=')


def test_json_brk_like_sysdig() -> None:
    s = Synth(start_ts=1534527348514648551, pid=17497)
    s.syscall("brk", (0,), ret=0x55D5A4E1F000)
    out = lines(s.batch(), state=state_from(curl()), json_out=True, filter="evt.dir=>")
    assert out == ['{"evt.cpu":0,"evt.dir":">","evt.info":"addr=0 ","evt.num":1,'
                   '"evt.outputtime":1534527348514648551,"evt.type":"brk","proc.name":"curl","thread.tid":17497}']


def test_json_with_format_has_exactly_its_fields() -> None:
    fmt = "%proc.name %evt.num %fd.cport %fd.name %evt.outputtime %evt.dir %evt.rawres %thread.ismain %fd.cip"
    out = lines(open_at_219().batch(), state=state_from(curl()), json_out=True, fmt=fmt, filter="evt.num=220")
    assert out == ['{"evt.dir":"<","evt.num":220,"evt.outputtime":' + str(TS) + ',"evt.rawres":3,"fd.cip":"<NA>",'
                   '"fd.cport":"<NA>","fd.name":"/etc/ld.so.cache","proc.name":"curl","thread.ismain":true}']


def test_json_keys_as_written() -> None:
    s = Synth(start_ts=TS, pid=17497).socket(4).connect(4, ("10.0.0.1", 80))
    s.fdinfo(4, cip="10.0.0.2", cport=5555, name="10.0.0.2:5555->10.0.0.1:80").write(4, b"x")
    out = lines(s.batch(), state=state_from(curl()), json_out=True,
                fmt="%evt.arg.fd %evt.arg[0] %fd.cip %fd.sport %fd.lport", filter="evt.type=write and evt.dir=>")
    obj = json.loads(out[0])
    assert obj == {"evt.arg.fd": "4(<4t>10.0.0.2:5555->10.0.0.1:80)", "evt.arg[0]": "4(<4t>10.0.0.2:5555->10.0.0.1:80)",
                   "fd.cip": "10.0.0.2", "fd.sport": 80, "fd.lport": 5555}


def test_json_buffers_untruncated() -> None:
    def batch() -> bytes:
        return Synth(start_ts=TS, pid=17497, snaplen=1000).write(1, b"a" * 300).batch()

    out = lines(batch(), state=state_from(curl()), json_out=True, filter="evt.dir=<")
    assert json.loads(out[0])["evt.info"] == "res=300 data=" + "a" * 300 + " "
    text = lines(batch(), state=state_from(curl()), filter="evt.dir=<")
    assert text[0].endswith("data=" + "a" * 77 + "... ")


def test_json_and_render_modes() -> None:
    s = Synth(start_ts=TS, pid=17497).write(1, b"hi\n")
    out = lines(s.batch(), state=state_from(curl()), json_out=True, fmt="%evt.info %evt.buffer",
                opts=RenderOptions(mode="base64"), filter="evt.dir=<")
    assert json.loads(out[0]) == {"evt.buffer": "hi\n", "evt.info": "res=3 data=aGkK "}


# --- -t ------------------------------------------------------------------------------------------------
def timed() -> Synth:
    s = Synth(start_ts=TS, pid=17497, step=1000)
    s.open("/a", 3).sleep(2_500_000_000).read(3, b"x").sleep(1_000).close(3)
    return s


@pytest.mark.parametrize(
    ("mode", "times"),
    [
        ("a", [f"{TS // 10**9}.{(TS + d) % 10**9:09d}" for d in (0, 1000)]
         + [f"{(TS + d) // 10**9}.{(TS + d) % 10**9:09d}" for d in (2_500_002_000, 2_500_003_000, 2_500_005_000,
                                                                     2_500_006_000)]),
        ("r", ["0.000000000", "0.000001000", "2.500002000", "2.500003000", "2.500005000", "2.500006000"]),
        ("d", ["0.000000000", "0.000001000", "0.000000000", "0.000001000", "0.000000000", "0.000001000"]),
        ("D", ["0.000000000", "0.000001000", "2.500001000", "0.000001000", "0.000002000", "0.000001000"]),
        ("h", ["17:35:48.514682170", "17:35:48.514683170", "17:35:51.014684170", "17:35:51.014685170",
               "17:35:51.014687170", "17:35:51.014688170"]),
    ],
)
def test_time_modes(mode: str, times: list[str]) -> None:
    out = lines(timed().batch(), state=state_from(curl()), fmt="%evt.outputtime", time_mode=mode)
    assert out == times


def test_time_mode_d_on_the_default_line() -> None:
    out = lines(timed().batch(), state=state_from(curl()), time_mode="d", filter="evt.type=read")
    assert [x.split()[1] for x in out] == ["0.000000000", "0.000001000"]
    assert out[1].endswith("< read res=1 data=x ")


def test_latency_field() -> None:
    out = lines(timed().batch(), state=state_from(curl()), fmt="%evt.type %evt.latency", filter="evt.dir=<")
    assert out == ["open 1000", "read 1000", "close 1000"]
