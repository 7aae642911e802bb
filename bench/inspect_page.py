"""`ktrace inspect` on a big capture: indexing rate, and the time to open the overview after it.

    .venv/bin/python bench/inspect_page.py [--events 10000000] [--source captures/01-webserver.kcap]
                                      [--dir /tmp/ktrace-bench-inspect] [--browser] [--rounds 7]

The capture is made from a real one: the source's EVENTS blocks written again and again, each
copy's timestamps shifted past the previous copy's end, until --events (10 M by default); state
tables come first as in the source. It is kept in --dir and reused when it is there.

Figures (one process each, cold: a fresh python):
  scan        read and decode every block, no index (the floor any indexing pays)
  timeline    decode + the C tally (timeline counts, processes, containers, system calls, errors)
  index       `ktrace inspect`'s whole index, I/O tiles included (tracer.inspect.index.build)
  open        after indexing: from starting `ktrace inspect` (cached index) until the page's
              data is served: /api/info, /api/timeline and /api/overview answered; with --browser,
              until headless chromium shows the overview (body[data-ready=1])
Events/s = events in the capture / wall time, and per CPU second of the process (user + system),
which other load on a shared machine disturbs less. index and open are measured --rounds times,
alternately (a fresh index each round), and reported as medians with their range.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import struct
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import machine_line  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
PYTHON = sys.executable
_TS = struct.Struct("<Q")


def make_capture(source: Path, dest: Path, events: int) -> int:
    """Write ``dest`` from ``source``'s blocks repeated, shifted in time, until ``events``."""
    sys.path.insert(0, str(REPO))
    from tracer.capture import CaptureWriter, EventBlock, FileStart, TableBlock, blockcodec
    from tracer.capture.files import read_captures

    blocks: list[EventBlock] = []
    tables: list[TableBlock] = []
    header: dict[str, object] = {}
    for item in read_captures([source]):
        if isinstance(item, FileStart):
            header = dict(item.header)
        elif isinstance(item, EventBlock) and item.count:
            blocks.append(item)
        elif isinstance(item, TableBlock) and not blocks:
            tables.append(item)
    first = blocks[0].first_ts
    span = blocks[-1].last_ts - first + 1_000_000
    meta = {k: v for k, v in header.items() if k in ("machine", "snaplen", "schema_version", "start_time", "live")}
    meta["cmdline"] = ["bench/inspect_page.py", str(source)]
    w = CaptureWriter(dest, meta, codec=blockcodec.CODEC_LZ4_64K)
    for t in tables:
        w.write_table(t.kind, t.rows)
    written = 0
    copy = 0
    while written < events:
        shift = copy * span
        for b in blocks:
            raw = bytearray(b.raw)
            off = 0
            while off < len(raw):
                _TS.pack_into(raw, off, _TS.unpack_from(raw, off)[0] + shift)
                off += int.from_bytes(raw[off + 20:off + 24], "little")
            w.write_events(bytes(raw), b.count, b.first_ts + shift, b.last_ts + shift)
            written += b.count
            if written >= events:
                break
        copy += 1
    w.close()
    return written


def timed(code: str) -> tuple[float, float]:
    """Wall time and CPU time of a fresh python running ``code`` (the repository on its path)."""
    env = dict(os.environ, PYTHONPATH=str(REPO))
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.monotonic()
    subprocess.run([PYTHON, "-c", code], check=True, env=env)
    wall = time.monotonic() - t
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def open_time(cap: Path, browser: bool) -> float:
    env = dict(os.environ, PYTHONPATH=str(REPO))
    t = time.monotonic()
    p = subprocess.Popen([PYTHON, "-c", "from tracer.cli import main; main()", "inspect", str(cap)],
                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env)
    try:
        assert p.stdout is not None
        url = p.stdout.readline().strip()
        base, token = url.split("/?", 1)[0], url.split("token=", 1)[1]
        if browser:
            from playwright.sync_api import sync_playwright

            with sync_playwright() as pw:
                b = pw.chromium.launch(executable_path="/usr/bin/chromium",
                                       args=["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                                             "--disable-component-update", "--disable-sync", "--no-first-run"])
                page = b.new_page()
                page.goto(url)
                page.wait_for_selector("body[data-ready='1']", timeout=120000)
                dt = time.monotonic() - t
                b.close()
                return dt
        for path in ("info", "timeline", "overview"):
            req = urllib.request.Request(f"{base}/api/{path}", headers={"X-Ktrace-Token": token})
            with urllib.request.urlopen(req, timeout=300) as r:
                json.load(r)
        return time.monotonic() - t
    finally:
        p.terminate()
        p.wait(timeout=30)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--events", type=int, default=10_000_000)
    ap.add_argument("--source", type=Path, default=REPO / "captures" / "01-webserver.kcap")
    ap.add_argument("--dir", type=Path, default=Path("/tmp/ktrace-bench-inspect"))
    ap.add_argument("--browser", action="store_true", help="time the overview in headless chromium too")
    ap.add_argument("--rounds", type=int, default=7, help="index and open this many times (default %(default)s)")
    a = ap.parse_args()
    print(machine_line())
    a.dir.mkdir(parents=True, exist_ok=True)
    cap = a.dir / f"big-{a.events}.kcap"
    if not cap.exists():
        t = time.monotonic()
        n = make_capture(a.source, cap, a.events)
        print(f"made {cap} ({n} events, {cap.stat().st_size / 1e6:.0f} MB) in {time.monotonic() - t:.1f} s")
    p = str(cap)
    scan = timed(f"from tracer.capture.files import read_captures\nfor _ in read_captures([{p!r}]): pass")
    tl = timed(
        "from array import array\n"
        "from tracer.capture import EventBlock\nfrom tracer.capture.files import read_captures\n"
        "from tracer.engine import tally\n"
        "from tracer.inspect.index import CATEGORIES, MAX_BUCKETS, BUCKET_NS, category_table\n"
        "cats = category_table(); c = array('Q'); f = array('Q'); t0 = 0\n"
        f"for it in read_captures([{p!r}]):\n"
        "    if isinstance(it, EventBlock) and it.count:\n"
        "        t0 = t0 or it.first_ts\n"
        "        tally.tally(it.raw, cats, t0, BUCKET_NS, len(CATEGORIES), MAX_BUCKETS - 1, c, f, set(), 8)\n")
    index: list[tuple[float, float]] = []
    opened: list[float] = []
    for r in range(a.rounds):
        for step in ("index", "open") if r % 2 == 0 else ("open", "index"):
            if step == "index":
                for f in a.dir.glob("*.kidx"):
                    f.unlink()
                (Path(str(cap) + ".kidx")).unlink(missing_ok=True)
                index.append(timed(f"from tracer.inspect.index import load_or_build\nload_or_build([{p!r}])"))
            else:
                opened.append(open_time(cap, a.browser))  # (the index of the round before, cached)
    from tracer.capture.capinfo import capinfo

    n = int(capinfo(p)["events"])
    print(f"capture: {n} events, {cap.stat().st_size / 1e6:.0f} MB ({a.source.name} repeated)")
    for name, (dt, cpu) in (("scan", scan), ("timeline", tl)):
        print(f"{name:<10} {dt:7.2f} s  {n / dt / 1e6:6.2f} M events/s  {n / cpu / 1e6:6.2f} M events/CPU-s")
    walls, cpus = [w for w, _ in index], [c for _, c in index]
    print(f"{'index':<10} {statistics.median(walls):7.2f} s  {n / statistics.median(walls) / 1e6:6.2f} M events/s  "
          f"{n / statistics.median(cpus) / 1e6:6.2f} M events/CPU-s  (median of {len(index)}; "
          f"{n / max(walls) / 1e6:.2f}-{n / min(walls) / 1e6:.2f} M events/s)")
    what = "browser shows the overview" if a.browser else "info + timeline + overview served"
    print(f"{'open':<10} {statistics.median(opened):7.2f} s  (median of {len(opened)}, "
          f"{min(opened):.2f}-{max(opened):.2f} s; {what}, index cached)")


if __name__ == "__main__":
    main()
