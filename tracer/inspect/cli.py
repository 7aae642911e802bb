"""``ktrace inspect FILE...``: index the captures, serve the page, print its URL."""

from __future__ import annotations

import asyncio
import errno
import signal
import sys

import click

from ..errors import UsageError

EPILOG = """\b
Examples:
  ktrace inspect node.kcap                 index it, serve on 127.0.0.1 (a free port), print the URL
  ktrace inspect --open node.kcap          ... and open it in a browser
  ktrace inspect --port 8377 a.kcap b.kcap two captures read in sequence, on a chosen port
"""


@click.command("inspect", epilog=EPILOG, context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False))
@click.option("--port", type=click.IntRange(0, 65535), default=0, help="Port to serve on (default: a free one).")
@click.option("--bind", default="127.0.0.1", show_default=True, metavar="ADDR",
              help="Address to listen on; anything but a loopback address lets other machines ask for the page "
                   "(they still need the token).")
@click.option("--open", "open_browser", is_flag=True, help="Open the page in a browser.")
@click.option("--reindex", is_flag=True, help="Index the captures again, ignoring a cached index.")
def inspect_cmd(files: tuple[str, ...], port: int, bind: str, open_browser: bool, reindex: bool) -> None:
    """Look at captures in a browser: overview tiles, timeline, drill-down views, I/O, commands."""
    from .drill import make_drill
    from .index import load_or_build
    from .server import Inspector, make_app, new_token, start

    def progress(n: int) -> None:
        if sys.stderr.isatty():
            print(f"\rktrace: indexing: {n} events", end="", file=sys.stderr, flush=True)

    idx, where = load_or_build(list(files), on_progress=progress, rebuild=reindex)
    if sys.stderr.isatty():
        print(file=sys.stderr)
    for note in idx.notes:
        print(f"ktrace: {note}", file=sys.stderr)
    kept = f" (index: {where})" if where else " (index not saved: no writable place)"
    print(f"ktrace: {idx.events} events in {len(idx.blocks)} blocks{kept}", file=sys.stderr)
    token = new_token()
    drill = make_drill(idx)
    for note in drill.notes:
        print(f"ktrace: {note}", file=sys.stderr)
    app = make_app(Inspector(idx, token, drill))

    async def serve() -> None:
        try:
            runner, real = await start(app, bind, port)
        except OSError as e:
            if e.errno == errno.EADDRINUSE:
                raise UsageError(f"port {port} on {bind} is in use: choose another with --port, "
                                 "or leave --port out for a free one") from None
            raise UsageError(f"cannot listen on {bind}:{port}: {e.strerror or e}") from None
        host = f"[{bind}]" if ":" in bind else bind
        url = f"http://{host}:{real}/?token={token}"
        print(url, flush=True)
        if open_browser:
            import webbrowser

            webbrowser.open(url)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for s in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(s, stop.set)
        try:
            await stop.wait()
        finally:
            await runner.cleanup()

    asyncio.run(serve())
    sys.exit(0)
