"""ktrace against strace: the same program, traced by both at once, must give the same record.

The workload (tests/live/workload.py) opens, reads, writes, renames and unlinks files, talks TCP and
UDP over loopback, starts a thread, forks and execs. It runs under ``strace -f -yy -xx`` while
ktrace traces it by name. strace is the oracle: every syscall it records after the workload's go
marker must appear in ktrace, per thread and in order, with the same return value, the same key
arguments (paths, fds, sizes, addresses, data) and fd names that agree with strace's -yy
annotation (files by path; sockets as ktrace's client->server tuple).
"""

from __future__ import annotations

import difflib
import os
import re
import shutil
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest
from livekit import (
    FILTER,
    Call,
    Ktrace,
    Workload,
    after_marker,
    c_string,
    fd_arg,
    info_args,
    iov_data,
    json_events,
    leading_int,
    parse_strace,
    raw_path,
    sockaddr,
)

pytestmark = [
    pytest.mark.live,
    pytest.mark.skipif(shutil.which("strace") is None, reason="strace is not installed (apt-get install strace)"),
]

SNAPLEN = 256
FMT = ("%evt.num %thread.tid %proc.pid %proc.name %evt.dir %evt.type %evt.rawres %fd.num %fd.name %fd.type "
       "%evt.info %evt.buffer")

# strace argument index -> ktrace parameter holding the same path (exit event unless noted).
PATHS: dict[str, list[tuple[int, str]]] = {
    "open": [(0, "name")], "openat": [(1, "name")], "creat": [(0, "name")],
    "stat": [(0, "path")], "lstat": [(0, "path")], "newfstatat": [(1, "path")], "statx": [(1, "path")],
    "access": [(0, "name")], "faccessat": [(1, "name")], "faccessat2": [(1, "name")],
    "readlink": [(0, "path")], "readlinkat": [(1, "path")],
    "rename": [(0, "oldpath"), (1, "newpath")], "renameat": [(1, "oldpath"), (3, "newpath")],
    "renameat2": [(1, "oldpath"), (3, "newpath")],
    "unlink": [(0, "path")], "unlinkat": [(1, "name")], "mkdir": [(0, "path")], "mkdirat": [(1, "path")],
    "rmdir": [(0, "path")], "chdir": [(0, "path")],
}
DATA_STR = {"read", "write", "pread64", "pwrite64", "sendto", "recvfrom"}
DATA_IOV = {"readv", "writev", "sendmsg", "recvmsg"}
SIZES = {"read", "write", "pread64", "pwrite64", "sendto", "recvfrom"}
FD_CHANGED = {"close", "connect", "bind", "listen"}  # strace annotates the fd as it was before the call
CHILD_SIDE = {"clone", "clone3", "fork", "vfork"}  # the child's "= 0" return: strace -f does not print it


class KCall:
    """One syscall as ktrace showed it: its enter and exit events (either may be missing)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.enter: dict[str, Any] | None = None
        self.exit: dict[str, Any] | None = None

    @property
    def ret(self) -> int | None:
        ev = self.exit
        if ev is None:
            return None
        if isinstance(ev.get("evt.rawres"), int):
            return int(ev["evt.rawres"])
        res = info_args(ev).get("res", "")
        if re.fullmatch(r"[0-9A-F]+", res) and self.name in ("mmap", "brk", "mremap"):
            return int(res, 16)
        return leading_int(res)

    def __repr__(self) -> str:
        ev = self.exit or self.enter or {}
        return f"{self.name} -> {self.ret} [{ev.get('evt.num')}] {ev.get('evt.info', '')[:120]}"


def ktrace_calls(events: list[dict[str, Any]]) -> dict[int, list[KCall]]:
    by_tid: dict[int, list[KCall]] = defaultdict(list)
    open_call: dict[int, KCall] = {}
    for ev in events:
        tid, name = ev["thread.tid"], ev["evt.type"]
        if name == "procexit" or not isinstance(tid, int):
            continue
        if ev["evt.dir"] == ">":
            kc = KCall(name)
            kc.enter = ev
            by_tid[tid].append(kc)
            open_call[tid] = kc
        else:
            kc_open = open_call.pop(tid, None)
            if kc_open is not None and kc_open.name == name and kc_open.exit is None:
                kc_open.exit = ev
            else:
                kc = KCall(name)
                kc.exit = ev
                by_tid[tid].append(kc)
    return by_tid


def run_both(tmp_path: Path) -> tuple[Workload, list[Call], list[dict[str, Any]], Ktrace, float]:
    strace_out = tmp_path / "strace.txt"
    wl = Workload(tmp_path, strace_out)
    kt = Ktrace(["-j", "-s", str(SNAPLEN), "-p", FMT, FILTER], tmp_path / "ktrace.json")
    try:
        startup = wl.wait_seen(kt)
        wl.go()
        pid = wl.info["pid"]
        # Until ktrace has shown the workload's end (its main thread's procexit).
        deadline = time.monotonic() + 60
        while not any(e["evt.type"] == "procexit" and e["thread.tid"] == pid for e in json_events(kt.text())):
            assert time.monotonic() < deadline, "ktrace never showed the workload's exit"
            time.sleep(0.1)
        rc = kt.stop()
    finally:
        kt.kill()
        wl.kill()
    assert rc == 0, kt.stderr()
    return wl, parse_strace(strace_out.read_text()), json_events(kt.text()), kt, startup


def test_ktrace_matches_strace(tmp_path: Path) -> None:
    wl, calls, events, kt, startup = run_both(tmp_path)
    print(f"startup: first workload event {startup:.2f} s after ktrace started")
    assert re.search(r"ktrace: \d+ events captured, 0 dropped", kt.stderr()), kt.stderr()
    info = wl.info
    pid = info["pid"]
    strace_calls = list(after_marker(calls, "ktrace-go-marker"))
    assert len(strace_calls) > 150, f"strace recorded only {len(strace_calls)} calls after the marker"

    # ktrace's side: drop the main thread's events up to the marker's stat.
    kcalls = ktrace_calls(events)
    main = kcalls[pid]
    at = next(i for i, kc in enumerate(main) if kc.exit and "ktrace-go-marker" in kc.exit.get("evt.info", ""))
    kcalls[pid] = main[at + 1:]
    pid_of = {e["thread.tid"]: e["proc.pid"] for e in events if isinstance(e["thread.tid"], int)}
    # When each child's parent saw its clone/fork return (strace prints the line then).
    forked_at = {c.ret: c.ts for c in strace_calls if c.name in CHILD_SIDE and c.ret and c.ret > 0}

    s_by_tid: dict[int, list[Call]] = defaultdict(list)
    for c in strace_calls:
        s_by_tid[c.pid].append(c)
    problems: list[str] = []
    early: list[str] = []  # known engine limitation, see below
    pairs: dict[int, KCall] = {}
    for tid, scs in s_by_tid.items():
        ks = [kc for kc in kcalls.get(tid, []) if not (kc.name in CHILD_SIDE and kc.enter is None and kc.ret == 0)]
        sm = difflib.SequenceMatcher(a=[c.name for c in scs], b=[kc.name for kc in ks], autojunk=False)
        for tag, i1, i2, j1, j2 in sm.get_opcodes():
            if tag == "equal":
                for k in range(i2 - i1):
                    pairs[id(scs[i1 + k])] = ks[j1 + k]
            elif (tag == "delete" and i1 == 0 and tid in forked_at and i2 - i1 <= 5
                  and not any(c.name.startswith("exec") for c in scs[i1:i2])):
                # A forked child's first syscalls, when they reach ktrace before its parent's clone
                # return: ktrace learns the child's name from that return, or from /proc when the
                # child still exists then, so a proc.name filter can miss them. The probe's clone
                # exit would need the child's comm (bpf_get_current_comm) to close this.
                early.extend(f"{tid}: {c.name}" for c in scs[i1:i2])
            else:
                problems.append(f"tid {tid}: strace {[c.line[:160] for c in scs[i1:i2]]} vs ktrace {ks[j1:j2]}")
    for tid in kcalls:
        if tid not in s_by_tid and kcalls[tid]:
            problems.append(f"tid {tid}: ktrace shows {len(kcalls[tid])} calls strace never saw: {kcalls[tid][:5]}")
    ctx = FdContext(info, churn_port=wl.result["churn_port"])
    checked: dict[str, int] = defaultdict(int)
    for c in strace_calls:  # strace's global order, so fd bookkeeping (bind, listen, close) follows the program
        kc = pairs.get(id(c))
        if kc is not None:
            before = len(problems)
            compare(c, kc, pid_of.get(c.pid, c.pid), ctx, problems)
            if len(problems) == before:
                checked[c.name] += 1
        ctx.after(c, pid_of.get(c.pid, c.pid))
    report = "\n".join(problems[:40])
    assert not problems, f"{len(problems)} differences from strace:\n{report}"
    must = {"openat", "read", "write", "pread64", "lseek", "close", "rename", "unlinkat", "unlink", "mkdir",
            "rmdir", "socket", "bind", "listen", "connect", "accept4", "sendto", "recvfrom", "sendmsg", "recvmsg",
            "clone", "clone3", "execve", "wait4", "pipe2", "dup2", "newfstatat"}
    assert must <= set(checked), f"never compared: {sorted(must - set(checked))}"
    print(f"compared {sum(checked.values())} calls:", dict(sorted(checked.items())))
    print(f"forked children's calls before their parent's clone returned, not shown: {early or 'none'}")


class FdContext:
    """What an fd's strace annotation should look like in ktrace: which sockets serve, which were
    bound by the program (so their unconnected name is their address)."""

    def __init__(self, info: dict[str, Any], churn_port: int) -> None:
        self.server_ports = {info["lport"]}
        self.churn_port = churn_port
        self.autobound: set[tuple[int, int]] = set()

    def after(self, c: Call, pid: int) -> None:
        if c.ret is None or c.ret < 0:
            return
        fa = fd_arg(c.args[0]) if c.args else None
        if c.name == "socket":
            self.autobound.add((pid, c.ret))
        elif c.name == "bind" and fa:
            self.autobound.discard((pid, fa[0]))
        elif c.name == "listen" and fa and fa[1]:
            m = re.fullmatch(r"TCP(?:v6)?:\[.*:(\d+)\]", fa[1])  # -yy shows the port bind(0) got
            if m:
                self.server_ports.add(int(m[1]))
        elif c.name == "close" and fa:
            self.autobound.discard((pid, fa[0]))

    def expected(self, note: str, pid: int, fd: int) -> tuple[str, set[str]] | None:
        """(expected fd kind, acceptable fd.name values) for an -yy annotation."""
        if note.startswith("/"):
            return "path", {note.removesuffix(" (deleted)")}  # strace resolves symlinks: see check_name
        if note.startswith("pipe:["):
            return "pipe", set()
        m = re.fullmatch(r"(TCP|UDP)(v6)?:\[(.*)\]", note)
        if not m:
            return None
        proto, body = m[1], m[3]
        if body.isdigit():
            return "sock", {"<NA>", ""}
        t = re.fullmatch(r"(.*):(\d+)->(.*):(\d+)", body)
        if t:
            lip, lport, rip, rport = t[1], int(t[2]), t[3], int(t[4])
            if proto == "TCP" and lport in self.server_ports:
                return "sock", {f"{rip}:{rport}->{lip}:{lport}"}
            if proto == "TCP" and rport == self.churn_port:
                return "churn", {f"{lip}:{lport}->{rip}:{rport}"}
            return "sock", {f"{lip}:{lport}->{rip}:{rport}"}
        if (pid, fd) in self.autobound:  # the kernel picked the address at first send: ktrace can't see it
            return "sock", {body, "<NA>", ""}
        return "sock", {body}

def compare(c: Call, kc: KCall, pid: int, ctx: FdContext, problems: list[str]) -> None:
    def bad(what: str) -> None:
        problems.append(f"{c.name} [{what}]\n    strace: {c.line[:300]}\n    ktrace: {kc}")

    ex, en = kc.exit, kc.enter
    if c.name in ("exit", "exit_group"):
        if en is None:
            bad("no enter event")
        return
    if ex is None:
        bad("no exit event")
        return
    if c.ret is not None and kc.ret != c.ret:
        bad(f"return value {kc.ret} != {c.ret}")
    xa = info_args(ex)
    na = info_args(en) if en is not None else {}

    # The fd argument: number and name, on the enter event, and on the exit event unless that one is
    # about a returned fd (dup2, accept4) or the fd is gone (close).
    fa = fd_arg(c.args[0]) if c.args else None
    if fa is not None and fa[0] >= 0 and params(c.name, 0).get("fd") == "fd":
        for ev in (en, ex):
            if ev is None or (ev is ex and (c.name in FD_CHANGED or "resfd" in params(c.name, 1).values())):
                continue
            if ev["fd.num"] != fa[0]:
                bad(f"fd.num {ev['fd.num']} != {fa[0]}")
            elif fa[1] is not None:
                check_name(ev, ctx.expected(fa[1], pid, fa[0]), bad, ctx)
    # A returned fd: its name on the exit event.
    if c.ret_note is not None and c.ret is not None and c.ret >= 0 and c.name not in ("close",):
        if ex["fd.num"] != c.ret:
            bad(f"fd.num of the returned fd {ex['fd.num']} != {c.ret}")
        else:
            check_name(ex, ctx.expected(c.ret_note, pid, c.ret), bad, ctx)
    for idx, pname in PATHS.get(c.name, []):
        want = c_string(c.args[idx]) if idx < len(c.args) else None
        if want is not None and raw_path(xa.get(pname, "<missing>")) != want.decode(errors="replace"):
            bad(f"{pname}={xa.get(pname)!r} != {want!r}")
    if c.name in SIZES and leading_int(na.get("size", "")) != leading_int(c.args[2]):
        bad(f"size={na.get('size')} != {c.args[2]}")
    if c.ret is not None and c.ret > 0 and (c.name in DATA_STR or c.name in DATA_IOV):
        data = c_string(c.args[1]) if c.name in DATA_STR else iov_data(c.args[1])
        if data is not None:
            want_text = data[: min(c.ret, SNAPLEN)].decode(errors="replace")
            if ex["evt.buffer"] != want_text:
                bad(f"buffer {ex['evt.buffer'][:60]!r} != {want_text[:60]!r}")
    if c.name == "connect" and sockaddr(c.args[1]) != na.get("addr"):
        bad(f"addr={na.get('addr')} != {sockaddr(c.args[1])}")
    if c.name == "connect" and c.ret == 0 and not str(ex["fd.name"]).endswith(f"->{sockaddr(c.args[1])}"):
        bad(f"connected fd.name {ex['fd.name']} does not end with the server {sockaddr(c.args[1])}")
    if c.name in ("sendto", "recvfrom") and (c.ret or 0) >= 0:
        want_addr = sockaddr(c.args[4])
        if want_addr is not None and xa.get("addr") != want_addr:
            bad(f"addr={xa.get('addr')} != {want_addr}")
    if c.name in ("accept", "accept4") and (c.ret or -1) >= 0:
        peer = sockaddr(c.args[1])
        if peer is not None and not str(ex["fd.name"]).startswith(peer + "->"):
            bad(f"accepted fd.name {ex['fd.name']} does not start with the peer {peer}")
    if c.name == "wait4" and leading_int(na.get("pid", "")) != leading_int(c.args[0]):
        bad(f"pid={na.get('pid')} != {c.args[0]}")
    if c.name == "mmap" and leading_int(na.get("length", "")) != int(c.args[1]):
        bad(f"length={na.get('length')} != {c.args[1]}")
    if c.name == "munmap" and (int(na.get("addr", "0"), 16), leading_int(na.get("length", ""))) != (
            int(c.args[0], 16), int(c.args[1])):
        bad(f"addr/length {na.get('addr')}/{na.get('length')} != {c.args[0]}/{c.args[1]}")
    if c.name in ("dup2", "dup3"):
        nf = fd_arg(c.args[1])
        if nf is None or leading_int(na.get("newfd", "")) != nf[0]:
            bad(f"newfd={na.get('newfd')} != {c.args[1]}")
    if c.name == "lseek" and leading_int(na.get("offset", "")) != int(c.args[1]):
        bad(f"offset={na.get('offset')} != {c.args[1]}")
    if c.name in ("pipe", "pipe2") and c.ret == 0:
        fds = [fd_arg(x) for x in re.findall(r"-?\d+<[^>]*>|-?\d+", c.args[0].strip("[]"))]
        got = [leading_int(xa.get("fd1", "")), leading_int(xa.get("fd2", ""))]
        if [f[0] for f in fds if f] != got:
            bad(f"fds {got} != {c.args[0]}")
    if c.name == "execve":
        want = c_string(c.args[0])
        got = raw_path(info_args(en).get("filename", "")) if en is not None else None
        if want is not None and got != want.decode(errors="replace"):
            bad(f"filename={got!r} != {want!r}")
        if c.ret == 0 and ex["proc.name"] != Path(want.decode() if want else "").name[:15]:
            bad(f"proc.name after exec {ex['proc.name']}")
        # strace prints argv as ["a", "b", ...]; the probe's copy shows dot-separated on the enter.
        argv = [a.decode(errors="replace") for a in (c_string(x) for x in re.findall(r'"(?:[^"\\]|\\.)*"',
                                                                                      c.args[1])) if a is not None]
        got_args = info_args(en).get("args", "") if en is not None else None
        if argv and got_args != ".".join(argv):
            bad(f"args={got_args!r} != {argv!r}")


def check_name(ev: dict[str, Any], exp: tuple[str, set[str]] | None, bad: Any, ctx: FdContext) -> None:
    if exp is None:
        return
    kind, names = exp
    got = ev["fd.name"]
    if kind == "pipe":
        if ev["fd.type"] != "pipe":
            bad(f"fd.type {ev['fd.type']} != pipe")
        return
    if kind in ("sock", "churn") and ev["fd.type"] not in ("ipv4", "ipv6"):
        bad(f"fd.type {ev['fd.type']} is not a socket")
        return
    if kind == "churn" and got not in names:
        # A connection closed within a millisecond: both ends come from the kernel when it is
        # established, so even its local end must be right.
        bad(f"fd.name {got!r} != {next(iter(names))!r}")
        return
    if kind == "path" and isinstance(got, str) and os.path.realpath(got) in names:
        return  # strace -yy shows the file's path after symlinks; ktrace the path as opened (as sysdig)
    if got not in names:
        bad(f"fd.name {got!r} not in {sorted(names)}")


def params(name: str, direction: int) -> dict[str, str]:
    """The schema's parameters of a syscall's enter (0) or exit (1): name -> type."""
    from tracer.schema.events import SYSCALL_NR, event_info

    info = event_info(SYSCALL_NR[name] * 2) if name in SYSCALL_NR else None
    return {p.name: p.type.value for p in info.params(direction)} if info is not None else {}
