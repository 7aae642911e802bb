"""Capture format figures on a synthetic `dd bs=1` storm: bytes/event, write and read M events/s.

    PYTHONPATH=. python bench/bench_capture.py [--events 3000000] [--batch 3000]

The storm: one thread doing read(0, buf, 1) / write(1, buf, 1) in a loop, as the probe records it:
enter records of 88 bytes, exit records of 96 (88 + a 1-byte payload, padded), ts rising by
200-300 ns (random), a random payload byte per read/write pair. Batches of ``--batch`` events
stand for what the ring-buffer consumer hands over per poll (0.5 ms at 6 M events/s = 3000).

Write: CaptureWriter from the first write_events to the end of close (footer written), wall
time and the process's CPU time (caller + writer thread). Read: CaptureReader iterating the
EventBlocks (decompressed and checked) of that file. Codecs: one block, encode and decode.
"""

from __future__ import annotations

import argparse
import os
import random
import struct
import sys
import tempfile
import time

from tracer.capture import CaptureReader, CaptureWriter, EventBlock
from tracer.capture.blockcodec import (
    CODEC_LZ4,
    CODEC_LZ4_64K,
    CODEC_NAMES,
    CODEC_ZSTD,
    CODEC_ZSTD_T8,
    decode_block,
    encode_block,
)
from tracer.schema.record import OFF_TS, REC_FIXED, pack_record, syscall_evt
from tracer.testing import T0

BUF = 0x7FFD_1234_A000


def storm(n: int, seed: int = 1, jitter: tuple[int, int] = (200, 300)) -> tuple[bytes, list[int]]:
    """``n`` storm records (n a multiple of 4) and their timestamps."""
    rnd = random.Random(seed)
    tid = 4242
    tmpl = [
        pack_record(0, tid, tid, syscall_evt(0, 0), 1, 0, (0, BUF, 1, 0, 0, 0)),
        pack_record(0, tid, tid, syscall_evt(0, 1), 1, 1, (0, BUF, 1, 0, 0, 0), seg0=b"a"),
        pack_record(0, tid, tid, syscall_evt(1, 0), 1, 0, (1, BUF, 1, 0, 0, 0)),
        pack_record(0, tid, tid, syscall_evt(1, 1), 1, 1, (1, BUF, 1, 0, 0, 0), seg0=b"a"),
    ]
    offs = []
    o = 0
    for r in tmpl:
        offs.append(o)
        o += len(r)
    quad = len(b"".join(tmpl))
    buf = bytearray(b"".join(tmpl) * (n // 4))
    ts_list = []
    ts = T0
    pack_ts = struct.Struct("<Q").pack_into
    for q in range(n // 4):
        base = q * quad
        byte = rnd.randrange(256)
        for k in range(4):
            ts += rnd.randint(*jitter)
            pack_ts(buf, base + offs[k] + OFF_TS, ts)
            ts_list.append(ts)
        buf[base + offs[1] + REC_FIXED] = byte
        buf[base + offs[3] + REC_FIXED] = byte
    return bytes(buf), ts_list


def mixed(n: int, seed: int = 3) -> bytes:
    """A harder mix for comparison: 64 threads, 24 syscalls, varying pointers, 0-200 byte text payloads."""
    rnd = random.Random(seed)
    words = b"GET /index.html HTTP/1.1 Host: example.org 200 OK Content-Length: 612 keep-alive".split()
    out = []
    ts = T0
    for _ in range(n // 2):
        tid = 1000 + rnd.randrange(64)
        nr = rnd.choice((0, 1, 3, 7, 9, 17, 19, 20, 23, 41, 42, 43, 44, 45, 232, 257, 262, 270, 281, 288, 0, 1, 0, 1))
        args = (rnd.randrange(64), BUF + rnd.randrange(1 << 16) * 16, rnd.randrange(4096), 0, 0, 0)
        ts += rnd.randint(100, 3000)
        out.append(pack_record(ts, tid, tid - tid % 4, syscall_evt(nr, 0), tid % 2, 0, args))
        payload = b" ".join(rnd.choice(words) for _ in range(rnd.randrange(20)))[:200]
        ts += rnd.randint(100, 3000)
        out.append(pack_record(ts, tid, tid - tid % 4, syscall_evt(nr, 1), tid % 2, len(payload), args, payload))
    return b"".join(out)


def batches(raw: bytes, ts: list[int], per: int) -> list[tuple[bytes, int, int, int]]:
    """Cut the storm into batches of ``per`` events (per a multiple of 4)."""
    out = []
    quad = 88 * 2 + 96 * 2
    step = per // 4 * quad
    for i, off in enumerate(range(0, len(raw), step)):
        b = raw[off : off + step]
        n = len(b) // quad * 4
        out.append((b, n, ts[i * per], ts[i * per + n - 1]))
    return out


def bench_codecs(raw: bytes, n: int) -> None:
    print(f"one block of {len(raw) / 1e6:.2f} MB raw, {n} events ({len(raw) / n:.1f} bytes/event raw)")
    print(f"  {'codec':<10} {'level':>5} {'B/event':>8} {'enc Mev/s':>10} {'dec Mev/s':>10}")
    # LZ4 has no level: 0 in its rows.
    for codec, level in ((CODEC_ZSTD, 1), (CODEC_ZSTD, 3), (CODEC_ZSTD_T8, 1), (CODEC_ZSTD_T8, 3), (CODEC_LZ4, 0),
                         (CODEC_LZ4_64K, 0)):
        reps = 10
        t = time.perf_counter()
        for _ in range(reps):
            stored = encode_block(raw, codec, level)
        enc = (time.perf_counter() - t) / reps
        t = time.perf_counter()
        for _ in range(reps):
            back = decode_block(stored, codec, len(raw))
        dec = (time.perf_counter() - t) / reps
        assert back == raw
        print(
            f"  {CODEC_NAMES[codec]:<10} {level:>5} {len(stored) / n:>8.2f}"
            f" {n / enc / 1e6:>10.1f} {n / dec / 1e6:>10.1f}"
        )


def bench_file(bs: list[tuple[bytes, int, int, int]], n: int, codec: int, level: int, path: str) -> None:
    c0 = time.process_time()
    t0 = time.perf_counter()
    w = CaptureWriter(path, {"bench": True}, codec=codec, level=level)
    for b in bs:
        w.write_events(*b)
    t_queued = time.perf_counter() - t0
    w.close()
    wall = time.perf_counter() - t0
    cpu = time.process_time() - c0
    size = os.path.getsize(path)
    st = w.stats
    t0 = time.perf_counter()
    got = 0
    nbytes = 0
    r = CaptureReader(path)
    for it in r:
        if isinstance(it, EventBlock):
            got += it.count
            nbytes += len(it.raw)
    rd = time.perf_counter() - t0
    assert got == n and not r.notes, (got, r.notes)
    print(
        f"  {CODEC_NAMES[codec]:<8} lvl {level}: {size / n:6.2f} B/event on disk"
        f" | write {n / wall / 1e6:5.1f} Mev/s wall, "
        f"{n / cpu / 1e6:5.1f} Mev/s per CPU-second (caller queued all in {t_queued * 1e3:.0f} ms, "
        f"{st['stalls']} stalls) | read {n / rd / 1e6:5.1f} Mev/s"
    )


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--events", type=int, default=3_000_000)
    ap.add_argument("--batch", type=int, default=3000)
    a = ap.parse_args()
    n = a.events // a.batch * a.batch
    t = time.perf_counter()
    raw, ts = storm(n)
    print(f"storm: {n:,} events, {len(raw) / 1e6:.1f} MB raw (built in {time.perf_counter() - t:.1f} s)")
    one = (1 << 20) // 368 * 4
    bench_codecs(raw[: one // 4 * 368], one)
    wide, _ = storm(one, seed=2, jitter=(100, 2000))
    print("same, ts jitter 100-2000 ns:")
    bench_codecs(wide, one)
    mix = mixed(one)
    print(f"a harder mix (64 threads, 24 syscalls, text payloads), {len(mix) / one:.1f} bytes/event raw:")
    bench_codecs(mix, one)
    bs = batches(raw, ts, a.batch)
    print(f"capture file, batches of {a.batch} events ({os.cpu_count()} CPUs):")
    with tempfile.TemporaryDirectory() as d:
        for codec, level in ((CODEC_ZSTD, 1), (CODEC_ZSTD, 3), (CODEC_ZSTD_T8, 1), (CODEC_LZ4_64K, 0)):
            bench_file(bs, n, codec, level, os.path.join(d, "bench.kcap"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
