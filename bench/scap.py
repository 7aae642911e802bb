"""Writing and reading .scap: ktrace against sysdig 0.29 on the same file, in the same run.

    .venv/bin/python bench/scap.py [--rounds 1] [--events 1500000] [--json out.json]

big.kcap is made from captures/01-webserver.kcap (nginx under wrk) by repeating its event blocks,
times shifted, until it holds --events events (no root, no live capture needed). Then, each round:
  write       ktrace -r big.kcap -w out.scap          events/s of the export (target >= 2 M/s)
  read-q      ktrace -r out.scap -q   vs   sysdig -r out.scap -q
  read-lines  ktrace -r out.scap      vs   sysdig -r out.scap       (default lines, to /dev/null)
events/s = events in the capture / wall time of the whole process; CPU = user + system of it.
Target: ktrace >= 3x sysdig on the reads.
"""

from __future__ import annotations

import argparse
import shutil
import struct
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import KTRACE, dump_json, fmt, log, machine_line, run_timed, table  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SOURCE = ROOT / "captures" / "01-webserver.kcap"
WRITE_TARGET = 2e6
READ_RATIO_TARGET = 3.0


def make_big(dst: Path, want: int) -> int:
    """Repeat SOURCE's event blocks (each copy shifted past the previous one) up to ``want`` events."""
    from tracer.capture import CaptureReader, CaptureWriter, EventBlock, TableBlock
    from tracer.schema import record as R

    blocks, tables = [], []
    with CaptureReader(SOURCE) as r:
        for it in r:
            if isinstance(it, EventBlock):
                blocks.append((bytes(it.raw), it.count, it.first_ts, it.last_ts))
            elif isinstance(it, TableBlock):
                tables.append((it.kind, it.rows))
    span = blocks[-1][3] - blocks[0][2] + 1_000_000
    n = copy = 0
    with CaptureWriter(dst, {"live": False}) as w:
        for kind, rows in tables:
            w.write_table(kind, rows)
        while n < want:
            shift = copy * span
            for raw, count, first, last in blocks:
                buf = bytearray(raw)
                off = 0
                while off < len(buf):
                    ts, = struct.unpack_from("<Q", buf, off)
                    struct.pack_into("<Q", buf, off, ts + shift)
                    off += int.from_bytes(buf[off + R.OFF_LEN:off + R.OFF_LEN + 4], "little")
                w.write_events(bytes(buf), count, first + shift, last + shift)
                n += count
            copy += 1
    return n


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--events", type=int, default=1_500_000)
    ap.add_argument("--json")
    a = ap.parse_args()
    sysdig = shutil.which("sysdig")
    log(machine_line())
    rows, doc = [], {"rounds": []}
    with tempfile.TemporaryDirectory() as td:
        work = Path(td)
        big, out = work / "big.kcap", work / "out.scap"
        n = make_big(big, a.events)
        log(f"big.kcap: {n} events")
        for rnd in range(a.rounds):
            res = {}
            d = run_timed([KTRACE, "-r", str(big), "-w", str(out)])
            assert d.code == 0, "export failed"
            res["write"] = (n / d.wall, d.cpu, None, None)
            for variant, extra in (("read-q", ["-q"]), ("read-lines", [])):
                k = run_timed([KTRACE, "-r", str(out), *extra])
                s = run_timed([sysdig, "-r", str(out), *extra]) if sysdig else None
                res[variant] = (n / k.wall, k.cpu, n / s.wall if s else None, s.cpu if s else None)
            doc["rounds"].append({k: list(v) for k, v in res.items()})
            for variant, (kr, kc, sr, sc) in res.items():
                ratio = kr / sr if sr else None
                target = f">= {WRITE_TARGET / 1e6:.0f} M/s" if variant == "write" else f">= {READ_RATIO_TARGET:.0f}x"
                met = (kr >= WRITE_TARGET) if variant == "write" else (ratio is not None and ratio >= READ_RATIO_TARGET)
                rows.append([str(rnd), variant, fmt(kr / 1e6, "{:.3f}"), fmt(kc, "{:.1f}"),
                             fmt(sr / 1e6 if sr else None, "{:.3f}"), fmt(sc, "{:.1f}"),
                             fmt(ratio), target, "yes" if met else "no"])
    table(["round", "variant", "ktrace Mev/s", "ktrace CPU s", "sysdig Mev/s", "sysdig CPU s", "ratio", "target",
           "met"], rows)
    dump_json(a.json, doc)


if __name__ == "__main__":
    main()
