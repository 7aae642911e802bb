"""deploy/: the Kubernetes manifests validate, and they and debug-container.sh mount what the code reads.

The schemas are kubernetes-validate's bundled copies (offline) for a fixed Kubernetes version. The
mount checks tie the manifests to the code: every host path the container resolver and the /proc
reader open (through KTRACE_HOST_ROOT=/host) must land, inside the pod, on the same file of the host.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tracer.enrich import containers

kubernetes_validate = pytest.importorskip("kubernetes_validate")

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
DEBUG_POD = DEPLOY / "k8s" / "debug-pod.yaml"
DAEMONSET = DEPLOY / "k8s" / "daemonset.yaml"
SERVICE_MONITOR = DEPLOY / "k8s" / "servicemonitor.yaml"
DEBUG_CONTAINER = DEPLOY / "debug-container.sh"
BUILD_IMAGE = DEPLOY / "build-image.sh"
K8S_VERSION = "1.29"
IMAGE = "ktrace:local"
HOST_ROOT = "/host"
# What ktrace needs beyond an ordinary container (deploy/README.md says why each): loading and
# attaching the probe, and reading other processes' fds.
TRACE_CAPS = {"BPF", "PERFMON"}
READ_CAPS = {"SYS_PTRACE", "DAC_READ_SEARCH"}

# Host paths ktrace reads through host_path(): the runtimes' (from the resolver's own constants)
# and the /proc, /etc and cgroup files of the state and user tables.
HOST_PATHS = sorted(
    {
        *containers.DOCKER_SOCKETS,
        *containers.CONTAINERD_SOCKETS,
        *containers.CONTAINERD_TASK_ROOTS,
        *containers.CONTAINERS_STORAGE_DIRS,
        *containers.CRIO_SOCKETS,
        containers.PODMAN_SOCKET,
        containers.PODMAN_USER_SOCKET.format(uid=1000),
        "/proc/1/cgroup",
        "/proc/net/tcp",
        "/etc/passwd",
        "/etc/group",
        "/sys/fs/cgroup/cgroup.controllers",
    }
    # /var/run is a link to /run on the host: the /run mount serves both spellings.
    - {p for p in [*containers.DOCKER_SOCKETS, *containers.CRIO_SOCKETS] if p.startswith("/var/run/")}
)
# Read where the kernel tools expect them, not under the host root.
SAME_PATHS = ["/sys/kernel/debug", "/sys/kernel/tracing", "/lib/modules", "/usr/src"]

Mount = tuple[str, str, bool]  # (host path, container path, read-only)


def docs(path: Path) -> list[dict[str, Any]]:
    with open(path) as f:
        return [d for d in yaml.safe_load_all(f) if d]


def pod_spec(path: Path) -> dict[str, Any]:
    for d in docs(path):
        if d["kind"] == "Pod":
            return d["spec"]  # type: ignore[no-any-return]
        if d["kind"] == "DaemonSet":
            return d["spec"]["template"]["spec"]  # type: ignore[no-any-return]
    raise AssertionError(f"{path}: no pod spec")


def manifest_mounts(path: Path) -> set[Mount]:
    spec = pod_spec(path)
    (ctr,) = spec["containers"]
    host = {v["name"]: v["hostPath"]["path"] for v in spec["volumes"] if "hostPath" in v}
    return {
        (host[m["name"]], m["mountPath"], bool(m.get("readOnly", False)))
        for m in ctr["volumeMounts"]
        if m["name"] in host and m["mountPath"] != "/captures"
    }


def script_mounts() -> set[Mount]:
    words = shlex.split(DEBUG_CONTAINER.read_text().split("exec docker run", 1)[1].replace("\\\n", " "))
    mounts = set()
    for flag, value in zip(words, words[1:], strict=False):
        if flag == "-v":
            src, dst, *opts = value.split(":")
            if dst != "/captures":
                mounts.add((src, dst, "ro" in ",".join(opts).split(",")))
    return mounts


def covering(mounts: set[Mount], container_path: str) -> Mount | None:
    best = None
    for m in mounts:
        if container_path == m[1] or container_path.startswith(m[1].rstrip("/") + "/"):
            if best is None or len(m[1]) > len(best[1]):
                best = m
    return best


@pytest.mark.parametrize("path", [DEBUG_POD, DAEMONSET], ids=lambda p: p.name)
def test_manifest_validates(path: Path) -> None:
    found = docs(path)
    assert found
    for d in found:
        kubernetes_validate.validate(d, K8S_VERSION, strict=True)


def test_validation_catches_a_typo() -> None:
    # The validator is strict: a misspelled field fails, so the test above means something.
    d = docs(DEBUG_POD)[1]
    d["spec"]["containers"][0]["volumeMount"] = []
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(d, K8S_VERSION, strict=True)


@pytest.mark.parametrize("path", [DEBUG_POD, DAEMONSET], ids=lambda p: p.name)
def test_pod_can_trace_the_node(path: Path) -> None:
    spec = pod_spec(path)
    (ctr,) = spec["containers"]
    assert spec["hostPID"] is True
    assert spec["hostNetwork"] is True
    sc = ctr["securityContext"]
    assert "privileged" not in sc
    assert sc["capabilities"]["drop"] == ["ALL"]
    assert set(sc["capabilities"]["add"]) == TRACE_CAPS | READ_CAPS
    assert sc["allowPrivilegeEscalation"] is False
    assert sc["seccompProfile"] == {"type": "RuntimeDefault"}
    meta = docs(path)[1]["metadata"] if path == DEBUG_POD else docs(path)[1]["spec"]["template"]["metadata"]
    assert meta["annotations"][f"container.apparmor.security.beta.kubernetes.io/{ctr['name']}"] == "unconfined"
    assert ctr["image"] == IMAGE
    assert {"name": "KTRACE_HOST_ROOT", "value": HOST_ROOT} in ctr["env"]
    assert {"operator": "Exists"} in spec["tolerations"]  # no key: every taint
    assert spec["automountServiceAccountToken"] is False
    assert any(m["mountPath"] == "/captures" for m in ctr["volumeMounts"])
    (ns,) = [d for d in docs(path) if d["kind"] == "Namespace"]
    assert ns["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "privileged"
    for d in docs(path):
        if d["kind"] != "Namespace":
            assert d["metadata"]["namespace"] == ns["metadata"]["name"]


def test_daemonset_rotates_and_is_bounded() -> None:
    spec = pod_spec(DAEMONSET)
    (ctr,) = spec["containers"]
    assert ctr["args"][:6] == ["-C", "100", "-W", "5", "-w", "/captures/node.kcap"]
    for kind in ("requests", "limits"):
        assert set(ctr["resources"][kind]) >= {"cpu", "memory"}
    captures = next(v for v in spec["volumes"] if v["name"] == "captures")
    assert captures["hostPath"]["path"].startswith("/var/lib/")  # outlives the pod


def test_debug_pod_idles_for_exec() -> None:
    (ctr,) = pod_spec(DEBUG_POD)["containers"]
    assert ctr["command"] == ["sleep", "infinity"]
    assert ctr["workingDir"] == "/captures"


def test_three_places_mount_the_same() -> None:
    pod, ds, sh = manifest_mounts(DEBUG_POD), manifest_mounts(DAEMONSET), script_mounts()
    assert pod == ds
    assert pod == sh


@pytest.mark.parametrize("source", ["debug-pod", "daemonset", "debug-container.sh"])
def test_mounts_cover_what_the_code_reads(source: str) -> None:
    mounts = {
        "debug-pod": lambda: manifest_mounts(DEBUG_POD),
        "daemonset": lambda: manifest_mounts(DAEMONSET),
        "debug-container.sh": script_mounts,
    }[source]()
    for p in HOST_PATHS:
        inside = HOST_ROOT + p  # what host_path(p) gives with KTRACE_HOST_ROOT=/host
        m = covering(mounts, inside)
        assert m is not None, f"{source}: nothing mounted at {inside} (the code reads the host's {p})"
        host_file = m[0].rstrip("/") + inside[len(m[1]) :]
        assert host_file == p, f"{source}: {inside} is the host's {host_file}, not {p}"
    for p in SAME_PATHS:
        m = covering(mounts, p)
        assert m is not None and m[0] == m[1] == p, f"{source}: {p} must be the host's {p}"
    # Only tracefs needs writing; everything else of the host is read-only.
    assert {m[1] for m in mounts if not m[2]} == {"/sys/kernel/debug"}


def test_daemonset_serves_metrics() -> None:
    """One port, the same in ktrace's flag, the container, the scrape annotations, the Service and
    the ServiceMonitor; the address is the node's own, not every interface."""
    ds = docs(DAEMONSET)
    spec = pod_spec(DAEMONSET)
    (ctr,) = spec["containers"]
    args = ctr["args"]
    listen = args[args.index("--metrics") + 1]
    assert "--metrics-bind-any" in args
    assert listen.startswith("$(POD_IP):")
    port = int(listen.rsplit(":", 1)[1])
    assert {"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}} in ctr["env"]
    assert {"name": "metrics", "containerPort": port, "protocol": "TCP"} in ctr["ports"]
    ann = next(d for d in ds if d["kind"] == "DaemonSet")["spec"]["template"]["metadata"]["annotations"]
    assert ann["prometheus.io/scrape"] == "true"
    assert ann["prometheus.io/port"] == str(port)
    (svc,) = [d for d in ds if d["kind"] == "Service"]
    assert svc["spec"]["selector"] == next(d for d in ds if d["kind"] == "DaemonSet")["spec"]["selector"]["matchLabels"]
    assert svc["spec"]["ports"] == [{"name": "metrics", "port": port, "targetPort": "metrics", "protocol": "TCP"}]
    (sm,) = docs(SERVICE_MONITOR)
    assert sm["apiVersion"] == "monitoring.coreos.com/v1" and sm["kind"] == "ServiceMonitor"
    assert sm["metadata"]["namespace"] == svc["metadata"]["namespace"]
    assert sm["spec"]["namespaceSelector"]["matchNames"] == [svc["metadata"]["namespace"]]
    labels = sm["spec"]["selector"]["matchLabels"]
    assert labels.items() <= svc["metadata"]["labels"].items()
    assert [e["port"] for e in sm["spec"]["endpoints"]] == ["metrics"]


def test_debug_container_runs_like_the_pod() -> None:
    text = DEBUG_CONTAINER.read_text()
    for flag in ("--pid host", "--network host", "-e KTRACE_HOST_ROOT=/host", 'PRIVS="--cap-drop ALL"',
                 "--security-opt apparmor=unconfined"):
        assert flag in text
    assert re.search(r"IMAGE=\$\{KTRACE_IMAGE:-ktrace:local\}", text)
    # docker 20.10 knows no BPF, PERFMON: SYS_ADMIN stands for them; the rest is the pod's list.
    caps = set(re.search(r"CAPS=\$\{KTRACE_CAPS:-([A-Z_ ]+)\}", text).group(1).split())  # type: ignore[union-attr]
    assert caps == {"SYS_ADMIN"} | READ_CAPS
    # --privileged only on request
    assert re.search(r'if \[ "\$\{KTRACE_PRIVILEGED:-0\}" = 1 \]; then\n\s+PRIVS="--privileged"', text)


@pytest.mark.parametrize("script", [DEBUG_CONTAINER, BUILD_IMAGE], ids=lambda p: p.name)
def test_scripts_are_executable_in_git(script: Path) -> None:
    out = subprocess.run(["git", "ls-files", "-s", script.name], cwd=script.parent, capture_output=True, text=True)
    if out.returncode != 0 or not out.stdout:
        pytest.skip("not a git checkout")
    assert out.stdout.split()[0] == "100755", out.stdout


@pytest.mark.parametrize("script", [DEBUG_CONTAINER, BUILD_IMAGE], ids=lambda p: p.name)
def test_scripts_parse(script: Path) -> None:
    subprocess.run(["sh", "-n", str(script)], check=True)


@pytest.mark.docker
@pytest.mark.skipif(os.environ.get("KTRACE_BUILD_IMAGE") != "1", reason="slow: set KTRACE_BUILD_IMAGE=1 to build")
def test_build_image() -> None:
    """The real build (minutes: debootstrap, wheels, a Cython build), then a look inside."""
    if os.geteuid() != 0:
        pytest.skip("build-image.sh runs as root")
    subprocess.run(["sh", str(BUILD_IMAGE)], check=True, timeout=3600)
    run = ["docker", "run", "--rm", "--network", "none"]
    probe = "import bcc, tracer, tracer.enrich.containers; print(tracer.__version__)"
    out = subprocess.run(
        [*run, "--entrypoint", "/opt/ktrace/venv/bin/python", IMAGE, "-c", probe],
        check=True,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.stdout.strip()
    # the wrapper is the entrypoint, finds the image's own headers, and runs the CLI
    out = subprocess.run([*run, IMAGE, "--help"], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    headers = subprocess.run(
        [*run, "--entrypoint", "sh", IMAGE, "-c", "ls -d /opt/ktrace/usr-src/linux-headers-*"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert headers.returncode == 0 and headers.stdout.strip()


def image_present() -> bool:
    try:
        return subprocess.run(["docker", "image", "inspect", IMAGE], capture_output=True, timeout=30).returncode == 0
    except (FileNotFoundError, subprocess.TimeoutExpired):
        return False


@pytest.mark.docker
def test_image_resolves_through_the_host_mounts(docker: str) -> None:
    """The built image, with debug-container.sh's mounts, names a real container from inside.

    Not privileged (a test machine may not allow it; the resolver does not need it), and with
    --network none instead of host: nothing here talks to a network.
    """
    if not image_present():
        pytest.skip(f"no {IMAGE} image (sh deploy/build-image.sh builds it)")
    name = f"ktrace-t-{os.urandom(4).hex()}"
    volumes = [a for src, dst, ro in sorted(script_mounts()) for a in ("-v", f"{src}:{dst}{':ro' if ro else ''}")]
    probe = (
        "import sys\n"
        "from tracer.enrich.cgroup import read_cgroup\n"
        "from tracer.enrich.containers import ContainerResolver\n"
        "r = ContainerResolver()\n"
        "i = r.get_for_cgroup(read_cgroup(int(sys.argv[1])))\n"
        "r.wait_idle(10)\n"
        "i = r.get(i.id)\n"
        "print(i.id, i.name, i.pod_name, i.lookup, r.reasons(i.id))\n"
    )
    try:
        subprocess.run(
            ["docker", "run", "-d", "--network", "none", "--label", "io.kubernetes.pod.name=web-1"]
            + ["--name", name, docker, "sleep", "30"],
            check=True,
            capture_output=True,
            timeout=60,
        )
        inspect = subprocess.run(
            ["docker", "inspect", "-f", "{{.Id}} {{.State.Pid}}", name], check=True, capture_output=True, text=True
        ).stdout.split()
        out = subprocess.run(
            ["docker", "run", "--rm", "--pid", "host", "--network", "none", "-e", f"KTRACE_HOST_ROOT={HOST_ROOT}"]
            + volumes
            + ["--entrypoint", "/opt/ktrace/venv/bin/python", IMAGE, "-c", probe, inspect[1]],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert out.returncode == 0, out.stderr
        assert out.stdout.split()[:4] == [inspect[0][:12], name, "web-1", "done"], out.stdout
    finally:
        subprocess.run(["docker", "rm", "-f", name], capture_output=True, timeout=60)
