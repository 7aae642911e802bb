"""Reading a large .scap: ktrace against sysdig 0.29 on the same file, in the same run.

    .venv/bin/python bench/scap_read.py [--rounds 5] [--events 1500000] [--scap FILE] [--json out.json]

The file: --scap FILE (a capture exported by `ktrace -w x.scap`, say), or big.scap made here from
sysdig's own captures (captures/scap/): curl_google.scap's tables, then the event blocks of all
three, copied over and over with their timestamps shifted past the previous copy, until --events
(the CPU samples, procinfo events, in the first copy only: they are most of those small captures and
a rare event in a large one).
Each round, in alternating order (ktrace first in even rounds, sysdig first in odd ones):
  -q      ktrace -r FILE -q    vs   sysdig -r FILE -q
  lines   ktrace -r FILE       vs   sysdig -r FILE        (default lines, to /dev/null)
events/s = events in the file / wall time of the whole process; CPU/event = (user + system) / events,
the figure to trust on a shared machine. Target: ktrace >= 3x sysdig, both variants.
KTRACE=path picks the ktrace to run (default: the repository's .venv).
"""

from __future__ import annotations

import argparse
import gzip
import os
import shutil
import struct
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (  # noqa: E402
    KTRACE,
    REPO,
    Series,
    apply_nice,
    common_args,
    dump_json,
    fmt,
    log,
    machine_line,
    ratio_series,
    run_timed,
    table,
    wait_quiet,
)

SOURCES = ("curl_google.scap", "single_ipv6_conn.scap", "cat_write.scap")
EVENT_BLOCKS = {0x204, 0x8010ABCD, 0x216, 0x221, 0x208, 0x217, 0x222}  # libscap's EV and EVF blocks
RATIO_TARGET = 3.0


def blocks(path: Path) -> list[tuple[int, bytes]]:
    raw = path.read_bytes()
    if raw[:2] == b"\x1f\x8b":
        raw = gzip.decompress(raw)
    out, pos = [], 0
    while pos + 8 <= len(raw):
        btype, total = struct.unpack_from("<II", raw, pos)
        out.append((btype, raw[pos:pos + total]))
        pos += total
    return out


def event_ts_offset(btype: int) -> int:
    """Where the timestamp sits in an event block: after the block head, the cpu and (EVF) the flags."""
    return 8 + 2 + (4 if btype in (0x208, 0x217, 0x222) else 0)


def make_big(dst: Path, want: int) -> int:
    """sysdig's captures' events repeated, times shifted, after the first one's tables."""
    src = REPO / "captures" / "scap"
    first = blocks(src / SOURCES[0])
    head = b"".join(b for t, b in first if t not in EVENT_BLOCKS)
    from tracer.capture.scap.table import PPM_EVENTS

    procinfo = next(e.id for e in PPM_EVENTS if e is not None and e.name == "procinfo")
    events: list[tuple[int, bytes]] = []
    stamps: list[int] = []  # each source's times from its first event, the sources one after another
    t0 = start = 0
    for name in SOURCES:
        mine = [(t, b) for t, b in blocks(src / name) if t in EVENT_BLOCKS]
        ts = [struct.unpack_from("<Q", b, event_ts_offset(t))[0] for t, b in mine]
        t0 = t0 or min(ts)
        events += mine
        stamps += [start + x - min(ts) for x in ts]
        start += max(ts) - min(ts) + 1_000_000
    span = start
    kinds = [struct.unpack_from("<H", b, event_ts_offset(t) + 20)[0] for t, b in events]
    n = 0
    with open(dst, "wb") as f:
        f.write(head)
        copy = 0
        while n < want:
            out = bytearray()
            for (t, b), ts, kind in zip(events, stamps, kinds, strict=True):
                if copy and kind == procinfo:
                    continue
                n += 1
                blk = bytearray(b)
                # Each source's events keep their order; the copies follow one another in time.
                struct.pack_into("<Q", blk, event_ts_offset(t), t0 + copy * span + ts)
                out += blk
            f.write(out)
            copy += 1
    return n


def count_events(sysdig: str, path: Path) -> int:
    """Events in a .scap as sysdig numbers them (its last evt.num)."""
    with subprocess.Popen([sysdig, "-r", str(path), "-p", "%evt.num"], stdout=subprocess.PIPE) as p:
        assert p.stdout is not None
        return sum(1 for _ in p.stdout)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    common_args(ap, rounds=5)
    ap.add_argument("--events", type=int, default=1_500_000, help="events in the file made here")
    ap.add_argument("--scap", type=Path, help="read this .scap instead of making one")
    a = ap.parse_args()
    apply_nice(a)
    ktrace = os.environ.get("KTRACE", KTRACE)
    sysdig = shutil.which("sysdig")
    if sysdig is None:
        sys.exit("scap_read: sysdig is not installed (scripts/setup.sh installs it)")
    log(machine_line())
    with tempfile.TemporaryDirectory() as td:
        work = Path(a.workdir or td)
        work.mkdir(parents=True, exist_ok=True)
        path = a.scap or work / "big.scap"
        n = make_big(path, a.events) if a.scap is None else count_events(sysdig, path)
        log(f"{path}: {n} events, {path.stat().st_size / 1e6:.1f} MB")
        rates: dict[tuple[str, str], Series] = {}
        cpu: dict[tuple[str, str], Series] = {}
        variants = (("-q", ["-q"]), ("lines", []))
        for rnd in range(a.rounds):
            for variant, extra in variants:
                tools = [("ktrace", ktrace), ("sysdig", sysdig)]
                for tool, exe in tools if rnd % 2 == 0 else tools[::-1]:
                    if not a.no_wait_quiet:
                        wait_quiet(10.0)
                    d = run_timed([exe, "-r", str(path), *extra])
                    if d.code != 0:
                        sys.exit(f"scap_read: {tool} -r {path} {' '.join(extra)} exited {d.code}")
                    rates.setdefault((variant, tool), Series()).add(n / d.wall)
                    cpu.setdefault((variant, tool), Series()).add(d.cpu / n * 1e6)
                    log(f"round {rnd} {variant:5} {tool:6} {n / d.wall / 1e6:.3f} M ev/s, "
                        f"{d.cpu / n * 1e6:.2f} us CPU/event")
    rows, doc = [], {"events": n, "file": str(path), "variants": {}}
    for variant, _extra in variants:
        k, s = rates[(variant, "ktrace")], rates[(variant, "sysdig")]
        kc, sc = cpu[(variant, "ktrace")], cpu[(variant, "sysdig")]
        ratio = ratio_series(k, s).median
        cratio = ratio_series(sc, kc).median
        rows.append([variant, fmt((k.median or 0) / 1e6, "{:.3f}"), fmt(kc.median),
                     fmt((s.median or 0) / 1e6, "{:.3f}"), fmt(sc.median), fmt(ratio), fmt(cratio),
                     f">= {RATIO_TARGET:.0f}x",
                     "yes" if ratio is not None and ratio >= RATIO_TARGET else "no"])
        doc["variants"][variant] = {"ktrace_ev_s": k.to_json(), "sysdig_ev_s": s.to_json(),
                                    "ktrace_cpu_us": kc.to_json(), "sysdig_cpu_us": sc.to_json(),
                                    "ratio_wall": ratio, "ratio_cpu": cratio}
    table(["variant", "ktrace Mev/s", "ktrace us CPU/ev", "sysdig Mev/s", "sysdig us CPU/ev", "ratio (wall)",
           "ratio (CPU)", "target", "met"], rows)
    dump_json(a.json, doc)


if __name__ == "__main__":
    main()
