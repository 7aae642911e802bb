"""Flag and enum tables named by the event table's ``fmt``, and errno names (x86_64 Linux values)."""

from __future__ import annotations

import errno
import signal
from typing import Final

FLAGS: Final[dict[str, list[tuple[int, str]]]] = {
    "open_flags": [
        (0o100, "O_CREAT"), (0o200, "O_EXCL"), (0o400, "O_NOCTTY"), (0o1000, "O_TRUNC"),
        (0o2000, "O_APPEND"), (0o4000, "O_NONBLOCK"), (0o10000, "O_DSYNC"), (0o20000, "O_ASYNC"),
        (0o40000, "O_DIRECT"), (0o100000, "O_LARGEFILE"), (0o200000, "O_DIRECTORY"),
        (0o400000, "O_NOFOLLOW"), (0o1000000, "O_NOATIME"), (0o2000000, "O_CLOEXEC"),
        (0o4000000, "O_SYNC"), (0o10000000, "O_PATH"), (0o20000000, "O_TMPFILE"),
    ],
    "at_flags": [
        (0x100, "AT_SYMLINK_NOFOLLOW"), (0x200, "AT_REMOVEDIR"), (0x400, "AT_SYMLINK_FOLLOW"),
        (0x800, "AT_NO_AUTOMOUNT"), (0x1000, "AT_EMPTY_PATH"), (0x8000, "AT_RECURSIVE"),
    ],
    "rename_flags": [(1, "RENAME_NOREPLACE"), (2, "RENAME_EXCHANGE"), (4, "RENAME_WHITEOUT")],
    "access_mode": [(1, "X_OK"), (2, "W_OK"), (4, "R_OK")],
    "socket_type": [(0o4000, "SOCK_NONBLOCK"), (0o2000000, "SOCK_CLOEXEC")],
    "accept_flags": [(0o4000, "SOCK_NONBLOCK"), (0o2000000, "SOCK_CLOEXEC")],  # no socket type in them
    "prot_flags": [(1, "PROT_READ"), (2, "PROT_WRITE"), (4, "PROT_EXEC")],
    "mmap_flags": [
        (0x01, "MAP_SHARED"), (0x02, "MAP_PRIVATE"), (0x10, "MAP_FIXED"), (0x20, "MAP_ANONYMOUS"),
        (0x100, "MAP_GROWSDOWN"), (0x800, "MAP_DENYWRITE"), (0x1000, "MAP_EXECUTABLE"),
        (0x2000, "MAP_LOCKED"), (0x4000, "MAP_NORESERVE"), (0x8000, "MAP_POPULATE"),
        (0x10000, "MAP_NONBLOCK"), (0x20000, "MAP_STACK"), (0x40000, "MAP_HUGETLB"),
        (0x100000, "MAP_FIXED_NOREPLACE"),
    ],
    "clone_flags": [
        (0x100, "CLONE_VM"), (0x200, "CLONE_FS"), (0x400, "CLONE_FILES"), (0x800, "CLONE_SIGHAND"),
        (0x1000, "CLONE_PIDFD"), (0x2000, "CLONE_PTRACE"), (0x4000, "CLONE_VFORK"),
        (0x8000, "CLONE_PARENT"), (0x10000, "CLONE_THREAD"), (0x20000, "CLONE_NEWNS"),
        (0x40000, "CLONE_SYSVSEM"), (0x80000, "CLONE_SETTLS"), (0x100000, "CLONE_PARENT_SETTID"),
        (0x200000, "CLONE_CHILD_CLEARTID"), (0x400000, "CLONE_DETACHED"), (0x800000, "CLONE_UNTRACED"),
        (0x1000000, "CLONE_CHILD_SETTID"), (0x2000000, "CLONE_NEWCGROUP"), (0x4000000, "CLONE_NEWUTS"),
        (0x8000000, "CLONE_NEWIPC"), (0x10000000, "CLONE_NEWUSER"), (0x20000000, "CLONE_NEWPID"),
        (0x40000000, "CLONE_NEWNET"), (0x80000000, "CLONE_IO"),
    ],
    "flock_ops": [(1, "LOCK_SH"), (2, "LOCK_EX"), (4, "LOCK_NB"), (8, "LOCK_UN")],
}

ENUMS: Final[dict[str, dict[int, str]]] = {
    "fcntl_cmds": {
        0: "F_DUPFD", 1: "F_GETFD", 2: "F_SETFD", 3: "F_GETFL", 4: "F_SETFL", 5: "F_GETLK",
        6: "F_SETLK", 7: "F_SETLKW", 8: "F_SETOWN", 9: "F_GETOWN", 1030: "F_DUPFD_CLOEXEC",
        1024: "F_SETLEASE", 1025: "F_GETLEASE", 1031: "F_SETPIPE_SZ", 1032: "F_GETPIPE_SZ",
    },
    "whence": {0: "SEEK_SET", 1: "SEEK_CUR", 2: "SEEK_END", 3: "SEEK_DATA", 4: "SEEK_HOLE"},
    "socket_family": {
        0: "AF_UNSPEC", 1: "AF_UNIX", 2: "AF_INET", 10: "AF_INET6", 16: "AF_NETLINK", 17: "AF_PACKET",
        40: "AF_VSOCK",
    },
    "shutdown_how": {0: "SHUT_RD", 1: "SHUT_WR", 2: "SHUT_RDWR"},
    "epoll_ops": {1: "EPOLL_CTL_ADD", 2: "EPOLL_CTL_DEL", 3: "EPOLL_CTL_MOD"},
    "prctl_ops": {15: "PR_SET_NAME", 16: "PR_GET_NAME", 1: "PR_SET_PDEATHSIG", 38: "PR_SET_NO_NEW_PRIVS",
                  22: "PR_SET_SECCOMP", 36: "PR_SET_CHILD_SUBREAPER", 4: "PR_SET_DUMPABLE"},
    "socket_type_base": {1: "SOCK_STREAM", 2: "SOCK_DGRAM", 3: "SOCK_RAW", 5: "SOCK_SEQPACKET"},
}
ENUMS["signals"] = {int(s): s.name for s in signal.Signals if not s.name.startswith("SIG_")}

ERRNO_NAMES: Final[dict[int, str]] = dict(errno.errorcode)
ERRNO_NAMES[512] = "ERESTARTSYS"
ERRNO_NAMES[513] = "ERESTARTNOINTR"
ERRNO_NAMES[514] = "ERESTARTNOHAND"
ERRNO_NAMES[516] = "ERESTART_RESTARTBLOCK"

_ACCMODE = {0: "O_RDONLY", 1: "O_WRONLY", 2: "O_RDWR"}


def flag_names(table: str, value: int) -> str:
    """'O_RDONLY|O_CLOEXEC' for open flags 0o2000000; '' when no bit has a name."""
    names: list[str] = []
    if table == "open_flags":
        names.append(_ACCMODE.get(value & 3, "O_ACCMODE"))
    elif table == "socket_type":
        names.append(ENUMS["socket_type_base"].get(value & 0xF, str(value & 0xF)))
    for bit, name in FLAGS.get(table, ()):
        if value & bit:
            names.append(name)
    return "|".join(names)


def enum_name(table: str, value: int) -> str:
    return ENUMS.get(table, {}).get(value, "")


def errno_name(err: int) -> str:
    return ERRNO_NAMES.get(err, f"E{err}")
