"""The /proc bootstrap, checked on this very test process: its threads, cwd, ids and the files,
pipes and sockets it opens here, against what os, /proc and the socket module say.
"""

from __future__ import annotations

import json
import os
import pwd
import shutil
import socket
import struct
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tracer.state.proc import _hexaddr, bootstrap, read_thread
from tracer.state.state import State
from tracer.state.tables import Fd


def _ipv6() -> bool:
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


HAVE_IPV6 = _ipv6()


@dataclass
class Conn:
    """A TCP connection made here: listening, client and accepted sockets."""

    family: int
    host: str
    listener: socket.socket
    client: socket.socket
    accepted: socket.socket

    @property
    def sport(self) -> int:
        return int(self.listener.getsockname()[1])

    @property
    def cport(self) -> int:
        return int(self.client.getsockname()[1])

    def close(self) -> None:
        for s in (self.listener, self.client, self.accepted):
            s.close()


def connect_pair(family: int, host: str, server_port_lower: bool) -> Conn:
    """Two sockets bound to free ports; the one whose port is lower (or higher) listens, so the
    bootstrap cannot guess the server by the port numbers alone."""
    a, b = socket.socket(family, socket.SOCK_STREAM), socket.socket(family, socket.SOCK_STREAM)
    for s in (a, b):
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((host, 0))
    lo, hi = sorted((a, b), key=lambda s: s.getsockname()[1])
    listener, client = (lo, hi) if server_port_lower else (hi, lo)
    listener.listen(1)
    client.connect((host, listener.getsockname()[1]))
    accepted, _ = listener.accept()
    return Conn(family, host, listener, client, accepted)


@dataclass
class World:
    """What this process holds while the bootstrap reads /proc."""

    state: State
    cwd: str
    tids_before: set[int]
    tids_after: set[int]
    helper_tid: int
    file: tuple[int, str]
    directory: tuple[int, str]
    pipe: tuple[int, int]
    conns: list[Conn]
    udp: socket.socket
    unix_server: tuple[socket.socket, str]
    eventfd: int
    memfd: int
    extra: list[socket.socket] = field(default_factory=list)


def _tids() -> set[int]:
    return {int(t) for t in os.listdir("/proc/self/task")}


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    tmp = tmp_path_factory.mktemp("proc")
    old_cwd = os.getcwd()
    os.chdir(tmp)
    stop = threading.Event()
    ready = threading.Event()
    native: list[int] = []

    def helper() -> None:
        native.append(threading.get_native_id())
        ready.set()
        stop.wait(60)

    th = threading.Thread(target=helper, name="ktrace-test-helper", daemon=True)
    th.start()
    ready.wait(10)
    path = tmp / "data.txt"
    path.write_text("x")
    f = os.open(path, os.O_RDONLY)
    d = os.open(tmp, os.O_RDONLY | os.O_DIRECTORY)
    r, w = os.pipe()
    conns = [connect_pair(socket.AF_INET, "127.0.0.1", True), connect_pair(socket.AF_INET, "127.0.0.1", False)]
    if HAVE_IPV6:
        conns += [connect_pair(socket.AF_INET6, "::1", True), connect_pair(socket.AF_INET6, "::1", False)]
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp.bind(("127.0.0.1", 0))
    upath = str(tmp / "srv.sock")
    usrv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    usrv.bind(upath)
    usrv.listen(1)
    efd = os.eventfd(0)
    mfd = os.memfd_create("ktrace-test")
    extra = []
    if HAVE_IPV6:
        # A dual-stack listener reached over IPv4: /proc shows ::ffff:127.0.0.1, the fd says 127.0.0.1.
        ds = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
        ds.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        ds.bind(("::", 0))
        ds.listen(1)
        c4 = socket.create_connection(("127.0.0.1", ds.getsockname()[1]))
        a4, _ = ds.accept()
        extra = [ds, c4, a4]
    try:
        before = _tids()
        st = State()
        bootstrap(st)
        after = _tids()
        yield World(st, str(tmp), before, after, native[0], (f, str(path)), (d, str(tmp)), (r, w), conns, udp,
                    (usrv, upath), efd, mfd, extra)
    finally:
        stop.set()
        th.join(10)
        for c in conns:
            c.close()
        for s in (udp, usrv, *extra):
            s.close()
        for n in (f, d, r, w, efd, mfd):
            os.close(n)
        os.chdir(old_cwd)


def me(w: World, num: int) -> Fd:
    fd = w.state.fd(os.getpid(), num)
    assert fd is not None, f"fd {num} missing from the bootstrap"
    return fd


# --- threads -----------------------------------------------------------------------------------
def test_threads_of_this_process(world: World) -> None:
    pid = os.getpid()
    mine = {tid for tid, t in world.state.threads.items() if t.pid == pid}
    assert world.tids_before & world.tids_after <= mine <= world.tids_before | world.tids_after
    assert world.helper_tid in mine
    assert world.state.threads[world.helper_tid].pid == pid


def test_main_thread_facts(world: World) -> None:
    t = world.state.threads[os.getpid()]
    cmdline = Path("/proc/self/cmdline").read_bytes().rstrip(b"\0").split(b"\0")
    assert t.comm == Path("/proc/self/comm").read_text().rstrip("\n")
    assert (t.exe, t.args) == (cmdline[0].decode(), [a.decode() for a in cmdline[1:]])
    assert t.exepath == os.readlink("/proc/self/exe")
    assert t.cwd == world.cwd
    assert (t.uid, t.gid) == (os.geteuid(), os.getegid())
    assert t.ptid == os.getppid()
    assert t.sid == os.getsid(0)
    status = dict(line.split(":", 1) for line in Path("/proc/self/status").read_text().splitlines())
    assert t.vpid == int(status["NStgid"].split()[-1])
    assert t.fdlimit > 0


def test_thread_of_the_process_shares_its_facts(world: World) -> None:
    t = world.state.threads[world.helper_tid]
    main = world.state.threads[os.getpid()]
    assert (t.pid, t.cwd, t.exepath, t.uid, t.ptid) == (main.pid, main.cwd, main.exepath, main.uid, main.ptid)
    assert t.vtid == int(
        dict(line.split(":", 1) for line in
             Path(f"/proc/self/task/{world.helper_tid}/status").read_text().splitlines())["NSpid"].split()[-1])


def test_read_thread_of_a_gone_process() -> None:
    assert read_thread(2**22 + 1, 2**22 + 1) is None


def test_users(world: World) -> None:
    u = world.state.users.get(os.geteuid())
    pw = pwd.getpwuid(os.geteuid())
    assert u is not None and (u.name, u.home, u.shell) == (pw.pw_name, pw.pw_dir, pw.pw_shell)


# --- fds ---------------------------------------------------------------------------------------
def test_files_and_directories(world: World) -> None:
    f = me(world, world.file[0])
    assert (f.type, f.name) == ("file", world.file[1])
    d = me(world, world.directory[0])
    assert (d.type, d.name) == ("directory", world.directory[1])


def test_pipe(world: World) -> None:
    r, w = world.pipe
    for n in (r, w):
        fd = me(world, n)
        assert (fd.type, fd.ino) == ("pipe", os.fstat(n).st_ino)


def test_anonymous_fds(world: World) -> None:
    assert me(world, world.eventfd).type == "event"
    m = me(world, world.memfd)
    assert (m.type, m.name) == ("memfd", "memfd:ktrace-test")


def test_listening_sockets(world: World) -> None:
    for c in world.conns:
        fd = me(world, c.listener.fileno())
        host = c.host
        assert (fd.type, fd.l4proto, fd.name, fd.is_server) == \
            ("ipv4" if c.family == socket.AF_INET else "ipv6", "tcp", f"{host}:{c.sport}", True)
        assert (fd.sip, fd.sport, fd.ino) == (host, c.sport, os.fstat(c.listener.fileno()).st_ino)


@pytest.mark.parametrize("which", range(4))
def test_connected_pair_oriented_client_to_server(world: World, which: int) -> None:
    if which >= len(world.conns):
        pytest.skip("no IPv6 on this machine")
    c = world.conns[which]
    cip, sip = c.client.getsockname()[0], c.accepted.getsockname()[0]
    name = f"{cip}:{c.cport}->{sip}:{c.sport}"
    cl, ac = me(world, c.client.fileno()), me(world, c.accepted.fileno())
    for fd, server in ((cl, False), (ac, True)):
        assert (fd.name, fd.is_server, fd.l4proto) == (name, server, "tcp")
        assert (fd.cip, fd.cport, fd.sip, fd.sport) == (cip, c.cport, sip, c.sport)
    assert c.client.getpeername()[1] == c.sport  # the socket module agrees on who is who


def test_udp_and_unix(world: World) -> None:
    u = me(world, world.udp.fileno())
    ip, port = world.udp.getsockname()
    assert (u.type, u.l4proto, u.name, u.is_server) == ("ipv4", "udp", f"{ip}:{port}", True)
    srv, path = world.unix_server
    x = me(world, srv.fileno())
    assert (x.type, x.name) == ("unix", path)


def test_ipv4_mapped_addresses_are_plain(world: World) -> None:
    if not world.extra:
        pytest.skip("no IPv6 on this machine")
    ds, c4, a4 = world.extra
    acc = me(world, a4.fileno())
    assert acc.type == "ipv4"
    assert acc.name == f"127.0.0.1:{c4.getsockname()[1]}->127.0.0.1:{ds.getsockname()[1]}"
    assert acc.is_server is True


# --- /proc/net address parsing ------------------------------------------------------------------------
def proc_hex(ip: str) -> str:
    """An address as /proc/net/tcp6 prints it: the in6_addr as four u32 words in host order (%08X)."""
    raw = socket.inet_pton(socket.AF_INET6 if ":" in ip else socket.AF_INET, ip)
    return "".join(f"{struct.unpack('=I', raw[i:i + 4])[0]:08X}" for i in range(0, len(raw), 4))


@pytest.mark.parametrize(
    ("ip", "port", "expected_ip"),
    [
        ("127.0.0.1", 8080, "127.0.0.1"),
        ("10.1.2.3", 1, "10.1.2.3"),
        ("0.0.0.0", 0, "0.0.0.0"),
        ("255.255.255.254", 65535, "255.255.255.254"),
        ("::1", 22, "::1"),
        ("::", 80, "::"),
        ("2001:db8::7", 443, "2001:db8::7"),
        ("fe80::1ff:fe23:4567:890a", 5353, "fe80::1ff:fe23:4567:890a"),
        ("2a00:1450:4001:82b::200e", 443, "2a00:1450:4001:82b::200e"),
        ("::ffff:10.0.0.1", 3306, "10.0.0.1"),  # IPv4-mapped: shown as IPv4
        ("::ffff:0:0", 1, "0.0.0.0"),
    ],
)
def test_hexaddr(ip: str, port: int, expected_ip: str) -> None:
    assert _hexaddr(f"{proc_hex(ip)}:{port:04X}") == (expected_ip, port)


def test_hexaddr_reads_a_real_tcp6_row() -> None:
    if not HAVE_IPV6:
        pytest.skip("no IPv6 on this machine")
    with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
        s.bind(("::1", 0))
        s.listen(1)
        ino = os.fstat(s.fileno()).st_ino
        rows = [line.split() for line in Path("/proc/net/tcp6").read_text().splitlines()[1:]]
        row = next(r for r in rows if int(r[9]) == ino)
        assert _hexaddr(row[1]) == ("::1", s.getsockname()[1])


NETNS_CHILD = r"""
import fcntl, json, socket, struct, sys, time
# Bring up this namespace's loopback: SIOCSIFFLAGS with IFF_UP | IFF_LOOPBACK | IFF_RUNNING.
s = socket.socket()
fcntl.ioctl(s, 0x8914, struct.pack("16sH14s", b"lo", 0x1 | 0x8 | 0x40, b""))
srv = socket.socket()
srv.bind(("127.0.0.1", 0))
srv.listen(1)
cli = socket.create_connection(srv.getsockname())
acc, _ = srv.accept()
print(json.dumps({"cli": cli.fileno(), "acc": acc.fileno(), "srv": srv.fileno(),
                  "cport": cli.getsockname()[1], "sport": srv.getsockname()[1]}), flush=True)
sys.stdin.read()
"""


@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("unshare"), reason="needs root and unshare(1)")
def test_sockets_of_another_network_namespace() -> None:
    """A process in its own network namespace (a container's case): its connections are in its
    namespace's socket tables, not the host's; the process itself says what they are."""
    p = subprocess.Popen(["unshare", "--net", sys.executable, "-c", NETNS_CHILD], stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, text=True)
    try:
        assert p.stdout is not None
        got = json.loads(p.stdout.readline())
        assert os.readlink(f"/proc/{p.pid}/ns/net") != os.readlink("/proc/self/ns/net")
        st = State()
        bootstrap(st, skip_pid=os.getpid())
        fds = st.fds[p.pid]
        tuple_ = f"127.0.0.1:{got['cport']}->127.0.0.1:{got['sport']}"
        assert (fds[got["cli"]].name, fds[got["cli"]].is_server) == (tuple_, False)
        assert (fds[got["acc"]].name, fds[got["acc"]].is_server) == (tuple_, True)
        assert fds[got["srv"]].name == f"127.0.0.1:{got['sport']}"
    finally:
        p.kill()
        p.wait()
