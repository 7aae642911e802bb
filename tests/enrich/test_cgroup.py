"""Container id from /proc/PID/cgroup: every runtime shape, cgroup v1 and v2.

Strings marked (neuvector) are from neuvector's share/system/cgroup_test.go, (libsinsp) from
falcosecurity/libs' container_cgroup tests and podman.cpp comments, (here) were read on this
machine, and (shape) are built from the layout that a runtime documents, with made-up ids.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tracer.enrich import hostroot
from tracer.enrich.cgroup import (
    HOST,
    container_id_from_cgroup,
    parse_cgroup,
    read_cgroup,
)

V1_CONTROLLERS = (
    "12:name=systemd",
    "11:hugetlb",
    "10:net_prio",
    "9:perf_event",
    "8:blkio",
    "7:net_cls",
    "6:freezer",
    "5:devices",
    "4:memory",
    "3:cpuacct",
    "2:cpu",
    "1:cpuset",
)


def v1(path: str) -> str:
    """A cgroup v1 file with every controller at ``path``."""
    return "".join(f"{c}:{path}\n" for c in V1_CONTROLLERS)


def v2(path: str) -> str:
    """A cgroup v2 (unified) file."""
    return f"0::{path}\n"


ID_A = "4f797c539e6c745de61a93ca3ff892358ecbcaccd8414d5db545c38428142970"
ID_B = "9ec39b91f3d70e1beff50a308f77067065ea6be0d91a3378375056cd4422cf3d"
ID_C = "31cb02944da7a12196a193cf0e0f6c226d7c453a1db62e65ba98287593a2ee30"
DIND_OUTER = "a9a5ad238e59234193ee7ec3fcff5e735b3708ea1068826952255b69e3cfa413"
DIND_INNER = "ec08435e04266c5ba381fccbb829f626d11d8ddf5f8f547263c7a2d79ab4787a"
KP1 = "cb1eadb7abe3a6545e9856411207073277838e1bdc003337c2f8685faeedc32c"
KP2 = "b5b6f2da8008be266864f896f93789762b2ce50792114a5c5f2cc3315af0bc70"
PROXY = "c04e0a88a1de067f25bece337d4dbb897396e0b623c2a65330850fc9823f1903"
BOTTLEROCKET = "f45298cd514d1930c4fe3afc4412e59547f7e3148fddd22ca33cefce046eb830"
CRIO_119 = "d6d725b909f37c3e232aadfbafa950a58bfe7baa579ba8c47a12be88bb921607"
CRIO_117 = "7a1fd6fe8cdfbd44dc78c4cc85dad7031eaab4365801684cad0aabdeaf863f9e"
CTRD_144 = "d3d8ccf5cca91931c6285c1d7472c413dd5a7700fddc0aa9f89a9ac7008b003e"
LIBSINSP_CTRD = "605439acbd4fb18c145069289094b17f17e0cfa938f78012d4960bc797305f22"
LIBSINSP_CRIO_FS = "73bfe475650de66df8e2affdc98d440dcbe84f8df83b6f75a68a82eb7026136a"
LIBSINSP_CRIO_SD = "17d8c9eacc629f9945f304d89e9708c0c619649a484a215b240628319548a09f"
LIBSINSP_DOCKER = "7951fb549ab99e0722a949b6c121634e1f3a36b5bacbe5392991e3b12251e6b8"
LIBSINSP_UNKNOWN = "d52db56a9c80d536a91354c0951c061187ca46249e64865a12703003d8f42366"
HERE = "0568d3ea6d30ffcb428ab11daec51eec44df905da334132d2e5c2da2ccdd15da"
SHAPE = "1f0e2d3c4b5a69788796a5b4c3d2e1f00112233445566778899aabbccddeeff0"
UID = "aaaa2b4a-f398-41c0-928b-049e1cc4ec40"
UID_ = UID.replace("-", "_")

# (name, cgroup text, id, type, pod uid)
CASES: list[tuple[str, str, str, str, str]] = [
    # --- docker ---
    ("neuvector debian: bare id at the root", v1(f"/{ID_A}"), ID_A, "docker", ""),
    ("neuvector centos: systemd scope", v1(f"/system.slice/docker-{ID_B}.scope"), ID_B, "docker", ""),
    ("neuvector ubuntu: cgroupfs /docker/<id>", v1(f"/docker/{ID_C}"), ID_C, "docker", ""),
    (
        "libsinsp docker_systemd",
        v1(f"/docker.slice/docker-{LIBSINSP_DOCKER}.scope"),
        LIBSINSP_DOCKER,
        "docker",
        "",
    ),
    ("libsinsp docker_cgroupfs", v2(f"/docker/{LIBSINSP_DOCKER}"), LIBSINSP_DOCKER, "docker", ""),
    (
        "here: docker 20.10 cgroupfs, hybrid v1+v2",
        "".join(
            f"{n}:{c}:/docker/{HERE}\n"
            for n, c in (
                ("9", "name=systemd"),
                ("8", "pids"),
                ("7", "blkio"),
                ("6", "freezer"),
                ("5", "devices"),
                ("4", "memory"),
                ("3", "cpuset"),
                ("2", "cpuacct"),
                ("1", "cpu"),
                ("0", ""),
            )
        ),
        HERE,
        "docker",
        "",
    ),
    ("shape: docker systemd on cgroup v2", v2(f"/system.slice/docker-{SHAPE}.scope"), SHAPE, "docker", ""),
    (
        "neuvector rancheros: docker in docker, innermost wins",
        v1(f"/docker/{DIND_OUTER}/docker/{DIND_INNER}"),
        DIND_INNER,
        "docker",
        "",
    ),
    # --- kubelet, cgroupfs driver: containerd or dockershim, the path cannot tell ---
    (
        "neuvector kubepods besteffort",
        v1(f"/kubepods/besteffort/pod74ba62da-1a3d-11e7-bb11-080027cb0e22/{KP1}"),
        KP1,
        "",
        "74ba62da-1a3d-11e7-bb11-080027cb0e22",
    ),
    (
        "libsinsp containerd_cgroupfs",
        v2(f"/kubepods/besteffort/podac04f3f2-1f2c-11e9-b015-1ebee232acfa/{LIBSINSP_CTRD}"),
        LIBSINSP_CTRD,
        "",
        "ac04f3f2-1f2c-11e9-b015-1ebee232acfa",
    ),
    ("shape: guaranteed pod has no qos level", v2(f"/kubepods/pod{UID}/{SHAPE}"), SHAPE, "", UID),
    (
        "neuvector kube-proxy: a sub-cgroup after the id",
        v1(f"/kubepods/besteffort/podf8a694f2-7c08-11e9-98da-000c29077430/{PROXY}/kube-proxy"),
        PROXY,
        "",
        "f8a694f2-7c08-11e9-98da-000c29077430",
    ),
    # --- kubelet, systemd driver ---
    (
        "neuvector kubepods2: dockershim/cri-dockerd systemd scope",
        v1(
            "/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod045b1e35_7f13_11e7_ac42_"
            f"0050568ffca0.slice/docker-{KP2}.scope"
        ),
        KP2,
        "docker",
        "045b1e35-7f13-11e7-ac42-0050568ffca0",
    ),
    (
        "neuvector bottlerocket: cri-containerd scope, v1 + v2 line",
        v1(
            "/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-poddd1bf9d1_241d_47f5_8e25_"
            f"12de83135812.slice/cri-containerd-{BOTTLEROCKET}.scope"
        )
        + v2(
            "/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-poddd1bf9d1_241d_47f5_8e25_"
            f"12de83135812.slice/cri-containerd-{BOTTLEROCKET}.scope"
        ),
        BOTTLEROCKET,
        "containerd",
        "dd1bf9d1-241d-47f5-8e25-12de83135812",
    ),
    (
        "shape: guaranteed pod, containerd systemd, cgroup v2",
        v2(f"/kubepods.slice/kubepods-pod{UID_}.slice/cri-containerd-{SHAPE}.scope"),
        SHAPE,
        "containerd",
        UID,
    ),
    (
        "shape: burstable, seen from a private cgroup namespace",
        v2(f"/../../kubepods-burstable.slice/kubepods-burstable-pod{UID_}.slice/cri-containerd-{SHAPE}.scope"),
        SHAPE,
        "containerd",
        UID,
    ),
    (
        "neuvector containerd 1.4.4: ':cri-containerd:' without SystemdCgroup",
        f"11:pids:/system.slice/containerd.service/kubepods-besteffort-pod2105e389_7471_476e_a50f_"
        f"6074cef29bbd.slice:cri-containerd:{CTRD_144}\n"
        f"10:freezer:/kubepods-besteffort-pod2105e389_7471_476e_a50f_6074cef29bbd.slice:cri-containerd:"
        f"{CTRD_144}\n",
        CTRD_144,
        "containerd",
        "2105e389-7471-476e-a50f-6074cef29bbd",
    ),
    (
        "libsinsp containerd_unknown: static pod uid (32 hex)",
        v2(f"/kubepods-burstable-podbd12dd3393227d950605a2444b13c27a.slice:cri-containerd:{LIBSINSP_UNKNOWN}"),
        LIBSINSP_UNKNOWN,
        "containerd",
        "bd12dd3393227d950605a2444b13c27a",
    ),
    # --- cri-o ---
    (
        "neuvector crio 1.19 (tab-indented lines)",
        "".join(
            f"\t{c}:/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod8ca306fa_3c03_47fa_"
            f"97dd_19979c345572.slice/crio-{CRIO_119}.scope\n"
            for c in ("12:devices", "11:pids", "10:freezer")
        )
        + "\t6:rdma:/\n",
        CRIO_119,
        "cri-o",
        "8ca306fa-3c03-47fa-97dd-19979c345572",
    ),
    (
        "neuvector crio 1.17: static pod",
        v1(
            "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod487a0dc6dccaeefbcfedba7a7ce1ca18"
            f".slice/crio-{CRIO_117}.scope"
        ),
        CRIO_117,
        "cri-o",
        "487a0dc6dccaeefbcfedba7a7ce1ca18",
    ),
    (
        "libsinsp crio_cgroupfs",
        v1(f"/kubepods/besteffort/pod63b3ebfc-2890-11e9-8154-16bf8ef8d9dc/crio-{LIBSINSP_CRIO_FS}"),
        LIBSINSP_CRIO_FS,
        "cri-o",
        "63b3ebfc-2890-11e9-8154-16bf8ef8d9dc",
    ),
    (
        "libsinsp crio_systemd",
        v2(
            "/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod63b3ebfc_2890_11e9_8154_"
            f"16bf8ef8d9dc.slice/crio-{LIBSINSP_CRIO_SD}.scope"
        ),
        LIBSINSP_CRIO_SD,
        "cri-o",
        "63b3ebfc-2890-11e9-8154-16bf8ef8d9dc",
    ),
    (
        "shape: cri-o with crun on v2, payload in a 'container' sub-cgroup",
        v2(f"/kubepods.slice/kubepods-pod{UID_}.slice/crio-{SHAPE}.scope/container"),
        SHAPE,
        "cri-o",
        UID,
    ),
    # --- podman ---
    ("libsinsp podman root", v2(f"/machine.slice/libpod-{SHAPE}.scope/container"), SHAPE, "podman", ""),
    ("libsinsp podman root, v1 scope", v1(f"/machine.slice/libpod-{SHAPE}.scope"), SHAPE, "podman", ""),
    ("libsinsp podman on alpine (cgroupfs)", v1(f"/libpod-{SHAPE}"), SHAPE, "podman", ""),
    (
        "libsinsp podman rootless",
        v2(f"/user.slice/user-1000.slice/user@1000.service/user.slice/libpod-{SHAPE}.scope/container"),
        SHAPE,
        "podman",
        "",
    ),
    (
        "libsinsp podman rootless, podman-<pid>.scope/<id>",
        v2(f"/user.slice/user-1000.slice/user@1000.service/podman-4242.scope/{SHAPE}"),
        SHAPE,
        "podman",
        "",
    ),
    (
        "libsinsp podman rootless as a service: a bare id under user.slice",
        v2(f"/user.slice/user-1000.slice/user@1000.service/web.service/{SHAPE}"),
        SHAPE,
        "podman",
        "",
    ),
]

HOST_CASES: list[tuple[str, str]] = [
    ("empty", ""),
    ("neuvector host process", v1("/") + "14:name=dsystemd:/\n"),
    ("neuvector nsenter: a user session", v1("/user/1000.user/c2.session")),
    ("libsinsp non_container_cgroup", v2("/user.slice/user-1000.slice/user@1000.service/init.scope")),
    (
        "here: a 32-hex job cgroup is not a container",
        "4:memory:/process_api/1c82c3de207fd152a0f7dbfbe34f6668\n0::/\n",
    ),
    (
        "shape: cri-o's conmon is a runtime helper, not the container",
        v2(f"/system.slice/crio-conmon-{SHAPE}.scope"),
    ),
    ("shape: 64 hex with a suffix is not an id", v2(f"/system.slice/docker-{SHAPE}.scope-extra")),
    ("garbage", "not a cgroup file\n:::\n"),
]


@pytest.mark.parametrize(("name", "text", "full", "ctype", "pod_uid"), CASES, ids=[c[0] for c in CASES])
def test_container_shapes(name: str, text: str, full: str, ctype: str, pod_uid: str) -> None:
    assert container_id_from_cgroup(text) == (full[:12], ctype)
    m = parse_cgroup(text)
    assert m.full_id == full
    assert m.pod_uid == pod_uid


@pytest.mark.parametrize(("name", "text"), HOST_CASES, ids=[c[0] for c in HOST_CASES])
def test_host_shapes(name: str, text: str) -> None:
    assert container_id_from_cgroup(text) == ("host", "")
    assert parse_cgroup(text) == HOST


def test_dind_keeps_the_outer_id() -> None:
    m = parse_cgroup(v1(f"/docker/{DIND_OUTER}/docker/{DIND_INNER}"))
    assert m.id == DIND_INNER[:12]
    assert m.outer_ids == (DIND_OUTER,)


def test_rootless_owner() -> None:
    text = v2(f"/user.slice/user-1000.slice/user@1000.service/user.slice/libpod-{SHAPE}.scope/container")
    assert parse_cgroup(text).rootless_uid == 1000
    assert parse_cgroup(v2(f"/machine.slice/libpod-{SHAPE}.scope")).rootless_uid == -1
    # a user.slice docker container (rootless docker) is not podman's
    m = parse_cgroup(v2(f"/user.slice/user-1000.slice/user@1000.service/docker/{SHAPE}"))
    assert (m.type, m.rootless_uid) == ("docker", -1)


def test_cached_answer_is_the_same() -> None:
    text = v2(f"/docker/{SHAPE}")
    assert parse_cgroup(text) is parse_cgroup(text)


def test_this_process_is_on_the_host_or_in_a_container() -> None:
    # Whatever this machine is, the parser must accept its real file without error.
    cid, _ = container_id_from_cgroup(read_cgroup(os.getpid()))
    assert cid == "host" or len(cid) == 12


def test_read_cgroup_through_host_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "proc" / "4242").mkdir(parents=True)
    (tmp_path / "proc" / "4242" / "cgroup").write_text(v2(f"/system.slice/docker-{SHAPE}.scope"))
    monkeypatch.setenv("KTRACE_HOST_ROOT", str(tmp_path))
    assert container_id_from_cgroup(read_cgroup(4242)) == (SHAPE[:12], "docker")
    assert read_cgroup(4243) == ""  # a task gone reads as empty, never raises


def test_host_path(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KTRACE_HOST_ROOT", raising=False)
    assert hostroot.host_path("/proc/1/cgroup") == "/proc/1/cgroup"
    monkeypatch.setenv("KTRACE_HOST_ROOT", "/host/")
    assert hostroot.host_path("/proc/1/cgroup") == "/host/proc/1/cgroup"
    assert hostroot.host_path("relative") == "relative"
    try:
        hostroot.set_host_root("/flag")  # the CLI flag wins over the environment
        assert hostroot.host_path("/etc/passwd") == "/flag/etc/passwd"
        hostroot.set_host_root("/")
        assert hostroot.host_path("/etc/passwd") == "/etc/passwd"
    finally:
        hostroot.set_host_root(None)
    assert hostroot.host_root() == "/host"
