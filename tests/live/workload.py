"""A deterministic workload for the live tests: files, TCP and UDP over loopback, a thread, fork and exec.

Run as ``python3 workload.py DIR CHILD_EXE``. Before the go signal it names itself ``ktwork``
(prctl, so proc.name is ``ktwork``) and opens what must come from ktrace's /proc bootstrap: a file,
a TCP listener, a connected TCP pair and a bound UDP socket. It prints one JSON line with the ports
and fds, then reads stdin: for each "ping" line it stats a path that does not exist and answers
"pong" (so a test can see when ktrace shows its events); after "go" it stats a marker path
that does not exist (the start of what the tests compare), does the operations below, prints one
JSON line with what it sent and received, and exits 0.

CHILD_EXE is a copy of ``cat`` under another name: a forked child execs it to copy a file into a
pipe, so the trace shows a name change at exec.

Every size and every byte sent is fixed, so a test can check ktrace's byte counts and buffers
against what this program did (and against strace's record of it).
"""

from __future__ import annotations

import ctypes
import json
import os
import socket
import sys
import threading
import time

PR_SET_NAME = 15
NAME = b"ktwork"
MARKER = "ktrace-go-marker"  # stat()ed (ENOENT) right after the go signal
READY_PROBE = "ktrace-ready-probe"  # stat()ed (ENOENT) for each "ping" before it

PRE_TEXT = b"pre-existing file, opened before ktrace started\n" * 4
A_TEXT = b"A" * 1000 + b"hello\n"
TCP_PRE = b"x" * 300
HTTP_REQ = b"GET / HTTP/1.0\r\nHost: localhost\r\n\r\n"
HTTP_RESP = b"HTTP/1.0 200 OK\r\nContent-Length: 500\r\n\r\n" + b"B" * 500
UDP_PING = b"udp-ping"
UDP_PONG = b"udp-pong!"
UDP_LONE = b"unconnected datagram"
CHILD_HELLO = b"child says hi\n"
THREAD_TEXT = b"written by a second thread\n"
HOLD = 0.3  # seconds a connection stays open before use: time for a tracer to look at the socket
CHURN = 20  # short-lived connections


def _recv_exact(s: socket.socket, n: int) -> bytes:
    out = b""
    while len(out) < n:
        chunk = s.recv(n - len(out))
        if not chunk:
            break
        out += chunk
    return out


def _listener() -> socket.socket:
    """A TCP listener on 127.0.0.1, on a port above the ephemeral range where one is free: every
    client port is then lower than the server's, so a "lower port is the server" guess is wrong."""
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            hi = int(f.read().split()[1])
    except (OSError, ValueError, IndexError):
        hi = 65535
    ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    start = hi + 1 + os.getpid() % 1000
    for port in [*range(start, 65536), *range(hi + 1, start)]:
        try:
            ls.bind(("127.0.0.1", port))
            break
        except OSError:
            continue
    else:
        ls.bind(("127.0.0.1", 0))
    ls.listen(8)
    return ls


def main() -> int:
    d, child_exe = sys.argv[1], sys.argv[2]
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_NAME, NAME, 0, 0, 0)

    # --- what ktrace must learn from /proc ---------------------------------------------------------
    with open(f"{d}/pre.txt", "wb") as f:
        f.write(PRE_TEXT)
    pre = os.open(f"{d}/pre.txt", os.O_RDONLY)
    ls = _listener()
    lport = ls.getsockname()[1]
    c0 = socket.create_connection(("127.0.0.1", lport))
    s0, _ = ls.accept()
    us = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    us.bind(("127.0.0.1", 0))
    uport = us.getsockname()[1]
    closed = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    closed.bind(("127.0.0.1", 0))
    closed_port = closed.getsockname()[1]
    closed.close()  # nothing listens there now: connect gets ECONNREFUSED
    info = {"pid": os.getpid(), "lport": lport, "uport": uport, "closed_port": closed_port,
            "pre_fd": pre, "c0": [c0.fileno(), c0.getsockname()[1]], "s0": s0.fileno(),
            "us": us.fileno()}
    print(json.dumps(info), flush=True)

    # "ping" lines: stat a probe path (an event for ktrace to show) and answer; "go": start.
    while True:
        line = sys.stdin.readline()
        if not line:
            return 1
        if line.strip() != "ping":
            break
        try:
            os.stat(f"{d}/{READY_PROBE}")
        except FileNotFoundError:
            pass
        print("pong", flush=True)

    # --- from here on, the tests compare ----------------------------------------------------------
    try:
        os.stat(f"{d}/{MARKER}")
    except FileNotFoundError:
        pass
    got: dict[str, object] = {}

    # Files: a fd from the bootstrap, then create, write, read, rename, unlink.
    got["pre"] = len(os.read(pre, 100))
    os.lseek(pre, 0, os.SEEK_SET)
    fd = os.open(f"{d}/a.txt", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    os.write(fd, A_TEXT[:1000])
    os.write(fd, A_TEXT[1000:])
    os.close(fd)
    fd = os.open(f"{d}/a.txt", os.O_RDONLY)
    got["a"] = len(os.read(fd, 4096))
    os.read(fd, 4096)  # end of file: 0
    os.close(fd)
    os.rename(f"{d}/a.txt", f"{d}/b.txt")
    try:
        os.rename(f"{d}/missing.txt", f"{d}/c.txt")
    except FileNotFoundError:
        pass
    dirfd = os.open(d, os.O_RDONLY | os.O_DIRECTORY)
    fd = os.open("b.txt", os.O_RDONLY, dir_fd=dirfd)
    got["b"] = len(os.pread(fd, 64, 10))
    os.close(fd)
    os.unlink("b.txt", dir_fd=dirfd)
    os.close(dirfd)
    for bad in (f"{d}/nope/x", f"{d}/missing.txt"):
        try:
            os.open(bad, os.O_RDONLY)
        except FileNotFoundError:
            pass
    try:
        os.unlink(f"{d}/missing.txt")
    except FileNotFoundError:
        pass
    os.mkdir(f"{d}/sub", 0o755)
    os.rmdir(f"{d}/sub")

    # TCP: the connection ktrace found in /proc, then a new one (connect, accept).
    os.write(c0.fileno(), TCP_PRE)
    got["s0"] = len(os.read(s0.fileno(), 4096))
    c1 = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    c1.connect(("127.0.0.1", lport))
    s1, _ = ls.accept()
    time.sleep(HOLD)
    c1.sendall(HTTP_REQ)
    got["req"] = len(_recv_exact(s1, len(HTTP_REQ)))
    s1.sendall(HTTP_RESP)
    got["resp"] = len(_recv_exact(c1, len(HTTP_RESP)))
    c1.sendmsg([b"abc", b"defg"])
    got["msg"] = len(s1.recvmsg(100)[0])
    s1.close()
    c1.close()
    c2 = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        c2.connect(("127.0.0.1", closed_port))
    except ConnectionRefusedError:
        got["refused"] = True
    c2.close()

    # UDP: a connected client, and an unconnected one, to the socket bound before the start.
    uc = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    uc.connect(("127.0.0.1", uport))
    time.sleep(HOLD)
    uc.send(UDP_PING)
    data, addr = us.recvfrom(100)
    got["ping"] = len(data)
    us.sendto(UDP_PONG, addr)
    got["pong"] = len(uc.recv(100))
    uc.close()
    ul = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    ul.sendto(UDP_LONE, ("127.0.0.1", uport))
    got["lone"] = len(us.recvfrom(100)[0])
    ul.close()

    # Short-lived connections to a new listener: each fd number is reused by the next connection
    # long before a tracer reading sockets after the fact could look at it.
    lc = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    lc.bind(("127.0.0.1", 0))
    lc.listen(CHURN)
    got["churn_port"] = lc.getsockname()[1]
    time.sleep(HOLD)  # the listener itself lives long enough to be looked at
    churned = 0
    cports = []
    for i in range(CHURN):
        c = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        c.connect(("127.0.0.1", got["churn_port"]))
        s, peer = lc.accept()
        cports.append(peer[1])
        c.send(b"churn %02d" % i)
        churned += len(s.recv(100))
        s.close()
        c.close()
    lc.close()
    got["churn"] = churned
    got["churn_cports"] = cports

    # A second thread: its own tid, the process's fds.
    def in_thread() -> None:
        tfd = os.open(f"{d}/thread.txt", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.write(tfd, THREAD_TEXT)
        os.close(tfd)

    t = threading.Thread(target=in_thread)
    t.start()
    t.join()

    # fork + exec: the child writes to a pipe, then becomes CHILD_EXE copying pre.txt into it.
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        os.write(w, CHILD_HELLO)
        os.dup2(w, 1)
        os.execv(child_exe, [child_exe, f"{d}/pre.txt"])
    os.close(w)
    out = b""
    while chunk := os.read(r, 65536):
        out += chunk
    os.close(r)
    got["pipe"] = len(out)
    got["child_status"] = os.waitpid(pid, 0)[1]
    pid = os.fork()
    if pid == 0:
        try:
            os.execv(f"{d}/no-such-program", ["no-such-program"])
        finally:
            os._exit(3)
    got["fail_status"] = os.waitpid(pid, 0)[1]
    print(json.dumps(got), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
