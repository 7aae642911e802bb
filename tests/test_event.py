"""Parameter rendering (sysdig's evt.info) for every parameter type, over records the synthetic
source lays out as the probe does; expected strings are written out by hand, with numbers taken
from the os, socket, errno and signal modules rather than from ktrace's own tables.
"""

from __future__ import annotations

import base64
import errno
import os
import signal
import socket
import struct
from collections.abc import Callable

import pytest

from tracer.event import Event, RenderOptions, hexdump, render_buffer, s32, s64
from tracer.schema import record as R
from tracer.state.state import State
from tracer.testing import AT_FDCWD, Synth, fd_row, run, state_from, tables, thread_row

PID = 100


def world() -> State:
    """Process 100 ('app', cwd /home/u) with one fd of each kind."""
    return state_from(tables(
        threads=[thread_row(PID, comm="app", cwd="/home/u", ptid=1), thread_row(1, comm="init", cwd="/")],
        fds={PID: [
            fd_row(3, "file", "/etc/passwd"),
            fd_row(4, "directory", "/etc"),
            fd_row(5, "ipv4", "10.0.0.2:40000->10.0.0.1:80", l4proto="tcp", cip="10.0.0.2", cport=40000,
                   sip="10.0.0.1", sport=80, is_server=False),
            fd_row(6, "unix", "/run/x.sock"),
            fd_row(7, "pipe", ""),
            fd_row(8, "ipv6", "::1:5353", l4proto="udp", sip="::1", sport=5353, is_server=True),
            fd_row(10, "event", ""),
        ]},
    ))


Build = Callable[[Synth], object]


def infos(build: Build, opts: RenderOptions | None = None, snaplen: int = 80) -> list[str]:
    """evt.info of every event the build makes, rendered when it is delivered (as ktrace prints)."""
    s = Synth(pid=PID, snaplen=snaplen)
    build(s)
    o = opts or RenderOptions()
    out: list[str] = []
    run(s.batch(), state=world(), on_event=lambda ev: out.append(ev.info_str(o)))
    return out


def enter(build: Build, opts: RenderOptions | None = None, snaplen: int = 80) -> str:
    return infos(build, opts, snaplen)[0]


def exit_(build: Build, opts: RenderOptions | None = None, snaplen: int = 80) -> str:
    return infos(build, opts, snaplen)[-1]


# --- fds ------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("build", "expected"),
    [
        (lambda s: s.read(3, b"x"), "fd=3(<f>/etc/passwd) size=1 "),
        (lambda s: s.syscall("fstat", (4,)), "fd=4(<d>/etc) "),
        (lambda s: s.write(5, b"x"), "fd=5(<4t>10.0.0.2:40000->10.0.0.1:80) size=1 "),
        (lambda s: s.write(6, b"x"), "fd=6(<u>/run/x.sock) size=1 "),
        (lambda s: s.write(7, b"x"), "fd=7(<p>) size=1 "),
        (lambda s: s.syscall("recvfrom", (8, None, 9)), "fd=8(<6u>::1:5353) size=9 "),
        (lambda s: s.syscall("read", (10, None, 8)), "fd=10(<e>) size=8 "),
        (lambda s: s.read(42, b"x"), "fd=42 size=1 "),  # not in the table
        (lambda s: s.syscall("fstat", (-1 & 0xFFFFFFFF,)), "fd=-1 "),
        (lambda s: s.syscall("fstat", (2**64 - 1,)), "fd=-1 "),  # -1 sign-extended in the register
        (lambda s: s.syscall("epoll_ctl", (10, 1, 3)), "epfd=10(<e>) op=1(EPOLL_CTL_ADD) fd=3(<f>/etc/passwd) "),
        (lambda s: s.syscall("sendfile", (5, 3, 0, 4096)),
         "out_fd=5(<4t>10.0.0.2:40000->10.0.0.1:80) in_fd=3(<f>/etc/passwd) size=4096 "),
    ],
)
def test_fd_params(build: Build, expected: str) -> None:
    assert enter(build) == expected


@pytest.mark.parametrize(
    ("build", "expected"),
    [
        (lambda s: s.open("/nope", -errno.ENOENT), "fd=-2(ENOENT) name=/nope flags=0(O_RDONLY) mode=0 "),
        (lambda s: s.open("/root/x", -errno.EACCES, os.O_WRONLY),
         "fd=-13(EACCES) name=/root/x flags=1(O_WRONLY) mode=0 "),
        (lambda s: s.close(99, ret=-errno.EBADF), "res=-9(EBADF) "),
        (lambda s: s.read(3, b"", ret=-errno.EAGAIN), "res=-11(EAGAIN) data= "),
        (lambda s: s.connect(5, ("10.0.0.1", 81), ret=-errno.ECONNREFUSED),
         "res=-111(ECONNREFUSED) tuple=10.0.0.2:40000->10.0.0.1:80 fd=5(<4t>10.0.0.2:40000->10.0.0.1:80) "),
        (lambda s: s.syscall("nanosleep", ret=-512), "res=-512(ERESTARTSYS) "),
        (lambda s: s.syscall("nanosleep", ret=-errno.EINTR), "res=-4(EINTR) "),
        (lambda s: s.read(3, b"abc"), "res=3 data=abc "),
        (lambda s: s.close(3), "res=0 "),
    ],
)
def test_results_and_errno(build: Build, expected: str) -> None:
    assert exit_(build) == expected


def test_open_result_names_the_new_fd() -> None:
    assert exit_(lambda s: s.open("/etc/hosts", 9)) == "fd=9(<f>/etc/hosts) name=/etc/hosts flags=0(O_RDONLY) mode=0 "


# --- flags, enums, numbers ----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("build", "expected"),
    [
        (lambda s: s.open("/f", 9, os.O_RDONLY | os.O_CLOEXEC), "flags=524288(O_RDONLY|O_CLOEXEC)"),
        (lambda s: s.open("/f", 9, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644),
         "flags=577(O_WRONLY|O_CREAT|O_TRUNC) mode=0644"),
        (lambda s: s.open("/f", 9, os.O_RDWR | os.O_APPEND | os.O_NONBLOCK), "flags=3074(O_RDWR|O_APPEND|O_NONBLOCK)"),
        (lambda s: s.open("/d", 9, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC),
         "flags=589824(O_RDONLY|O_DIRECTORY|O_CLOEXEC)"),
        (lambda s: s.open("/f", 9, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600),
         "flags=193(O_WRONLY|O_CREAT|O_EXCL) mode=0600"),
        (lambda s: s.socket(9, socket.AF_INET, socket.SOCK_STREAM | socket.SOCK_NONBLOCK | socket.SOCK_CLOEXEC),
         "domain=2(AF_INET) type=526337(SOCK_STREAM|SOCK_NONBLOCK|SOCK_CLOEXEC) proto=0"),
        (lambda s: s.socket(9, socket.AF_INET6, socket.SOCK_DGRAM, socket.IPPROTO_UDP),
         "domain=10(AF_INET6) type=2(SOCK_DGRAM) proto=17"),
        (lambda s: s.socket(9, socket.AF_UNIX, socket.SOCK_SEQPACKET), "domain=1(AF_UNIX) type=5(SOCK_SEQPACKET)"),
        (lambda s: s.socket(9, socket.AF_NETLINK, socket.SOCK_RAW), "domain=16(AF_NETLINK) type=3(SOCK_RAW)"),
        (lambda s: s.socket(9, 99, 1), "domain=99 type=1(SOCK_STREAM)"),  # unknown family: the number
        (lambda s: s.fcntl(3, 1030, 10, ret=11), "cmd=1030(F_DUPFD_CLOEXEC)"),
        (lambda s: s.fcntl(3, 4, 2048), "cmd=4(F_SETFL)"),
        (lambda s: s.fcntl(3, 9999), "cmd=9999 "),
        (lambda s: s.syscall("lseek", (3, -5 & (2**64 - 1), os.SEEK_END)), "offset=-5 whence=2(SEEK_END)"),
        (lambda s: s.syscall("shutdown", (5, socket.SHUT_RDWR)), "how=2(SHUT_RDWR)"),
        (lambda s: s.syscall("kill", (4242, signal.SIGKILL)), "pid=4242 sig=9(SIGKILL)"),
        (lambda s: s.syscall("kill", (-1 & 0xFFFFFFFF, signal.SIGTERM)), "pid=-1 sig=15(SIGTERM)"),
        (lambda s: s.syscall("tgkill", (7, 8, signal.SIGUSR1)), "pid=7 tid=8 sig=10(SIGUSR1)"),
        (lambda s: s.syscall("kill", (1, 0)), "pid=1 sig=0 "),
        (lambda s: s.syscall("mmap", (0, 4096, 3, 0x22, 2**64 - 1, 0)),
         "addr=0 length=4096 prot=3(PROT_READ|PROT_WRITE) flags=34(MAP_PRIVATE|MAP_ANONYMOUS) fd=-1 offset=0"),
        (lambda s: s.syscall("mprotect", (0x7F00DEAD0000, 8192, 0)), "addr=7F00DEAD0000 length=8192 prot=0 "),
        (lambda s: s.syscall("flock", (3, 2 | 4)), "operation=6(LOCK_EX|LOCK_NB)"),
        (lambda s: s.syscall("clone", (0x3D0F00,)),
         "flags=4001536(CLONE_VM|CLONE_FS|CLONE_FILES|CLONE_SIGHAND|CLONE_THREAD|CLONE_SYSVSEM|CLONE_SETTLS|"
         "CLONE_PARENT_SETTID|CLONE_CHILD_CLEARTID)"),
        (lambda s: s.setuid(1000), "uid=1000 "),
        (lambda s: s.setuid(0xFFFFFFFF), "uid=4294967295 "),
        (lambda s: s.syscall("setresgid", (5, 6, 7)), "rgid=5 egid=6 sgid=7 "),
        (lambda s: s.syscall("prctl", (15, 0x1234)), "option=15(PR_SET_NAME) arg2=1234 "),
        (lambda s: s.syscall("wait4", (2**32 - 1, None, 1)), "pid=-1 options=1 "),
    ],
)
def test_flags_enums_numbers(build: Build, expected: str) -> None:
    both = " ".join(infos(build))
    assert expected in both


@pytest.mark.parametrize(
    ("build", "expected"),
    [
        (lambda s: s.syscall("access", ret=0, seg0=b"/f", args=(None, os.R_OK | os.W_OK)), "mode=6(W_OK|R_OK)"),
        (lambda s: s.syscall("newfstatat", (AT_FDCWD, None, None, 0x100), seg0=b"/f"),
         "flags=256(AT_SYMLINK_NOFOLLOW)"),
        (lambda s: s.syscall("unlinkat", (AT_FDCWD, None, 0x200), seg0=b"/d"), "flags=512(AT_REMOVEDIR)"),
        (lambda s: s.syscall("newfstatat", (AT_FDCWD, None, None, 0x2), seg0=b"/f"), "flags=2 "),  # no named bit
        (lambda s: s.syscall("brk", (0,), ret=0x55D5A4E1F000), "res=55D5A4E1F000 "),
        (lambda s: s.syscall("chmod", (None, 0o4755), seg0=b"/bin/x"), "mode=04755"),
        (lambda s: s.syscall("memfd_create", (None, 1), ret=11, seg0=b"jit"), "fd=11(<m>memfd:jit) name=jit flags=1"),
    ],
)
def test_exit_flags_enums_numbers(build: Build, expected: str) -> None:
    assert expected in exit_(build)


# --- dirfds and paths -----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("build", "expected"),
    [
        (lambda s: s.open("/etc/hosts", 9), "name=/etc/hosts flags"),
        (lambda s: s.open("rel.txt", 9), "name=rel.txt(/home/u/rel.txt) "),
        (lambda s: s.open("../x", 9), "name=../x(/home/x) "),
        (lambda s: s.open("./a/./b/../c", 9), "name=./a/./b/../c(/home/u/a/c) "),
        (lambda s: s.open(".", 9, os.O_DIRECTORY), "name=.(/home/u) "),
        (lambda s: s.open("passwd", 9, dirfd=4), "dirfd=4(<d>/etc) name=passwd(/etc/passwd) "),
        (lambda s: s.open("a/b", 9, dirfd=AT_FDCWD), "dirfd=-100(AT_FDCWD) name=a/b(/home/u/a/b) "),
        (lambda s: s.open("/abs", 9, dirfd=4), "dirfd=4(<d>/etc) name=/abs "),
        (lambda s: s.open("x", 9, dirfd=42), "dirfd=42 name=x "),  # unknown dirfd: left as is
        (lambda s: s.syscall("renameat", (4, None, AT_FDCWD, None), seg0=b"old", seg1=b"new"),
         "olddirfd=4(<d>/etc) oldpath=old(/etc/old) newdirfd=-100(AT_FDCWD) newpath=new(/home/u/new) "),
        (lambda s: s.syscall("stat", seg0=b"f"), "path=f(/home/u/f) "),
        (lambda s: s.syscall("symlink", seg0=b"target", seg1=b"link"), "target=target linkpath=link(/home/u/link) "),
        (lambda s: s.chdir("sub"), "path=sub(/home/u/sub) "),
    ],
)
def test_paths(build: Build, expected: str) -> None:
    assert expected in exit_(build)


def test_path_resolved_against_cwd_at_the_time() -> None:
    got = infos(lambda s: s.chdir("/tmp").open("a", 9).chdir("..").open("b", 10))
    assert "name=a(/tmp/a) " in got[3]
    assert "name=b(/b) " in got[7]


def test_execve_filename_and_argv() -> None:
    got = infos(lambda s: s.execve("./run.sh", ["run.sh", "-c", "echo hi", "", "x"]))
    assert got[0] == "filename=./run.sh(/home/u/run.sh) args=run.sh.-c.echo hi..x "
    assert got[1] == "res=0 exe=run.sh args=-c.echo hi..x tid=100 pid=100 ptid=1 cwd=/home/u comm=run.sh "


def test_argv_is_cut_to_the_probe_limit() -> None:
    argv = [f"a{i}" for i in range(20)]
    got = enter(lambda s: s.execve("/bin/echo", argv))
    assert got == "filename=/bin/echo args=" + ".".join(argv[:16]) + " "


# --- socket addresses -----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("addr", "expected"),
    [
        (("10.0.0.1", 80), "10.0.0.1:80"),
        (("0.0.0.0", 0), "0.0.0.0:0"),
        (("255.255.255.255", 65535), "255.255.255.255:65535"),
        (("::1", 443), "::1:443"),
        (("2001:db8::7", 8080), "2001:db8::7:8080"),
        (("::ffff:10.1.2.3", 22), "::ffff:a01:203:22"),
        (("fe80::1:2:3:4", 1), "fe80::1:2:3:4:1"),
        ("/run/docker.sock", "/run/docker.sock"),
        ("@/tmp/.X11-unix/X0", "@/tmp/.X11-unix/X0"),
        (struct.pack("<H", socket.AF_NETLINK) + b"\0" * 10, "AF_NETLINK"),
        (struct.pack("<H", 200) + b"\0" * 14, "family 200"),
        (b"\x02", ""),  # too short to hold a family
    ],
)
def test_sockaddr(addr: object, expected: str) -> None:
    got = enter(lambda s: s.connect(5, addr))  # type: ignore[arg-type]
    assert got == f"fd=5(<4t>10.0.0.2:40000->10.0.0.1:80) addr={expected} "


def test_sockaddr_matches_socket_module_layout() -> None:
    """The bytes the builder lays out are what the kernel ABI holds: check them against a real
    socket's getsockname() rendered by sysdig's rule (ip:port)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sk:
        sk.bind(("127.0.0.1", 0))
        ip, port = sk.getsockname()
    got = exit_(lambda s: s.syscall("bind", (9,), seg0=struct.pack("<H", socket.AF_INET) + struct.pack(">H", port)
                                    + socket.inet_aton(ip) + b"\0" * 8))
    assert got == f"res=0 addr={ip}:{port} "


def test_sendto_recvfrom_addresses() -> None:
    assert exit_(lambda s: s.sendto(9, b"q", ("10.0.0.2", 53))) == "res=1 data=q addr=10.0.0.2:53 "
    assert exit_(lambda s: s.recvfrom(9, b"ab")) == "res=2 data=ab addr= "


def test_connect_and_accept_tuples() -> None:
    got = infos(lambda s: s.socket(9).connect(9, ("10.9.9.9", 443)))
    assert got[3] == "res=0 tuple=0.0.0.0:0->10.9.9.9:443 fd=9(<4t>0.0.0.0:0->10.9.9.9:443) "
    got = infos(lambda s: s.socket(9).bind(9, ("0.0.0.0", 80)).listen(9).accept(9, 11, ("1.2.3.4", 5555)))
    assert got[-1] == "fd=11(<4t>1.2.3.4:5555->0.0.0.0:80) tuple=1.2.3.4:5555->0.0.0.0:80 "
    assert got[-2] == ""  # accept's enter has no parameters
    got = infos(lambda s: s.accept(9, 12, ("1.2.3.4", 1), flags=socket.SOCK_CLOEXEC))
    assert got[0] == "flags=524288(SOCK_CLOEXEC) "  # no base type in accept4's flags


def test_fd_pairs() -> None:
    assert exit_(lambda s: s.pipe(11, 12)) == "res=0 fd1=11(<p>) fd2=12(<p>) "
    assert exit_(lambda s: s.pipe(11, 12, os.O_CLOEXEC)) == "res=0 fd1=11(<p>) fd2=12(<p>) "
    assert exit_(lambda s: s.socketpair(11, 12)) == "res=0 fd1=11(<u>) fd2=12(<u>) "
    assert exit_(lambda s: s.pipe(11, 12, ret=-errno.EMFILE)) == "res=-24(EMFILE) fd1=11 fd2=12 "


def test_openat2_how_and_clone3_flags() -> None:
    how = struct.pack("<QQQ", os.O_RDONLY | os.O_CLOEXEC, 0o640, 8)
    got = exit_(lambda s: s.syscall("openat2", (AT_FDCWD, None, None, 24), ret=9, seg0=b"f", seg1=how))
    assert got == ("fd=9(<f>/home/u/f) dirfd=-100(AT_FDCWD) name=f(/home/u/f) "
                   "flags=524288(O_RDONLY|O_CLOEXEC) mode=0640 resolve=8 ")
    got = exit_(lambda s: s.syscall("clone3", ret=101, seg0=struct.pack("<Q", 0x10000 | 0x100), seg1=b"app\0"))
    assert got == "res=101 flags=65792(CLONE_VM|CLONE_THREAD) comm=app "


# --- buffers --------------------------------------------------------------------------------------
HTTP = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"


@pytest.mark.parametrize(
    ("mode", "data", "expected"),
    [
        ("normal", b"hello", "hello"),
        ("normal", HTTP, "GET / HTTP/1.1..Host: x...."),
        ("normal", b"\x00\x01\x7f\xff\ttab", ".....tab"),
        # -A: printable characters and line ends only (a CR, or a CR LF, is one newline)
        ("ascii", b"a\tb\nc\x00\x7f", "\nab\nc"),
        ("ascii", b"x\r\ny\rz ", "\nx\ny\nz "),
        # -X and -x: each line ends with a newline; an odd last line's text starts 2 columns left
        # (sysdig 0.29's lines: tests/capture/scap/test_scap_render.py compares them on a file)
        ("hex_ascii", HTTP,
         "\n\t0x0000: 4745 5420 2f20 4854 5450 2f31 2e31 0d0a  GET / HTTP/1.1..\n"
         "\t0x0010: 486f 7374 3a20 780d 0a0d 0a            Host: x....\n"),
        ("hex", HTTP,
         "\n\t0x0000: 4745 5420 2f20 4854 5450 2f31 2e31 0d0a\n"
         "\t0x0010: 486f 7374 3a20 780d 0a0d 0a\n"),
        ("hex_ascii", b"\x00" * 16,
         "\n\t0x0000: 0000 0000 0000 0000 0000 0000 0000 0000  ................\n"),
        ("base64", HTTP, base64.b64encode(HTTP).decode()),
        # sysdig's own line (reference/sysdig.md, section 3)
        ("hex_ascii", b"HTTP/1.1 200 OK\r",
         "\n\t0x0000: 4854 5450 2f31 2e31 2032 3030 204f 4b0d  HTTP/1.1 200 OK.\n"),
    ],
)
def test_buffer_modes(mode: str, data: bytes, expected: str) -> None:
    assert exit_(lambda s: s.write(3, data), opts=RenderOptions(mode=mode)) == f"res={len(data)} data={expected} "


def test_hexdump_against_independent_rendering() -> None:
    data = bytes(range(256)) * 2
    *lines, end = hexdump(data).split("\n")
    assert end == "" and len(lines) == len(data) // 16  # every line ends with a newline
    for i, line in enumerate(lines):
        chunk = data[16 * i:16 * i + 16]
        hexpart = " ".join(chunk.hex()[k:k + 4] for k in range(0, 32, 4))
        text = "".join(chr(b) if 0x20 <= b <= 0x7E else "." for b in chunk)
        assert line == f"\t0x{16 * i:04x}: {hexpart}  {text}"


@pytest.mark.parametrize(
    ("n", "verbose", "shown"),
    [
        (79, False, "a" * 79),
        (80, False, "a" * 80),
        (81, False, "a" * 77 + "..."),
        (200, False, "a" * 77 + "..."),
        (200, True, "a" * 200),
    ],
)
def test_buffer_truncated_to_80_chars(n: int, verbose: bool, shown: str) -> None:
    """80 characters in all, the last three "...": sysdig 0.29 prints a 306-byte HTTP reply as
    ``HTTP/1.1 200 OK..Server: nginx/1.22.1..Date: Sun, 22 Nov 2026 02:52:38 GMT..C...``."""
    got = exit_(lambda s: s.write(3, b"a" * n), opts=RenderOptions(verbose=verbose), snaplen=1000)
    assert got == f"res={n} data={shown} "


@pytest.mark.parametrize(("snaplen", "n"), [(80, 100), (16, 17), (0, 5), (1000, 999)])
def test_snaplen_cuts_captured_data(snaplen: int, n: int) -> None:
    s = Synth(pid=PID, snaplen=snaplen)
    s.write(3, b"z" * n)
    evs = run(s.batch(), state=world())
    x = evs[-1]
    assert x.ret == n
    assert x.seg0 == b"z" * min(n, snaplen)
    assert bool(x.flags & R.RF_TRUNC0) == (n > snaplen)


def test_render_buffer_empty_modes() -> None:
    assert render_buffer(b"", RenderOptions(mode="base64")) == ""
    assert exit_(lambda s: s.write(3, b"", ret=0)) == "res=0 data= "


# --- syscalls without typed parameters ------------------------------------------------------------
@pytest.mark.parametrize(
    ("args", "ret", "enter_info", "exit_info"),
    [
        ((0x10, 0, 3), 16, "a0=0x10 a1=0x0 a2=0x3 ", "res=16 "),
        ((), 0, "", "res=0 "),
        ((0, 0, 0, 0, 0, 7), -errno.EAGAIN, "a0=0x0 a1=0x0 a2=0x0 a3=0x0 a4=0x0 a5=0x7 ", "res=-11(EAGAIN) "),
        ((2**64 - 1,), -5000, "a0=0xffffffffffffffff ", "res=-5000 "),  # beyond errno range: a number
    ],
)
def test_untyped_syscall_raw_args(args: tuple[int, ...], ret: int, enter_info: str, exit_info: str) -> None:
    got = infos(lambda s: s.syscall("getrandom", args, ret=ret))
    assert got == [enter_info, exit_info]


def test_every_syscall_renders() -> None:
    """No parameter type makes rendering fail, whatever the registers hold, on either side."""
    from tracer.schema.events import SYSCALLS

    s = Synth(pid=PID)
    for info in SYSCALLS:
        if info is None:
            continue
        segs = [b"", b""]
        for c in info.captures:
            segs[c.seg] = b"\x02\x00\x00\x50\x0a\x00\x00\x01" + b"\x00" * 16
        s.syscall(info.name, (3, 2**64 - 1, 4, 0, 7, 1), ret=-1, seg0=segs[0], seg1=segs[1])
        s.syscall(info.name, (3, 2**64 - 1, 4, 0, 7, 1), ret=5, seg0=segs[0], seg1=segs[1])
    n = 0

    def check(ev: Event) -> None:
        nonlocal n
        for mode in ("normal", "ascii", "hex_ascii", "hex", "base64"):
            assert isinstance(ev.info_str(RenderOptions(mode=mode)), str)
        n += 1

    run(s.batch(), state=world(), on_event=check)
    assert n == 4 * sum(1 for i in SYSCALLS if i is not None)


# --- typed values ---------------------------------------------------------------------------------
@pytest.mark.parametrize(("v", "s32v", "s64v"), [
    (0, 0, 0), (0x7FFFFFFF, 2**31 - 1, 2**31 - 1), (0xFFFFFFFF, -1, 2**32 - 1), (2**64 - 1, -1, -1),
    (2**63, 0, -(2**63)), (0x1_0000_0005, 5, 2**32 + 5),
])
def test_sign_helpers(v: int, s32v: int, s64v: int) -> None:
    assert (s32(v), s64(v)) == (s32v, s64v)


def test_fd_num_and_fd_of_events() -> None:
    s = Synth(pid=PID)
    s.read(3, b"x").open("/x", 9).open("/y", -errno.ENOENT).close(5).syscall("getpid", ret=PID)
    got: list[tuple[str, str, int | None, str | None]] = []
    run(s.batch(), state=world(),
        on_event=lambda ev: got.append((ev.dir, ev.type, ev.fd_num(), ev.fd.name if ev.fd else None)))
    assert got == [
        (">", "read", 3, "/etc/passwd"), ("<", "read", 3, "/etc/passwd"),
        (">", "open", None, None), ("<", "open", 9, "/x"),
        (">", "open", None, None), ("<", "open", -2, None),
        (">", "close", 5, "10.0.0.2:40000->10.0.0.1:80"), ("<", "close", 5, None),  # closed by then
        (">", "getpid", None, None), ("<", "getpid", None, None),
    ]
