"""``ktrace top``: csysdig's flags, on the views engine; the terminal UI, or JSON slices with -j."""

from __future__ import annotations

import os
import shutil
import sys
from typing import Any

import click

from ..errors import CaptureError, UsageError

EPILOG = """\b
Examples:
  ktrace top                              processes of this node, live (root)
  ktrace top -r node.kcap                 the same over a capture, anywhere
  ktrace top -v connections -pc           connections, with the container columns
  ktrace top -j -v files -r node.kcap     the files view as JSON (csysdig's -j)
  ktrace top --list-views                 every view, as JSON
  ktrace top proc.name=nginx              only nginx's events
\b
Keys: Enter drill down, Backspace back, F2/v views, F4/\\ filter, / search, F5/e echo, F6/d dig,
F7/l legend, F9/> sort, Shift+1..9 sort by column, F12/s spectrogram, p pause, F1/h help, q quit.
"""

MIN_COLS, MIN_ROWS = 40, 10
MIN_REFRESH_MS = 100


@click.command("top", context_settings={"help_option_names": ["-h", "--help"]}, epilog=EPILOG)
@click.option("-d", "--delay", type=click.IntRange(min=MIN_REFRESH_MS), default=2000, show_default=True,
              metavar="MS", help="Refresh interval in milliseconds (live; slices of a capture's spectrogram).")
@click.option("-r", "--read", "reads", multiple=True, metavar="FILE", help="Read a capture instead (repeatable).")
@click.option("-v", "--view", "view_id", default=None, metavar="VIEW", help="Start with this view (default procs).")
@click.option("-s", "--snaplen", type=click.IntRange(min=0, max=65000), default=80, show_default=True,
              help="Bytes of each I/O buffer to capture live (what echo can show).")
@click.option("-n", "--numevents", type=click.IntRange(min=1), metavar="N", help="Stop after N events.")
@click.option("-pc", "-pcontainer", "container_mode", is_flag=True, help="Add the container columns.")
@click.option("-A", "--print-ascii", is_flag=True, help="Echo shows printable characters only.")
@click.option("-X", "--print-hex-ascii", is_flag=True, help="Echo shows hex and ASCII.")
@click.option("-j", "--json", "json_out", is_flag=True, help="Print the view as JSON slices, no UI.")
@click.option("--list-views", is_flag=True, help="Print every view as JSON and exit.")
@click.option("--chisel-dir", multiple=True, metavar="DIR", help="Also look for views (v_*.py) in DIR.")
@click.argument("filter_words", nargs=-1)
def top_cmd(**kw: Any) -> None:
    """Interactive views of the node or of captures: processes, connections, files, errors...

    FILTER_WORDS is a filter (sysdig's language) every view is restricted to.
    """
    sys.exit(run_top(kw))


def run_top(kw: dict[str, Any]) -> int:
    from ..views import DEFAULT_VIEW, all_views, views_json

    if kw["list_views"]:
        print(views_json(kw["chisel_dir"]))
        return 0
    views = {k: f.view for k, f in all_views(kw["chisel_dir"], on_error=_warn).items()}
    view_id = kw["view_id"] or DEFAULT_VIEW
    if view_id not in views:
        raise UsageError(f"unknown view '{view_id}'; `ktrace top --list-views` lists them")
    filter_text = " ".join(kw["filter_words"])
    if filter_text.strip():
        from ..filter.compiler import compile_filter
        from ..schema.fields import FIELDS

        compile_filter(filter_text, FIELDS)  # a bad filter: FilterError, before anything starts
    reads = list(kw["reads"])
    for path in reads:
        if not os.path.isfile(path):
            raise CaptureError(f"{path}: no such file")
    if not reads and os.geteuid() != 0:
        raise UsageError("live views need root (sudo ktrace top); `ktrace top -r FILE` reads a capture anywhere")
    echo_mode = "hex" if kw["print_hex_ascii"] else "printable" if kw["print_ascii"] else "dotted"
    if kw["json_out"]:
        return _json(views[view_id], reads, filter_text, kw)
    _check_terminal()
    from .app import TopApp, TopConfig

    cfg = TopConfig(views=views, start=view_id, reads=reads, filter_text=filter_text, refresh_ms=kw["delay"],
                    container_mode=kw["container_mode"], snaplen=kw["snaplen"], echo_mode=echo_mode,
                    max_events=kw["numevents"])
    app = TopApp(cfg)
    app.run()
    if app.error is not None:
        raise app.error
    return 0


def _warn(e: Exception) -> None:
    print(e.show() if hasattr(e, "show") else f"ktrace: {e}", file=sys.stderr)


def _check_terminal() -> None:
    """The UI needs a terminal it can draw on: say so, rather than draw garbage."""
    if not (sys.stdin.isatty() and sys.stdout.isatty()):
        raise UsageError("ktrace top needs a terminal; use -j for JSON output in scripts")
    term = os.environ.get("TERM", "")
    if term in ("", "dumb", "unknown"):
        raise UsageError(f"ktrace top cannot draw on TERM={term or '(unset)'}; set TERM (e.g. xterm) or use -j")
    cols, rows = shutil.get_terminal_size((0, 0))
    if cols < MIN_COLS or rows < MIN_ROWS:
        raise UsageError(f"the terminal is {cols}x{rows}; ktrace top needs at least {MIN_COLS}x{MIN_ROWS}")


def _json(view: Any, reads: list[str], filter_text: str, kw: dict[str, Any]) -> int:
    """csysdig's -j: on captures the slice of the whole run; live one slice per interval."""
    from ..session import RunOptions
    from ..views import ViewChisel, capture_table
    from ..views.engine import internal_events
    from ..views.run import runner_for

    if reads:
        table = capture_table(view, reads, filter_text=filter_text, container_mode=kw["container_mode"],
                              max_events=kw["numevents"])
        print(table.to_json(filter_text=filter_text))
        return 0

    def show(table: Any) -> None:
        print(table.to_json(filter_text=filter_text), flush=True)

    chisel = ViewChisel(view, container_mode=kw["container_mode"], on_table=show, interval_ns=kw["delay"] * 1_000_000)
    opts = RunOptions(filter_text=filter_text, chisel=chisel, container_mode=kw["container_mode"],
                      snaplen=kw["snaplen"], max_events=kw["numevents"], argv=["ktrace", *sys.argv[1:]])
    runner_for(opts, internal_events([chisel.agg])).run()
    return 0
