"""`ktrace doctor` against facts found independently of it, and against made-up machines."""

from __future__ import annotations

import errno
import os
import socket
from pathlib import Path

import pytest

from tracer import doctor
from tracer.doctor import INFO, MISSING, OK, WARN, Check, Roots

RELEASE = os.uname().release


def by_name(checks: list[Check]) -> dict[str, Check]:
    return {c.name: c for c in checks}


@pytest.fixture
def empty_root(tmp_path: Path) -> Path:
    root = tmp_path / "root"
    root.mkdir()
    return root


def make_host_root(root: Path) -> None:
    """A minimal host /proc: enough for the host /proc check."""
    (root / "proc" / "1").mkdir(parents=True)
    (root / "proc" / "stat").write_text("cpu  0 0 0 0\n")
    (root / "proc" / "sys" / "kernel").mkdir(parents=True)
    (root / "proc" / "sys" / "kernel" / "unprivileged_bpf_disabled").write_text("2\n")


# --- this machine, compared with facts the test finds itself ---------------------------------------


def test_kernel_line_names_the_running_kernel() -> None:
    check = by_name(doctor.check_all())["kernel"]
    assert check.status == OK
    assert RELEASE in check.detail


def test_btf_matches_sysfs() -> None:
    check = by_name(doctor.check_all())["BTF"]
    assert (check.status == OK) == os.path.exists("/sys/kernel/btf/vmlinux")


def test_tracefs_matches_the_events_directory() -> None:
    check = by_name(doctor.check_all())["tracefs"]
    present = any(
        os.path.isdir(f"{base}/events/raw_syscalls")
        for base in ("/sys/kernel/tracing", "/sys/kernel/debug/tracing")
    )
    assert (check.status == OK) == present


def test_tracepoint_check_reads_the_format_file() -> None:
    check = by_name(doctor.check_all())["tracepoint sock/inet_sock_set_state"]
    formats = [f"{base}/events/sock/inet_sock_set_state/format"
               for base in ("/sys/kernel/tracing", "/sys/kernel/debug/tracing")]
    readable = [p for p in formats if os.access(p, os.R_OK)]
    if readable:  # the layout itself is compared in tests/probe/test_tracepoints.py
        assert check.status == OK, check.detail
    else:
        assert check.status == WARN and "0.0.0.0:0" in check.detail


def test_sock_io_check_matches_tracefs() -> None:
    check = by_name(doctor.check_all())["tracepoints sock/sock_send_length, sock/sock_recv_length"]
    present = any(os.path.isdir(f"{base}/events/sock/sock_send_length")
                  and os.path.isdir(f"{base}/events/sock/sock_recv_length")
                  for base in ("/sys/kernel/tracing", "/sys/kernel/debug/tracing"))
    btf = os.path.exists("/sys/kernel/btf/vmlinux")
    assert (check.status == OK) == (present and btf), check.detail
    if check.status != OK:
        assert "<NA>" in check.detail and check.fix


def test_sock_io_check_on_a_kernel_before_6_3(tmp_path: Path) -> None:
    """A tracefs with inet_sock_set_state but not the sock I/O tracepoints (Linux 5.x), with BTF."""
    (tmp_path / "sys/kernel/tracing/events/sock/inet_sock_set_state").mkdir(parents=True)
    (tmp_path / "sys/kernel/btf").mkdir(parents=True)
    (tmp_path / "sys/kernel/btf/vmlinux").write_bytes(b"")
    roots = Roots(local=str(tmp_path))
    check = doctor.check_tracepoints(roots)[-1]
    assert (check.status, check.detail.split(":")[0]) == (WARN, "sock_send_length, sock_recv_length missing")
    for n in ("sock_send_length", "sock_recv_length"):
        (tmp_path / "sys/kernel/tracing/events/sock" / n).mkdir()
    assert doctor.check_tracepoints(roots)[-1].status == OK
    (tmp_path / "sys/kernel/btf/vmlinux").unlink()
    assert doctor.check_tracepoints(roots)[-1].detail.startswith("no kernel BTF: ")


def test_cgroup_version_matches_sysfs() -> None:
    check = by_name(doctor.check_all())["cgroup"]
    if os.path.exists("/sys/fs/cgroup/cgroup.controllers"):
        assert check.detail == "v2 (unified)"
    else:
        assert "v1" in check.detail or check.status == WARN


def test_privileges_match_euid() -> None:
    check = by_name(doctor.check_all())["privileges"]
    if os.geteuid() != 0:
        assert check.status in (MISSING, WARN)
    else:
        assert check.detail.startswith("root")


def test_bcc_is_the_library_the_loader_finds() -> None:
    check = doctor.check_bcc()
    lib = next((p for p in ("/usr/lib/x86_64-linux-gnu/libbcc.so.0", "/usr/lib/libbcc.so.0") if os.path.exists(p)),
               None)
    if lib is None:
        assert check.status == MISSING
        return
    assert check.status == OK
    assert os.path.realpath(lib) in check.detail


def test_bcc_missing_says_what_to_install() -> None:
    check = doctor.check_bcc(finder=lambda: None)
    assert check.status == MISSING
    assert check.fix.startswith("apt-get install libbpfcc")


def test_doctor_agrees_with_a_real_probe_load(live_reason: str | None) -> None:
    """Exit 0 exactly when a trivial bcc program really loads (found by conftest, independently)."""
    code = doctor.run_doctor(quiet=True)
    assert code == (0 if live_reason is None else 2), live_reason


# --- made-up machines ------------------------------------------------------------------------------


def test_empty_host_root_is_exit_2_with_host_proc_missing(
    empty_root: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("KTRACE_HOST_ROOT", str(empty_root))
    assert doctor.run_doctor(quiet=False) == 2
    out = capsys.readouterr().out
    missing = [line for line in out.splitlines() if line.startswith("MISSING")]
    assert any(
        line.startswith("MISSING  host /proc:") and str(empty_root / "proc") in line for line in missing
    )
    assert "KTRACE_HOST_ROOT" in out
    # No runtime socket under the empty root: a warning, not a reason to fail.
    assert any(line.startswith("WARN     container runtimes:") for line in out.splitlines())
    assert out.splitlines()[-1].startswith("live tracing: not possible here")


def test_quiet_prints_nothing(
    empty_root: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("KTRACE_HOST_ROOT", str(empty_root))
    assert doctor.run_doctor(quiet=True) == 2
    assert capsys.readouterr() == ("", "")


def test_empty_local_root_misses_btf_tracefs_headers(empty_root: Path, tmp_path: Path) -> None:
    host = tmp_path / "host"
    make_host_root(host)
    checks = by_name(doctor.check_all(Roots(host=str(host), local=str(empty_root)), env={}))
    assert checks["BTF"].status == WARN
    assert checks["tracefs"].status == MISSING
    assert checks["tracefs"].fix == "mount -t tracefs nodev /sys/kernel/tracing"
    assert checks["tracepoint sock/inet_sock_set_state"].status == WARN
    assert checks["privileges"].status in (MISSING, WARN)  # no /proc/self/status there
    assert checks["host /proc"].status == OK
    assert checks["unprivileged bpf"].status == INFO
    assert "=2" in checks["unprivileged bpf"].detail
    headers = checks["kernel headers"]
    assert headers.status == MISSING
    assert f"/lib/modules/{RELEASE}/build" in headers.detail
    assert "apt-get install linux-headers-" in headers.fix
    assert doctor.exit_code(checks.values()) == 2


def test_other_versions_debian_tree_is_ok_and_says_why(empty_root: Path) -> None:
    tree = empty_root / "usr/src/linux-headers-6.1.0-56-amd64"
    tree.mkdir(parents=True)
    moddir = empty_root / "lib/modules/6.18.44-custom"
    moddir.mkdir(parents=True)
    (moddir / "build").symlink_to(tree)
    check = doctor.check_headers(Roots(local=str(empty_root)), "6.18.44-custom", env={})
    assert check.status == OK
    assert str(tree) in check.detail
    assert "Debian headers of 6.1.0-56-amd64, not of the running 6.18.44-custom" in check.note
    assert "no kernel struct whose layout differs" in check.note


def test_matching_tree_has_no_note(empty_root: Path) -> None:
    tree = empty_root / "usr/src/linux-headers-6.1.0-56-amd64"
    tree.mkdir(parents=True)
    moddir = empty_root / "lib/modules/6.1.0-56-amd64"
    moddir.mkdir(parents=True)
    (moddir / "build").symlink_to(tree)
    check = doctor.check_headers(Roots(local=str(empty_root)), "6.1.0-56-amd64", env={})
    assert (check.status, check.note) == (OK, "")


def test_dangling_build_link_is_missing(empty_root: Path) -> None:
    moddir = empty_root / "lib/modules/6.18.44-custom"
    moddir.mkdir(parents=True)
    (moddir / "build").symlink_to(empty_root / "usr/src/gone")
    check = doctor.check_headers(Roots(local=str(empty_root)), "6.18.44-custom", env={})
    assert check.status == MISSING
    assert "does not exist" in check.detail
    assert "ln -sfn" in check.fix


def test_bcc_kernel_source_is_honoured(empty_root: Path) -> None:
    tree = empty_root / "usr/src/linux-headers-6.1.0-56-amd64"
    tree.mkdir(parents=True)
    roots = Roots(local=str(empty_root))
    check = doctor.check_headers(
        roots, "6.18.44-custom", env={"BCC_KERNEL_SOURCE": "/usr/src/linux-headers-6.1.0-56-amd64"}
    )
    assert check.status == OK
    assert "BCC_KERNEL_SOURCE=/usr/src/linux-headers-6.1.0-56-amd64" in check.detail
    gone = doctor.check_headers(roots, "6.18.44-custom", env={"BCC_KERNEL_SOURCE": "/nowhere"})
    assert gone.status == MISSING
    assert "BCC_KERNEL_SOURCE=/nowhere does not exist" in gone.detail


def test_runtime_socket_present(empty_root: Path) -> None:
    sock_path = empty_root / "run" / "docker.sock"
    sock_path.parent.mkdir(parents=True)
    with socket.socket(socket.AF_UNIX) as s:
        s.bind(str(sock_path))
        checks = doctor.check_runtime_sockets(Roots(host=str(empty_root)))
    assert checks[0] == Check(OK, "runtime docker", str(sock_path))
    assert checks[-1].status == INFO and "containerd" in checks[-1].detail


def test_runtime_path_that_is_not_a_socket_warns(empty_root: Path) -> None:
    (empty_root / "run" / "crio").mkdir(parents=True)
    (empty_root / "run" / "crio" / "crio.sock").write_text("")
    checks = by_name(doctor.check_runtime_sockets(Roots(host=str(empty_root))))
    assert checks["runtime cri-o"].status == WARN


def test_cgroup_v2_and_v1(empty_root: Path) -> None:
    cg = empty_root / "sys/fs/cgroup"
    (cg / "memory").mkdir(parents=True)
    assert doctor.check_cgroup(Roots(local=str(empty_root))).detail.startswith("v1")
    (cg / "cgroup.controllers").write_text("cpu memory\n")
    assert doctor.check_cgroup(Roots(local=str(empty_root))).detail == "v2 (unified)"


@pytest.mark.parametrize(
    ("cap_eff", "euid", "status"),
    [
        (1 << 21, 0, OK),  # CAP_SYS_ADMIN
        ((1 << 38) | (1 << 39), 0, OK),  # CAP_PERFMON + CAP_BPF
        (1 << 39, 0, MISSING),  # CAP_BPF alone cannot attach
        (0, 0, MISSING),  # root without capabilities (user namespace)
        ((1 << 38) | (1 << 39), 1000, WARN),  # capable non-root
        (0, 1000, MISSING),
    ],
)
def test_privileges_from_capeff(empty_root: Path, cap_eff: int, euid: int, status: str) -> None:
    (empty_root / "proc/self").mkdir(parents=True)
    (empty_root / "proc/self/status").write_text(f"Name:\tx\nCapEff:\t{cap_eff:016x}\n")
    check = doctor.check_privileges(Roots(local=str(empty_root)), euid=euid)
    assert check.status == status
    if status == MISSING:
        assert check.fix


@pytest.mark.parametrize(
    ("err", "status"),
    [(errno.EINVAL, OK), (errno.ENOSYS, MISSING), (errno.EPERM, MISSING), (None, WARN)],
)
def test_bpf_syscall_answers(err: int | None, status: str) -> None:
    assert doctor.check_bpf_syscall(err).status == status


def test_bpf_syscall_probe_on_this_machine() -> None:
    err = doctor.bpf_syscall_errno()
    if err is not None:
        # The kernel's answer to a command that does not exist: EINVAL, unless bpf() is blocked.
        assert err in (errno.EINVAL, errno.EPERM, errno.ENOSYS)


@pytest.mark.parametrize(
    ("release", "status"),
    [
        ("6.18.44-fc-v669", OK),
        ("5.8.0", OK),
        ("5.4.0-100-generic", MISSING),
        ("4.19.0", MISSING),
        ("x", WARN),
    ],
)
def test_ring_buffer_needs_5_8(release: str, status: str) -> None:
    assert doctor.check_ringbuf(release).status == status
