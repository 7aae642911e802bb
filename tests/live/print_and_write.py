"""One live ktrace run that both writes a capture and prints lines, for the exact round-trip test.

``ktrace -w`` prints nothing, so what "the live run printed" is made here: the session runs with
``-w CAPTURE [CAPTURE_FILTER]`` and a recording chisel that formats every event passing PRINT_FILTER
with the default line, exactly as the CLI would print it, and appends it to OUT (flushed per line).
SIGINT/SIGTERM end the run like ktrace's.

    python print_and_write.py OUT CAPTURE PRINT_FILTER [CAPTURE_FILTER] [FORMAT]
"""

from __future__ import annotations

import sys
from typing import Any

from tracer.event import Event
from tracer.filter.compiler import compile_filter
from tracer.output.format import Formatter
from tracer.schema.fields import FIELDS
from tracer.session import RunOptions, run


class Recorder:
    """Duck-typed chisel: no filter of its own (the capture stays as asked), prints what matches."""

    filter = None
    fields: tuple[str, ...] = ()
    interval_ns = 0
    needs_cpu = False
    snaplen = None
    done = False
    state: Any = None

    def __init__(self, out: str, print_filter: str, fmt: str | None) -> None:
        self.out = open(out, "w")  # noqa: SIM115 - closed at the end of the capture
        self.match = compile_filter(print_filter, FIELDS).match if print_filter else None
        self.formatter = Formatter(fmt)

    def on_capture_start(self, live: bool) -> None:
        pass

    def on_event(self, ev: Event) -> None:
        if self.match is None or self.match(ev):
            self.out.write(self.formatter.line(ev) + "\n")
            self.out.flush()

    def on_interval(self, ts: int) -> None:
        pass

    def on_capture_end(self, ts: int) -> None:
        self.out.close()


def main() -> int:
    out, cap, print_filter = sys.argv[1:4]
    cap_filter = sys.argv[4] if len(sys.argv) > 4 else ""
    fmt = sys.argv[5] if len(sys.argv) > 5 else None
    opts = RunOptions(write=cap, filter_text=cap_filter, chisel=Recorder(out, print_filter, fmt),
                      argv=["ktrace", "-w", cap, cap_filter])
    return run(opts)


if __name__ == "__main__":
    sys.exit(main())
