"""Builders of .scap bytes, block by block, following libscap's savefile layout, for the tests."""

from __future__ import annotations

import ipaddress
import struct
from dataclasses import dataclass, field

from tracer.capture.scap import blocks as B

TS0 = 1_700_000_000_000_000_000


def block(btype: int, body: bytes) -> bytes:
    pad = (-len(body)) % 4
    total = 8 + len(body) + pad + 4
    return struct.pack("<II", btype, total) + body + b"\0" * pad + struct.pack("<I", total)


def shb(major: int = 1, minor: int = 2) -> bytes:
    return block(B.SHB, struct.pack("<IHHq", B.SHB_MAGIC, major, minor, -1))


def mi(hostname: str = "node-1", cpus: int = 4) -> bytes:
    body = struct.pack("<IQQ", cpus, 8 << 30, 4194304) + hostname.encode().ljust(128, b"\0")
    return block(B.MI, body + struct.pack("<QQQQ", 0, 0, 0, 0))


def s16(text: str | bytes) -> bytes:
    raw = text.encode() if isinstance(text, str) else text
    return struct.pack("<H", len(raw)) + raw


def il(v2: bool, entries: list[tuple[str, str, str]]) -> bytes:
    """(name, ipv4|ipv6, address) entries, with a link speed."""
    out = b""
    for name, fam, addr in entries:
        a = ipaddress.ip_address(addr).packed
        kind = 1 if fam == "ipv4" else 2
        e = struct.pack("<HH", kind, len(name)) + a + a + a + struct.pack("<Q", 1000) + name.encode()
        out += (struct.pack("<I", len(e)) + e) if v2 else e
    return block(B.IL_V2 if v2 else B.IL, out)


def ul(v2: bool, users: list[tuple[int, int, str, str, str]], groups: list[tuple[int, str]]) -> bytes:
    out = b""
    for uid, gid, name, home, shell in users:
        e = struct.pack("<BII", 0, uid, gid) + s16(name) + s16(home) + s16(shell)
        out += (struct.pack("<I", len(e) + 4) + e) if v2 else e
    for gid, name in groups:
        e = struct.pack("<BI", 1, gid) + s16(name)
        out += (struct.pack("<I", len(e) + 4) + e) if v2 else e
    return block(B.UL_V2 if v2 else B.UL, out)


@dataclass
class T:
    tid: int
    pid: int
    ptid: int
    comm: str
    exe: str
    args: list[str] = field(default_factory=list)
    cwd: str = "/"
    uid: int = 0
    gid: int = 0
    vtid: int = -1
    vpid: int = -1
    cgroups: str = ""
    extra: bytes = b""  # fields a newer writer appended (V9)


PL_TYPES = {1: B.PL_V1, 2: B.PL_V2, 3: B.PL_V3, 4: B.PL_V4, 5: B.PL_V5, 6: B.PL_V6, 7: B.PL_V7, 8: B.PL_V8,
            9: B.PL_V9}


def pl(version: int, threads: list[T]) -> bytes:
    out = b""
    for t in threads:
        e = struct.pack("<QQQ", t.tid, t.pid, t.ptid)
        if version >= 6:
            e += struct.pack("<q", t.pid)
        if version >= 8:
            e += struct.pack("<q", t.pid)
        e += s16(t.comm) + s16(t.exe)
        if version >= 7:
            e += s16(t.exe)
        e += s16(b"".join(a.encode() + b"\0" for a in t.args)) + s16(t.cwd)
        e += struct.pack("<QIII", 1024, 0, t.uid, t.gid)
        if version >= 2:
            e += struct.pack("<IIIQQ", 2048, 1024, 0, 1, 2)
            if version >= 3:
                e += s16(b"HOME=/root\0")
            if version >= 4:
                e += struct.pack("<qq", t.vtid, t.vpid) + s16(t.cgroups.encode())
                if version >= 5:
                    e += s16("/")
        if version >= 9:
            e += struct.pack("<i", 1000) + t.extra
            e = struct.pack("<I", len(e) + 4) + e
        out += e
    return block(PL_TYPES[version], out)


def fd_file(fd: int, name: str, flags: int = 1) -> bytes:
    return struct.pack("<qQB", fd, 7, 16) + struct.pack("<I", flags) + s16(name)


def fd_ipv4(fd: int, sip: str, sport: int, dip: str, dport: int, proto: int = 2) -> bytes:
    return (struct.pack("<qQB", fd, 8, 3) + ipaddress.IPv4Address(sip).packed + ipaddress.IPv4Address(dip).packed
            + struct.pack("<HHB", sport, dport, proto))


def fd_server4(fd: int, ip: str, port: int, proto: int = 2) -> bytes:
    return struct.pack("<qQB", fd, 9, 5) + ipaddress.IPv4Address(ip).packed + struct.pack("<HB", port, proto)


def fd_unix(fd: int, path: str) -> bytes:
    return struct.pack("<qQB", fd, 10, 8) + struct.pack("<QQ", 0xAB, 0xCD) + s16(path)


def fdl(v2: bool, tid: int, entries: list[bytes]) -> bytes:
    out = struct.pack("<Q", tid)
    for e in entries:
        out += (struct.pack("<I", len(e) + 4) + e) if v2 else e
    return block(B.FDL_V2 if v2 else B.FDL, out)


def ev(btype: int, ts: int, tid: int, etype: int, params: list[bytes], cpu: int = 0, flags: int = 0) -> bytes:
    large = btype in B.LARGE_EVENTS
    v2 = btype not in (B.EV, B.EV_INT, B.EVF)
    lens = struct.pack(f"<{len(params)}{'I' if large else 'H'}", *(len(p) for p in params))
    data = b"".join(params)
    hsize = 26 if v2 else 22
    length = hsize + len(lens) + len(data)
    head = struct.pack("<QQIHI", ts, tid, length, etype, len(params)) if v2 else \
        struct.pack("<QQIH", ts, tid, length, etype)
    pre = struct.pack("<H", cpu) + (struct.pack("<I", flags) if btype in B.FLAGGED_EVENTS else b"")
    return block(btype, pre + head + lens + data)


def i64(v: int) -> bytes:
    return struct.pack("<q", v)


def u32(v: int) -> bytes:
    return struct.pack("<I", v)


def cstr(s: str) -> bytes:
    return s.encode() + b"\0"


def small_file(ev_type: int = B.EV_V2) -> bytes:
    """A host with one process, an open file and a socket, that opens, reads and closes a file."""
    t = T(100, 100, 1, "app", "/usr/bin/app", ["-v"], "/srv", 0, 0, 100, 100)
    return (shb() + mi() + il(True, [("lo", "ipv4", "127.0.0.1")])
            + ul(True, [(0, 0, "root", "/root", "/bin/sh")], [(0, "root")])
            + pl(9, [t]) + fdl(True, 100, [fd_file(0, "/dev/null"), fd_server4(3, "0.0.0.0", 80)])
            + ev(ev_type, TS0, 100, 2, [cstr("data.txt"), u32(1), u32(0)])  # > open
            + ev(ev_type, TS0 + 10, 100, 3, [i64(4), cstr("/srv/data.txt"), u32(4097), u32(0), u32(0)])
            + ev(ev_type, TS0 + 20, 100, 6, [i64(4), u32(100)])  # > read
            + ev(ev_type, TS0 + 30, 100, 7, [i64(5), b"hello"])
            + ev(ev_type, TS0 + 40, 100, 4, [i64(4)])  # > close
            + ev(ev_type, TS0 + 50, 100, 5, [i64(0)]))
