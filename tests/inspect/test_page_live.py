"""Live: a capture recorded here, of a workload whose bytes the test chose, looked at in the page."""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from inspectkit import Server, env, expected, ktrace_argv, wait_until
from test_page import TILES_CHECKED, open_page, ready_mark, tile_values, wait_ready

WORKLOAD = Path(__file__).with_name("workload_net.py")


@pytest.mark.live
def test_recorded_capture_shows_the_bytes_the_workload_sent(page: Any, tmp_path: Path, screens: Path) -> None:
    cap = tmp_path / "live.kcap"
    payload = "PING-" + secrets.token_hex(24) + "-from-the-test"
    reply = "PONG-" + secrets.token_hex(24)
    go = tmp_path / "go"
    err = open(tmp_path / "ktrace.err", "w")  # noqa: SIM115 - closed below
    kt = subprocess.Popen([*ktrace_argv(), "-w", str(cap), "-s", "512", "proc.name=ktinspect"], env=env(),
                          stdout=subprocess.DEVNULL, stderr=err)
    work = subprocess.Popen([sys.executable, str(WORKLOAD), str(go), payload, reply], stdout=subprocess.PIPE,
                            text=True)
    try:
        wait_until(lambda: "capturing" in (tmp_path / "ktrace.err").read_text() or kt.poll() is not None, 60,
                   "ktrace to start")
        assert kt.poll() is None, (tmp_path / "ktrace.err").read_text()
        time.sleep(0.3)
        go.write_text("go")
        out, _ = work.communicate(timeout=60)
        port = int(out.strip())
        time.sleep(0.5)
    finally:
        work.kill()
        kt.send_signal(signal.SIGINT)
        kt.wait(timeout=60)
        err.close()
    assert os.path.getsize(cap) > 0
    files = [cap]
    want = expected(files)
    assert want["connections"] >= 1 and want["net_out"] >= len(payload) + len(reply)
    with Server(files) as srv:
        open_page(page, srv)
        got = tile_values(page)
        for k in TILES_CHECKED:
            assert got[k] == want[k], (k, got[k], want[k])
        page.screenshot(path=str(screens / "live-overview.png"), full_page=True)
        before = ready_mark(page, "views")
        page.click("[data-tile=connections]")
        wait_ready(page, "views", before)
        rows = [r for r in page.query_selector_all("#view-table tbody tr")
                if f"127.0.0.1:{port}" in (r.get_attribute("data-key") or "")]
        assert rows, f"no connection to port {port} in the connections view"
        before = ready_mark(page, "io")
        rows[0].query_selector("[data-act=io]").click()
        wait_ready(page, "io", before)
        text = page.inner_text("#io-chunks")
        page.screenshot(path=str(screens / "live-io.png"))
    assert payload in text and reply in text
