"""--metrics given wrong: one line on stderr, exit 2, before anything is loaded (no root needed)."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest

from tracer.cli import main
from tracer.metrics import parse_listen


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    with pytest.raises(SystemExit) as ei:
        main(argv)
    out, err = capsys.readouterr()
    assert out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "Traceback" not in err
    code = ei.value.code
    return (code if isinstance(code, int) else 1), lines[0]


@pytest.fixture
def busy_port() -> Iterator[int]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        yield s.getsockname()[1]


def test_port_in_use(busy_port: int, capsys: pytest.CaptureFixture[str]) -> None:
    code, line = run(["--metrics", f"127.0.0.1:{busy_port}", "-M", "1"], capsys)
    assert code == 2
    assert line == f"ktrace: --metrics 127.0.0.1:{busy_port}: port {busy_port} is in use; pick a free port"


@pytest.mark.parametrize("addr", ["0.0.0.0:9730", "[::]:9730", "192.0.2.7:9730"])
def test_not_loopback_needs_bind_any(addr: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, line = run(["--metrics", addr, "-M", "1"], capsys)
    assert code == 2
    assert "is not a loopback address" in line and "--metrics-bind-any" in line


def test_an_address_not_of_this_machine(capsys: pytest.CaptureFixture[str]) -> None:
    # 192.0.2.0/24 is TEST-NET-1: never assigned, so binding it fails
    code, line = run(["--metrics", "192.0.2.7:9730", "--metrics-bind-any", "-M", "1"], capsys)
    assert code == 2
    assert line == "ktrace: --metrics 192.0.2.7:9730: 192.0.2.7 is not an address of this machine"


@pytest.mark.parametrize(
    ("value", "needle"),
    [("9730", "expected ADDR:PORT"), (":9730", "expected ADDR:PORT"), ("127.0.0.1:0", "from 1 to 65535"),
     ("127.0.0.1:http", "from 1 to 65535"), ("127.0.0.1:70000", "from 1 to 65535"),
     ("node-1:9730", "not an IP address")],
)
def test_malformed(value: str, needle: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, line = run(["--metrics", value, "-M", "1"], capsys)
    assert code == 2
    assert line.startswith(f"ktrace: --metrics {value}: ") and needle in line


def test_not_with_a_capture(capsys: pytest.CaptureFixture[str]) -> None:
    code, line = run(["-r", "x.kcap", "--metrics", "127.0.0.1:9730"], capsys)
    assert code == 2
    assert line == "ktrace: --metrics measures a live run; it cannot be used with -r"


@pytest.mark.parametrize("flag", ["--metrics-bind-any", "--metrics-bpf-stats"])
def test_companions_need_metrics(flag: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, line = run([flag, "-M", "1"], capsys)
    assert code == 2
    assert "need --metrics ADDR:PORT" in line


def test_listen_forms() -> None:
    assert parse_listen("127.0.0.1:9730", False) == ("127.0.0.1", 9730)
    assert parse_listen("localhost:9730", False) == ("127.0.0.1", 9730)
    assert parse_listen("[::1]:9730", False) == ("::1", 9730)
    assert parse_listen("127.3.4.5:1", False) == ("127.3.4.5", 1)
    assert parse_listen("0.0.0.0:9730", True) == ("0.0.0.0", 9730)
    assert parse_listen("fd00::5:9730", True) == ("fd00::5", 9730)  # $(POD_IP):PORT with an IPv6 pod IP
