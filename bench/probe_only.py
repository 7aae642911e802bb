"""ktrace's probe and ring consumer alone: batches are drained and thrown away (a diagnostic).

What is left of ktrace's overhead when nothing is parsed, kept or written: the probe's cost per
event in the kernel and the consumer thread's copying. The difference to a full `ktrace -w` run is
the cost of the user-space pipeline (state, enrichment, compression, writing).

    sudo .venv/bin/python bench/probe_only.py      # "probe-only: ready" on stderr once attached
    # SIGINT: "ktrace: N events captured, M dropped" on stderr, like ktrace
"""

from __future__ import annotations

import signal
import sys


def main() -> int:
    from tracer.probe.loader import ProbeConfig
    from tracer.source.live import LiveSource

    src = LiveSource(ProbeConfig())
    signal.signal(signal.SIGINT, lambda _s, _f: src.stop())
    signal.signal(signal.SIGTERM, lambda _s, _f: src.stop())
    print("probe-only: ready", file=sys.stderr, flush=True)
    nbytes = 0
    for b in src.batches(tick=0.1):
        if b:
            nbytes += len(b)
    st = src.stats()
    src.close()
    drops = sum(v for k, v in st.items() if k.startswith("drops"))
    print(f"ktrace: {st.get('events', 0)} events captured, {drops} dropped ({nbytes} bytes)", file=sys.stderr,
          flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
