"""A real Prometheus (Debian's) scrapes a live ktrace while a container works: its HTTP API then
has ktrace's event and drop counters and the container's syscall series under the name, id and
image docker gives; every query of deploy/grafana-dashboard.json returns data."""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from live.livekit import Ktrace

DASHBOARD = Path(__file__).resolve().parents[2] / "deploy" / "grafana-dashboard.json"
# A container busy with syscalls of its own (open, read and close /etc/passwd in a shell builtin),
# at a pace the pure-Python engine follows too.
WORKLOAD = "while :; do read x < /etc/passwd; sleep 0.01; done"

pytestmark = [pytest.mark.live, pytest.mark.docker]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def http_get(url: str, timeout: float = 5.0) -> str:
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return str(r.read().decode())


def wait_endpoint(kt: Ktrace, url: str, timeout: float = 60.0) -> str:
    """The metrics page, once the probe is loaded (its counters are on it)."""
    deadline = time.monotonic() + timeout
    while True:
        assert kt.proc.poll() is None, kt.stderr()
        try:
            page = http_get(url)
            if "ktrace_events_total" in page:
                return page
        except OSError:
            pass
        assert time.monotonic() < deadline, f"no metrics at {url} after {timeout} s"
        time.sleep(0.1)


class Prometheus:
    def __init__(self, tmp: Path, target: str) -> None:
        self.port = free_port()
        cfg = tmp / "prometheus.yml"
        cfg.write_text(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
            "scrape_configs:\n  - job_name: ktrace\n    static_configs:\n"
            f"      - targets: ['{target}']\n"
        )
        self.log = tmp / "prometheus.log"
        with open(self.log, "wb") as log:
            self.proc = subprocess.Popen(
                ["prometheus", f"--config.file={cfg}", f"--storage.tsdb.path={tmp / 'tsdb'}",
                 f"--web.listen-address=127.0.0.1:{self.port}"],
                stdout=log, stderr=subprocess.STDOUT)

    def query(self, expr: str) -> list[dict[str, Any]]:
        url = f"http://127.0.0.1:{self.port}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
        doc = json.loads(http_get(url))
        assert doc["status"] == "success", doc
        return list(doc["data"]["result"])

    def wait(self, expr: str, timeout: float = 60.0) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        while True:
            assert self.proc.poll() is None, self.log.read_text()[-2000:]
            try:
                found = self.query(expr)
            except OSError:
                found = []
            if found:
                return found
            if time.monotonic() > deadline:
                raise AssertionError(f"no result for {expr} after {timeout} s; prometheus log: "
                                     + self.log.read_text()[-1000:])
            time.sleep(0.25)

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()


@pytest.fixture
def busy_container(docker: str) -> Iterator[dict[str, str]]:
    name = f"kt-metrics-{os.urandom(3).hex()}"
    subprocess.run(["docker", "run", "-d", "--network", "none", "--name", name, docker, "sh", "-c", WORKLOAD],
                   check=True, capture_output=True, timeout=60)
    try:
        cid = subprocess.run(["docker", "inspect", "-f", "{{.Id}}", name], check=True, capture_output=True,
                             text=True).stdout.strip()
        yield {"name": name, "id": cid[:12], "image": docker}
    finally:
        subprocess.run(["docker", "rm", "-f", name], capture_output=True, timeout=60)


def test_prometheus_scrapes_ktrace(tmp_path: Path, busy_container: dict[str, str]) -> None:
    if shutil.which("prometheus") is None:
        pytest.skip("no prometheus binary (sh scripts/setup.sh installs Debian's)")
    port = free_port()
    kt = Ktrace(["--metrics", f"127.0.0.1:{port}", "--metrics-bpf-stats", "-q", "-w", str(tmp_path / "m.kcap"),
                 "-C", "1", "-W", "3"], tmp_path / "kt.out")
    prom = None
    try:
        wait_endpoint(kt, f"http://127.0.0.1:{port}/metrics")
        prom = Prometheus(tmp_path, f"127.0.0.1:{port}")
        c = busy_container
        series = prom.wait(f'ktrace_container_syscalls_total{{container_name="{c["name"]}"}} > 0')
        (s,) = series
        assert s["metric"]["container_id"] == c["id"]
        assert s["metric"]["container_image"] == c["image"]
        assert s["metric"]["job"] == "ktrace"
        procs = prom.wait(f'ktrace_process_syscalls_total{{container_name="{c["name"]}", proc_name="sh"}} > 0')
        assert procs[0]["metric"]["container_id"] == c["id"]
        assert prom.wait("ktrace_events_total > 0")
        causes = {r["metric"]["cause"] for r in prom.wait("ktrace_events_dropped_total")}
        assert causes >= {"buffer", "toolarge", "user"}
        assert prom.wait('ktrace_capture_rotations_total > 0', timeout=90)  # 1 MB files fill in seconds
        assert prom.wait("process_resident_memory_bytes > 10e6")
        time.sleep(3)  # a few samples of every series, for the dashboard's rates
        text = DASHBOARD.read_text()
        dash = json.loads(text)
        exprs = [t["expr"] for p in dash["panels"] for t in p["targets"]]
        assert exprs
        for expr in exprs:
            q = expr.replace("$job", "ktrace").replace("$instance", ".+").replace("$__rate_interval", "5s")
            assert prom.query(q), f"dashboard query returns nothing: {expr}"
        last_scraped = float(prom.query("ktrace_events_total")[0]["value"][1])
    finally:
        if prom is not None:
            prom.stop()
        rc = kt.stop()
    assert rc == 0, kt.stderr()
    m = re.search(r"ktrace: (\d+) events captured", kt.stderr())
    assert m, kt.stderr()
    assert 0 < last_scraped <= int(m.group(1))
