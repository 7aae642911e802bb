"""The blocks of a .scap file and the tables they hold (libscap's savefile layout).

A block is ``u32 type, u32 total_length``, a body, zero padding to 4 bytes and ``total_length``
again; everything is little-endian. Entries inside table blocks carry their own length (in the newer
block versions) so that fields a newer writer appended are skipped. Every parser here raises
``ScapFormatError`` on bytes that cannot be right and never reads past the body it is given.
"""

from __future__ import annotations

import ipaddress
import struct
from dataclasses import dataclass, field
from typing import Final

SHB: Final = 0x0A0D0D0A
SHB_MAGIC: Final = 0x1A2B3C4D
MI: Final = 0x201
MI_INT: Final = 0x8002ABCD
PL_V1, PL_V1_INT = 0x202, 0x8000ABCD
PL_V2, PL_V2_INT = 0x207, 0x8013ABCD
PL_V3, PL_V3_INT = 0x209, 0x8014ABCD
PL_V4, PL_V5, PL_V6, PL_V7, PL_V8, PL_V9 = 0x210, 0x211, 0x212, 0x213, 0x214, 0x215
FDL, FDL_INT, FDL_V2 = 0x203, 0x8001ABCD, 0x218
EV, EV_INT, EV_V2, EV_V2_LARGE = 0x204, 0x8010ABCD, 0x216, 0x221
EVF, EVF_V2, EVF_V2_LARGE = 0x208, 0x217, 0x222
IL, IL_INT, IL_V2 = 0x205, 0x8011ABCD, 0x219
UL, UL_INT, UL_V2 = 0x206, 0x8012ABCD, 0x220

# Process list versions: the block type -> its version number (1-9).
PL_VERSION: Final = {PL_V1: 1, PL_V1_INT: 1, PL_V2: 2, PL_V2_INT: 2, PL_V3: 3, PL_V3_INT: 3, PL_V4: 4,
                     PL_V5: 5, PL_V6: 6, PL_V7: 7, PL_V8: 8, PL_V9: 9}
EVENT_BLOCKS: Final = frozenset({EV, EV_INT, EV_V2, EV_V2_LARGE, EVF, EVF_V2, EVF_V2_LARGE})
FLAGGED_EVENTS: Final = frozenset({EVF, EVF_V2, EVF_V2_LARGE})  # a u32 of dump flags before the event
LARGE_EVENTS: Final = frozenset({EV_V2_LARGE, EVF_V2_LARGE})  # u32 parameter lengths
BLOCK_NAMES: Final = {
    SHB: "SHB", MI: "MI", MI_INT: "MI", FDL: "FDL", FDL_INT: "FDL", FDL_V2: "FDL_V2", IL: "IL", IL_INT: "IL",
    IL_V2: "IL_V2", UL: "UL", UL_INT: "UL", UL_V2: "UL_V2", EV: "EV", EV_INT: "EV", EV_V2: "EV_V2",
    EV_V2_LARGE: "EV_V2_LARGE", EVF: "EVF", EVF_V2: "EVF_V2", EVF_V2_LARGE: "EVF_V2_LARGE",
    **{t: f"PL_V{v}" for t, v in PL_VERSION.items()},
}

DF_STATE_ONLY: Final = 1  # an EVF event kept only for the state it changes (sysdig -F)

# scap fd types (scap_fd_type) and the fd.type name ktrace gives them.
FD_TYPES: Final = {
    0: "unknown", 1: "file", 2: "directory", 3: "ipv4", 4: "ipv6", 5: "ipv4", 6: "ipv6", 7: "pipe",
    8: "unix", 9: "event", 10: "unknown", 11: "signalfd", 12: "eventpoll", 13: "inotify", 14: "timerfd",
    15: "netlink", 16: "file",
}
L4PROTOS: Final = {2: "tcp", 3: "udp", 4: "icmp", 5: "raw"}  # scap_l4_proto

BLOCK_HEAD: Final = struct.Struct("<II")
_U16 = struct.Struct("<H")
_U32 = struct.Struct("<I")


class ScapFormatError(ValueError):
    """Bytes that cannot be a well-formed scap block or entry."""


class Cursor:
    """Reads fixed-size fields from a block body, refusing to go past its end."""

    __slots__ = ("buf", "pos", "end")

    def __init__(self, buf: bytes | memoryview, pos: int = 0, end: int | None = None) -> None:
        self.buf = buf
        self.pos = pos
        self.end = len(buf) if end is None else end

    def left(self) -> int:
        return self.end - self.pos

    def take(self, n: int) -> bytes:
        if n < 0 or self.pos + n > self.end:
            raise ScapFormatError(f"field of {n} bytes runs past its entry")
        b = bytes(self.buf[self.pos:self.pos + n])
        self.pos += n
        return b

    def unpack(self, st: struct.Struct) -> tuple[int, ...]:
        if self.pos + st.size > self.end:
            raise ScapFormatError("entry cut short")
        v = st.unpack_from(self.buf, self.pos)
        self.pos += st.size
        return v

    def u8(self) -> int:
        return self.take(1)[0]

    def u16(self) -> int:
        return self.unpack(_U16)[0]

    def u32(self) -> int:
        return self.unpack(_U32)[0]

    def u64(self) -> int:
        return self.unpack(_Q)[0]

    def i64(self) -> int:
        return self.unpack(_q)[0]

    def string(self, limit: int = 0xFFFF) -> str:
        """A u16-length-prefixed string, not NUL-terminated on disk."""
        n = self.u16()
        if n > limit:
            raise ScapFormatError(f"string of {n} bytes is longer than {limit}")
        return self.take(n).split(b"\0", 1)[0].decode(errors="replace")

    def raw_string(self) -> bytes:
        return self.take(self.u16())


_Q = struct.Struct("<Q")
_q = struct.Struct("<q")


@dataclass(frozen=True, slots=True)
class Section:
    major: int
    minor: int


def parse_shb(body: bytes) -> Section:
    c = Cursor(body)
    magic = c.u32()
    if magic != SHB_MAGIC:
        raise ScapFormatError(f"bad section magic {magic:#x}")
    major, minor = c.u16(), c.u16()
    return Section(major, minor)


@dataclass(frozen=True, slots=True)
class MachineInfo:
    num_cpus: int
    memory_bytes: int
    max_pid: int
    hostname: str
    boot_ts: int = 0


def parse_mi(body: bytes) -> MachineInfo:
    c = Cursor(body)
    num_cpus, memory, max_pid = c.u32(), c.u64(), c.u64()
    hostname = c.take(128).split(b"\0", 1)[0].decode(errors="replace")
    boot = c.u64() if c.left() >= 8 else 0
    return MachineInfo(num_cpus, memory, max_pid, hostname, boot)


@dataclass(slots=True)
class ScapThread:
    """One process-list entry, the fields every version may hold (absent ones keep defaults)."""

    tid: int
    pid: int
    ptid: int
    sid: int = -1
    vpgid: int = -1
    comm: str = ""
    exe: str = ""
    exepath: str = ""
    args: list[str] = field(default_factory=list)
    cwd: str = ""
    fdlimit: int = 0
    flags: int = 0
    uid: int = -1
    gid: int = -1
    vmsize_kb: int = 0
    vmrss_kb: int = 0
    vmswap_kb: int = 0
    pfmajor: int = 0
    pfminor: int = 0
    env: bytes = b""
    vtid: int = -1
    vpid: int = -1
    cgroups: list[tuple[str, str]] = field(default_factory=list)
    root: str = ""
    loginuid: int = -1


def split_args(raw: bytes) -> list[str]:
    """NUL-separated argv strings (the trailing NUL optional)."""
    if not raw:
        return []
    return [a.decode(errors="replace") for a in raw.rstrip(b"\0").split(b"\0")] if raw.rstrip(b"\0") else []


def split_cgroups(raw: bytes) -> list[tuple[str, str]]:
    out = []
    for item in raw.split(b"\0"):
        if b"=" in item:
            k, _, v = item.partition(b"=")
            out.append((k.decode(errors="replace"), v.decode(errors="replace")))
    return out


def parse_proclist(body: bytes, version: int) -> list[ScapThread]:
    """The thread table of a PL block (versions 1-9)."""
    out = []
    c = Cursor(body)
    while c.left() >= 4:
        sub_len = 0
        start = c.pos
        if version >= 9:
            sub_len = c.u32()
            if sub_len < 4 or start + sub_len > c.end:
                raise ScapFormatError(f"process entry of {sub_len} bytes does not fit its block")
            e = Cursor(c.buf, c.pos, start + sub_len)
        else:
            e = c
        t = ScapThread(e.u64(), e.u64(), e.u64())
        if version >= 6:
            t.sid = e.i64()
        if version >= 8:
            t.vpgid = e.i64()
        t.comm = e.string()
        t.exe = e.string()
        if version >= 7:
            t.exepath = e.string()
        t.args = split_args(e.raw_string())
        t.cwd = e.string()
        t.fdlimit = e.u64()
        t.flags = e.u32()
        t.uid, t.gid = e.u32(), e.u32()
        if version >= 2:
            t.vmsize_kb, t.vmrss_kb, t.vmswap_kb = e.u32(), e.u32(), e.u32()
            t.pfmajor, t.pfminor = e.u64(), e.u64()
            if version >= 3:
                t.env = e.raw_string()
            if version >= 4:
                t.vtid, t.vpid = e.i64(), e.i64()
                t.cgroups = split_cgroups(e.raw_string())
                if version >= 5:
                    t.root = e.string()
        if version >= 9:
            if e.left() >= 4:
                t.loginuid = struct.unpack("<i", e.take(4))[0]
            c.pos = start + sub_len  # fields a newer writer appended
        out.append(t)
    return out


@dataclass(slots=True)
class ScapFd:
    """One fd of a thread's FDL block."""

    fd: int
    ino: int
    kind: int
    name: str = ""
    l4proto: str = ""
    cip: str = ""
    cport: int = 0
    sip: str = ""
    sport: int = 0
    is_server: bool | None = None
    open_flags: int = 0

    @property
    def type(self) -> str:
        return FD_TYPES.get(self.kind, "unknown")


def _ip4(raw: bytes) -> str:
    return str(ipaddress.IPv4Address(raw))


def _ip6(raw: bytes) -> str:
    a = ipaddress.IPv6Address(raw)
    return str(a.ipv4_mapped) if a.ipv4_mapped is not None else a.compressed


def parse_fdlist(body: bytes, v2: bool) -> tuple[int, list[ScapFd]]:
    """(tid, fds) of an FDL block."""
    c = Cursor(body)
    tid = c.u64()
    out = []
    while c.left() >= 4:
        start = c.pos
        sub_len = 0
        if v2:
            sub_len = c.u32()
            if sub_len < 4 or start + sub_len > c.end:
                raise ScapFormatError(f"fd entry of {sub_len} bytes does not fit its block")
            e = Cursor(c.buf, c.pos, start + sub_len)
        else:
            e = c
        f = ScapFd(e.i64(), e.u64(), e.u8())
        k = f.kind
        if k == 3:
            sip, dip = _ip4(e.take(4)), _ip4(e.take(4))
            sport, dport, proto = e.u16(), e.u16(), e.u8()
            f.cip, f.cport, f.sip, f.sport, f.l4proto = sip, sport, dip, dport, L4PROTOS.get(proto, "")
        elif k == 4:
            sip, dip = _ip6(e.take(16)), _ip6(e.take(16))
            sport, dport, proto = e.u16(), e.u16(), e.u8()
            f.cip, f.cport, f.sip, f.sport, f.l4proto = sip, sport, dip, dport, L4PROTOS.get(proto, "")
        elif k in (5, 6):
            ip = _ip4(e.take(4)) if k == 5 else _ip6(e.take(16))
            port, proto = e.u16(), e.u8()
            f.sip, f.sport, f.l4proto, f.is_server = ip, port, L4PROTOS.get(proto, ""), True
        elif k == 8:
            e.take(16)  # the kernel addresses of both ends
            f.name = e.string()
        elif k == 16:
            f.open_flags = e.u32()
            f.name = e.string()
        elif k != 0:
            f.name = e.string()
        if v2:
            c.pos = start + sub_len
        out.append(f)
    return tid, out


@dataclass(frozen=True, slots=True)
class Interface:
    name: str
    family: str
    addr: str
    netmask: str = ""
    bcast: str = ""


def parse_iflist(body: bytes, v2: bool) -> list[Interface]:
    """Interfaces with their addresses (IL and IL_V2). An entry is ``[u32 length, not counting
    itself (V2)] u16 kind, u16 name length, address, netmask, broadcast, [u64 link speed], name``."""
    out = []
    c = Cursor(body)
    while c.left() >= 4:
        e = c
        end = 0
        if v2:
            sub_len = c.u32()
            end = c.pos + sub_len
            if sub_len < 4 or end > c.end:
                raise ScapFormatError(f"interface entry of {sub_len} bytes does not fit its block")
            e = Cursor(c.buf, c.pos, end)
        kind, namelen = e.u16(), e.u16()
        if kind not in (1, 2, 3, 4):
            raise ScapFormatError(f"interface of unknown kind {kind}")
        size = 4 if kind in (1, 3) else 16
        addr, mask, bcast = e.take(size), e.take(size), e.take(size)
        if kind in (1, 2):
            e.take(8)  # link speed
        name = e.take(namelen).split(b"\0", 1)[0].decode(errors="replace")
        conv = _ip4 if size == 4 else _ip6
        out.append(Interface(name, "ipv4" if size == 4 else "ipv6", conv(addr), conv(mask), conv(bcast)))
        if v2:
            c.pos = end
    return out


@dataclass(frozen=True, slots=True)
class UserEntry:
    uid: int
    gid: int
    name: str
    home: str
    shell: str


@dataclass(frozen=True, slots=True)
class GroupEntry:
    gid: int
    name: str


def parse_userlist(body: bytes, v2: bool) -> tuple[list[UserEntry], list[GroupEntry]]:
    users, groups = [], []
    c = Cursor(body)
    while c.left() >= 4:
        start = c.pos
        sub_len = c.u32() if v2 else 0
        if v2 and (sub_len < 5 or start + sub_len > c.end):
            raise ScapFormatError(f"user entry of {sub_len} bytes does not fit its block")
        e = Cursor(c.buf, c.pos, start + sub_len) if v2 else c
        kind = e.u8()
        if kind == 0:
            uid, gid = e.u32(), e.u32()
            users.append(UserEntry(uid, gid, e.string(), e.string(), e.string()))
        elif kind == 1:
            gid = e.u32()
            groups.append(GroupEntry(gid, e.string()))
        else:
            raise ScapFormatError(f"user list entry of unknown kind {kind}")
        if v2:
            c.pos = start + sub_len
    return users, groups
