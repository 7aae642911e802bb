"""One PPM event as a .scap event block holds it, and its parameters' typed values.

An event block body is ``u16 cpu`` (EVF blocks: then ``u32 dump flags``), then the event:
``u64 ts, u64 tid, u32 len, u16 type, u32 nparams`` (EV/EVF version 1: no nparams, worked out
from the lengths), ``nparams`` lengths (u16, or u32 in the LARGE blocks), then the values.
"""

from __future__ import annotations

import ipaddress
import struct
from dataclasses import dataclass
from typing import Final

from .blocks import FLAGGED_EVENTS, LARGE_EVENTS, ScapFormatError
from .table import PPM_EVENT_MAX, PPM_EVENTS, PT, PParam

EVENT_HEADER_FMT: Final = "<QQIHI"
EVENT_HEADER_FIELDS: Final = ("ts", "tid", "length", "type", "nparams")  # version 1: no nparams
_HDR2 = struct.Struct(EVENT_HEADER_FMT)
_HDR1 = struct.Struct(EVENT_HEADER_FMT[:-1])
_CPU = struct.Struct("<H")
_FLAGS = struct.Struct("<I")

# Fixed sizes of the numeric parameter types (little-endian, signed where the type is).
INT_FORMATS: Final = {
    PT.INT8: "<b", PT.INT16: "<h", PT.INT32: "<i", PT.INT64: "<q", PT.UINT8: "<B", PT.UINT16: "<H",
    PT.UINT32: "<I", PT.UINT64: "<Q", PT.ERRNO: "<q", PT.FD: "<q", PT.PID: "<q", PT.SYSCALLID: "<H",
    PT.SIGTYPE: "<B", PT.RELTIME: "<Q", PT.ABSTIME: "<Q", PT.PORT: "<H", PT.L4PROTO: "<B",
    PT.SOCKFAMILY: "<B", PT.BOOL: "<I", PT.FLAGS8: "<B", PT.FLAGS16: "<H", PT.FLAGS32: "<I",
    PT.UID: "<I", PT.GID: "<I", PT.SIGSET: "<I", PT.MODE: "<I", PT.ENUMFLAGS8: "<B",
    PT.ENUMFLAGS16: "<H", PT.ENUMFLAGS32: "<I", PT.FD32: "<i", PT.PID32: "<i",
}


@dataclass(slots=True)
class PPMEvent:
    ts: int
    tid: int
    type: int
    cpu: int
    dump_flags: int
    params: list[bytes]
    lsize: int = 2  # bytes per parameter length: 2, or 4 in LARGE blocks
    raw: bytes = b""  # the lengths and values as stored


def parse_event(body: bytes, block_type: int) -> PPMEvent:
    """The event in an EV/EVF block body. Raises ScapFormatError when its lengths do not add up."""
    n = len(body)
    pos = 2
    flags = 0
    if n < 2:
        raise ScapFormatError("event block without an event")
    cpu = _CPU.unpack_from(body)[0]
    if block_type in FLAGGED_EVENTS:
        if n < 6:
            raise ScapFormatError("event block cut short")
        flags = _FLAGS.unpack_from(body, 2)[0]
        pos = 6
    v2 = block_type not in (0x204, 0x8010ABCD, 0x208)
    hdr = _HDR2 if v2 else _HDR1
    if n - pos < hdr.size:
        raise ScapFormatError("event header cut short")
    if v2:
        ts, tid, length, etype, nparams = _HDR2.unpack_from(body, pos)
    else:
        ts, tid, length, etype = _HDR1.unpack_from(body, pos)
        nparams = -1
    if length < hdr.size or pos + length > n:
        raise ScapFormatError(f"event of {length} bytes in a block of {n}")
    end = pos + length
    # Lengths are u32 in the LARGE blocks, which hold the events flagged large_payload (libsinsp
    # 0.29 goes by the flag, newer readers by the block: a writer makes them agree).
    info = PPM_EVENTS[etype] if 0 <= etype < PPM_EVENT_MAX else None
    large = block_type in LARGE_EVENTS or (info is not None and "large_payload" in info.flags)
    lsize = 4 if large else 2
    start = pos + hdr.size
    if nparams < 0:
        nparams = _infer_nparams(body, start, end, etype)
    if nparams > (end - start) // lsize or nparams > 0xFFFF:
        raise ScapFormatError(f"event says {nparams} parameters in {end - start} bytes")
    lens = struct.unpack_from(f"<{nparams}{'I' if lsize == 4 else 'H'}", body, start)
    p = start + nparams * lsize
    if p + sum(lens) > end:
        raise ScapFormatError("parameter runs past its event")
    params = []
    for ln in lens:
        params.append(body[p:p + ln])
        p += ln
    return PPMEvent(ts, tid, etype, cpu, flags, params, lsize, body[start:p])


def _infer_nparams(body: bytes, start: int, end: int, etype: int) -> int:
    """Version-1 events have no parameter count: the largest count, up to the table's, whose
    lengths fill the event exactly (libscap's rule)."""
    info = PPM_EVENTS[etype] if 0 <= etype < PPM_EVENT_MAX else None
    top = len(info.params) if info is not None else 0
    for k in range(top, -1, -1):
        lp = start + 2 * k
        if lp > end:
            continue
        total = sum(struct.unpack_from(f"<{k}H", body, start)) if k else 0
        if lp + total == end:
            return k
    return 0


_INT_STRUCTS: Final = {t: struct.Struct(f) for t, f in INT_FORMATS.items()}


def int_value(p: PParam, raw: bytes) -> int:
    """A numeric parameter's value; 0 for an empty or short one."""
    st = _INT_STRUCTS.get(p.type)
    if st is None:
        return 0
    if len(raw) < st.size:
        # Some writers store narrower values than the table's type (a u32 fd in 8 bytes' stead).
        return int.from_bytes(raw, "little", signed=st.format[1].islower()) if raw else 0
    return int(st.unpack_from(raw)[0])


def sockaddr_parts(raw: bytes) -> tuple[str, str, int] | None:
    """(family, ip or path, port) of a PPM sockaddr (u8 family, then address and u16 port)."""
    if not raw:
        return None
    fam = raw[0]
    if fam == 2 and len(raw) >= 7:
        return "ipv4", str(ipaddress.IPv4Address(raw[1:5])), int.from_bytes(raw[5:7], "little")
    if fam == 10 and len(raw) >= 19:
        return "ipv6", _ip6(raw[1:17]), int.from_bytes(raw[17:19], "little")
    if fam == 1:
        return "unix", raw[1:].split(b"\0", 1)[0].decode(errors="replace"), 0
    return None


def tuple_parts(raw: bytes) -> tuple[str, str, int, str, int] | None:
    """(family, source ip, source port, destination ip, destination port) of a PPM socket tuple;
    for unix sockets (unix, source address, 0, path, destination address)."""
    if not raw:
        return None
    fam = raw[0]
    if fam == 2 and len(raw) >= 13:
        return ("ipv4", str(ipaddress.IPv4Address(raw[1:5])), int.from_bytes(raw[5:7], "little"),
                str(ipaddress.IPv4Address(raw[7:11])), int.from_bytes(raw[11:13], "little"))
    if fam == 10 and len(raw) >= 37:
        return ("ipv6", _ip6(raw[1:17]), int.from_bytes(raw[17:19], "little"),
                _ip6(raw[19:35]), int.from_bytes(raw[35:37], "little"))
    if fam == 1 and len(raw) >= 17:
        src, dst = struct.unpack_from("<QQ", raw, 1)
        return "unix", f"{src:x}", 0, raw[17:].split(b"\0", 1)[0].decode(errors="replace"), dst
    return None


def _ip6(raw: bytes) -> str:
    a = ipaddress.IPv6Address(raw)
    return str(a.ipv4_mapped) if a.ipv4_mapped is not None else a.compressed
