"""Parameter types and payload capture kinds of the event table."""

from __future__ import annotations

import enum


class PT(enum.Enum):
    """How a parameter is stored and rendered (sysdig's PT_* types, trimmed to what ktrace decodes)."""

    FD = "fd"  # a file descriptor: rendered 3(<f>/etc/passwd)
    RES = "res"  # a return value: n, or -2(ENOENT)
    RESFD = "resfd"  # a return value that is a new fd: rendered like FD, or -2(ENOENT)
    INT = "int"  # a C int (32 bits)
    INT64 = "i64"
    UINT = "uint"
    HEX = "hex"
    OCT = "oct"  # modes
    FLAGS = "flags"  # bit flags: 524288(O_RDONLY|O_CLOEXEC); table named by Param.fmt
    ENUM = "enum"  # one value of a table: 2(SIGINT)
    DIRFD = "dirfd"  # -100(AT_FDCWD) or an fd
    PID = "pid"
    UID = "uid"
    GID = "gid"
    SIGNAL = "signal"
    PATH = "path"  # a path string, resolved against cwd or dirfd
    STR = "str"  # a string shown as is
    BUF = "buf"  # I/O data: the first snaplen bytes
    SOCKADDR = "sockaddr"  # 127.0.0.1:80, /run/x.sock
    TUPLE = "tuple"  # a socket's client->server tuple, from state
    ARGV = "argv"  # NUL-separated arguments, shown dot-separated like sysdig
    FDPAIR = "fdpair"  # two int32 fds at a pointer (pipe, socketpair)
    U64 = "u64"  # 8 bytes read from a pointer (clone3 flags)
    OPENHOW = "openhow"  # struct open_how {u64 flags, mode, resolve}
    STATE = "state"  # a value from the thread table after the event (execve's exe, args, cwd)


class CK(enum.IntEnum):
    """Payload capture kinds: what the probe copies from user memory into a segment.

    The numbers appear in the generated probe header; append only.
    """

    STR = 1  # NUL-terminated string at a pointer, up to KT_PATHMAX
    BUF = 2  # bytes at a pointer, length from ret or an argument, up to KT_SNAPLEN
    SOCKADDR = 3  # sockaddr at a pointer, length in an argument
    SOCKADDR_PLEN = 4  # sockaddr at a pointer, length in an int at another pointer
    IOV = 5  # struct iovec array: data gathered up to the length, up to KT_SNAPLEN
    MSG = 6  # struct msghdr: name into this segment, data into the next
    MMSG = 7  # struct mmsghdr array: the first message, like MSG
    ARGV = 8  # char *argv[]: strings joined by NUL, up to KT_ARGMAX
    RAW = 9  # a fixed number of bytes at a pointer
    COMM = 10  # the task's comm after the call (execve)
