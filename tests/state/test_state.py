"""The state kept current by events: fds, sockets, processes, users, internal records, and the
tables a capture carries. Each scenario is built with the synthetic source and fed through the
pipeline, as a capture replay would be.
"""

from __future__ import annotations

import errno
import os
import socket
from typing import Any

import msgpack
import pytest

from tracer.capture import CaptureReader, TableBlock
from tracer.state.state import State
from tracer.state.tables import Fd, Thread
from tracer.testing import (
    AT_FDCWD,
    Synth,
    fd_row,
    group_row,
    lines,
    run,
    sockaddr,
    state_from,
    tables,
    thread_row,
    user_row,
    write_capture,
)

P = 100  # the process of most scenarios
O_CLOEXEC = os.O_CLOEXEC


def base() -> State:
    """init (1) and process 100 ('app', cwd /home/u, uid 1000) with stdin/out/err and /etc as 4."""
    return state_from(tables(
        threads=[thread_row(1, comm="systemd", cwd="/"),
                 thread_row(P, comm="app", cwd="/home/u", ptid=1, uid=1000, gid=1000, exe="app",
                            exepath="/usr/bin/app", args=["--serve"])],
        fds={P: [fd_row(0, "file", "/dev/null"), fd_row(1, "file", "/dev/pts/0"), fd_row(2, "file", "/dev/pts/0"),
                 fd_row(4, "directory", "/etc")]},
        users=[user_row(0, "root", "/root", "/bin/bash"), user_row(1000, "u", "/home/u", "/bin/sh")],
        groups=[group_row(0, "root")],
    ))


def feed(s: Synth, state: State | None = None) -> State:
    st = state if state is not None else base()
    run(s.batch(), state=st)
    return st


def fds(st: State, pid: int = P) -> dict[int, tuple[str, str]]:
    return {n: (f.type, f.name) for n, f in sorted(st.fds.get(pid, {}).items())}


def fd(st: State, num: int, pid: int = P) -> Fd:
    f = st.fd(pid, num)
    assert f is not None, f"fd {num} of {pid} missing"
    return f


def cloexec(st: State, num: int, pid: int = P) -> bool:
    return bool(fd(st, num, pid).flags & O_CLOEXEC)


# --- files ----------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("build", "num", "expected"),
    [
        (lambda s: s.open("/etc/passwd", 3), 3, ("file", "/etc/passwd")),
        (lambda s: s.open("notes.txt", 3, os.O_RDWR | os.O_CREAT, 0o644), 3, ("file", "/home/u/notes.txt")),
        (lambda s: s.open("../x/./y", 3), 3, ("file", "/home/x/y")),
        (lambda s: s.open("/var/log", 3, os.O_RDONLY | os.O_DIRECTORY), 3, ("directory", "/var/log")),
        (lambda s: s.open("hosts", 3, dirfd=4), 3, ("file", "/etc/hosts")),
        (lambda s: s.open("hosts", 3, dirfd=AT_FDCWD), 3, ("file", "/home/u/hosts")),
        (lambda s: s.syscall("creat", (None, 0o600), ret=3, seg0=b"new"), 3, ("file", "/home/u/new")),
        (lambda s: s.syscall("openat2", (4, None, None, 24), ret=3, seg0=b"ssl",
                             seg1=(os.O_DIRECTORY).to_bytes(8, "little") + bytes(16)), 3, ("directory", "/etc/ssl")),
        (lambda s: s.syscall("eventfd2", (0, O_CLOEXEC), ret=3), 3, ("event", "")),
        (lambda s: s.syscall("epoll_create1", (0,), ret=3), 3, ("eventpoll", "")),
        (lambda s: s.syscall("memfd_create", (None, 0), ret=3, seg0=b"buf"), 3, ("memfd", "memfd:buf")),
        (lambda s: s.syscall("inotify_init1", (0,), ret=3), 3, ("inotify", "")),
        (lambda s: s.syscall("timerfd_create", (1, 0), ret=3), 3, ("timerfd", "")),
        (lambda s: s.syscall("signalfd4", (2**64 - 1, None, 8, 0), ret=3), 3, ("signalfd", "")),
    ],
)
def test_fd_creation(build: Any, num: int, expected: tuple[str, str]) -> None:
    s = Synth(pid=P)
    build(s)
    st = feed(s)
    assert fds(st)[num] == expected


@pytest.mark.parametrize(
    "build",
    [
        lambda s: s.open("/nope", -errno.ENOENT),
        lambda s: s.open("/nope", -errno.EACCES, dirfd=AT_FDCWD),
        lambda s: s.socket(-errno.EMFILE),
        lambda s: s.pipe(5, 6, ret=-errno.EMFILE),
        lambda s: s.dup(0, -errno.EBADF),
        lambda s: s.accept(0, -errno.EAGAIN, ("1.1.1.1", 1)),
        lambda s: s.syscall("eventfd", ret=-errno.ENFILE),
        lambda s: s.open("/x", 3).syscall("open", ret=3, seg0=b"/y", exit=False),  # exit lost: no change
    ],
)
def test_failed_calls_create_nothing(build: Any) -> None:
    s = Synth(pid=P)
    build(s)
    st = feed(s)
    assert set(fds(st)) <= {0, 1, 2, 3, 4}
    assert fds(st).get(3, ("file", "/x")) == ("file", "/x")


def test_open_keeps_flags() -> None:
    st = feed(Synth(pid=P).open("/a", 3, os.O_RDONLY | O_CLOEXEC).open("/b", 5, os.O_WRONLY))
    assert cloexec(st, 3) and not cloexec(st, 5)


def test_close() -> None:
    s = Synth(pid=P).open("/a", 3).close(3).close(2, ret=-errno.EBADF).close(42)
    st = feed(s)
    assert fds(st) == {0: ("file", "/dev/null"), 1: ("file", "/dev/pts/0"), 2: ("file", "/dev/pts/0"),
                       4: ("directory", "/etc")}


def test_close_of_a_reused_number_then_open() -> None:
    st = feed(Synth(pid=P).open("/a", 3).close(3).open("/b", 3))
    assert fds(st)[3] == ("file", "/b")


@pytest.mark.parametrize(
    ("build", "new", "new_cloexec"),
    [
        (lambda s: s.dup(3, 7), 7, False),
        (lambda s: s.dup2(3, 1), 1, False),  # replaces stdout
        (lambda s: s.dup3(3, 7, O_CLOEXEC), 7, True),
        (lambda s: s.dup3(3, 7, 0), 7, False),
        (lambda s: s.fcntl(3, 0, 10, ret=10), 10, False),  # F_DUPFD
        (lambda s: s.fcntl(3, 1030, 10, ret=11), 11, True),  # F_DUPFD_CLOEXEC
    ],
)
def test_dup_family(build: Any, new: int, new_cloexec: bool) -> None:
    s = Synth(pid=P).open("/etc/passwd", 3, O_CLOEXEC)
    build(s)
    st = feed(s)
    assert fds(st)[new] == ("file", "/etc/passwd")
    assert cloexec(st, new) == new_cloexec
    assert cloexec(st, 3)  # the original keeps its flag
    assert fds(st)[3] == ("file", "/etc/passwd")


def test_dup2_of_socket_copies_tuple() -> None:
    s = Synth(pid=P).socket(3).connect(3, ("10.0.0.1", 80)).fdinfo(3, cip="10.0.0.2", cport=5000,
                                                                      name="10.0.0.2:5000->10.0.0.1:80").dup2(3, 0)
    st = feed(s)
    a, b = fd(st, 3), fd(st, 0)
    assert (b.type, b.name, b.l4proto, b.sip, b.sport, b.cip, b.cport, b.is_server) == \
        (a.type, a.name, "tcp", "10.0.0.1", 80, "10.0.0.2", 5000, False)
    b.name = "changed"
    assert a.name != "changed"  # a copy, not the same row


def test_fcntl_setfd_and_others() -> None:
    s = Synth(pid=P).open("/a", 3).fcntl(3, 2, 1)  # F_SETFD FD_CLOEXEC
    st = feed(s)
    assert cloexec(st, 3)
    feed(s.fcntl(3, 2, 0), st)
    assert not cloexec(st, 3)
    feed(s.fcntl(3, 3, ret=0o2).fcntl(3, 4, os.O_NONBLOCK).fcntl(3, 0, 10, ret=-errno.EINVAL), st)
    assert set(fds(st)) == {0, 1, 2, 3, 4}


@pytest.mark.parametrize(("flags", "expect_cloexec"), [(None, False), (0, False), (O_CLOEXEC, True),
                                                       (os.O_NONBLOCK, False)])
def test_pipe(flags: int | None, expect_cloexec: bool) -> None:
    st = feed(Synth(pid=P).pipe(5, 6, flags))
    assert fds(st)[5] == ("pipe", "") and fds(st)[6] == ("pipe", "")
    assert cloexec(st, 5) == cloexec(st, 6) == expect_cloexec


def test_socketpair() -> None:
    st = feed(Synth(pid=P).socketpair(5, 6))
    assert fds(st)[5] == ("unix", "") and fds(st)[6] == ("unix", "")


# --- sockets --------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("domain", "type_", "expected"),
    [
        (socket.AF_INET, socket.SOCK_STREAM, ("ipv4", "tcp", False)),
        (socket.AF_INET, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC, ("ipv4", "udp", True)),
        (socket.AF_INET6, socket.SOCK_STREAM | socket.SOCK_NONBLOCK, ("ipv6", "tcp", False)),
        (socket.AF_INET6, socket.SOCK_DGRAM, ("ipv6", "udp", False)),
        (socket.AF_INET, socket.SOCK_RAW, ("ipv4", "raw", False)),
        (socket.AF_UNIX, socket.SOCK_STREAM, ("unix", "", False)),
        (socket.AF_NETLINK, socket.SOCK_RAW, ("netlink", "", False)),
        (socket.AF_PACKET, socket.SOCK_RAW, ("unknown", "", False)),
    ],
)
def test_socket(domain: int, type_: int, expected: tuple[str, str, bool]) -> None:
    st = feed(Synth(pid=P).socket(7, domain, type_))
    f = fd(st, 7)
    assert (f.type, f.l4proto, bool(f.flags & O_CLOEXEC)) == expected


def test_bind_listen_accept() -> None:
    s = Synth(pid=P).socket(3).bind(3, ("0.0.0.0", 8080)).listen(3)
    s.accept(3, 5, ("192.168.1.9", 51000)).accept(3, 6, ("10.1.1.1", 40000), flags=O_CLOEXEC)
    st = feed(s)
    lst = fd(st, 3)
    assert (lst.name, lst.is_server, lst.sip, lst.sport) == ("0.0.0.0:8080", True, "0.0.0.0", 8080)
    a = fd(st, 5)
    assert (a.type, a.l4proto, a.name, a.is_server) == ("ipv4", "tcp", "192.168.1.9:51000->0.0.0.0:8080", True)
    assert (a.cip, a.cport, a.sip, a.sport) == ("192.168.1.9", 51000, "0.0.0.0", 8080)
    assert not a.flags & O_CLOEXEC and cloexec(st, 6)


def test_bind_unix_and_accept() -> None:
    s = Synth(pid=P).socket(3, socket.AF_UNIX).bind(3, "/run/app.sock").listen(3).accept(3, 5, b"\x01\x00")
    st = feed(s)
    assert fds(st)[3] == ("unix", "/run/app.sock")
    assert fds(st)[5] == ("unix", "/run/app.sock")


def test_failed_bind_changes_nothing() -> None:
    st = feed(Synth(pid=P).socket(3).bind(3, ("0.0.0.0", 80), ret=-errno.EACCES))
    assert (fd(st, 3).name, fd(st, 3).is_server) == ("", None)


@pytest.mark.parametrize(
    ("ret", "named"),
    [(0, True), (-errno.EINPROGRESS, True), (-errno.ECONNREFUSED, False), (-errno.ETIMEDOUT, False)],
)
def test_connect(ret: int, named: bool) -> None:
    st = feed(Synth(pid=P).socket(3).connect(3, ("10.0.0.1", 443), ret=ret))
    f = fd(st, 3)
    if named:
        assert (f.name, f.sip, f.sport, f.is_server) == ("0.0.0.0:0->10.0.0.1:443", "10.0.0.1", 443, False)
    else:
        assert (f.name, f.is_server) == ("", None)


def test_connect_ipv6_and_unix() -> None:
    s = Synth(pid=P).socket(3, socket.AF_INET6).connect(3, ("2001:db8::1", 80))
    s.socket(5, socket.AF_UNIX).connect(5, "/run/docker.sock").socket(6, socket.AF_UNIX).connect(6, "@ctl")
    st = feed(s)
    assert fds(st)[3] == ("ipv6", ":::0->2001:db8::1:80")
    assert fds(st)[5] == ("unix", "/run/docker.sock")
    assert fds(st)[6] == ("unix", "@ctl")


def test_connected_names_the_local_end_before_the_connect_returns() -> None:
    """A blocking connect: the probe's EVT_CONNECTED comes inside the call, and its exit keeps the
    client end it gave."""
    s = Synth(pid=P).socket(3)
    s.syscall("connect", (3,), seg0=sockaddr(("10.0.0.1", 443)), exit=False)
    s.connected(3, ("10.0.0.2", 40000), ("10.0.0.1", 443))
    s.syscall("connect", (3,), seg0=sockaddr(("10.0.0.1", 443)), enter=False)
    f = fd(feed(s), 3)
    assert (f.name, f.cip, f.cport, f.sip, f.sport) == ("10.0.0.2:40000->10.0.0.1:443", "10.0.0.2", 40000,
                                                         "10.0.0.1", 443)
    assert (f.type, f.l4proto, f.is_server) == ("ipv4", "tcp", False)


def test_connected_after_a_non_blocking_connect() -> None:
    s = Synth(pid=P).socket(3).connect(3, ("10.0.0.1", 443), ret=-errno.EINPROGRESS)
    st = State()
    run(s.batch(), state=st)
    assert fd(st, 3).name == "0.0.0.0:0->10.0.0.1:443"
    run(s.connected(3, ("10.0.0.2", 40001), ("10.0.0.1", 443)).batch(), state=st)
    assert fd(st, 3).name == "10.0.0.2:40001->10.0.0.1:443"


def test_connected_ipv6_and_ipv4_mapped() -> None:
    s = Synth(pid=P).socket(3, socket.AF_INET6).connected(3, ("2001:db8::2", 5000), ("2001:db8::1", 80))
    s.socket(4, socket.AF_INET6).connected(4, ("::ffff:127.0.0.1", 5001), ("::ffff:127.0.0.1", 80))
    st = feed(s)
    assert fds(st)[3] == ("ipv6", "2001:db8::2:5000->2001:db8::1:80")
    assert fds(st)[4] == ("ipv6", "127.0.0.1:5001->127.0.0.1:80")


def test_connected_on_an_fd_the_state_never_saw() -> None:
    st = feed(Synth(pid=P).connected(7, ("127.0.0.1", 5000), ("127.0.0.1", 80)))
    assert fds(st)[7] == ("ipv4", "127.0.0.1:5000->127.0.0.1:80")


def test_connected_is_internal() -> None:
    """Hidden from output unless internal events are asked for; shown, it names its fd."""
    b = Synth(pid=P).socket(3).connected(3, ("127.0.0.1", 5000), ("127.0.0.1", 80)).write(3, b"x").batch()
    assert [ln.split()[6] for ln in lines(b)] == ["socket", "socket", "write", "write"]
    shown = [ln for ln in lines(b, show_internal=True) if " connected " in ln]
    assert len(shown) == 1 and shown[0].rstrip().endswith("connected fd=3(<4t>127.0.0.1:5000->127.0.0.1:80)"), shown


def test_accepted_names_an_fd_accept_gave_no_address() -> None:
    """accept(fd, NULL, NULL), then the probe's EVT_ACCEPTED inside the first read on the new fd:
    that read's exit, and everything after, carry both ends, the server's as the local one."""
    s = Synth(pid=P).socket(3).bind(3, ("0.0.0.0", 8080)).listen(3).accept(3, 5, b"")
    s.syscall("read", (5, 0, 4096), exit=False)
    s.accepted(5, ("10.0.0.1", 8080), ("10.0.0.9", 51000))
    s.syscall("read", (5, 0, 4096), ret=3, seg0=b"abc", enter=False)
    st = base()
    assert lines(s.batch(), state=st, fmt="%evt.dir %evt.type %fd.name")[-2:] == [
        "> read ", "< read 10.0.0.9:51000->10.0.0.1:8080"]  # a known fd, no name yet: empty, as libsinsp
    f = fd(st, 5)
    assert (f.type, f.l4proto, f.is_server) == ("ipv4", "tcp", True)
    assert (f.cip, f.cport, f.sip, f.sport) == ("10.0.0.9", 51000, "10.0.0.1", 8080)


def test_accepted_in_a_forked_child() -> None:
    """A forking server: the child's first write names its copy of the fd (the parent's is closed)."""
    s = Synth(pid=P).socket(3, socket.AF_INET6).bind(3, ("::", 8080)).listen(3).accept(3, 5, b"").clone(200)
    s.close(5)
    s.on(200, 200).accepted(5, ("::ffff:127.0.0.1", 8080), ("::ffff:127.0.0.1", 40000)).write(5, b"x")
    st = feed(s)
    assert 5 not in fds(st)
    assert fds(st, 200)[5] == ("ipv6", "127.0.0.1:40000->127.0.0.1:8080")


def test_accepted_is_internal() -> None:
    b = Synth(pid=P).accepted(4, ("2001:db8::1", 443), ("2001:db8::2", 5000)).write(4, b"x").batch()
    assert [ln.split()[6] for ln in lines(b)] == ["write", "write"]
    shown = [ln for ln in lines(b, show_internal=True) if " accepted " in ln]
    assert len(shown) == 1, shown
    assert shown[0].rstrip().endswith("accepted fd=4(<6t>2001:db8::2:5000->2001:db8::1:443)"), shown


def test_connect_on_unknown_socket_fd_ignored() -> None:
    st = feed(Synth(pid=P).connect(9, ("10.0.0.1", 80)))
    assert 9 not in fds(st)


def test_client_and_server_ends_share_one_orientation() -> None:
    """fd.name is client->server on both ends of a connection; local/remote follow each end."""
    srv, cli = Synth(pid=10), None
    srv.socket(3).bind(3, ("127.0.0.1", 8080)).listen(3)
    cli = srv.on(20)
    cli.socket(4).connect(4, ("127.0.0.1", 8080))
    cli.fdinfo(4, type="ipv4", l4proto="tcp", is_server=False, cip="127.0.0.1", cport=40000, sip="127.0.0.1",
               sport=8080, name="127.0.0.1:40000->127.0.0.1:8080")  # what live mode reads from the socket
    srv.accept(3, 5, ("127.0.0.1", 40000))
    srv.write(5, b"hello")
    cli.read(4, b"hello")
    st = state_from(tables(threads=[thread_row(10, comm="server"), thread_row(20, comm="client")]))
    fmt = "%proc.name %fd.name %fd.is_server %fd.cip:%fd.cport %fd.sip:%fd.sport %fd.lip:%fd.lport %fd.rip:%fd.rport"
    out = lines(srv.batch(), state=st, fmt=fmt, filter="evt.dir=< and evt.type in (read, write)")
    assert out == [
        "server 127.0.0.1:40000->127.0.0.1:8080 true 127.0.0.1:40000 127.0.0.1:8080 127.0.0.1:8080 127.0.0.1:40000",
        "client 127.0.0.1:40000->127.0.0.1:8080 false 127.0.0.1:40000 127.0.0.1:8080 127.0.0.1:40000 127.0.0.1:8080",
    ]


# --- processes ------------------------------------------------------------------------------------
def test_clone_process_copies_fd_table() -> None:
    s = Synth(pid=P).open("/a", 3)
    s.clone(200)
    child = s.on(200)
    child.close(3).open("/b", 5)
    s.open("/c", 6)
    st = feed(s)
    t = st.threads[200]
    assert (t.tid, t.pid, t.ptid, t.comm, t.exe, t.args, t.cwd, t.uid) == \
        (200, 200, P, "app", "app", ["--serve"], "/home/u", 1000)
    assert t.start_ts > 0
    assert set(fds(st, 200)) == {0, 1, 2, 4, 5}
    assert set(fds(st, P)) == {0, 1, 2, 3, 4, 6}


def test_clone_thread_shares_fd_table() -> None:
    s = Synth(pid=P).clone(101, thread=True)
    s.on(101, P).open("/from-thread", 3)
    s.close(0)
    st = feed(s)
    t = st.threads[101]
    assert (t.tid, t.pid, t.ptid, t.comm) == (101, P, 1, "app")  # a thread's parent is its process's
    assert 101 not in st.fds
    assert fds(st)[3] == ("file", "/from-thread") and 0 not in fds(st)


@pytest.mark.parametrize("name", ["fork", "vfork"])
def test_fork_and_vfork(name: str) -> None:
    s = Synth(pid=P).syscall(name, ret=300)
    s.on(300).syscall(name, ret=0, enter=False)
    st = feed(s)
    assert (st.threads[300].pid, st.threads[300].ptid, st.threads[300].comm) == (300, P, "app")
    assert set(fds(st, 300)) == set(fds(st, P))


def test_clone3_thread_flags_from_payload() -> None:
    flags = (0x10000 | 0x100 | 0x400).to_bytes(8, "little")  # THREAD|VM|FILES
    s = Synth(pid=P).syscall("clone3", ret=102, seg0=flags)
    st = feed(s)
    assert st.threads[102].pid == P


def test_clone_parent_flag() -> None:
    st = feed(Synth(pid=P).clone(201, flags=0x8000 | 17))  # CLONE_PARENT: a sibling
    assert st.threads[201].ptid == 1


def test_child_return_seen_before_parent() -> None:
    s = Synth(pid=P)
    s.on(202).syscall("clone", (0x1200011,), ret=0, enter=False)
    s.syscall("clone", (0x1200011,), ret=202)
    st = feed(s)
    t = st.threads[202]
    assert (t.pid, t.ptid, t.comm) == (202, P, "app")
    assert set(fds(st, 202)) == set(fds(st, P))


def test_failed_clone() -> None:
    st = feed(Synth(pid=P).syscall("clone", (0x1200011,), ret=-errno.EAGAIN))
    assert set(st.threads) == {1, P}


def test_execve() -> None:
    s = Synth(pid=P).open("/keep", 3).open("/drop", 5, O_CLOEXEC).pipe(6, 7, O_CLOEXEC)
    s.socket(8, socket.AF_INET, socket.SOCK_STREAM | socket.SOCK_CLOEXEC).clone(101, thread=True)
    s.execve("bin/tool", ["tool", "-v", "x y"])
    st = feed(s)
    t = st.threads[P]
    assert (t.comm, t.exe, t.args, t.exepath) == ("tool", "tool", ["-v", "x y"], "/home/u/bin/tool")
    assert set(fds(st)) == {0, 1, 2, 3, 4}
    assert 101 not in st.threads  # exec leaves one thread


def test_execve_comm_is_cut_like_the_kernel() -> None:
    st = feed(Synth(pid=P).execve("/usr/bin/a-very-long-program-name", None))
    assert st.threads[P].comm == "a-very-long-pro"
    assert st.threads[P].exe == "/usr/bin/a-very-long-program-name"


def test_failed_execve_changes_nothing() -> None:
    s = Synth(pid=P).open("/drop", 5, O_CLOEXEC).execve("/nope", ["nope"], comm="app", ret=-errno.ENOENT)
    st = feed(s)
    assert (st.threads[P].comm, st.threads[P].exe, st.threads[P].args) == ("app", "app", ["--serve"])
    assert 5 in fds(st)


def test_execve_enter_and_exit_in_different_batches() -> None:
    s = Synth(pid=P)
    st = base()
    s.syscall("execve", seg0=b"/bin/ls", seg1=b"ls\0-l\0", exit=False)
    run(s.batch(), state=st)
    s.syscall("execve", ret=0, seg0=b"ls", enter=False)
    run(s.batch(), state=st)
    assert (st.threads[P].comm, st.threads[P].args) == ("ls", ["-l"])


@pytest.mark.parametrize(
    ("path", "ret", "cwd"),
    [("/tmp", 0, "/tmp"), ("sub", 0, "/home/u/sub"), ("..", 0, "/home"), ("../../..", 0, "/"),
     ("/nope", -errno.ENOENT, "/home/u"), ("a//b/", 0, "/home/u/a/b")],
)
def test_chdir(path: str, ret: int, cwd: str) -> None:
    s = Synth(pid=P).clone(101, thread=True).clone(300)
    s.chdir(path, ret=ret)
    st = feed(s)
    assert st.threads[P].cwd == cwd
    assert st.threads[101].cwd == cwd  # threads share the cwd
    assert st.threads[300].cwd == "/home/u"  # another process does not


def test_fchdir() -> None:
    st = feed(Synth(pid=P).fchdir(4).open("hosts", 3))
    assert st.threads[P].cwd == "/etc"
    assert fds(st)[3] == ("file", "/etc/hosts")
    st = feed(Synth(pid=P).fchdir(4, ret=-errno.EACCES).fchdir(99))
    assert st.threads[P].cwd == "/home/u"


@pytest.mark.parametrize(
    ("name", "args", "ret", "uid"),
    [
        ("setuid", (0,), 0, 0),
        ("setuid", (0,), -errno.EPERM, 1000),
        ("setuid", (0xFFFFFFFF,), 0, 1000),  # -1: unchanged
        ("setreuid", (5, 6), 0, 6),  # the effective uid
        ("setresuid", (7, 8, 9), 0, 8),
        ("setresuid", (7, 0xFFFFFFFF, 9), 0, 1000),
        ("setfsuid", (11,), 0, 11),
    ],
)
def test_setuid_family(name: str, args: tuple[int, ...], ret: int, uid: int) -> None:
    st = feed(Synth(pid=P).syscall(name, args, ret=ret))
    assert st.threads[P].uid == uid


def test_setgid_family() -> None:
    st = feed(Synth(pid=P).syscall("setresgid", (1, 2, 3)))
    assert st.threads[P].gid == 2
    st = feed(Synth(pid=P).syscall("setgid", (0,), ret=-errno.EPERM))
    assert st.threads[P].gid == 1000


def test_user_fields_follow_setuid() -> None:
    s = Synth(pid=P).write(1, b"a").setuid(0).write(1, b"b")
    assert lines(s.batch(), state=base(), fmt="%user.uid %user.name %user.homedir",
                 filter="evt.type=write and evt.dir=<") == ["1000 u /home/u", "0 root /root"]


def test_procexit_reaps_after_the_batch() -> None:
    s = Synth(pid=P).clone(101, thread=True)
    st = feed(s)
    seen: list[str] = []
    s.on(101, P).procexit()
    s.on(101, P).write(1, b"late")  # still known until the batch ends
    run(s.batch(), state=st, on_event=lambda ev: seen.append(f"{ev.tid}:{ev.type}:{ev.thread is not None}"))
    assert seen[0] == "101:procexit:True" and seen[-1] == "101:write:True"
    assert 101 not in st.threads and P in st.threads
    assert P in st.fds  # a thread's exit leaves the process's fds
    feed(s.procexit(), st)
    assert P not in st.threads and P not in st.fds


def test_unknown_threads_are_created_on_first_sight() -> None:
    s = Synth(pid=P).on(103, P).chdir("/srv")  # a thread of a known process, never seen cloned
    s.on(500).chdir("/opt")  # an unknown process
    st = feed(s)
    assert (st.threads[103].pid, st.threads[103].comm, st.threads[103].cwd) == (P, "app", "/srv")
    assert (st.threads[500].pid, st.threads[500].comm, st.threads[500].cwd) == (500, "", "/opt")


def test_latency() -> None:
    s = Synth(pid=P, step=250).open("/a", 3).sleep(10_000)
    s.syscall("read", (3, None, 5), exit=False).sleep(10_000).syscall("read", (3, None, 5), 5, b"hello", enter=False)
    got: list[int] = []
    run(s.batch(), state=base(), latency=True, on_event=lambda ev: got.append(ev.latency))
    assert got == [0, 250, 0, 10_250]


# --- internal records -----------------------------------------------------------------------------
def test_threadinfo() -> None:
    s = Synth(pid=P).threadinfo(comm="worker", cwd="/srv", uid=33, container_id="abc123def456", vtid=1, vpid=1,
                                bogus="ignored")
    st = feed(s)
    t = st.threads[P]
    assert (t.comm, t.cwd, t.uid, t.container_id, t.vtid, t.vpid) == ("worker", "/srv", 33, "abc123def456", 1, 1)
    assert not hasattr(t, "bogus")


def test_fdinfo_creates_and_updates() -> None:
    s = Synth(pid=P).fdinfo(9, type="ipv4", l4proto="udp", sip="8.8.8.8", sport=53, name="8.8.8.8:53")
    s.fdinfo(0, name="/dev/zero")
    st = feed(s)
    assert (fd(st, 9).type, fd(st, 9).l4proto, fd(st, 9).name) == ("ipv4", "udp", "8.8.8.8:53")
    assert fds(st)[0] == ("file", "/dev/zero")


def test_container() -> None:
    s = Synth(pid=P).threadinfo(container_id="abc123def456").container("abc123def456", name="web", image="nginx:1")
    s.write(1, b"x")
    st = base()
    out = lines(s.batch(), state=st, fmt="%container.id %container.name %container.image",
                filter="evt.type=write")
    assert out == ["abc123def456 web nginx:1"] * 2
    assert st.containers["abc123def456"]["name"] == "web"


@pytest.mark.parametrize(
    ("samples", "pcts"),
    [
        ([(0, 10, 0), (10**9, 50, 10)], [0.0, 50.0]),  # 50 ticks of 1/100 s in 1 s
        ([(0, 0, 0), (2 * 10**9, 100, 100)], [0.0, 100.0]),  # two seconds of one full CPU
        ([(0, 0, 0), (10**9, 150, 50)], [0.0, 200.0]),  # two CPUs busy
        ([(0, 5, 5), (5 * 10**8, 5, 5), (10**9, 10, 5)], [0.0, 0.0, 10.0]),
    ],
)
def test_procinfo_cpu_percent(samples: list[tuple[int, int, int]], pcts: list[float]) -> None:
    st = base()
    got: list[float] = []
    for dt, utime, stime in samples:
        s = Synth(start_ts=10**18 + dt, pid=P).procinfo(utime, stime)
        run(s.batch(), state=st, show_internal=True, filter="evt.type=procinfo",
            on_event=lambda ev: got.append(ev.thread.cpu_pct if ev.thread else -1.0))
    assert got == pytest.approx(pcts)
    assert lines(Synth(pid=P).procinfo(1, 2).batch(), state=base(), fmt="%evt.info", show_internal=True) == \
        ["cpu_usr=1 cpu_sys=2 "]  # the last parameter's space too, as sysdig prints evt.info


def test_procinfo_of_unknown_thread_ignored() -> None:
    st = feed(Synth(pid=999).procinfo(10, 10))
    assert 999 not in st.threads


# --- tables ---------------------------------------------------------------------------------------
def busy_state() -> State:
    s = Synth(pid=P).open("/etc/passwd", 3, O_CLOEXEC).socket(5).bind(5, ("0.0.0.0", 80)).listen(5)
    s.accept(5, 6, ("1.2.3.4", 999)).clone(101, thread=True).clone(300)
    s.on(300).chdir("/tmp").threadinfo(container_id="c0ffee000001", vtid=1, vpid=1)
    s.container("c0ffee000001", name="db", labels={"a": "b"})
    s.socket(7, socket.AF_INET6).connect(7, ("::1", 5432)).pipe(8, 9)
    return feed(s)


def test_tables_round_trip_through_msgpack() -> None:
    st = busy_state()
    tabs = st.tables()
    wire = msgpack.unpackb(msgpack.packb(tabs, use_bin_type=True), raw=False, strict_map_key=False)
    back = state_from(wire)
    assert back.tables() == tabs
    assert {t: th.to_row() for t, th in back.threads.items()} == {t: th.to_row() for t, th in st.threads.items()}
    assert back.fds == st.fds
    assert back.users == st.users and back.groups == st.groups and back.containers == st.containers


def test_tables_round_trip_through_a_capture(tmp_path: Any) -> None:
    st = busy_state()
    path = write_capture(tmp_path / "t.kcap", Synth(pid=P).write(1, b"x").batch(), tabs=st.tables())
    back = State()
    with CaptureReader(path) as r:
        for item in r:
            if isinstance(item, TableBlock):
                back.load_table(item.kind, item.rows)
    assert back.tables() == st.tables()


def test_load_table_keeps_dict_identity() -> None:
    """Loading a table replaces the contents in place: closures over the dicts see the new rows."""
    st = State()
    threads, fds_ = st.threads, st.fds
    src = busy_state().tables()
    for kind, rows in src.items():
        st.load_table(kind, rows)
    assert st.threads is threads and st.fds is fds_
    assert st.tables() == src


def test_thread_and_fd_rows_complete() -> None:
    t = Thread.from_row(thread_row(7, 5, comm="x", cwd="/"))
    assert (t.tid, t.pid, t.comm, t.exe, t.cwd) == (7, 5, "x", "x", "/")
    with pytest.raises(ValueError):
        thread_row(1, bogus=1)
    with pytest.raises(ValueError):
        fd_row(1, bogus=1)
    assert Fd.from_row(fd_row(3, "pipe")).type == "pipe"


def test_execve_from_a_non_leader_thread() -> None:
    s = Synth(pid=P).clone(101, thread=True)
    s.on(101, P).syscall("execve", seg0=b"/bin/ls", seg1=b"ls\0-l\0", exit=False)
    s.syscall("execve", ret=0, seg0=b"ls", enter=False)  # the exit comes as thread 100
    st = feed(s)
    t = st.threads[P]
    assert (t.comm, t.exe, t.args, t.exepath) == ("ls", "ls", ["-l"], "/bin/ls")
    assert 101 not in st.threads


def test_main_thread_exit_keeps_fds_while_threads_live() -> None:
    s = Synth(pid=P).open("/data", 3).clone(101, thread=True)
    s.procexit()
    st = feed(s)
    s.on(101, P).read(3, b"x")
    out = lines(s.batch(), state=st, fmt="%fd.name", filter="evt.dir=<")
    assert out == ["/data"]


def test_a_child_running_before_its_parents_clone_returns_has_its_fds() -> None:
    """fork's child often runs first: its own return is paired with the parent's clone enter (same
    arguments), so the pipe it inherited is named at once, and the parent's return changes nothing."""
    from tracer.testing import CLONE_FORK, Synth, lines, state_from, tables, thread_row

    s = Synth(pid=300).pipe(8, 9)
    s.syscall("clone", (CLONE_FORK,), ret=301, exit=False)
    c = s.on(301)
    c.syscall("clone", (CLONE_FORK,), ret=0, enter=False)
    c.close(8).write(9, b"hi").dup2(9, 1)
    s.syscall("clone", (CLONE_FORK,), ret=301, enter=False)
    c.write(1, b"again")
    st = state_from(tables(threads=[thread_row(300, comm="sh", cwd="/srv")]))
    out = lines(s.batch(), state=st, fmt="%proc.name %proc.ppid %evt.type %fd.num %fd.type",
                filter="thread.tid=301 and evt.dir=< and evt.type in (close, write, dup2)")
    assert out == ["sh 300 close 8 <NA>", "sh 300 write 9 pipe", "sh 300 dup2 1 pipe", "sh 300 write 1 pipe"]
    assert st.threads[301].cwd == "/srv" and sorted(st.fds[301]) == [1, 9]
    assert sorted(st.fds[300]) == [8, 9]


def test_twin_forks_with_the_same_arguments_are_not_guessed() -> None:
    from tracer.testing import CLONE_FORK, Synth, lines, state_from, tables, thread_row

    s = Synth(pid=300).pipe(8, 9)
    s.syscall("clone", (CLONE_FORK,), ret=301, exit=False)
    s.on(302, 300).syscall("clone", (CLONE_FORK,), ret=303, exit=False)
    s.on(301).syscall("clone", (CLONE_FORK,), ret=0, enter=False).write(9, b"hi")
    st = state_from(tables(threads=[thread_row(300, comm="sh"), thread_row(302, 300, comm="sh")]))
    out = lines(s.batch(), state=st, fmt="%fd.type", filter="thread.tid=301 and evt.type=write and evt.dir=<")
    assert out == ["<NA>"]  # two candidate parents: the child stays unknown until one returns
