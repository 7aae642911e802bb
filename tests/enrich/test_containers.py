"""Container metadata: OCI bundles and runtime APIs under a fake host root, and a real docker engine.

The fake trees put files where the runtimes put them (KTRACE_HOST_ROOT points at the tree); the
fake APIs answer on unix sockets with the documents the runtimes send. The docker tests start
real containers (``--network none``) and compare with ``docker inspect``.
"""

from __future__ import annotations

import contextlib
import http.server
import json
import os
import socket
import socketserver
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgpack
import pytest

from tracer.enrich import hostroot
from tracer.enrich.cgroup import container_id_from_cgroup, parse_cgroup, read_cgroup
from tracer.enrich.containers import (
    DONE,
    FAILED,
    HOST_INFO,
    NA,
    PENDING,
    ContainerInfo,
    ContainerResolver,
    split_image,
)

CTR = "5e144353a977c7731eddef70bd57e5d8d09b3d09af46f00d0cc2fb9220bfff8a"
SANDBOX = "91ed625f7b69daa28085471ee552699b7877f6aafeed331c47b97a347b45db15"
POD_UID = "aaaa2b4a-f398-41c0-928b-049e1cc4ec40"
POD_UID_ = POD_UID.replace("-", "_")
ALL_CAPS = ["CAP_CHOWN", "CAP_NET_ADMIN", "CAP_SYS_ADMIN", "CAP_SYS_MODULE", "CAP_SYS_PTRACE"]
DEFAULT_CAPS = ["CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_KILL", "CAP_NET_BIND_SERVICE", "CAP_SETUID"]
MASKED = ["/proc/acpi", "/proc/kcore", "/proc/keys", "/sys/firmware"]


@pytest.fixture
def root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """An empty host tree that KTRACE_HOST_ROOT points at."""
    r = tmp_path / "host"
    r.mkdir()
    monkeypatch.setenv("KTRACE_HOST_ROOT", str(r))
    hostroot.set_host_root(None)
    yield r


def write(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(data if isinstance(data, str) else json.dumps(data))


def oci_spec(annotations: dict[str, str], *, privileged: bool = False) -> dict[str, Any]:
    """A trimmed OCI runtime spec, as runc reads it from the bundle."""
    return {
        "ociVersion": "1.1.0",
        "process": {
            "args": ["/pause"] if annotations.get("io.kubernetes.cri.container-type") == "sandbox" else ["nginx"],
            "capabilities": {"bounding": ALL_CAPS if privileged else DEFAULT_CAPS},
        },
        "root": {"path": "rootfs"},
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc", "options": ["nosuid", "noexec"]},
            {
                "destination": "/etc/hosts",
                "type": "bind",
                "source": f"/var/lib/kubelet/pods/{POD_UID}/etc-hosts",
                "options": ["rbind", "rprivate", "rw"],
            },
            {
                "destination": "/var/run/secrets/kubernetes.io/serviceaccount",
                "type": "bind",
                "source": f"/var/lib/kubelet/pods/{POD_UID}/volumes/kubernetes.io~projected/kube-api-access",
                "options": ["rbind", "rprivate", "ro"],
            },
        ],
        "annotations": annotations,
        "linux": {"maskedPaths": [] if privileged else MASKED, "cgroupsPath": "x"},
    }


def cgroup_file(root: Path, pid: int, path: str) -> None:
    write(root / "proc" / str(pid) / "cgroup", f"0::{path}\n")


class _Handler(http.server.BaseHTTPRequestHandler):
    routes: dict[str, tuple[int, Any]] = {}
    delay = 0.0

    def do_GET(self) -> None:
        time.sleep(self.delay)
        status, doc = self.routes.get(self.path, (404, {"message": f"No such container: {self.path}"}))
        body = json.dumps(doc).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@contextlib.contextmanager
def fake_api(sock: Path, routes: dict[str, tuple[int, Any]], delay: float = 0.0) -> Iterator[None]:
    """An HTTP server on a unix socket answering ``routes`` (path -> (status, JSON))."""
    sock.parent.mkdir(parents=True, exist_ok=True)
    handler = type("H", (_Handler,), {"routes": routes, "delay": delay})
    server = socketserver.ThreadingUnixStreamServer(str(sock), handler)
    t = threading.Thread(target=server.serve_forever, daemon=True)
    t.start()
    try:
        yield
    finally:
        server.shutdown()
        server.server_close()


def resolve(r: ContainerResolver, text: str) -> ContainerInfo:
    info = r.get_for_cgroup(text)
    assert r.wait_idle(10)
    return r.get(info.id)


# --- the record ---------------------------------------------------------------------------------


def test_record_round_trips_through_msgpack() -> None:
    info = ContainerInfo(
        id=CTR[:12],
        full_id=CTR,
        type="containerd",
        name="nginx",
        privileged=False,
        labels={"a": "b"},
        pod_labels={"app": "web"},
        mounts=[{"Source": "/x", "Destination": "/y", "Mode": "", "RW": False, "Propagation": "rprivate"}],
        lookup=DONE,
    )
    back = ContainerInfo.from_dict(msgpack.unpackb(msgpack.packb(info.to_dict())))
    assert back == info
    # other versions' records: unknown keys ignored, missing ones defaulted
    old = ContainerInfo.from_dict({"full_id": CTR, "name": "x", "from_the_future": 1})
    assert (old.id, old.name, old.image, old.labels) == (CTR[:12], "x", NA, {})


@pytest.mark.parametrize(
    ("ref", "expected"),
    [
        ("nginx", ("nginx", "latest", NA)),
        ("nginx:1.25", ("nginx", "1.25", NA)),
        ("docker.io/library/nginx:1.25", ("docker.io/library/nginx", "1.25", NA)),
        ("registry:5000/team/app", ("registry:5000/team/app", "latest", NA)),
        ("registry:5000/team/app:v2", ("registry:5000/team/app", "v2", NA)),
        ("quay.io/x/y@sha256:" + "a" * 64, ("quay.io/x/y", NA, "sha256:" + "a" * 64)),
        ("y:1@sha256:" + "b" * 64, ("y", "1", "sha256:" + "b" * 64)),
        ("sha256:" + "c" * 64, (NA, NA, NA)),
        (NA, (NA, NA, NA)),
    ],
)
def test_split_image(ref: str, expected: tuple[str, str, str]) -> None:
    assert split_image(ref) == expected


def test_host_needs_no_lookup() -> None:
    r = ContainerResolver()
    assert r.get("host") is HOST_INFO
    assert r.get_for_cgroup("0::/user.slice/user-0.slice/session-1.scope\n") is HOST_INFO
    assert (HOST_INFO.id, HOST_INFO.name, HOST_INFO.type) == ("host", "host", "host")
    assert r.snapshot() == []


# --- containerd: OCI bundle on disk ---------------------------------------------------------------


def containerd_node(root: Path) -> None:
    task = root / "run/containerd/io.containerd.runtime.v2.task/k8s.io"
    common = {
        "io.kubernetes.cri.sandbox-id": SANDBOX,
        "io.kubernetes.cri.sandbox-name": "web-1",
        "io.kubernetes.cri.sandbox-namespace": "prod",
        "io.kubernetes.cri.sandbox-uid": POD_UID,
    }
    write(
        task / CTR / "config.json",
        oci_spec(
            {
                **common,
                "io.kubernetes.cri.container-name": "nginx",
                "io.kubernetes.cri.container-type": "container",
                "io.kubernetes.cri.image-name": "docker.io/library/nginx:1.25",
            }
        ),
    )
    write(
        task / SANDBOX / "config.json",
        oci_spec(
            {
                **common,
                "io.kubernetes.cri.container-type": "sandbox",
                "io.kubernetes.cri.sandbox-log-directory": f"/var/log/pods/prod_web-1_{POD_UID}",
                "io.kubernetes.cri.podsandbox.image-name": "registry.k8s.io/pause:3.9",
            }
        ),
    )
    write(root / "run/containerd/containerd.sock", "")  # present; its gRPC is not spoken
    cgroup_file(root, 4242, f"/kubepods.slice/kubepods-pod{POD_UID_}.slice/cri-containerd-{CTR}.scope")


def test_containerd_oci_annotations_come_through(root: Path) -> None:
    containerd_node(root)
    updates: list[ContainerInfo] = []
    with ContainerResolver(on_update=updates.append) as r:
        text = read_cgroup(4242)
        assert container_id_from_cgroup(text) == (CTR[:12], "containerd")
        info = resolve(r, text)
        assert info.lookup == DONE
        assert (info.id, info.full_id, info.type) == (CTR[:12], CTR, "containerd")
        assert (info.name, info.pod_name, info.pod_namespace, info.pod_uid) == (
            "nginx",
            "web-1",
            "prod",
            POD_UID,
        )
        assert (info.image, info.image_repository, info.image_tag) == (
            "docker.io/library/nginx:1.25",
            "docker.io/library/nginx",
            "1.25",
        )
        assert info.labels["io.kubernetes.pod.name"] == "web-1"
        assert info.labels["io.kubernetes.container.name"] == "nginx"
        assert info.sandbox_id == SANDBOX and not info.is_pod_sandbox
        assert info.privileged is False
        assert [(m["Destination"], m["RW"]) for m in info.mounts] == [
            ("/etc/hosts", True),
            ("/var/run/secrets/kubernetes.io/serviceaccount", False),
        ]
        assert info.source == "oci:containerd"
        assert any("needs gRPC" in reason for reason in r.reasons(CTR))
        # the pause container was looked up for the pod and flagged
        sb = r.get(SANDBOX[:12])
        assert sb.is_pod_sandbox and sb.name == "POD" and sb.image == "registry.k8s.io/pause:3.9"
        assert {u.id for u in updates} == {CTR[:12], SANDBOX[:12]}


def test_containerd_short_id_and_privileged(root: Path) -> None:
    containerd_node(root)
    spec_path = root / "run/containerd/io.containerd.runtime.v2.task/k8s.io" / CTR / "config.json"
    spec = json.loads(spec_path.read_text())
    write(spec_path, oci_spec(spec["annotations"], privileged=True))
    with ContainerResolver() as r:
        r.get(CTR[:12])  # no hint: the 12-char id is matched against the bundle directories
        assert r.wait_idle(10)
        info = r.get(CTR[:12])
        assert (info.full_id, info.name, info.privileged) == (CTR, "nginx", True)


def test_bundle_appearing_late_is_retried(root: Path) -> None:
    cgroup_file(root, 7, f"/kubepods.slice/kubepods-pod{POD_UID_}.slice/cri-containerd-{CTR}.scope")
    (root / "run/containerd/io.containerd.runtime.v2.task/k8s.io").mkdir(parents=True)
    with ContainerResolver(retry_delays=(0.3,)) as r:
        first = r.get_for_cgroup(read_cgroup(7))
        assert first.lookup == PENDING and first.pod_uid == POD_UID  # the cgroup's pod uid, already
        time.sleep(0.1)
        containerd_node(root)
        assert r.wait_idle(10)
        assert r.get(CTR).name == "nginx"


# --- cri-o: OCI config on disk, then its HTTP inspect endpoint ------------------------------------


def crio_node(root: Path) -> dict[str, tuple[int, Any]]:
    storage = root / "run/containers/storage/overlay-containers"
    pod_labels = {"app": "web", "pod-template-hash": "6d4cf56db6"}
    k8s = {
        "io.kubernetes.pod.name": "web-1",
        "io.kubernetes.pod.namespace": "prod",
        "io.kubernetes.pod.uid": POD_UID,
    }
    ctr_labels = {**k8s, "io.kubernetes.container.name": "nginx"}
    write(
        storage / CTR / "userdata/config.json",
        oci_spec(
            {
                **k8s,
                "io.container.manager": "cri-o",
                "io.kubernetes.container.name": "nginx",
                "io.kubernetes.cri-o.ContainerType": "container",
                "io.kubernetes.cri-o.Name": f"k8s_nginx_web-1_prod_{POD_UID}_0",
                "io.kubernetes.cri-o.ImageName": "docker.io/library/nginx:1.25",
                "io.kubernetes.cri-o.ImageRef": "sha256:" + "e" * 64,
                "io.kubernetes.cri-o.SandboxID": SANDBOX,
                "io.kubernetes.cri-o.Labels": json.dumps(ctr_labels),
            }
        ),
    )
    write(
        storage / SANDBOX / "userdata/config.json",
        oci_spec(
            {
                **k8s,
                "io.container.manager": "cri-o",
                "io.kubernetes.container.name": "POD",
                "io.kubernetes.cri-o.ContainerType": "sandbox",
                "io.kubernetes.cri-o.SandboxID": SANDBOX,
                "io.kubernetes.cri-o.Image": "registry.k8s.io/pause:3.9",
                "io.kubernetes.cri-o.IP.0": "10.244.1.7",
                "io.kubernetes.cri-o.Labels": json.dumps({**k8s, "io.kubernetes.container.name": "POD", **pod_labels}),
            }
        ),
    )
    cgroup_file(root, 5151, f"/kubepods.slice/kubepods-pod{POD_UID_}.slice/crio-{CTR}.scope/container")
    return {
        f"/containers/{CTR}": (
            200,
            {
                "name": f"k8s_nginx_web-1_prod_{POD_UID}_0",
                "pid": 5151,
                "image": "docker.io/library/nginx:1.25",
                "image_ref": "sha256:" + "e" * 64,
                "labels": ctr_labels,
                "crio_annotations": {"io.kubernetes.cri-o.ContainerType": "container"},
                "sandbox": SANDBOX,
                "ip_addresses": ["10.244.1.7"],
            },
        )
    }


def test_crio_oci_then_api(root: Path) -> None:
    routes = crio_node(root)
    with fake_api(root / "run/crio/crio.sock", routes), ContainerResolver() as r:
        info = resolve(r, read_cgroup(5151))
        assert (info.type, info.name, info.pod_name, info.pod_namespace) == (
            "cri-o",
            "nginx",
            "web-1",
            "prod",
        )
        assert info.image_id == "e" * 64
        assert info.ip == "10.244.1.7"
        assert info.pod_labels == {"app": "web", "pod-template-hash": "6d4cf56db6"}
        assert info.source == "oci:cri-o+cri-o-api"
        assert r.reasons(CTR) == []
        assert r.get(SANDBOX).is_pod_sandbox


def test_crio_without_socket_still_has_the_bundle(root: Path) -> None:
    crio_node(root)
    with ContainerResolver() as r:
        info = resolve(r, read_cgroup(5151))
        assert (info.name, info.pod_name, info.source) == ("nginx", "web-1", "oci:cri-o")
        assert info.ip == "10.244.1.7"  # from the sandbox's annotations
        assert any("cri-o: socket" in x and "not found" in x for x in r.reasons(CTR))


# --- podman: docker-compatible API, rootless socket under /run/user/<uid> ---------------------------


def engine_doc(full: str, name: str, image: str, labels: dict[str, str]) -> dict[str, Any]:
    return {
        "Id": full,
        "Name": "/" + name,
        "Image": "sha256:" + "f" * 64,
        "Config": {"Image": image, "Labels": labels},
        "HostConfig": {"Privileged": False},
        "Mounts": [{"Type": "bind", "Source": "/srv", "Destination": "/data", "Mode": "", "RW": True}],
        "NetworkSettings": {"IPAddress": "", "Networks": {"podman": {"IPAddress": "10.88.0.5"}}},
    }


def test_podman_rootless_api(root: Path) -> None:
    cgroup_file(root, 9, f"/user.slice/user-1000.slice/user@1000.service/user.slice/libpod-{CTR}.scope/container")
    routes = {
        f"/containers/{CTR}/json": (
            200,
            engine_doc(CTR, "db", "docker.io/library/postgres:16", {"tier": "db"}),
        ),
        "/images/sha256:" + "f" * 64 + "/json": (
            200,
            {"RepoDigests": ["docker.io/library/postgres@sha256:" + "9" * 64]},
        ),
    }
    with fake_api(root / "run/user/1000/podman/podman.sock", routes), ContainerResolver() as r:
        info = resolve(r, read_cgroup(9))
        assert (info.type, info.name, info.image_tag, info.ip) == ("podman", "db", "16", "10.88.0.5")
        assert info.image_digest == "sha256:" + "9" * 64
        assert info.labels == {"tier": "db"}
        assert info.mounts[0]["Destination"] == "/data"


# --- docker without its socket: the state directory ------------------------------------------------


def test_docker_state_dir_when_socket_missing(root: Path) -> None:
    d = root / "var/lib/docker/containers" / CTR
    write(
        d / "config.v2.json",
        {
            "ID": CTR,
            "Name": "/api",
            "Image": "sha256:" + "1" * 64,
            "Config": {"Image": "example/api:3", "Labels": {"io.kubernetes.pod.name": "api-0"}},
            "MountPoints": {"/data": {"Source": "/srv/data", "Destination": "/data", "RW": False}},
            "NetworkSettings": {"Networks": {"bridge": {"IPAddress": "172.17.0.3"}}},
        },
    )
    write(d / "hostconfig.json", {"Privileged": True})
    cgroup_file(root, 11, f"/docker/{CTR}")
    with ContainerResolver() as r:
        info = resolve(r, read_cgroup(11))
        assert (info.name, info.image_repository, info.image_id, info.pod_name) == (
            "api",
            "example/api",
            "1" * 64,
            "api-0",
        )
        assert (info.privileged, info.ip, info.source) == (True, "172.17.0.3", "docker-state")
        assert any(x.startswith("docker: socket ") and x.endswith("not mounted)") for x in r.reasons(CTR))


# --- failures: every <NA> has a reason -------------------------------------------------------------


def test_socket_missing_gives_reason(root: Path) -> None:
    updates: list[ContainerInfo] = []
    with ContainerResolver(on_update=updates.append, retry_delays=()) as r:
        info = resolve(r, f"0::/system.slice/docker-{CTR}.scope\n")
        assert info.lookup == FAILED and info.name == NA and info.type == "docker"
        reasons = r.reasons(CTR)
        sock = root / "run/docker.sock"
        assert f"docker: socket {sock} not found (runtime not installed, or its socket not mounted)" in reasons
        assert reasons[-1] == f"no runtime knows container {CTR[:12]} (tried: docker-api, docker-state)"
        assert [u.lookup for u in updates] == [FAILED]


def test_dead_socket_gives_reason(root: Path) -> None:
    sock = root / "run/docker.sock"
    sock.parent.mkdir(parents=True)
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(str(sock))  # bound, never listening: what a crashed daemon leaves behind
    try:
        with ContainerResolver(retry_delays=()) as r:
            resolve(r, f"0::/docker/{CTR}\n")
            assert f"docker: nothing listens on {sock} (runtime stopped?)" in r.reasons(CTR)
    finally:
        s.close()


def test_unknown_kubepods_container_lists_all_tries(root: Path) -> None:
    with ContainerResolver(retry_delays=()) as r:
        resolve(r, f"0::/kubepods/besteffort/pod{POD_UID}/{CTR}\n")
        reasons = r.reasons(CTR)
        assert any(x.startswith("containerd: ") for x in reasons)
        assert any(x.startswith("cri-o: ") for x in reasons)
        assert any(x.startswith("docker: ") for x in reasons)
        assert reasons[-1].startswith(f"no runtime knows container {CTR[:12]}")


def test_get_never_waits_for_a_slow_runtime(root: Path) -> None:
    routes = {f"/containers/{CTR}/json": (200, engine_doc(CTR, "slow", "x:1", {}))}
    with fake_api(root / "run/docker.sock", routes, delay=1.0), ContainerResolver() as r:
        t0 = time.monotonic()
        first = r.get(CTR)
        again = r.get(CTR[:12])
        assert time.monotonic() - t0 < 0.1
        assert first.lookup == PENDING and first.name == NA and again is first
        assert r.wait_idle(10)
        assert r.get(CTR).name == "slow"


def test_cache_is_bounded_lru() -> None:
    r = ContainerResolver(live=False, max_entries=2)
    a, b, c = (ContainerInfo(id=x * 12, full_id=x * 64, name=x, lookup=DONE) for x in "abc")
    r.load([a, b])
    assert r.get("a" * 12) is a  # a is now the most recent
    r.load([c])
    assert [i.name for i in r.snapshot()] == ["a", "c"]


def test_offline_never_looks_up(root: Path) -> None:
    containerd_node(root)
    r = ContainerResolver(live=False)
    known = ContainerInfo(id=SANDBOX[:12], full_id=SANDBOX, name="POD", lookup=DONE)
    r.load([known])
    assert r.get(SANDBOX) is known
    gone = r.get(CTR)  # its bundle is right there, but a replay shows what the capture has
    assert gone.lookup == FAILED and gone.name == NA
    assert r.reasons(CTR) == ["the capture has no metadata for this container"]
    assert r._thread is None


# --- a real docker engine ----------------------------------------------------------------------------


def dk(*args: str) -> str:
    """Run the docker client; its stdout."""
    return subprocess.run(["docker", *args], check=True, capture_output=True, text=True, timeout=60).stdout.strip()


@pytest.fixture
def container(docker: str) -> Iterator[str]:
    """A running busybox container with pod labels (``docker`` is the image, from conftest)."""
    name = f"ktrace-t-{uuid.uuid4().hex[:8]}"
    docker_run = [
        "run", "-d", "--network", "none",
        "--label", "io.kubernetes.pod.name=web-1",
        "--label", "io.kubernetes.pod.namespace=prod",
        "--name", name, docker, "sleep", "30",
    ]  # fmt: skip
    try:
        dk(*docker_run)
        yield name
    finally:
        subprocess.run(["docker", "rm", "-f", name], capture_output=True, timeout=60)


@pytest.mark.docker
def test_real_container(container: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KTRACE_HOST_ROOT", raising=False)
    hostroot.set_host_root(None)
    inspect = json.loads(dk("inspect", container))[0]
    pid = inspect["State"]["Pid"]
    text = read_cgroup(pid)
    cid, ctype = container_id_from_cgroup(text)
    assert cid == inspect["Id"][:12]
    assert ctype == "docker"
    assert parse_cgroup(text).full_id == inspect["Id"]

    updates: list[ContainerInfo] = []
    with ContainerResolver(on_update=updates.append) as r:
        info = resolve(r, text)
        assert info.lookup == DONE, r.reasons(cid)
        assert info.name == inspect["Name"].lstrip("/") == container
        assert info.image == inspect["Config"]["Image"]
        assert info.image_id == inspect["Image"].removeprefix("sha256:")
        assert info.labels == inspect["Config"]["Labels"]
        assert info.pod_name == inspect["Config"]["Labels"]["io.kubernetes.pod.name"] == "web-1"
        assert info.pod_namespace == "prod"
        assert info.privileged is False
        assert info.source == "docker-api"
        assert [u.id for u in updates] == [cid]

        # the host's processes are not in it
        own = container_id_from_cgroup(read_cgroup(os.getpid()))[0]
        assert own != cid
        if own == "host":
            assert r.get_for_cgroup(read_cgroup(os.getpid())) is HOST_INFO

        # a container gone keeps its name: captures must show it
        dk("rm", "-f", container)
        assert r.get(cid).name == container

    # and a fresh lookup of it says why there is nothing to show
    with ContainerResolver(retry_delays=()) as r2:
        gone = resolve(r2, text)
        assert gone.lookup == FAILED
        assert f"container gone: docker has no container {inspect['Id'][:12]}" in r2.reasons(cid)


@pytest.mark.docker
def test_real_privileged_container(docker: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KTRACE_HOST_ROOT", raising=False)
    name = f"ktrace-t-{uuid.uuid4().hex[:8]}"
    try:
        # Created, not started: the engine reports it the same, and a privileged start needs
        # capabilities that a test machine (itself a container, often) may not have.
        cid = dk("create", "--network", "none", "--privileged", "--name", name, docker, "sleep", "30")
        with ContainerResolver() as r:
            r.get(cid)
            assert r.wait_idle(10)
            assert r.get(cid).privileged is True
    finally:
        subprocess.run(["docker", "rm", "-f", name], capture_output=True, timeout=60)
