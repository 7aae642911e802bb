"""The ``ktrace`` command: sysdig's flags, letter for letter where sysdig has one.

Errors are one line on stderr and exit code 2 (KtraceError, click usage errors); never a traceback.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from typing import Any

import click

from .capture import RotatePolicy
from .errors import CaptureError, FilterError, KtraceError, UsageError
from .event import RenderOptions
from .output.format import PRESETS

EPILOG = """\b
Examples:
  ktrace                                  every syscall of the node, one line each
  ktrace -pc proc.name=nginx              nginx's events, with the container column
  ktrace -pc -c topconns                  top connections, refreshed every second
  ktrace -w node.kcap -M 30               30 s capture with full context
  ktrace -r node.kcap -c spy_users        the same chisels, offline
  ktrace -s2000 -A -c echo_fds fd.cip=127.0.0.1
  ktrace -p"%proc.name %fd.name" "evt.type=accept and proc.name!=httpd"
  ktrace -cl | -i topconns | -l | -L      list chisels / chisel info / fields / events
  ktrace doctor                           can this node trace? what is missing?
  ktrace capinfo node.kcap                what a capture holds
  ktrace cache --warm                     compile the probe once, so starts skip the compiler
  ktrace top                              csysdig's interactive views (-r FILE: of a capture)
  ktrace inspect node.kcap                look at a capture in a browser
"""


class FilterParam(click.ParamType):
    name = "filter"


@click.command(
    context_settings={"help_option_names": ["-h", "--help"], "ignore_unknown_options": False,
                      "allow_interspersed_args": True},
    epilog=EPILOG,
)
@click.option("-r", "--read", "reads", multiple=True, metavar="FILE",
              help="Read events from a capture (repeatable).")
@click.option("-w", "--write", metavar="FILE", help="Write events to a capture file.")
@click.option("-z", "--compress", is_flag=True,
              help="gzip a .scap capture (.kcap captures are always compressed).")
@click.option("--format", "write_format", type=click.Choice(["kcap", "scap"]),
              help="Format of the -w capture (default: by its extension, .scap or else .kcap).")
@click.option("-C", "--file-size", type=click.IntRange(min=1), metavar="MB",
              help="Rotate -w files every MB x 10^6 bytes.")
@click.option("-G", "--seconds", "rotate_seconds", type=click.IntRange(min=1), metavar="SEC",
              help="Rotate -w files every SEC seconds (strftime in the name is honoured).")
@click.option("-W", "--limit", "file_limit", type=click.IntRange(min=1), metavar="N",
              help="With -C: keep a ring of N files; with -G: stop after N files.")
@click.option("-e", "--events", "rotate_events", type=click.IntRange(min=1), metavar="N",
              help="Rotate -w files every N events.")
@click.option("-n", "--numevents", type=click.IntRange(min=1), metavar="N", help="Stop after N events.")
@click.option("-M", "max_seconds", type=click.FloatRange(min=0, min_open=True), metavar="SEC",
              help="Stop after SEC seconds.")
@click.option("-q", "--quiet", is_flag=True, help="Print no events (use with -w).")
@click.option("-F", "--fatfile", is_flag=True, help="With a filter, still write state-changing events, hidden.")
@click.option("-c", "--chisel", metavar="NAME", help="Run a chisel (-cl lists them).")
@click.option("-i", "--chisel-info", metavar="NAME", help="Describe a chisel and its arguments.")
@click.option("--chisel-dir", multiple=True, metavar="DIR", help="Also look for chisels in DIR.")
@click.option("-p", "--print", "fmt", metavar="FORMAT",
              help='Output format: "%field ..." or c / k for the container presets.')
@click.option("-j", "--json", "json_out", is_flag=True, help="One JSON object per event.")
@click.option("-A", "--print-ascii", is_flag=True, help="Print the text part of buffers.")
@click.option("-X", "--print-hex-ascii", is_flag=True, help="Print buffers in hex and ASCII.")
@click.option("-x", "--print-hex", is_flag=True, help="Print buffers in hex.")
@click.option("-b", "--print-base64", is_flag=True, help="Print buffers in base64.")
@click.option("-s", "--snaplen", type=click.IntRange(min=0, max=65000), default=80, show_default=True,
              help="Bytes of each I/O buffer to capture.")
@click.option("-v", "--verbose", is_flag=True, help="Untruncated buffers; statistics at the end.")
@click.option("-S", "--summary", is_flag=True, help="Print a summary of event counts at the end.")
@click.option("-t", "--timetype", type=click.Choice(["h", "a", "r", "d", "D"]), default="h",
              help="Time: h human, a absolute, r relative, d latency, D delta.")
@click.option("-d", "--displayflt", is_flag=True, help="Accepted: the filter always applies after state tracking.")
@click.option("-D", "--debug", is_flag=True, help="Show internal events (thread info, CPU samples...).")
@click.option("-l", "--list", "list_fields", is_flag=True, help="List the filter fields.")
@click.option("-L", "--list-events", is_flag=True, help="List the events and their parameters.")
@click.option("--list-markdown", is_flag=True, help="List the fields as a markdown table.")
@click.option("--buffer-size", type=click.IntRange(min=1), default=64, show_default=True, metavar="MB",
              help="Ring buffer size in MiB (a power of two).")
@click.option("-B", "--bpf", is_flag=True, help="Accepted for sysdig compatibility: ktrace always uses eBPF.")
@click.option("--explain", is_flag=True, help="Show the parsed filter and what goes into the kernel, then exit.")
@click.option("--host-root", metavar="DIR", help="The host's root, when ktrace runs in a container (KTRACE_HOST_ROOT).")
@click.option("--metrics", metavar="ADDR:PORT",
              help="Serve Prometheus metrics of a live run at http://ADDR:PORT/metrics (a loopback address "
                   "unless --metrics-bind-any).")
@click.option("--metrics-bind-any", is_flag=True, help="Allow --metrics on an address other machines can reach.")
@click.option("--metrics-top", type=click.IntRange(min=1), default=20, show_default=True, metavar="N",
              help="Per-container and per-process series for the N busiest of each; the rest summed.")
@click.option("--metrics-bpf-stats", is_flag=True,
              help="With --metrics: the probe's in-kernel time (BPF run-time statistics; needs CAP_SYS_ADMIN).")
@click.version_option(package_name="ktrace", prog_name="ktrace")
@click.argument("rest", nargs=-1, type=FilterParam())
def command(**kw: Any) -> None:
    """ktrace: every system call of a Linux or Kubernetes node, sysdig's way.

    REST is a filter (sysdig's language), preceded by the chisel's arguments when -c is given.
    """
    sys.exit(_main(kw))


def _render(kw: dict[str, Any]) -> RenderOptions:
    mode = "normal"
    if kw["print_ascii"]:
        mode = "ascii"
    if kw["print_hex_ascii"]:
        mode = "hex_ascii"
    if kw["print_hex"]:
        mode = "hex"
    if kw["print_base64"]:
        mode = "base64"
    return RenderOptions(mode=mode, verbose=kw["verbose"])


def _main(kw: dict[str, Any]) -> int:
    from .enrich import hostroot

    if kw["host_root"]:
        hostroot.set_host_root(kw["host_root"])
    if kw["list_fields"] or kw["list_markdown"]:
        from .output.listing import list_fields

        print(list_fields(markdown=kw["list_markdown"], verbose=kw["verbose"]))
        return 0
    if kw["list_events"]:
        from .output.listing import list_events

        print(list_events())
        return 0
    chisel_name = kw["chisel"]
    if chisel_name == "l":  # -cl
        from .chisel import list_chisels

        print(list_chisels(extra_dirs=kw["chisel_dir"]))
        return 0
    if kw["chisel_info"]:
        from .chisel import chisel_info

        print(chisel_info(kw["chisel_info"], extra_dirs=kw["chisel_dir"]))
        return 0
    rest = list(kw["rest"])
    fmt = kw["fmt"]
    container_mode = False
    if fmt is not None and fmt in PRESETS:
        container_mode = True
        fmt = PRESETS[fmt]
    chisel = None
    render = _render(kw)
    if chisel_name:
        from .chisel import load_chisel

        chisel, rest = load_chisel(chisel_name, rest, container_mode=container_mode, json_out=kw["json_out"],
                                   render=render, extra_dirs=kw["chisel_dir"], live=not kw["reads"])
    filter_text = " ".join(rest)
    if kw["explain"]:
        from .enrich.cgroupid import explain as explain_cgroups
        from .filter.compiler import compile_filter
        from .schema.fields import FIELDS

        if not filter_text:
            print("no filter: every event reaches user space")
            return 0
        flt = compile_filter(filter_text, FIELDS)
        print(flt.explain())
        print(explain_cgroups(flt.pushdown))
        return 0
    if kw["write_format"] and not kw["write"]:
        raise UsageError("--format names the format of a -w capture: add -w FILE")
    rotate = None
    if kw["file_size"] or kw["rotate_seconds"] or kw["rotate_events"] or kw["file_limit"]:
        if not kw["write"]:
            raise UsageError("-C, -G, -W and -e need -w FILE")
        rotate = RotatePolicy(size_mb=kw["file_size"], seconds=kw["rotate_seconds"], files=kw["file_limit"],
                              events=kw["rotate_events"])
    snaplen = kw["snaplen"]
    if chisel is not None and getattr(chisel, "snaplen", None) and snaplen == 80:
        snaplen = chisel.snaplen
    render.max_buf = 80
    from .session import RunOptions, run

    metrics = None
    if kw["metrics"]:
        if kw["reads"]:
            raise UsageError("--metrics measures a live run; it cannot be used with -r")
        from .metrics import start_metrics

        metrics = start_metrics(kw["metrics"], bind_any=kw["metrics_bind_any"], top=kw["metrics_top"],
                                bpf_stats=kw["metrics_bpf_stats"])
    elif kw["metrics_bind_any"] or kw["metrics_bpf_stats"]:
        raise UsageError("--metrics-bind-any and --metrics-bpf-stats need --metrics ADDR:PORT")

    opts = RunOptions(
        reads=list(kw["reads"]), write=kw["write"], rotate=rotate, write_format=kw["write_format"],
        compress=kw["compress"], quiet=kw["quiet"],
        max_events=kw["numevents"], seconds=kw["max_seconds"], fatfile=kw["fatfile"], filter_text=filter_text,
        fmt=fmt, json_out=kw["json_out"], time_mode=kw["timetype"], render=render, snaplen=snaplen,
        ring_mb=kw["buffer_size"], show_internal=kw["debug"], summary=kw["summary"], verbose=kw["verbose"],
        chisel=chisel, container_mode=container_mode, argv=["ktrace", *sys.argv[1:]], metrics=metrics,
    )
    try:
        return run(opts)
    finally:
        if metrics is not None:
            metrics.close()


@click.command("doctor")
@click.option("--quiet", is_flag=True, help="Print nothing; exit 0 if live tracing can work, else 2.")
def doctor_cmd(quiet: bool) -> None:
    """Check whether this node can trace, and say how to fix what is missing."""
    from .doctor import run_doctor

    sys.exit(run_doctor(quiet))


@click.command("capinfo")
@click.argument("path", type=click.Path(dir_okay=False))
@click.option("-j", "--json", "json_out", is_flag=True, help="Machine-readable output.")
def capinfo_cmd(path: str, json_out: bool) -> None:
    """What a capture holds: time span, events by type, drops, processes, containers, blocks."""
    import json

    from .capture.capinfo import capinfo, render_capinfo
    from .schema.events import event_name

    if not os.path.exists(path):
        raise CaptureError(f"{path}: no such file")
    info = capinfo(path, evt_name=event_name)
    print(json.dumps(info, default=str) if json_out else render_capinfo(info))
    sys.exit(0)


@click.command("cache")
@click.option("--warm", is_flag=True, help="Compile the probe for the default settings and store it (setup does).")
@click.option("--status", is_flag=True, help="Say whether a start with the default settings would load it.")
def cache_cmd(warm: bool, status: bool) -> None:
    """The cache of the compiled probe, which spares a start the compiler (about a second)."""
    from .probe import cache
    from .probe.image import ImageError
    from .probe.loader import PROBE_SRC, ProbeConfig, compile_flags

    flags = compile_flags(ProbeConfig())
    if warm:
        try:
            _, out = cache.obtain(PROBE_SRC, flags)
        except (ImageError, OSError) as e:
            print(f"ktrace: probe cache: cannot compile the probe ({e})", file=sys.stderr)
            sys.exit(1)
        print(f"ktrace: {out.note()}")
        sys.exit(0 if out.status != "off" else 1)
    if status:
        print(f"ktrace: {cache.lookup(PROBE_SRC, flags)[1].note()}")
        sys.exit(0)
    raise UsageError("cache: give --warm or --status (see `ktrace cache --help`)")


from .top.cli import top_cmd  # noqa: E402 - the subcommands sit together


def _inspect_cmd() -> click.Command:
    from .inspect.cli import inspect_cmd

    return inspect_cmd


SUBCOMMANDS: dict[str, click.Command | Callable[[], click.Command]] = {
    "doctor": doctor_cmd, "capinfo": capinfo_cmd, "cache": cache_cmd, "top": top_cmd, "inspect": _inspect_cmd}


def main(argv: list[str] | None = None) -> None:
    """Entry point: `ktrace [flags] [filter]`, `ktrace doctor`, `ktrace capinfo FILE`, `ktrace cache`,
    `ktrace top`, `ktrace inspect FILE`."""
    args = list(sys.argv[1:] if argv is None else argv)
    cmd: click.Command = command
    prog = "ktrace"
    if args and args[0] in SUBCOMMANDS:
        sub = SUBCOMMANDS[args[0]]
        cmd = sub if isinstance(sub, click.Command) else sub()
        prog = f"ktrace {args[0]}"
        args = args[1:]
    try:
        cmd.main(args=args, prog_name=prog, standalone_mode=False)
    except click.exceptions.Exit as e:
        sys.exit(e.exit_code)
    except click.ClickException as e:
        print(f"ktrace: {e.format_message()} (see `{prog} --help`)", file=sys.stderr)
        sys.exit(2)
    except click.exceptions.Abort:
        sys.exit(130)
    except FilterError as e:
        print(e.show(), file=sys.stderr)
        sys.exit(e.exit_code)
    except KtraceError as e:
        print(e.show(), file=sys.stderr)
        sys.exit(e.exit_code)
    except BrokenPipeError:
        sys.exit(0)
    except KeyboardInterrupt:
        sys.exit(130)
    except Exception as e:  # a bug: still one line, the traceback only on request
        if os.environ.get("KTRACE_DEBUG"):
            raise
        print(f"ktrace: internal error: {type(e).__name__}: {e} (set KTRACE_DEBUG=1 for details)",
              file=sys.stderr)
        sys.exit(1)
