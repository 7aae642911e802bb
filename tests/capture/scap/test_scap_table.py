"""The PPM event table and its encodings, against independent sources: sysdig 0.29's own ``-L``
listing, the flag names sysdig printed for these values, and Linux's constants in ``os``."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

from tracer.capture.scap.render import _flags
from tracer.capture.scap.table import PPM_EVENTS, PPM_FLAGS, PT, SYSCALLS, ppm_event
from tracer.capture.scap.translate import to_linux_flags
from tracer.schema.syscalls_x86_64 import SYSCALLS_X86_64


@pytest.mark.skipif(shutil.which("sysdig") is None, reason="sysdig is not installed (scripts/setup.sh installs it)")
def test_table_is_sysdig_029s() -> None:
    """Every event sysdig 0.29 lists (``-L``: current, non-internal events, by id) has the same
    direction, name and parameters, in order, with the same types."""
    listing = subprocess.run(["sysdig", "-L"], capture_output=True, text=True, timeout=60).stdout.splitlines()
    ours = []
    for e in PPM_EVENTS[:336]:
        if e is None or {"old_version", "unused"} & e.flags or e.category == "internal":
            continue
        params = e.params
        if e.name == "seccomp" and not e.id & 1:
            # seccomp's enter: libs 0.1.1 lists {op, flags} but declares a count of 1, so sysdig
            # 0.29 shows op only; later libs declare both (a writer may send flags).
            params = params[:1]
        types = ", ".join(f"{'DYNAMIC' if p.type is PT.DYN else p.type.name} {p.name}" for p in params)
        ours.append(f"{'<' if e.id & 1 else '>'} {e.name}({types})")
    assert ours == listing


@pytest.mark.parametrize(("etype", "name", "direction", "params"), [
    (0, "syscall", 0, ["ID", "nativeID"]),
    (3, "open", 1, ["fd", "name", "flags", "mode", "dev"]),
    (16, "procexit", 0, []),
    (146, "switch", 0, ["next"]),
    (152, "switch", 0, ["next", "pgft_maj", "pgft_min", "vm_size", "vm_rss", "vm_swap"]),
    (234, "procinfo", 0, ["cpu_usr", "cpu_sys"]),
    (293, "execve", 1, ["res", "exe", "args", "tid", "pid", "ptid", "cwd", "fdlimit", "pgft_maj", "pgft_min",
                        "vm_size", "vm_rss", "vm_swap", "comm", "cgroups", "env", "tty", "pgid", "loginuid",
                        "flags"]),
    (324, "container", 0, ["json"]),
    (401, "prctl", 1, ["res", "option", "arg2_str", "arg2_int"]),
])
def test_rows(etype: int, name: str, direction: int, params: list[str]) -> None:
    e = ppm_event(etype)
    assert e is not None
    assert (e.name, e.direction, [p.name for p in e.params][:len(params)]) == (name, direction, params)


def test_unknown_and_unused_types() -> None:
    assert ppm_event(454) is None
    assert ppm_event(-1) is None
    assert ppm_event(17) is None  # PPME_PROCEXIT_X: never written


@pytest.mark.parametrize(("table", "value", "names"), [
    # as sysdig 0.29 printed them on the captures in captures/scap/
    ("file_flags", 4097, "O_RDONLY|O_CLOEXEC"),
    ("socket_families", 10, "AF_INET6"),
    ("socket_families", 1, "AF_LOCAL"),
    ("prot_flags", 3, "PROT_READ|PROT_WRITE"),
    ("prot_flags", 5, "PROT_READ|PROT_EXEC"),
    ("mmap_flags", 10, "MAP_PRIVATE|MAP_ANONYMOUS"),
    ("mmap_flags", 1026, "MAP_PRIVATE|MAP_DENYWRITE"),
    ("mmap_flags", 1030, "MAP_PRIVATE|MAP_FIXED|MAP_DENYWRITE"),
    ("futex_operations", 129, "FUTEX_PRIVATE_FLAG|FUTEX_WAKE"),
    ("access_flags", 0, "F_OK"),
    ("access_flags", 4, "R_OK"),
    ("rlimit_resources", 3, "RLIMIT_STACK"),
    ("fcntl_commands", 2, "F_GETFD"),
    ("file_flags", 0, "O_NONE"),
])
def test_flag_names(table: str, value: int, names: str) -> None:
    assert _flags(table, value) == names


@pytest.mark.parametrize(("ppm", "linux"), [
    (4097, os.O_RDONLY | os.O_CLOEXEC),  # PPM_O_RDONLY | PPM_O_CLOEXEC
    (2 | 4 | 256, os.O_WRONLY | os.O_CREAT | os.O_TRUNC),
    (3 | 8 | 64, os.O_RDWR | os.O_APPEND | os.O_NONBLOCK),
    (1 | 1024, os.O_RDONLY | os.O_DIRECTORY),
])
def test_open_flags_to_linux(ppm: int, linux: int) -> None:
    assert to_linux_flags("file_flags", ppm) == linux


def test_clone_flags_to_linux() -> None:
    import re

    names = dict(PPM_FLAGS["clone_flags"])
    ppm = names["CLONE_THREAD"] | names["CLONE_VM"] | names["CLONE_FILES"]
    assert to_linux_flags("clone_flags", ppm) == 0x10000 | 0x100 | 0x400  # <linux/sched.h>
    assert all(re.fullmatch(r"[A-Z0-9_]+", n) for n in names)


def test_generic_syscall_codes() -> None:
    """PPM_SC codes name generic events; the ones the captures use match x86_64's numbers' names."""
    assert SYSCALLS[0] == "<unknown>"
    assert SYSCALLS[SYSCALLS.index("clock_gettime")] == SYSCALLS_X86_64[228]
    assert "arch_prctl" in SYSCALLS and "set_robust_list" in SYSCALLS
