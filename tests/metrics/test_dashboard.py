"""deploy/grafana-dashboard.json: valid JSON whose queries name only metrics ktrace serves.
(tests/metrics/test_prometheus_live.py runs each query against a real Prometheus.)"""

from __future__ import annotations

import json
import re
from pathlib import Path

from prometheus_client import CollectorRegistry, ProcessCollector, generate_latest

from tracer.metrics import LiveMetrics, MetricsOptions
from tracer.schema import record as R
from tracer.schema.events import SYSCALL_NR
from tracer.state.state import State

DASHBOARD = Path(__file__).resolve().parents[2] / "deploy" / "grafana-dashboard.json"


class _Ring:
    """The ring fill gauge's source, without a kernel ring."""

    size = 1 << 26

    def used(self) -> int:
        return 123

    def close(self) -> None:
        pass


class _Bpf:
    """BPF run-time statistics' source, without the kernel's."""

    def read(self) -> tuple[int, int]:
        return 10, 2000

    def close(self) -> None:
        pass


def served_names() -> set[str]:
    m = LiveMetrics(MetricsOptions("127.0.0.1", 1, bpf_stats=True))
    m.state = State()
    m.stats = lambda: {"events": 5, "drops_buffer": 0, "drops_toolarge": 0, "faults": 0}
    m.ring = _Ring()  # type: ignore[assignment]
    m.bpf = _Bpf()  # type: ignore[assignment]
    read_exit = SYSCALL_NR["read"] * 2 + 1
    m.on_batch(R.pack_record(1, 42, 42, read_exit, ret=10) + R.pack_record(2, 42, 42, read_exit, ret=-11))
    m.publish(1.0)
    reg = CollectorRegistry(auto_describe=False)
    ProcessCollector(registry=reg)
    reg.register(m)
    text = generate_latest(reg).decode()
    return {line.split("{")[0].split()[0] for line in text.splitlines() if line and not line.startswith("#")}


def test_dashboard_queries_name_served_metrics() -> None:
    dash = json.loads(DASHBOARD.read_text())
    exprs = [t["expr"] for p in dash["panels"] for t in p["targets"]]
    assert len(exprs) >= 10
    served = served_names()
    used = {name for e in exprs for name in re.findall(r"\b(?:ktrace|process)_[a-z_]+\b", e)}
    assert used, exprs
    assert used <= served, f"not served: {sorted(used - served)}"
    # and the variables query a metric that is always there
    for var in dash["templating"]["list"]:
        if var["type"] == "query":
            assert "ktrace_build_info" in var["definition"] and "ktrace_build_info" in served


def test_naming_conventions() -> None:
    served = served_names()
    for name in served:
        assert re.fullmatch(r"[a-z][a-z0-9_]*", name), name
    # counters end in _total, sizes are in bytes, times in seconds (base units)
    assert {"ktrace_events_total", "ktrace_events_dropped_total", "ktrace_container_io_bytes_total",
            "ktrace_probe_run_seconds_total", "ktrace_ring_buffer_used_bytes"} <= served
