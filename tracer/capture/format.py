"""The .kcap capture format, version 1.0: one header, then self-describing blocks.

Everything is little-endian. A capture is the file header followed by blocks up to the end of
the file; a file written to the end (closed cleanly) ends with a FOOTER block.

File header (16 bytes + the metadata map)::

    offset size field
    0      4    magic      b"KCAP"
    4      2    major      u16  format major version (a reader refuses a newer major)
    6      2    minor      u16  format minor version (minor bumps only add: new keys, new block
                                kinds, which older readers skip with a note)
    8      4    meta_len   u32  length of the metadata map, at most MAX_META bytes
    12     4    meta_crc   u32  zlib.crc32 of the metadata map
    16     meta_len        msgpack map (string keys), see below

Metadata map: ``machine`` {hostname, kernel, boot_time (ns since the epoch), cpus}, ``snaplen``,
``schema_version`` (the event table's version, for the event decoder's upgrades), ``start_time``
(ns since the epoch, when this file was opened), ``cmdline`` (list of str), ``file_seq`` (0 for
the first file of a run, then 1, 2 ... across rotations) and every key the writer's caller passed
in ``meta``.

Block (44-byte header + ``stored_len`` bytes)::

    offset size field
    0      4    sync       b"\\x9fKB\\x17": lets a reader find the next block after damage
    4      1    kind       KIND_*
    5      1    codec      blockcodec.CODEC_*: how the stored bytes encode the raw bytes
    6      2    reserved   0
    8      4    stored_len u32  bytes that follow the header, at most MAX_BLOCK
    12     4    raw_len    u32  bytes once decoded, at most MAX_BLOCK
    16     4    count      u32  events (EVENTS), rows (TABLE), entries (INDEX), else 0
    20     8    first_ts   u64  ts of the first record (EVENTS), else 0
    28     8    last_ts    u64  ts of the last record (EVENTS), else 0
    36     4    data_crc   u32  zlib.crc32 of the stored bytes
    40     4    head_crc   u32  zlib.crc32 of header bytes 0-39

Block kinds and their decoded bytes:

- EVENTS: records in the schema's binary layout (tracer.schema.record), concatenated, 8-byte
  aligned, in the order the kernel gave them (ts is not guaranteed monotonic across CPUs).
- TABLE: msgpack ``{"kind": "threads"|"fds"|"users"|"groups"|"containers"|..., "rows": [...]}``;
  the latest TABLE of a kind replaces earlier ones. Every file starts with the latest table of
  each kind the writer had, so any file of a rotated set stands alone.
- STATS: msgpack map: the caller's counters (``events``, ``drops`` {cause: n} ...) and the
  writer's own (``writer`` {stalls, stall_seconds, blocks, ...}); the last one is the newest.
- INDEX: msgpack list of ``[offset, first_ts, last_ts, count]``, one per EVENTS block of the file.
- FOOTER: the last block of a cleanly closed file; 24 raw bytes: u64 offset of the INDEX block
  (0 if none), u64 events in the file, u64 blocks before the footer. As the footer block has a
  fixed size (FOOTER_SIZE), a reader finds the index by reading the file's last FOOTER_SIZE bytes.

Robustness: a block whose head_crc fails is not trusted at all (the reader scans forward for the
next sync marker whose header checks out); one whose data_crc fails or whose data does not decode
is skipped by its (checked) length. Lengths above MAX_BLOCK are refused before any allocation.

Versions: 1.0 is the first; 1.1 adds the LZ4 codec (blockcodec.CODEC_LZ4); 1.2 adds LZ4 in
64 KiB chunks (blockcodec.CODEC_LZ4_64K), which live captures use. Older files are brought to the
current version by the chain of ``Upgrade`` steps registered in ``UPGRADES`` (keyed by the
version they upgrade from).
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

import msgpack

from tracer.errors import CaptureError

MAGIC: Final = b"KCAP"
FORMAT_MAJOR: Final = 1
FORMAT_MINOR: Final = 2

FILE_HEAD_FMT: Final = "<4sHHII"
FILE_HEAD_SIZE: Final = struct.calcsize(FILE_HEAD_FMT)
assert FILE_HEAD_SIZE == 16

SYNC: Final = b"\x9fKB\x17"
BLOCK_HEAD_FMT: Final = "<4sBBHIIIQQI"  # everything up to head_crc
BLOCK_HEAD_SIZE: Final = struct.calcsize(BLOCK_HEAD_FMT) + 4
assert BLOCK_HEAD_SIZE == 44
_BLOCK_HEAD: Final = struct.Struct(BLOCK_HEAD_FMT)
_U32: Final = struct.Struct("<I")

MAX_META: Final = 16 << 20
MAX_BLOCK: Final = 64 << 20

KIND_EVENTS: Final = 1
KIND_TABLE: Final = 2
KIND_STATS: Final = 3
KIND_INDEX: Final = 4
KIND_FOOTER: Final = 5
KIND_NAMES: Final[dict[int, str]] = {
    KIND_EVENTS: "events",
    KIND_TABLE: "table",
    KIND_STATS: "stats",
    KIND_INDEX: "index",
    KIND_FOOTER: "footer",
}

TABLE_KINDS: Final = ("threads", "fds", "users", "groups", "containers")

FOOTER_FMT: Final = "<QQQ"
FOOTER_RAW: Final = struct.calcsize(FOOTER_FMT)
FOOTER_SIZE: Final = BLOCK_HEAD_SIZE + FOOTER_RAW


@dataclass(frozen=True, slots=True)
class BlockHead:
    """A block header that passed its checksum."""

    kind: int
    codec: int
    stored_len: int
    raw_len: int
    count: int
    first_ts: int
    last_ts: int
    data_crc: int


def pack_file_header(meta: dict[str, Any], major: int = FORMAT_MAJOR, minor: int = FORMAT_MINOR) -> bytes:
    """The file header: fixed part and msgpack metadata."""
    body: bytes = msgpack.packb(meta, use_bin_type=True)
    if len(body) > MAX_META:
        raise ValueError(f"capture metadata too large ({len(body)} bytes, at most {MAX_META})")
    return struct.pack(FILE_HEAD_FMT, MAGIC, major, minor, len(body), zlib.crc32(body)) + body


def _not_a_capture(path: str, head: bytes) -> CaptureError:
    if not head:
        why = "empty file"
    elif head.startswith(b"\x1f\x8b"):
        why = "gzip data"
    elif head[:4] == b"\x0a\x0d\x0d\x0a":
        why = "looks like a sysdig .scap file"
    elif MAGIC.startswith(head[:4]):
        why = f"too short: {len(head)} bytes"
    else:
        why = f"starts with {head[:8]!r}"
    return CaptureError(f"{path} is not a ktrace capture ({why})")


def parse_file_header(path: str, read: Callable[[int, int], bytes]) -> tuple[tuple[int, int], dict[str, Any], int]:
    """Read and check the file header through ``read(offset, size)``.

    Returns ((major, minor), metadata, offset of the first block). Raises CaptureError for a file
    that is not a capture, a newer major version, or a damaged header.
    """
    head = read(0, FILE_HEAD_SIZE)
    if len(head) < FILE_HEAD_SIZE or head[:4] != MAGIC:
        raise _not_a_capture(path, head)
    _, major, minor, meta_len, meta_crc = struct.unpack(FILE_HEAD_FMT, head)
    if major > FORMAT_MAJOR:
        raise CaptureError(
            f"{path}: capture format version {major}.{minor} is newer than this ktrace reads "
            f"({FORMAT_MAJOR}.{FORMAT_MINOR}); use a newer ktrace"
        )
    if meta_len > MAX_META:
        raise CaptureError(f"{path}: damaged capture header (metadata claims {meta_len} bytes)")
    body = read(FILE_HEAD_SIZE, meta_len)
    if len(body) < meta_len:
        raise CaptureError(f"{path}: capture header cut short ({FILE_HEAD_SIZE + len(body)} bytes)")
    if zlib.crc32(body) != meta_crc:
        raise CaptureError(f"{path}: damaged capture header (bad checksum)")
    try:
        meta = msgpack.unpackb(body, raw=False, strict_map_key=False)
    except Exception as e:  # msgpack raises several unrelated types on bad input
        raise CaptureError(f"{path}: damaged capture header ({type(e).__name__})") from None
    if not isinstance(meta, dict):
        raise CaptureError(f"{path}: damaged capture header (metadata is not a map)")
    return (major, minor), meta, FILE_HEAD_SIZE + meta_len


def pack_block_head(
    kind: int, codec: int, stored: bytes, raw_len: int, count: int = 0, first_ts: int = 0, last_ts: int = 0
) -> bytes:
    """The 44-byte header for ``stored``."""
    head = _BLOCK_HEAD.pack(SYNC, kind, codec, 0, len(stored), raw_len, count, first_ts, last_ts, zlib.crc32(stored))
    return head + _U32.pack(zlib.crc32(head))


def parse_block_head(buf: bytes | memoryview, off: int = 0) -> BlockHead | None:
    """The header at ``buf[off:off+44]``, or None unless its sync, checksum and lengths are sound."""
    if len(buf) - off < BLOCK_HEAD_SIZE:
        return None
    sync, kind, codec, _, stored_len, raw_len, count, first_ts, last_ts, data_crc = _BLOCK_HEAD.unpack_from(buf, off)
    if sync != SYNC:
        return None
    if zlib.crc32(buf[off : off + BLOCK_HEAD_SIZE - 4]) != _U32.unpack_from(buf, off + BLOCK_HEAD_SIZE - 4)[0]:
        return None
    if stored_len > MAX_BLOCK or raw_len > MAX_BLOCK:
        return None
    return BlockHead(kind, codec, stored_len, raw_len, count, first_ts, last_ts, data_crc)


# --- upgrades of older versions ---------------------------------------------------------------


def _same(x: Any) -> Any:
    return x


@dataclass(frozen=True)
class Upgrade:
    """How a file of version ``source`` is read as version ``target``.

    ``header`` rewrites the metadata map; ``item`` rewrites each item the reader yields
    (EventBlock, TableBlock or StatsBlock) and may return None to drop it.
    """

    source: tuple[int, int]
    target: tuple[int, int]
    header: Callable[[dict[str, Any]], dict[str, Any]] = _same
    item: Callable[[Any], Any] | None = None


UPGRADES: dict[tuple[int, int], Upgrade] = {}


def register_upgrade(upgrade: Upgrade) -> Upgrade:
    """Add one step to the upgrade chain (keyed by the version it reads)."""
    if upgrade.target <= upgrade.source:
        raise ValueError(f"upgrade must go forward: {upgrade.source} -> {upgrade.target}")
    UPGRADES[upgrade.source] = upgrade
    return upgrade


def upgrade_chain(path: str, version: tuple[int, int]) -> list[Upgrade]:
    """The steps that bring ``version`` to the current major version.

    A file of the current major needs none unless a step is registered for its exact version
    (minor versions only add, so an unknown older minor reads as it is). An older major needs a
    complete chain, else CaptureError.
    """
    steps: list[Upgrade] = []
    v = version
    seen: set[tuple[int, int]] = set()
    while v in UPGRADES and v not in seen and v[0] <= FORMAT_MAJOR:
        seen.add(v)
        steps.append(UPGRADES[v])
        v = UPGRADES[v].target
    if v[0] < FORMAT_MAJOR:
        raise CaptureError(
            f"{path}: capture format version {version[0]}.{version[1]} is too old for this ktrace "
            f"({FORMAT_MAJOR}.{FORMAT_MINOR}) and no upgrade is known"
        )
    return steps
