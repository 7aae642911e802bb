"""A steady source of events for the live CLI tests: ``python3 ticker.py DIR LOG [PERIOD]``.

Names itself ``kttick`` (prctl), then every PERIOD seconds (default 0.002) stats ``DIR/seq-N``
(which does not exist: one newfstatat event per N) and appends "N MONOTONIC" to LOG, so a test
knows when each numbered event happened by a clock ktrace does not use. Runs until killed.
"""

from __future__ import annotations

import ctypes
import os
import sys
import time

PR_SET_NAME = 15


def main() -> None:
    d, log = sys.argv[1], sys.argv[2]
    period = float(sys.argv[3]) if len(sys.argv) > 3 else 0.002
    ctypes.CDLL(None).prctl(PR_SET_NAME, b"kttick", 0, 0, 0)
    with open(log, "w", buffering=1) as out:
        n = 0
        while True:
            t = time.monotonic()
            try:
                os.stat(f"{d}/seq-{n}")
            except FileNotFoundError:
                pass
            out.write(f"{n} {t:.6f}\n")
            n += 1
            time.sleep(period)


if __name__ == "__main__":
    main()
