"""The server as users meet it: ``ktrace inspect`` started as a command, asked over HTTP."""

from __future__ import annotations

import http.client
import json
import os
import socket
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from inspectkit import Server, copy_captures, run


def get(srv: Server, path: str, headers: dict[str, str] | None = None) -> tuple[int, bytes, Any]:
    """A raw request: the path goes out exactly as written (no client-side normalising)."""
    c = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=60)
    c.putrequest("GET", path, skip_accept_encoding=True)
    for k, v in (headers or {}).items():
        c.putheader(k, v)
    c.endheaders()
    r = c.getresponse()
    body = r.read()
    c.close()
    return r.status, body, r.headers


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory) -> Any:
    d = tmp_path_factory.mktemp("caps")
    with Server(copy_captures(d, ["05-failing-service.kcap"])) as s:
        yield s


def test_prints_a_loopback_url_with_a_token(srv: Server) -> None:
    assert srv.url.startswith("http://127.0.0.1:") and len(srv.token) >= 20


def test_token_is_required(srv: Server) -> None:
    for path in ("/", "/api/info", "/api/overview", "/static/app.js", "/api/events"):
        status, body, _ = get(srv, path)
        assert status == 403, path
        assert b"failing" not in body and b"ktfail" not in body
    assert get(srv, "/api/info?token=" + "x" * len(srv.token))[0] == 403
    assert get(srv, "/api/info", {"X-Ktrace-Token": srv.token[:-1]})[0] == 403
    status, body, _ = get(srv, "/api/info", {"X-Ktrace-Token": srv.token})
    assert status == 200 and json.loads(body)["events"] > 0


def test_the_url_sets_a_same_site_cookie_for_the_page(srv: Server) -> None:
    status, body, headers = get(srv, f"/?token={srv.token}")
    assert status == 200 and b"ktrace inspect" in body
    cookie = headers["Set-Cookie"]
    assert srv.token in cookie and "HttpOnly" in cookie and "SameSite=Strict" in cookie
    name_value = cookie.split(";", 1)[0]
    assert get(srv, "/api/info", {"Cookie": name_value})[0] == 200


def test_listens_on_loopback_only(srv: Server) -> None:
    listening = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as f:
            for line in f.readlines()[1:]:
                parts = line.split()
                local, state = parts[1], parts[3]
                if state == "0A" and int(local.rsplit(":", 1)[1], 16) == srv.port:
                    listening.add(local.rsplit(":", 1)[0])
    assert listening == {"0100007F"}, listening  # 127.0.0.1, and nothing else


@pytest.mark.parametrize("path", [
    "/static/../../../../etc/passwd",
    "/static/%2e%2e/%2e%2e/%2e%2e/%2e%2e/etc/passwd",
    "/static/..%2f..%2f..%2f..%2fetc%2fpasswd",
    "/static/vendor/../../../../../../etc/passwd",
    "/static//etc/passwd",
    "/static/%2fetc%2fpasswd",
])
def test_path_traversal_is_refused(srv: Server, path: str) -> None:
    status, body, _ = get(srv, path, {"X-Ktrace-Token": srv.token})
    assert status in (403, 404), (path, status)
    assert b"root:" not in body


def test_static_files_are_served(srv: Server) -> None:
    status, body, headers = get(srv, "/static/vendor/uPlot.iife.min.js", {"X-Ktrace-Token": srv.token})
    assert status == 200 and b"uPlot" in body and headers["Content-Type"].startswith("text/javascript")


def test_a_bad_filter_is_a_400_with_the_position(srv: Server) -> None:
    status, body, _ = get(srv, "/api/events?filter=" + quote("proc.name=ktfail and (evt.type=open"),
                          {"X-Ktrace-Token": srv.token})
    assert status == 400
    doc = json.loads(body)
    assert doc["error"] and doc["text"] == "proc.name=ktfail and (evt.type=open" and 0 <= doc["pos"] <= len(doc["text"])
    status, body, _ = get(srv, "/api/view?id=procs&filter=" + quote("nosuch.field=1"), {"X-Ktrace-Token": srv.token})
    assert status == 400 and json.loads(body)["pos"] == 0


def test_event_pages_follow_each_other(srv: Server) -> None:
    h = {"X-Ktrace-Token": srv.token}
    whole = json.loads(get(srv, "/api/events?limit=5000", h)[1])["lines"]
    a = json.loads(get(srv, "/api/events?limit=100", h)[1])
    b = json.loads(get(srv, "/api/events?offset=100&limit=100", h)[1])
    assert a["more"] and a["lines"] + b["lines"] == whole[:200]
    p = run(["-r", srv.proc.args[-1]])
    assert p.stdout == "".join(line + "\n" for line in whole)  # the same lines as `ktrace -r`


def test_port_in_use_is_one_line_and_exit_2(tmp_path: Path) -> None:
    (cap,) = copy_captures(tmp_path, ["05-failing-service.kcap"])
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        p = run(["inspect", "--port", str(port), str(cap)])
    assert p.returncode == 2
    errs = [ln for ln in p.stderr.splitlines() if not ln.startswith("ktrace: ") or "in use" in ln]
    assert errs == [f"ktrace: port {port} on 127.0.0.1 is in use: choose another with --port, or leave --port out "
                    "for a free one"], p.stderr
    assert p.stdout == ""


@pytest.mark.parametrize("args", [[], ["--port", "x", "f.kcap"], ["--nosuch", "f.kcap"]])
def test_usage_errors_are_one_line(args: list[str]) -> None:
    p = run(["inspect", *args])
    assert p.returncode == 2 and p.stderr.count("\n") == 1 and p.stderr.startswith("ktrace: "), p.stderr


def test_missing_capture_is_one_line(tmp_path: Path) -> None:
    p = run(["inspect", str(tmp_path / "nope.kcap")])
    assert p.returncode == 2 and p.stderr.strip().count("\n") == 0 and "no such file" in p.stderr


def test_not_a_capture_is_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.kcap"
    bad.write_bytes(os.urandom(4096))
    p = run(["inspect", str(bad)])
    assert p.returncode == 2 and p.stderr.strip().count("\n") == 0 and "Traceback" not in p.stderr
    assert str(bad) in p.stderr


def test_truncated_capture_shows_what_it_holds_with_a_note(tmp_path: Path) -> None:
    (cap,) = copy_captures(tmp_path, ["01-webserver.kcap"])
    data = cap.read_bytes()
    cap.write_bytes(data[: len(data) * 2 // 3])
    with Server([cap]) as s:
        status, body, _ = get(s, "/api/info", {"X-Ktrace-Token": s.token})
        info = json.loads(body)
        assert status == 200 and 0 < info["events"] < 45541
        assert any("truncated" in n for n in info["notes"]), info["notes"]
        ov = json.loads(get(s, "/api/overview", {"X-Ktrace-Token": s.token})[1])
        assert {t["id"]: t["total"] for t in ov["tiles"]}["syscalls"] > 0


def test_timeline_and_sparklines_fit_the_points_asked_with_exact_totals(tmp_path: Path) -> None:
    """Downsampled to the page's width: no more points than asked, each the sum of its buckets
    (timeline) or the keys of its buckets (distinct tiles); the totals are those of every bucket."""
    (cap,) = copy_captures(tmp_path, ["01-webserver.kcap"])
    with Server([cap]) as s:
        hdr = {"X-Ktrace-Token": s.token}

        def api(path: str) -> Any:
            status, body, _ = get(s, path, hdr)
            assert status == 200, body
            return json.loads(body)

        full, small = api("/api/timeline?points=100000"), api("/api/timeline?points=7")
        n = full["buckets"]
        assert full["step"] == 1 and n > 7 and small["buckets"] == n
        step = small["step"]
        assert step == -(-n // 7)
        for c, counts in full["counts"].items():
            assert len(counts) == n
            want = [sum(counts[g:g + step]) for g in range(0, n, step)]
            assert small["counts"][c] == want and len(want) <= 7
        whole = {t["id"]: t for t in api("/api/overview?points=100000")["tiles"]}
        few = {t["id"]: t for t in api("/api/overview?points=5")["tiles"]}
        for tid, t in whole.items():
            assert few[tid]["total"] == t["total"], tid
            assert 0 < len(few[tid]["spark"]) <= 5
        # Sums and counts add up; a distinct tile's point is at most the sum of its buckets' counts.
        assert sum(few["net_in"]["spark"]) == whole["net_in"]["total"] > 0
        assert sum(few["syscalls"]["spark"]) == whole["syscalls"]["total"]
        assert max(few["connections"]["spark"]) <= whole["connections"]["total"]
