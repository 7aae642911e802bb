"""A forking TCP server as C servers write it, for the live tests of accepted connections.

accept(fd, NULL, NULL) (no address asked for), fork; the child reads what the client announces
(an 8-byte header: bytes up, bytes down; then the bytes up), writes the bytes down, closes and
exits at once; the parent closes its copy and accepts the next. proc.name is ``ktaccept`` (prctl).

Protocol on stdin/stdout: it prints ``{"port": N}``; ``ping`` stats a path named
ktrace-ready-probe (so a tracer's output shows it) and answers ``pong``; ``go`` starts serving,
until killed. Each child prints nothing: the client knows what it sent and received.

    python forkserver.py [HOST]      # 127.0.0.1 unless HOST (e.g. ::1)
"""

from __future__ import annotations

import ctypes
import json
import os
import signal
import socket
import struct
import sys

PR_SET_NAME = 15
NAME = b"ktaccept"
HEADER = struct.Struct("<II")


def serve_one(fd: int) -> None:
    """The child's part: read the header and the bytes up, write the bytes down, close."""
    buf = b""
    while len(buf) < HEADER.size:
        chunk = os.read(fd, 65536)
        if not chunk:
            return
        buf += chunk
    up, down = HEADER.unpack_from(buf)
    got = len(buf) - HEADER.size
    while got < up:
        chunk = os.read(fd, 65536)
        if not chunk:
            return
        got += len(chunk)
    out = b"d" * down
    sent = 0
    while sent < down:
        sent += os.write(fd, out[sent:])
    os.close(fd)


def main() -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_NAME, NAME, 0, 0, 0)
    libc.accept.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p]
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # children reaped by the kernel
    host = sys.argv[1] if len(sys.argv) > 1 else "127.0.0.1"
    lsn = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
    lsn.bind((host, 0))
    lsn.listen(128)
    print(json.dumps({"port": lsn.getsockname()[1]}), flush=True)
    for line in sys.stdin:
        if line.strip() == "ping":
            try:
                os.stat("ktrace-ready-probe")
            except OSError:
                pass
            print("pong", flush=True)
        elif line.strip() == "go":
            break
    while True:
        fd = libc.accept(lsn.fileno(), None, None)
        if fd < 0:
            continue
        if os.fork() == 0:
            serve_one(fd)
            os._exit(0)
        os.close(fd)


if __name__ == "__main__":
    main()
