"""Block codecs and record walks: the capture code's only per-byte work, kept here to port to Cython.

``encode_block``/``decode_block`` turn the raw bytes of a block into the stored bytes and back.
Codecs (the block header's ``codec`` byte):

- CODEC_NONE (0): stored as is (small control blocks).
- CODEC_ZSTD (1): one zstd frame with its content size; the default for every large block.
  Level -1 (zstd's fast mode): live capture competes with the traced programs for CPU, and on a
  web server's events (nginx under wrk) it compresses 16% faster than level 1 for 2% more bytes;
  level 3 gives level 1's size at half its speed (bench/bench_capture.py).
- CODEC_LZ4 (3): one LZ4 block (no size prefix: the block header's raw_len is the size). On
  nginx's events LZ4 compresses 1.75x faster than zstd -1 for 1.7x the bytes (still a fourteenth
  of the raw records). Live captures of format 1.1 used it; it is still read.
- CODEC_LZ4_64K (4): the raw bytes cut into 64 KiB chunks, each one LZ4 block preceded by its
  stored length (u32); every chunk is 64 KiB raw but the last. Live capture's codec: below 64 KiB
  LZ4 indexes its input with 16-bit positions and compresses nginx's records ~15% faster
  (47 against 55 ns a record) for ~4% more bytes, and the writer's compression is ktrace's largest
  use of CPU beside a busy server. Offline rewrites, where CPU is not taken from anyone, keep zstd.
- CODEC_ZSTD_T8 (2): the block seen as 8-byte words is split into 8 byte planes (byte 0 of every
  word, then byte 1 ...) before zstd; the tail that is not a whole word follows as is. Done with
  strided slices, so no Python loop. About 25% smaller on the storm but ~3x slower to write, so
  not the default; offered for long captures where disk matters more than CPU.

The record walks (``count_types``, ``cut_records``) loop once per record in Python: they serve
capinfo and the rare batch split of ``-e`` rotation, not the hot path.
"""

from __future__ import annotations

import struct
import threading
from typing import Final

import lz4.block
import zstandard

from tracer.schema.record import OFF_EVT, OFF_LEN, OFF_TS, REC_HEAD

CODEC_NONE: Final = 0
CODEC_ZSTD: Final = 1
CODEC_ZSTD_T8: Final = 2
CODEC_LZ4: Final = 3
CODEC_LZ4_64K: Final = 4
CODEC_NAMES: Final[dict[int, str]] = {CODEC_NONE: "none", CODEC_ZSTD: "zstd", CODEC_ZSTD_T8: "zstd+t8",
                                      CODEC_LZ4: "lz4", CODEC_LZ4_64K: "lz4-64k"}
LZ4_CHUNK: Final = 64 << 10  # LZ4's 16-bit tables serve inputs up to 64 KiB + 11 bytes

DEFAULT_LEVEL: Final = -1
_MAX_WINDOW: Final = 1 << 27

_local = threading.local()
_U32: Final = struct.Struct("<I")
_EVT_LEN: Final = struct.Struct("<HHI")  # evt, cpu, len at OFF_EVT
_TS: Final = struct.Struct("<Q")
assert OFF_LEN == OFF_EVT + 4


class BlockError(ValueError):
    """Stored bytes that do not decode to the raw bytes the block header announces."""


def _compressor(level: int) -> zstandard.ZstdCompressor:
    cache: dict[int, zstandard.ZstdCompressor] | None = getattr(_local, "cctx", None)
    if cache is None:
        cache = _local.cctx = {}
    c = cache.get(level)
    if c is None:
        c = cache[level] = zstandard.ZstdCompressor(level=level, write_content_size=True, write_checksum=False)
    return c


def _decompressor() -> zstandard.ZstdDecompressor:
    d: zstandard.ZstdDecompressor | None = getattr(_local, "dctx", None)
    if d is None:
        d = _local.dctx = zstandard.ZstdDecompressor(max_window_size=_MAX_WINDOW)
    return d


def transpose8(raw: bytes) -> bytes:
    """Byte planes of the 8-byte words of ``raw``, then the tail that is not a whole word."""
    n8 = len(raw) & ~7
    return b"".join([raw[i:n8:8] for i in range(8)]) + raw[n8:]


def untranspose8(t: bytes) -> bytes:
    """Inverse of ``transpose8``."""
    n = len(t)
    n8 = n & ~7
    p = n8 >> 3
    out = bytearray(n)
    for i in range(8):
        out[i:n8:8] = t[i * p : (i + 1) * p]
    out[n8:] = t[n8:]
    return bytes(out)


def encode_block(raw: bytes, codec: int = CODEC_ZSTD, level: int = DEFAULT_LEVEL) -> bytes:
    """The stored bytes of a block whose decoded bytes are ``raw``."""
    if codec == CODEC_NONE:
        return raw
    if codec == CODEC_ZSTD:
        return _compressor(level).compress(raw)
    if codec == CODEC_ZSTD_T8:
        return _compressor(level).compress(transpose8(raw))
    if codec == CODEC_LZ4:
        stored: bytes = lz4.block.compress(raw, mode="fast", acceleration=1, store_size=False)
        return stored
    if codec == CODEC_LZ4_64K:
        view = memoryview(raw)
        parts: list[bytes] = []
        for off in range(0, len(raw), LZ4_CHUNK):
            chunk = lz4.block.compress(view[off:off + LZ4_CHUNK], mode="fast", store_size=False)
            parts += (_U32.pack(len(chunk)), chunk)
        return b"".join(parts)
    raise ValueError(f"unknown block codec {codec}")


def decode_block(stored: bytes, codec: int, raw_len: int) -> bytes:
    """The raw bytes of a block; BlockError unless they decode to exactly ``raw_len`` bytes.

    Allocates at most ``raw_len`` bytes (the caller bounds it) whatever the stored bytes claim.
    """
    if codec == CODEC_NONE:
        raw = stored
    elif codec in (CODEC_ZSTD, CODEC_ZSTD_T8):
        try:
            size = zstandard.frame_content_size(stored)
        except zstandard.ZstdError as e:
            raise BlockError(f"not a zstd frame ({e})") from None
        if size != raw_len:
            raise BlockError(f"zstd frame holds {size} bytes, header says {raw_len}")
        try:
            raw = _decompressor().decompress(stored, max_output_size=raw_len)
        except zstandard.ZstdError as e:
            raise BlockError(f"zstd: {e}") from None
        if codec == CODEC_ZSTD_T8:
            raw = untranspose8(raw)
    elif codec == CODEC_LZ4:
        try:
            # Decoding into more than raw_len bytes fails: the allocation stays bounded.
            raw = lz4.block.decompress(stored, uncompressed_size=raw_len)
        except lz4.block.LZ4BlockError as e:
            raise BlockError(f"lz4: {e}") from None
    elif codec == CODEC_LZ4_64K:
        raw = _decode_lz4_chunks(stored, raw_len)
    else:
        raise BlockError(f"unknown codec {codec}")
    if len(raw) != raw_len:
        raise BlockError(f"decoded {len(raw)} bytes, header says {raw_len}")
    return raw


def _decode_lz4_chunks(stored: bytes, raw_len: int) -> bytes:
    """CODEC_LZ4_64K's chunks, each decoded into exactly the size its place gives it."""
    out = []
    view = memoryview(stored)  # chunks decoded in place, not copied out first
    pos = 0
    for off in range(0, raw_len, LZ4_CHUNK):
        if pos + 4 > len(stored):
            raise BlockError(f"lz4-64k: chunk at raw byte {off} missing")
        (n,) = _U32.unpack_from(stored, pos)
        pos += 4
        if pos + n > len(stored):
            raise BlockError(f"lz4-64k: chunk at raw byte {off} cut short")
        want = min(LZ4_CHUNK, raw_len - off)
        try:
            part = lz4.block.decompress(view[pos:pos + n], uncompressed_size=want)
        except lz4.block.LZ4BlockError as e:
            raise BlockError(f"lz4-64k: {e}") from None
        if len(part) != want:
            raise BlockError(f"lz4-64k: chunk at raw byte {off} decoded to {len(part)} bytes, not {want}")
        out.append(part)
        pos += n
    if pos != len(stored):
        raise BlockError(f"lz4-64k: {len(stored) - pos} bytes after the last chunk")
    return b"".join(out)


def _record_len(raw: bytes, off: int, end: int) -> tuple[int, int]:
    if end - off < REC_HEAD:
        raise BlockError(f"record at {off} cut short ({end - off} bytes)")
    evt, _cpu, n = _EVT_LEN.unpack_from(raw, off + OFF_EVT)
    if n < REC_HEAD or n & 7 or off + n > end:
        raise BlockError(f"record at {off} has a bad length {n}")
    return evt, n


def count_types(raw: bytes, counts: dict[int, int]) -> int:
    """Add each record's event id to ``counts``; return the number of records.

    BlockError if the records do not tile ``raw`` exactly (the counts then hold the whole
    records before the bad one).
    """
    off = 0
    end = len(raw)
    n = 0
    get = counts.get
    while off < end:
        evt, length = _record_len(raw, off, end)
        counts[evt] = get(evt, 0) + 1
        off += length
        n += 1
    return n


def cut_records(raw: bytes, max_records: int) -> tuple[int, int, int, int]:
    """Where to cut ``raw`` after at most ``max_records`` whole records.

    Returns (cut offset, records before it, ts of the last record before it, ts of the first
    record after it or 0). BlockError on a malformed record.
    """
    off = 0
    end = len(raw)
    n = 0
    last_ts = 0
    while off < end and n < max_records:
        _, length = _record_len(raw, off, end)
        last_ts = _TS.unpack_from(raw, off + OFF_TS)[0]
        off += length
        n += 1
    next_ts = _TS.unpack_from(raw, off + OFF_TS)[0] if end - off >= REC_HEAD else 0
    return off, n, last_ts, next_ts


def cut_bytes(raw: bytes, max_bytes: int) -> tuple[int, int, int, int]:
    """Like ``cut_records`` but cut after the whole records that fit in ``max_bytes`` (at least one)."""
    off = 0
    end = len(raw)
    n = 0
    last_ts = 0
    while off < end:
        _, length = _record_len(raw, off, end)
        if n and off + length > max_bytes:
            break
        last_ts = _TS.unpack_from(raw, off + OFF_TS)[0]
        off += length
        n += 1
    next_ts = _TS.unpack_from(raw, off + OFF_TS)[0] if end - off >= REC_HEAD else 0
    return off, n, last_ts, next_ts
