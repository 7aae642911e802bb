"""A PPM event as one ktrace record (tracer/schema/record.py).

The record gets ktrace's event id (the syscall of the same name and direction, or the internal
event sysdig's one is), and its registers, return value and payload segments are filled from the
PPM parameters of the same name, so that ktrace's state, filters and chisels read it as they read
one of the probe's records. Flag values are turned from PPM's encoding into Linux's where ktrace's
state reads them (open, clone, socket flags).

The PPM event itself travels after the segments, in the record's tail (``RF_PPM``): lines print
its parameters as sysdig does (``render``), and the state takes what the probe's records do not
carry (process facts of execve and clone, socket tuples) from it (``state.apply_ppm``).

Annex layout: ``u32 length (annex included), u16 PPM type, u16 nparams, u8 bytes per length, 3
pad``, the lengths and values as the scap file stored them, then zero padding to the record's
8-byte alignment.
"""

from __future__ import annotations

import struct
from typing import Final

import msgpack

from tracer.schema import flags as KF
from tracer.schema import record as R
from tracer.schema.events import FD_REGS, SYSCALL_NR, SYSCALLS

from .events import INT_FORMATS, PPMEvent, int_value, sockaddr_parts
from .table import PPM_FLAGS, PT, PEvent, PParam, ppm_event
from .table import SYSCALLS as PPM_SC

RF_PPM: Final = R.RF_PPM
Params = dict[str, tuple[PParam, bytes]]  # an event's parameters by name
ANNEX_FMT: Final = "<IHHB3x"
ANNEX_FIELDS: Final = ("size", "type", "nparams", "lsize")  # annex size, PPM type, nparams, bytes per length
_ANNEX = struct.Struct(ANNEX_FMT)
_FIXED = struct.Struct(R.FIXED_FMT)

# PPM event names that are a syscall ktrace knows under another name.
NAME_ALIASES: Final = {"pread": "pread64", "pwrite": "pwrite64", "umount": "umount2", "stat64": "stat",
                       "lstat64": "lstat", "fstat64": "fstat", "mmap2": "mmap", "_llseek": "lseek",
                       "llseek": "lseek", "newselect": "select", "signalfd": "signalfd4",
                       "eventfd": "eventfd2", "inotify_init": "inotify_init1"}
# Internal PPM events and ktrace's event for each.
INTERNAL: Final = {"procexit": R.EVT_PROCEXIT, "procinfo": R.EVT_PROCINFO, "container": R.EVT_CONTAINER,
                   "switch": R.EVT_SWITCH}
# ktrace parameter name -> the PPM names that hold the same value.
PARAM_ALIASES: Final = {"size": ("size", "len"), "filename": ("filename", "exe"), "path": ("path", "name"),
                        "name": ("name", "path"), "data": ("data",), "status": ("status",),
                        "addr": ("addr",), "flags": ("flags",), "mode": ("mode",), "dirfd": ("dirfd",),
                        "newfd": ("newfd",), "cmd": ("cmd",), "fd": ("fd",)}
# PPM flag table -> the ktrace flag table with the same bit names (values differ).
FLAG_TABLES: Final = {"file_flags": "open_flags", "clone_flags": "clone_flags", "prot_flags": "prot_flags",
                      "mmap_flags": "mmap_flags"}
_PPM_ACC = {1: 0, 2: 1, 3: 2}  # PPM O_RDONLY/O_WRONLY/O_RDWR -> Linux access mode


def to_linux_flags(ppm_table: str, value: int) -> int:
    """A PPM flags value in Linux's encoding, matched bit by bit on the names both tables share."""
    ktable = FLAG_TABLES.get(ppm_table)
    if ktable is None:
        return value
    by_name = {name: bit for bit, name in KF.FLAGS.get(ktable, ())}
    out = 0
    for name, bit in PPM_FLAGS.get(ppm_table, ()):
        if bit and value & bit == bit and name in by_name:
            out |= by_name[name]
    if ppm_table == "file_flags":
        out |= _PPM_ACC.get(value & 3, 0)
    return out


class Translator:
    """Turns the PPM events of one file into records, remembering each thread's enter."""

    def __init__(self) -> None:
        self._enter: dict[int, tuple[int, tuple[int, ...], bytes, bytes, int]] = {}
        self.skipped: dict[str, int] = {}
        self.last_unknown = False
        self.pids: dict[int, int] = {}  # tid -> pid, from the thread table and process events
        self._plans: dict[tuple[int, int], _Plan] = {}

    def _skip(self, what: str) -> None:
        self.skipped[what] = self.skipped.get(what, 0) + 1

    def evt_id(self, ev: PPMEvent, info: PEvent) -> int:
        name = info.name
        if name in INTERNAL:
            return INTERNAL[name]
        direction = info.direction
        if name == "syscall":  # a generic event: the syscall is its first parameter
            code = int_value(info.params[0], ev.params[0]) if ev.params and info.params else 0
            name = PPM_SC[code] if 0 <= code < len(PPM_SC) else ""
            nr = SYSCALL_NR.get(name)
            if nr is None and len(ev.params) > 1 and len(info.params) > 1:
                nr = int_value(info.params[1], ev.params[1])  # the native syscall number
                nr = nr if 0 <= nr < R.NSYSCALLS else None
            if nr is None and direction:
                pend = self._enter.get(ev.tid)
                return pend[0] + 1 if pend is not None else -1
            return -1 if nr is None else R.syscall_evt(nr, direction)
        nr = SYSCALL_NR.get(NAME_ALIASES.get(name, name))
        return -1 if nr is None else R.syscall_evt(nr, direction)

    def record(self, ev: PPMEvent) -> list[bytes] | None:
        """The records of one PPM event (one, or none for an event ktrace has no place for)."""
        info = ppm_event(ev.type)
        self.last_unknown = info is None
        if info is None:
            return None
        evt = self.evt_id(ev, info)
        if evt < 0:
            # Kept, hidden, so that evt.num stays sysdig's (it numbers every event it knows).
            self._skip(f"{info.name} events (no ktrace counterpart, kept hidden)")
            evt = R.EVT_PPM
        vals = ev.params
        nparams = len(vals)
        if nparams > len(info.params):
            self._skip("parameters newer than the event table")
        plan = self._plans.get((ev.type, evt))
        if plan is None:
            plan = self._plans[(ev.type, evt)] = _Plan(info, evt)
        tid = ev.tid
        args = [0] * 6
        ret = 0
        seg = [b"", b""]
        flags = RF_PPM | R.RF_HIDDEN if ev.dump_flags & 1 or plan.hidden else RF_PPM
        if evt < R.EVT_BASE_OTHER:
            direction = evt & 1
            if direction:
                pend = self._enter.pop(tid, None)
                if pend is not None and pend[0] == evt - 1:
                    args = list(pend[1])
                    if plan.exit_keeps_segments:
                        seg = [pend[2], pend[3]]
                    if plan.fd_reg >= 0:
                        args[plan.fd_reg] = pend[4]  # the fd libsinsp remembers from the enter (-1: none)
                if plan.ret and nparams:
                    ret = _s64(int_value(plan.ret, vals[0]))
            for reg, i, p in plan.regs:
                if i < nparams:
                    args[reg] = _register(p, vals[i]) or 0
            for k, i, p in plan.segs:
                if i < nparams:
                    seg[k] = _segment(p, vals[i])
            if plan.pair is not None and plan.pair[1] < nparams:
                i1, i2 = plan.pair
                seg[0] = struct.pack("<2I", int_value(info.params[i1], vals[i1]) & 0xFFFFFFFF,
                                     int_value(info.params[i2], vals[i2]) & 0xFFFFFFFF)
            if plan.comm is not None and plan.comm[0] < nparams:
                seg[plan.comm[1]] = vals[plan.comm[0]].split(b"\0", 1)[0]
            if not direction:
                lastfd = int_value(info.params[0], vals[0]) if plan.enter_fd and nparams else -1
                self._enter[tid] = (evt, tuple(args), seg[0], seg[1], lastfd & 0xFFFFFFFFFFFFFFFF)
        elif evt != R.EVT_PPM:
            params = {p.name: (p, raw) for p, raw in zip(info.params, vals, strict=False)}
            if evt == R.EVT_PROCEXIT:
                st = params.get("status")
                args[0] = int_value(*st) & 0xFFFFFFFF if st else 0
            elif evt == R.EVT_PROCINFO:
                u, s = params.get("cpu_usr"), params.get("cpu_sys")
                seg[0] = msgpack.packb({"u": int_value(*u) if u else 0, "s": int_value(*s) if s else 0})
            elif evt == R.EVT_SWITCH:
                nxt = params.get("next")
                args[0] = int_value(*nxt) & 0xFFFFFFFFFFFFFFFF if nxt else 0
            elif evt == R.EVT_CONTAINER:
                seg[0] = msgpack.packb(_container(info, params))
        pid = self.pids.get(tid, tid)
        if plan.ids is not None and max(plan.ids) < nparams:
            ti, pi = plan.ids
            if int_value(info.params[ti], vals[ti]) == tid:
                pid = self.pids[tid] = int_value(info.params[pi], vals[pi])
        s0, s1 = seg[0][:0xFFFF], seg[1][:0xFFFF]
        used = R.REC_FIXED + len(s0) + len(s1) + _ANNEX.size + len(ev.raw)
        total = (used + 7) & ~7
        head = _FIXED.pack(ev.ts, tid & 0xFFFFFFFF, pid & 0xFFFFFFFF, evt, ev.cpu, total, ret,
                           *(x & 0xFFFFFFFFFFFFFFFF for x in args), len(s0), len(s1), flags)
        annex = _ANNEX.pack(_ANNEX.size + len(ev.raw), ev.type, nparams, ev.lsize)
        return [b"".join((head, s0, s1, annex, ev.raw, b"\0" * (total - used)))]


def _s64(v: int) -> int:
    """A 64-bit value as the signed return value a record holds."""
    v &= 0xFFFFFFFFFFFFFFFF
    return v - (1 << 64) if v >> 63 else v

def _register(p: PParam, raw: bytes) -> int | None:
    """A numeric PPM parameter as a register value; None for one that is not a number."""
    if p.type not in INT_FORMATS:
        return None
    v = int_value(p, raw)
    if p.table and p.type in (PT.FLAGS8, PT.FLAGS16, PT.FLAGS32):
        v = to_linux_flags(p.table, v)
    return v & 0xFFFFFFFFFFFFFFFF


def _segment(p: PParam, raw: bytes) -> bytes:
    if p.type == PT.SOCKADDR:
        return linux_sockaddr(raw)
    if p.type in (PT.CHARBUF, PT.FSPATH, PT.FSRELPATH):
        return raw.split(b"\0", 1)[0]
    return raw


def linux_sockaddr(raw: bytes) -> bytes:
    """A PPM sockaddr as the Linux struct ktrace's records carry (a unix path's bytes as they are)."""
    if raw[:1] == b"\x01":
        return struct.pack("<H", 1) + raw[1:].split(b"\0", 1)[0] + b"\0"
    parts = sockaddr_parts(raw)
    if parts is None:
        return b""
    fam, ip, port = parts
    import ipaddress
    import socket

    if fam == "ipv4":
        return struct.pack("<H", 2) + port.to_bytes(2, "big") + ipaddress.IPv4Address(ip).packed + b"\0" * 8
    if fam == "ipv6":
        addr = socket.inet_pton(socket.AF_INET6, ip if ":" in ip else "::ffff:" + ip)
        return struct.pack("<H", 10) + port.to_bytes(2, "big") + b"\0" * 4 + addr + b"\0" * 4
    return b""


def _container(info: PEvent, params: Params) -> dict[str, object]:
    """ktrace's container row from a container event (the JSON one, or the old fixed one)."""
    import json

    if "json" in params:
        try:
            doc = json.loads(params["json"][1].split(b"\0", 1)[0] or b"{}").get("container", {})
        except (ValueError, AttributeError):
            return {}
        if not isinstance(doc, dict) or "id" not in doc:
            return {}
        labels = doc.get("labels") if isinstance(doc.get("labels"), dict) else {}
        types = {0: "docker", 1: "lxc", 2: "libvirt-lxc", 3: "mesos", 4: "rkt", 5: "custom", 6: "cri",
                 7: "containerd", 8: "cri-o", 9: "bpm", 10: "static", 11: "podman"}
        ctype = doc.get("type")
        return {"id": str(doc["id"])[:12], "name": doc.get("name"), "image": doc.get("image"),
                "image_id": doc.get("imageid"), "image_repository": doc.get("imagerepo"),
                "image_tag": doc.get("imagetag"), "image_digest": doc.get("imagedigest"),
                "type": types.get(ctype, str(ctype)) if isinstance(ctype, int) else ctype,
                "privileged": doc.get("privileged"), "labels": labels}
    out: dict[str, object] = {}
    for k in ("id", "name", "image"):
        if k in params:
            out[k] = params[k][1].split(b"\0", 1)[0].decode(errors="replace")
    return out


def read_annex(rec: bytes | memoryview, off: int, l0: int, l1: int, length: int) -> tuple[int, list[bytes]] | None:
    """(PPM type, parameter values) from the tail of a record flagged RF_PPM."""
    p = off + R.REC_FIXED + l0 + l1
    end = off + length
    if p + _ANNEX.size > end:
        return None
    size, etype, n, lsize = _ANNEX.unpack_from(rec, p)
    if p + size > end or lsize not in (2, 4) or _ANNEX.size + lsize * n > size:
        return None
    lens = struct.unpack_from(f"<{n}{'I' if lsize == 4 else 'H'}", rec, p + _ANNEX.size)
    q = p + _ANNEX.size + lsize * n
    vals = []
    for ln in lens:
        if q + ln > p + size:
            return None
        vals.append(bytes(rec[q:q + ln]))
        q += ln
    return etype, vals


class _Plan:
    """How one PPM event type becomes one ktrace event: which parameter fills which register or
    segment, worked out once per pair from the two tables."""

    __slots__ = ("regs", "segs", "ret", "fd_reg", "enter_fd", "exit_keeps_segments", "pair", "comm", "ids",
                 "hidden")

    def __init__(self, info: PEvent, evt: int) -> None:
        self.regs: list[tuple[int, int, PParam]] = []
        self.segs: list[tuple[int, int, PParam]] = []
        self.ret: PParam | None = None
        self.fd_reg = -1
        self.enter_fd = False
        self.exit_keeps_segments = False
        self.pair: tuple[int, int] | None = None
        self.comm: tuple[int, int] | None = None
        self.ids: tuple[int, int] | None = None
        self.hidden = evt == R.EVT_PPM
        index = {p.name: i for i, p in enumerate(info.params)}
        if "tid" in index and "pid" in index:
            self.ids = (index["tid"], index["pid"])
        if evt >= R.EVT_BASE_OTHER:
            return
        direction = evt & 1
        kinfo = SYSCALLS[evt >> 1]
        uses_fd = "uses_fd" in info.flags
        if direction:
            self.exit_keeps_segments = kinfo is not None and not kinfo.exit
            if uses_fd and FD_REGS[evt] < 6:
                self.fd_reg = FD_REGS[evt]
            if info.params and info.params[0].name in ("res", "fd"):
                self.ret = info.params[0]
        else:
            self.enter_fd = uses_fd and bool(info.params) and info.params[0].type in (PT.FD, PT.FD32)
        if kinfo is None:
            return
        for kp in kinfo.params(direction):
            i = next((index[a] for a in PARAM_ALIASES.get(kp.name, (kp.name,)) if a in index), -1)
            if i < 0:
                continue
            p = info.params[i]
            if kp.src[0] == "a" and p.type in INT_FORMATS:
                self.regs.append((int(kp.src[1]), i, p))
            elif kp.src in ("s0", "s1"):
                self.segs.append((int(kp.src[1]), i, p))
        if direction and kinfo.name in ("pipe", "pipe2", "socketpair") and "fd1" in index and "fd2" in index:
            self.pair = (index["fd1"], index["fd2"])
        if direction and kinfo.name in ("execve", "execveat", "clone", "fork", "vfork", "clone3", "prctl") \
                and "comm" in index:
            self.comm = (index["comm"], 1 if kinfo.name == "clone3" else 0)


# --- what a compiled translator needs: the plans as plain numbers ----------------------------------
SEG_RAW, SEG_STRZ, SEG_SOCKADDR = 0, 1, 2  # how a parameter becomes a segment (_segment)


def int_types() -> dict[int, tuple[int, bool]]:
    """Numeric parameter type -> (bytes, signed), as int_value reads it."""
    return {int(t): (struct.calcsize(f), f[1].islower()) for t, f in INT_FORMATS.items()}


def flag_maps() -> list[tuple[str, list[tuple[int, int]], bool]]:
    """Each PPM flag table ktrace converts: (name, [(PPM bit, Linux bit)], access mode too), the pairs
    to_linux_flags goes through."""
    out = []
    for ppm_table, ktable in FLAG_TABLES.items():
        by_name = {name: bit for bit, name in KF.FLAGS.get(ktable, ())}
        pairs = [(bit, by_name[name]) for name, bit in PPM_FLAGS.get(ppm_table, ()) if bit and name in by_name]
        out.append((ppm_table, pairs, ppm_table == "file_flags"))
    return out


def fast_plan(etype: int) -> dict[str, object] | None:
    """The plan of a PPM event type as numbers, for a syscall event whose ktrace event the type alone
    decides; None for the others (unknown, generic, internal, no counterpart), which go through
    Translator.record."""
    info = ppm_event(etype)
    if info is None or info.name == "syscall" or info.name in INTERNAL:
        return None
    nr = SYSCALL_NR.get(NAME_ALIASES.get(info.name, info.name))
    if nr is None:
        return None
    evt = R.syscall_evt(nr, info.direction)
    plan = _Plan(info, evt)
    tables = [name for name, _pairs, _acc in flag_maps()]

    def conv(p: PParam) -> int:
        if p.table and p.type in (PT.FLAGS8, PT.FLAGS16, PT.FLAGS32) and p.table in tables:
            return tables.index(p.table)
        return -1

    def seg_kind(p: PParam) -> int:
        if p.type == PT.SOCKADDR:
            return SEG_SOCKADDR
        return SEG_STRZ if p.type in (PT.CHARBUF, PT.FSPATH, PT.FSRELPATH) else SEG_RAW

    ps = info.params
    return {
        "evt": evt, "hidden": plan.hidden, "large": "large_payload" in info.flags, "ntable": len(ps),
        "ret": int(plan.ret.type) if plan.ret is not None else -1, "fd_reg": plan.fd_reg,
        "enter_fd": int(ps[0].type) if plan.enter_fd else -1, "exit_keeps": plan.exit_keeps_segments,
        "regs": [(reg, i, int(p.type), conv(p)) for reg, i, p in plan.regs],
        "segs": [(k, i, seg_kind(p)) for k, i, p in plan.segs],
        "pair": None if plan.pair is None else (plan.pair[0], int(ps[plan.pair[0]].type), plan.pair[1],
                                                 int(ps[plan.pair[1]].type)),
        "comm": plan.comm,
        "ids": None if plan.ids is None else (plan.ids[0], int(ps[plan.ids[0]].type), plan.ids[1],
                                               int(ps[plan.ids[1]].type)),
    }


def generic_plans(etype: int) -> list[bool | None]:
    """For a generic PPM event type (``syscall``): per ktrace syscall number, whether its exit keeps
    its enter's segments, or None where the plan would take parameters (then Translator.record
    does it)."""
    info = ppm_event(etype)
    assert info is not None and info.name == "syscall"
    out: list[bool | None] = []
    for nr in range(R.NSYSCALLS):
        plan = _Plan(info, R.syscall_evt(nr, info.direction))
        simple = not (plan.regs or plan.segs or plan.pair or plan.comm or plan.ids or plan.ret
                      or plan.enter_fd or plan.fd_reg >= 0 or plan.hidden)
        out.append(plan.exit_keeps_segments if simple else None)
    return out


def generic_codes() -> list[int]:
    """PPM syscall code -> ktrace syscall number, -1 where ktrace has none (evt_id's first rule)."""
    return [SYSCALL_NR.get(name, -1) for name in PPM_SC]
