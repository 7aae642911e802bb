"""Helpers for the live tests: run ktrace and the workload, read strace's record and ktrace's JSON.

The tests check ktrace against things it does not compute itself: strace's record of the same
program, /proc, and the bytes the workload sent.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from tracer.testing import child_env, ktrace_argv

WORKLOAD = Path(__file__).resolve().parent / "workload.py"
PYTHON = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else sys.executable
NAMES = ("ktwork", "ktchild")
FILTER = "proc.name in (ktwork, ktchild)"


env = child_env  # the environment for ktrace children


# --- processes ---------------------------------------------------------------------------------------
class Ktrace:
    """One ktrace process; stdout goes to a file (read it with ``lines``), stderr to another."""

    def __init__(self, args: list[str], out: Path, cwd: Path | None = None, cmd: list[str] | None = None,
                 lines: Path | None = None) -> None:
        """``cmd`` replaces the ktrace command; ``lines`` is where it prints events, if not stdout."""
        self.out_path = out
        self.lines_path = lines or out
        self.err_path = out.with_suffix(out.suffix + ".err")
        self._out = open(out, "wb")  # noqa: SIM115 - closed in stop()
        self._err = open(self.err_path, "wb")  # noqa: SIM115
        self.started = time.monotonic()
        self.proc = subprocess.Popen([*(cmd or ktrace_argv()), *args], stdout=self._out, stderr=self._err,
                                     env=env(), cwd=cwd)

    def text(self) -> str:
        """What it printed so far."""
        try:
            return self.lines_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def stderr(self) -> str:
        return self.err_path.read_text(errors="replace")

    def wait_stderr(self, needle: str, timeout: float = 60.0) -> float:
        """Seconds from start until stderr contains ``needle``."""
        return _wait(lambda: needle in self.stderr(), timeout, self, f"{needle!r} on stderr")

    def stop(self, sig: int = signal.SIGINT, timeout: float = 60.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            rc = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError(f"ktrace did not stop within {timeout} s of signal {sig}") from None
        finally:
            self._out.close()
            self._err.close()
        return rc

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self._out.close()
        self._err.close()


def _wait(cond: Callable[[], bool], timeout: float, kt: Ktrace | None, what: str,
          poke: Callable[[], None] | None = None) -> float:
    start = kt.started if kt is not None else time.monotonic()
    deadline = time.monotonic() + timeout
    while not cond():
        if kt is not None and kt.proc.poll() is not None:
            raise AssertionError(f"ktrace exited ({kt.proc.returncode}) before {what}: {kt.stderr()[-2000:]}")
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        if poke is not None:
            poke()
        time.sleep(0.05)
    return time.monotonic() - start


class Workload:
    """tests/live/workload.py, optionally under strace, waiting for "go"."""

    def __init__(self, tmp: Path, strace_out: Path | None = None) -> None:
        self.dir = tmp / "w"
        self.dir.mkdir()
        self.child = self.dir / "ktchild"
        shutil.copy(shutil.which("cat") or "/bin/cat", self.child)
        cmd = [PYTHON, str(WORKLOAD), str(self.dir), str(self.child)]
        if strace_out is not None:
            cmd = ["strace", "-f", "-tt", "-yy", "-xx", "-s", "65536", "-o", str(strace_out), *cmd]
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=tmp)
        assert self.proc.stdout is not None and self.proc.stdin is not None
        self._in: IO[str] = self.proc.stdin
        self._outp: IO[str] = self.proc.stdout
        line = self._outp.readline()
        assert line, "the workload did not start"
        self.info: dict[str, Any] = json.loads(line)
        self.result: dict[str, Any] = {}

    def ping(self) -> None:
        self._in.write("ping\n")
        self._in.flush()
        assert self._outp.readline().strip() == "pong"

    def wait_seen(self, kt: Ktrace, timeout: float = 60.0) -> float:
        """Ping until ktrace's output shows the ping's stat; seconds since ktrace started."""
        return _wait(lambda: "ktrace-ready-probe" in kt.text(), timeout, kt, "ktrace to show the workload",
                     poke=self.ping)

    def go(self, timeout: float = 60.0) -> dict[str, Any]:
        self._in.write("go\n")
        self._in.flush()
        line = self._outp.readline()
        assert line, "the workload died"
        self.result = json.loads(line)
        assert self.proc.wait(timeout=timeout) == 0
        return self.result

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


# --- ktrace JSON -------------------------------------------------------------------------------------
def json_events(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


def info_args(ev: dict[str, Any]) -> dict[str, str]:
    """evt.info split into name=value pairs, using the schema's parameter names for this event."""
    from tracer.schema.events import SYSCALL_NR, event_info

    info: str = ev.get("evt.info") or ""
    nr = SYSCALL_NR.get(ev["evt.type"])
    names: list[str] = []
    if nr is not None:
        ei = event_info(nr * 2)
        if ei is not None:
            params = ei.params(1 if ev["evt.dir"] == "<" else 0)
            for p in params:
                names.extend(["fd1", "fd2"] if p.type.value == "fdpair" else [p.name])
    if not names:
        names = re.findall(r"(?:^| )(\w+)=", info)
    out: dict[str, str] = {}
    pos = 0
    for i, name in enumerate(names):
        key = f"{name}="
        start = info.find(key, pos) if i == 0 else info.find(" " + key, pos)
        if start < 0:
            continue
        start = start + len(key) + (0 if i == 0 else 1)
        end = len(info)
        for nxt in names[i + 1:]:
            j = info.find(f" {nxt}=", start)
            if j >= 0:
                end = j
                break
        out[name] = info[start:end].rstrip(" ")
        pos = end
    return out


def raw_path(v: str) -> str:
    """'b.txt(/tmp/w/b.txt)' -> 'b.txt' (ktrace shows relative paths with their absolute form)."""
    m = re.fullmatch(r"(.*?)\((/.*)\)", v)
    return m[1] if m else v


def leading_int(v: str) -> int | None:
    m = re.match(r"-?\d+", v)
    return int(m[0]) if m else None


# --- strace -------------------------------------------------------------------------------------------
@dataclass
class Call:
    pid: int
    name: str
    args: list[str]
    ret: int | None  # None for "?"
    err: str | None  # errno name of a failure
    ret_note: str | None  # the -yy annotation of a returned fd
    line: str
    ts: float = 0.0  # seconds since midnight when strace printed the line (the call's return)


_HEAD = re.compile(r"^(\d+) +(\d+):(\d+):([\d.]+) (.*)$")
_RET = re.compile(r"^(-?\d+|0x[0-9a-f]+|\?)(?:<(.*?)>)?(?: (E[A-Z0-9]+) \(.*\))?(?: \(.*\))?$")


def parse_strace(text: str) -> list[Call]:
    """strace -f -tt -yy -xx output as calls, in order; unfinished/resumed halves joined."""
    pending: dict[int, str] = {}
    out: list[Call] = []
    for line in text.splitlines():
        m = _HEAD.match(line)
        if not m:
            continue
        pid, rest = int(m[1]), m[5]
        ts = int(m[2]) * 3600 + int(m[3]) * 60 + float(m[4])
        if rest.startswith(("---", "+++")):
            continue
        if rest.endswith("<unfinished ...>"):
            pending[pid] = rest[: -len("<unfinished ...>")].rstrip(" ")
            continue
        rm = re.match(r"^<\.\.\. (\w+) resumed>(.*)$", rest)
        if rm:
            head = pending.pop(pid, f"{rm[1]}(")
            body = rm[2]
            if head.endswith(",") and not body.startswith((",", ")")):
                head += " "
            rest = head + body
        call = _parse_call(pid, rest, line)
        if call is not None:
            call.ts = ts
            out.append(call)
    return out


def _parse_call(pid: int, text: str, line: str) -> Call | None:
    m = re.match(r"^(\w+)\((.*)$", text)
    if not m:
        return None
    name, body = m[1], m[2]
    ends = list(re.finditer(r"\) +=(?: |$)", body))  # strace pads short calls: "gettid()          = 7"
    if not ends:
        return None
    args_text, ret_text = body[:ends[-1].start()], body[ends[-1].end():].strip()
    rm = _RET.match(ret_text)
    if not rm:
        return None
    ret: int | None
    if rm[1] == "?":
        ret = None
    elif rm[1].startswith("0x"):
        ret = int(rm[1], 16)
    else:
        ret = int(rm[1])
    err = rm[3]
    if err is not None and ret == -1:
        from errno import errorcode

        codes = {v: k for k, v in errorcode.items()}
        ret = -codes.get(err, 1)
    return Call(pid, name, split_args(args_text), ret, err, unescape(rm[2]).decode(errors="replace") if rm[2] else None,
                line)


def split_args(s: str) -> list[str]:
    """Top-level ', '-separated arguments, respecting quotes, brackets and -yy <annotations>."""
    out: list[str] = []
    depth = 0
    cur: list[str] = []
    i = 0
    n = len(s)
    while i < n:
        c = s[i]
        if c == '"':
            j = i + 1
            while j < n and s[j] != '"':
                j += 2 if s[j] == "\\" else 1
            cur.append(s[i:j + 1])
            i = j + 1
            continue
        if c == "<" and i > 0 and (s[i - 1].isalnum()):
            j = _annot_end(s, i)
            cur.append(s[i:j + 1])
            i = j + 1
            continue
        if c in "([{":
            depth += 1
        elif c in ")]}":
            depth -= 1
        elif c == "," and depth == 0:
            out.append("".join(cur).strip())
            cur = []
            i += 1
            continue
        cur.append(c)
        i += 1
    if cur and "".join(cur).strip():
        out.append("".join(cur).strip())
    return out


def _annot_end(s: str, i: int) -> int:
    if re.match(r"<[A-Z0-9]+:\[", s[i:]):
        j = s.find("]>", i)
        return j + 1 if j >= 0 else len(s) - 1
    j = s.find(">", i)
    return j if j >= 0 else len(s) - 1


def unescape(s: str) -> bytes:
    """strace's quoted-string escapes (\\xNN with -xx, and the usual C ones) to bytes."""
    out = bytearray()
    i = 0
    simple = {"n": 10, "t": 9, "r": 13, "v": 11, "f": 12, "\\": 92, '"': 34}
    while i < len(s):
        c = s[i]
        if c == "\\" and i + 1 < len(s):
            nxt = s[i + 1]
            if nxt == "x":
                out.append(int(s[i + 2:i + 4], 16))
                i += 4
                continue
            if nxt in simple:
                out.append(simple[nxt])
                i += 2
                continue
            m = re.match(r"[0-7]{1,3}", s[i + 1:])
            if m:
                out.append(int(m[0], 8))
                i += 1 + len(m[0])
                continue
        out.extend(c.encode())
        i += 1
    return bytes(out)


def c_string(arg: str) -> bytes | None:
    """A quoted string argument ("..." possibly followed by ... when cut), or None."""
    m = re.match(r'^"(.*)"(\.\.\.)?$', arg, re.S)
    return unescape(m[1]) if m else None


def fd_arg(arg: str) -> tuple[int, str | None] | None:
    """'3<\\x2f...>' -> (3, '/...'); 'AT_FDCWD<...>' -> (-100, ...)."""
    m = re.match(r"^(-?\d+|AT_FDCWD)(?:<(.*)>)?$", arg, re.S)
    if not m:
        return None
    num = -100 if m[1] == "AT_FDCWD" else int(m[1])
    return num, unescape(m[2]).decode(errors="replace") if m[2] is not None else None


def sockaddr(arg: str) -> str | None:
    """strace's {sa_family=AF_INET, sin_port=htons(P), sin_addr=inet_addr("A")} -> 'A:P'."""
    port = re.search(r"sin6?_port=htons\((\d+)\)", arg)
    addr = re.search(r'inet_addr\("([^"]*)"\)', arg) or re.search(r'inet_pton\(AF_INET6, "([^"]*)"', arg)
    if not port or not addr:
        return None
    return f"{unescape(addr[1]).decode()}:{port[1]}"


def iov_data(arg: str) -> bytes:
    """The bytes of every iov_base="..." in a msghdr or iovec array argument."""
    return b"".join(unescape(m) for m in re.findall(r'iov_base="((?:[^"\\]|\\.)*)"', arg))


def after_marker(calls: list[Call], marker: str) -> Iterator[Call]:
    """Calls from the one after the stat of ``marker`` on (that process's and every later one's)."""
    seen = False
    for c in calls:
        if not seen:
            if c.name in ("newfstatat", "stat", "statx") and any(marker.encode() in (c_string(a) or b"")
                                                                 for a in c.args):
                seen = True
            continue
        yield c
