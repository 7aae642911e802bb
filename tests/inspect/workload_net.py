"""A workload for the live inspection test: named ``ktinspect`` (prctl), it waits for a go file,
then sends PAYLOAD over a TCP connection on 127.0.0.1 to its own server thread, which answers
REPLY; then it prints the server's port and exits."""

from __future__ import annotations

import ctypes
import os
import socket
import sys
import threading
import time

PR_SET_NAME = 15


def main() -> None:
    go, payload, reply = sys.argv[1], sys.argv[2].encode(), sys.argv[3].encode()
    ctypes.CDLL(None).prctl(PR_SET_NAME, b"ktinspect", 0, 0, 0)
    while not os.path.exists(go):
        time.sleep(0.02)
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen()
    port = srv.getsockname()[1]

    def serve() -> None:
        conn, _ = srv.accept()
        got = b""
        while len(got) < len(payload):
            got += conn.recv(65536)
        conn.sendall(reply)
        conn.close()

    t = threading.Thread(target=serve)
    t.start()
    with socket.create_connection(("127.0.0.1", port)) as c:
        c.sendall(payload)
        back = b""
        while len(back) < len(reply):
            chunk = c.recv(65536)
            if not chunk:
                break
            back += chunk
    t.join()
    print(port, flush=True)


if __name__ == "__main__":
    main()
