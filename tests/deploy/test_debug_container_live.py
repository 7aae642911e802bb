"""deploy/debug-container.sh on this machine's docker, with the image deploy/build-image.sh makes
from this tree: not privileged, it traces the host.

Checked against what ktrace does not compute: the host's /etc/passwd (a user the image does not
know), docker inspect (a container's id and image), the bytes of a capture read on the host, the
TCP port the test itself connects to, and docker ps after Ctrl-C.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import re
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from live.livekit import env, ktrace_argv

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "deploy" / "debug-container.sh"
BUILD = REPO / "deploy" / "build-image.sh"
IMAGE = "ktrace:local"

pytestmark = [pytest.mark.docker, pytest.mark.live, pytest.mark.slow]


@pytest.fixture(scope="module")
def image() -> str:
    """ktrace:local made of this tree: rebuilt only when the sources changed (minutes the first
    time: debootstrap makes the base), a few seconds otherwise."""
    if os.geteuid() != 0:
        pytest.skip("build-image.sh runs as root")
    out = subprocess.run(["sh", str(BUILD)], env={**os.environ, "KTRACE_IF_CHANGED": "1"}, capture_output=True,
                         text=True, timeout=3600)
    assert out.returncode == 0, out.stderr[-3000:]
    return IMAGE


def debug(args: list[str], captures: Path, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["sh", str(SCRIPT), *args], env={**os.environ, "KTRACE_CAPTURES": str(captures)},
                          capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)


def image_users(image: str) -> set[int]:
    out = subprocess.run(["docker", "run", "--rm", "--network", "none", "--entrypoint", "cat", image, "/etc/passwd"],
                         check=True, capture_output=True, text=True, timeout=60).stdout
    return {int(line.split(":")[2]) for line in out.splitlines() if line.count(":") >= 6}


@pytest.fixture
def host_user_process(image: str) -> Iterator[tuple[int, str]]:
    """A host process named kthost, run by a user of the host's /etc/passwd that the image lacks."""
    known = image_users(image)
    user = next((u for u in pwd.getpwall() if u.pw_uid not in known and u.pw_uid != 0), None)
    if user is None:
        pytest.skip("every host user is in the image's /etc/passwd too")
    code = ("import ctypes, time\nctypes.CDLL(None).prctl(15, b'kthost', 0, 0, 0)\n"
            "while True:\n    time.sleep(0.02)\n")
    proc = subprocess.Popen(["setpriv", f"--reuid={user.pw_uid}", f"--regid={user.pw_gid}", "--clear-groups",
                             "/usr/bin/python3", "-c", code])
    try:
        time.sleep(0.3)
        yield proc.pid, user.pw_name
    finally:
        proc.kill()
        proc.wait()


@pytest.fixture
def busy_container(image: str, docker: str) -> Iterator[dict[str, str]]:
    name = f"kt-debug-{os.urandom(3).hex()}"
    subprocess.run(["docker", "run", "-d", "--network", "none", "--name", name, docker, "sh", "-c",
                    "while :; do read x < /etc/passwd; sleep 0.05; done"], check=True, capture_output=True, timeout=60)
    try:
        cid = subprocess.run(["docker", "inspect", "-f", "{{.Id}}", name], check=True, capture_output=True,
                             text=True).stdout.strip()
        yield {"name": name, "id": cid[:12], "image": docker}
    finally:
        subprocess.run(["docker", "rm", "-f", name], capture_output=True, timeout=60)


def test_host_process_with_host_user(tmp_path: Path, host_user_process: tuple[int, str]) -> None:
    pid, user = host_user_process
    out = debug(["-n", "6", "-p", "%proc.name %proc.pid %user.name %container.id", f"proc.pid={pid}"], tmp_path)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.split("\n")[:6]
    assert lines == [f"kthost {pid} {user} host"] * 6, out.stdout


def test_container_events_named(tmp_path: Path, busy_container: dict[str, str]) -> None:
    c = busy_container
    out = debug(["-n", "5", "-p", "%container.id %container.name %container.image %proc.name",
                 f"container.name={c['name']}"], tmp_path)
    assert out.returncode == 0, out.stderr
    lines = [line for line in out.stdout.split("\n") if line]
    assert len(lines) == 5
    for line in lines:
        cid, name, img, comm = line.split()
        assert (cid, name, img) == (c["id"], c["name"], c["image"]), line
        assert comm in ("sh", "sleep")


def test_topconns_sees_a_host_connection(tmp_path: Path) -> None:
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen()
    port = srv.getsockname()[1]
    stop = threading.Event()

    def serve() -> None:
        with contextlib.suppress(OSError):  # the listening socket closed: done
            while not stop.is_set():
                c, _ = srv.accept()
                c.sendall(b"x" * 5000)
                c.close()

    def client() -> None:
        with contextlib.suppress(OSError):
            while not stop.is_set():
                with socket.create_connection(("127.0.0.1", port)) as s:
                    while s.recv(65536):
                        pass
                time.sleep(0.01)

    threading.Thread(target=serve, daemon=True).start()
    threading.Thread(target=client, daemon=True).start()
    try:
        out = debug(["-pc", "-c", "topconns", "-M", "4"], tmp_path)
    finally:
        stop.set()
        srv.close()
    assert out.returncode == 0, out.stderr
    assert re.search(r"^Bytes +container\.name +Proto +Conn", out.stdout, re.MULTILINE), out.stdout[:2000]
    # each connection: the 5000 bytes the server sent, counted at both ends (sysdig's way): 9.77KB
    assert re.search(rf"^9\.77KB +host +tcp +127\.0\.0\.1:\d+->127\.0\.0\.1:{port}$", out.stdout, re.MULTILINE), \
        out.stdout[:3000]


def test_capture_lands_on_the_host_and_ctrl_c_cleans_up(tmp_path: Path, busy_container: dict[str, str]) -> None:
    captures = tmp_path / "captures"
    proc = subprocess.Popen(["sh", str(SCRIPT), "-w", "/captures/x.kcap"],
                            env={**os.environ, "KTRACE_CAPTURES": str(captures)}, stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    # sh execs docker: the signal goes to the docker client, as Ctrl-C in a terminal would
    name = f"ktrace-debug-{proc.pid}"
    try:
        deadline = time.monotonic() + 120
        while not (captures / "x.kcap").exists() or (captures / "x.kcap").stat().st_size < 4096:
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "no capture after 120 s"
            time.sleep(0.2)
        time.sleep(2)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            subprocess.run(["docker", "rm", "-f", name], capture_output=True, timeout=60)
    assert proc.returncode == 0, err
    assert re.search(r"ktrace: \d+ events captured", err), err
    left = subprocess.run(["docker", "ps", "-a", "-q", "--filter", f"name={name}"], capture_output=True, text=True,
                          timeout=60).stdout
    assert left.strip() == "", f"container {name} left behind"
    # read back on the host, by this tree's ktrace: the container's events are in it, with its name
    c = busy_container
    read = subprocess.run([*ktrace_argv(), "-r", str(captures / "x.kcap"), "-n", "3", "-p",
                           "%container.id %container.name", f"container.name={c['name']}"],
                          capture_output=True, text=True, timeout=300, env=env())
    assert read.returncode == 0, read.stderr
    assert read.stdout.split("\n")[:3] == [f"{c['id']} {c['name']}"] * 3, read.stdout


def test_doctor_names_the_missing_capability(tmp_path: Path, image: str) -> None:
    """Without SYS_ADMIN (or BPF and PERFMON) ktrace cannot load its probe: doctor says so and gives
    the docker flag and the pod line; tracefs is there from the host's mount, no mount needed."""
    env = {**os.environ, "KTRACE_CAPTURES": str(tmp_path), "KTRACE_CAPS": "SYS_PTRACE DAC_READ_SEARCH"}
    out = subprocess.run(["sh", str(SCRIPT), "doctor"], capture_output=True, text=True, timeout=300,
                         stdin=subprocess.DEVNULL, env=env)
    assert out.returncode == 2, out.stdout + out.stderr
    lines = out.stdout.splitlines()
    i = next(n for n, line in enumerate(lines) if line.startswith("MISSING  privileges:"))
    assert "docker run --cap-add SYS_ADMIN" in lines[i + 1] and "capabilities.add: [BPF, PERFMON]" in lines[i + 1]
    assert any(line.startswith("OK       CAP_SYS_PTRACE") for line in lines)
    assert any(line.startswith("OK       tracefs: /sys/kernel/tracing") for line in lines)
