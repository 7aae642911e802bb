"""Kernel-side container filters: verdicts per cgroup, from a fake host tree (KTRACE_HOST_ROOT).

The fake host has /proc/PID/cgroup files and a cgroup2 tree of plain directories; a directory's id
is its inode number (what stat gives for cgroupfs too), and a fake probe stands in for the maps.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import pytest

from tracer.enrich import cgroupid, hostroot
from tracer.enrich.cgroupid import CgroupFilter, ContainerWants, kernel_filter, v2_path
from tracer.filter import ValueSet, compile_filter
from tracer.filter.pushdown import exact
from tracer.schema.fields import FIELDS

A = "a" * 64
B = "b" * 64
P = "c" * 64  # a kubernetes pod's container


def only(*v: str) -> ValueSet[str]:
    return ValueSet(frozenset(v))


class FakeProbe:
    def __init__(self) -> None:
        self.map: dict[int, bool] = {}
        self.new: list[tuple[int, int]] = []

    def set_cgroups(self, verdicts: Mapping[int, bool]) -> int:
        self.map.update(verdicts)
        return len(verdicts)

    def forget_cgroups(self, ids: Iterable[int]) -> None:
        for i in ids:
            self.map.pop(i, None)

    def new_cgroups(self) -> list[tuple[int, int]]:
        out, self.new = self.new, []
        return out


class Host:
    """A fake host root: cgroup2 at /sys/fs/cgroup (or .../unified), processes in /proc."""

    def __init__(self, root: Path, unified: str = "/sys/fs/cgroup") -> None:
        self.root = root
        self.cg = root / unified.lstrip("/")
        self.cg.mkdir(parents=True)
        (self.cg / "cgroup.controllers").write_text("cpu memory\n")
        (root / "proc").mkdir()

    def cgroup(self, path: str) -> int:
        d = self.cg / path.lstrip("/")
        d.mkdir(parents=True, exist_ok=True)
        return os.stat(d).st_ino

    def proc(self, pid: int, text: str) -> None:
        (self.root / "proc" / str(pid)).mkdir(exist_ok=True)
        (self.root / "proc" / str(pid) / "cgroup").write_text(text)


@pytest.fixture
def host(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Host:
    monkeypatch.setenv(hostroot.ENV_VAR, str(tmp_path))
    hostroot.set_host_root(None)
    # Plain directories are not cgroupfs: their file handles are not the 8-byte kernfs id.
    monkeypatch.setattr(cgroupid, "cgroup_id", lambda p: os.stat(p).st_ino if os.path.isdir(p) else None)
    return Host(tmp_path)


def done(name: str, pod: str = "<NA>") -> dict[str, Any]:
    return {"name": name, "pod_name": pod, "lookup": "done"}


# --- pure parts -----------------------------------------------------------------------------------


def test_v2_path() -> None:
    assert v2_path("12:cpu:/docker/x\n0::/docker/x\n") == "/docker/x"
    assert v2_path("0::/\n") == "/"
    assert v2_path("3:cpu:/a\n") is None


@pytest.mark.parametrize(("wants", "cid", "info", "verdict"), [
    (ContainerWants(ids=only("aaaaaaaaaaaa")), "aaaaaaaaaaaa", None, True),
    (ContainerWants(ids=only("aaaaaaaaaaaa")), "host", None, False),
    (ContainerWants(ids=ValueSet(frozenset({"host"}), exclude=True)), "host", None, False),
    (ContainerWants(ids=ValueSet(frozenset({"host"}), exclude=True)), "bbbbbbbbbbbb", None, True),
    (ContainerWants(names=only("web")), "aaaaaaaaaaaa", None, None),  # not looked up yet
    (ContainerWants(names=only("web")), "aaaaaaaaaaaa", {"lookup": "pending"}, None),
    (ContainerWants(names=only("web")), "aaaaaaaaaaaa", done("web"), True),
    (ContainerWants(names=only("web")), "aaaaaaaaaaaa", done("db"), False),
    (ContainerWants(names=only("web")), "aaaaaaaaaaaa", {"name": "<NA>", "lookup": "failed"}, False),
    (ContainerWants(names=only("host")), "host", None, True),
    (ContainerWants(names=ValueSet(frozenset({"web"}), exclude=True)), "host", None, True),
    (ContainerWants(pods=only("p")), "host", None, False),  # k8s.pod.name of the host is <NA>
    (ContainerWants(pods=only("p")), "aaaaaaaaaaaa", done("x", "p"), True),
    # one condition says no: no need to wait for the other's metadata
    (ContainerWants(ids=only("aaaaaaaaaaaa"), names=only("web")), "bbbbbbbbbbbb", None, False),
])
def test_verdict(wants: ContainerWants, cid: str, info: dict[str, Any] | None, verdict: bool | None) -> None:
    assert wants.verdict(cid, info) is verdict


def test_pushdown_dimensions() -> None:
    f = compile_filter("container.name in (web, db) and k8s.pod.name=p and evt.type=open", FIELDS)
    assert f.pushdown.container_names == only("web", "db")
    assert f.pushdown.pod_names == only("p")
    # The scanner has no per-thread check for names: such a filter is never exact.
    assert not exact(compile_filter("container.name=web", FIELDS).ast)
    assert compile_filter("container.name=web or proc.name=x", FIELDS).pushdown.container_names is None
    assert compile_filter("not container.name=web", FIELDS).pushdown.container_names is None
    assert ContainerWants.from_pushdown(compile_filter("proc.name=x", FIELDS).pushdown) is None


# --- against a fake host ----------------------------------------------------------------------------


def test_initial_verdicts_by_id(host: Host) -> None:
    root_id = host.cgroup("/")
    a_id = host.cgroup(f"/docker/{A}")
    b_id = host.cgroup(f"/system.slice/docker-{B}.scope")
    host.proc(1, "0::/init.scope\n")
    host.cgroup("/init.scope")
    host.proc(10, f"0::/docker/{A}\n")
    host.proc(11, f"0::/system.slice/docker-{B}.scope\n")
    host.proc(12, "0::/\n")
    cgf, why = kernel_filter(compile_filter(f"container.id={A[:12]}", FIELDS).pushdown)
    assert cgf is not None, why
    assert "in the kernel" in why
    assert cgf.verdicts[a_id] is True
    assert cgf.verdicts[b_id] is False
    assert cgf.verdicts[root_id] is False
    assert sum(cgf.verdicts.values()) == 1


def test_names_wait_for_metadata(host: Host) -> None:
    a_id = host.cgroup(f"/docker/{A}")
    b_id = host.cgroup(f"/docker/{B}")
    host.proc(10, f"0::/docker/{A}\n")
    host.proc(11, f"0::/docker/{B}\n")
    cgf, _ = kernel_filter(compile_filter("container.name=web", FIELDS).pushdown)
    assert cgf is not None
    assert a_id not in cgf.verdicts and b_id not in cgf.verdicts  # no verdict: they pass
    probe = FakeProbe()
    asked: list[str] = []
    cgf.poll(probe, {}, lambda cid, text: asked.append(cid), force=True)
    assert sorted(set(asked)) == [A[:12], B[:12]]
    containers = {A[:12]: done("web"), B[:12]: {"name": "<NA>", "lookup": "pending"}}
    cgf.poll(probe, containers, force=True)
    assert probe.map == {a_id: True}
    containers[B[:12]] = done("db")
    cgf.poll(probe, containers, force=True)
    assert probe.map == {a_id: True, b_id: False}
    assert "1 cgroup(s) wanted" in cgf.summary()


def test_new_cgroups_are_classified(host: Host) -> None:
    host.cgroup("/")
    host.proc(1, "0::/\n")
    cgf, _ = kernel_filter(compile_filter(f"container.id={A[:12]}", FIELDS).pushdown)
    assert cgf is not None
    probe = FakeProbe()
    # A container started after ktrace: the kernel reports its cgroup with a task seen in it.
    a_id = host.cgroup(f"/kubepods/besteffort/pod1234/{A}")
    sub_id = host.cgroup(f"/kubepods/besteffort/pod1234/{A}/sub")
    p_id = host.cgroup(f"/kubepods/besteffort/pod1234/{P}")
    host.proc(20, f"0::/kubepods/besteffort/pod1234/{A}\n")
    host.proc(21, f"0::/kubepods/besteffort/pod1234/{A}/sub\n")
    host.proc(22, f"0::/kubepods/besteffort/pod1234/{P}\n")
    probe.new = [(a_id, 20), (sub_id, 21), (p_id, 22)]
    cgf.poll(probe, {}, force=True)
    assert probe.map == {a_id: True, sub_id: True, p_id: False}


def test_moved_task_is_not_taken_for_its_cgroup(host: Host) -> None:
    cgf, _ = kernel_filter(compile_filter(f"container.id={A[:12]}", FIELDS).pushdown)
    assert cgf is not None
    probe = FakeProbe()
    a_id = host.cgroup(f"/docker/{A}")
    b_id = host.cgroup(f"/docker/{B}")
    host.proc(30, f"0::/docker/{B}\n")  # the task reported in A's cgroup has moved to B's since
    probe.new = [(a_id, 30)]
    cgf.poll(probe, {}, force=True)
    assert a_id not in probe.map  # still no verdict: keeps passing
    # Reported again and again with no readable task: given up on, let through (user space decides).
    for _ in range(cgroupid.GIVE_UP_AFTER):
        probe.new = [(a_id, 999)]
        cgf.poll(probe, {}, force=True)
    assert probe.map[a_id] is True
    assert b_id not in probe.map


def test_private_cgroup_namespace_paths(host: Host) -> None:
    a_id = host.cgroup(f"/kubepods/burstable/podx/{A}")
    host.cgroup(f"/kubepods/burstable/podx/{B}")  # ktrace's own container
    host.proc(10, f"0::/../{A}\n")  # as read from inside B's cgroup namespace
    cgf, _ = kernel_filter(compile_filter(f"container.id={A[:12]}", FIELDS).pushdown)
    assert cgf is not None
    assert cgf.verdicts == {a_id: True}


def test_hybrid_host_uses_the_unified_mount(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(hostroot.ENV_VAR, str(tmp_path))
    monkeypatch.setattr(cgroupid, "cgroup_id", lambda p: os.stat(p).st_ino if os.path.isdir(p) else None)
    h = Host(tmp_path, unified="/sys/fs/cgroup/unified")
    a_id = h.cgroup(f"/docker/{A}")
    h.proc(10, f"4:memory:/docker/{A}\n0::/docker/{A}\n")
    cgf, why = kernel_filter(compile_filter(f"container.id={A[:12]}", FIELDS).pushdown)
    assert cgf is not None and "/sys/fs/cgroup/unified" in why
    assert cgf.verdicts == {a_id: True}


def test_runtime_without_v2_cgroups_turns_the_kernel_filter_off(host: Host) -> None:
    host.cgroup("/")
    host.proc(10, f"4:memory:/docker/{A}\n0::/\n")  # v1 controllers only: shares the v2 root
    cgf, why = kernel_filter(compile_filter("container.name=web", FIELDS).pushdown)
    assert cgf is None
    assert "user space" in why and A[:12] in why


def test_cgroup_v1_only(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(hostroot.ENV_VAR, str(tmp_path))
    cgf, why = CgroupFilter.plan(compile_filter(f"container.id={A[:12]}", FIELDS).pushdown)
    assert cgf is None and "cgroup v1 only" in why
    assert CgroupFilter.plan(compile_filter("proc.name=x", FIELDS).pushdown)[0] is None


def test_prune_forgets_gone_cgroups(host: Host, monkeypatch: pytest.MonkeyPatch) -> None:
    a_id = host.cgroup(f"/docker/{A}")
    b_id = host.cgroup(f"/docker/{B}")
    host.proc(10, f"0::/docker/{A}\n")
    host.proc(11, f"0::/docker/{B}\n")
    cgf, _ = kernel_filter(compile_filter(f"container.id={A[:12]}", FIELDS).pushdown)
    assert cgf is not None
    probe = FakeProbe()
    probe.map.update(cgf.verdicts)
    os.rmdir(host.cg / "docker" / B)
    monkeypatch.setattr(cgroupid, "MAP_MAX", 1)
    cgf.poll(probe, {}, force=True)
    assert b_id not in probe.map and b_id not in cgf.verdicts
    assert probe.map == {a_id: True}


def test_real_cgroup_ids_are_kernfs_ids() -> None:
    """On this machine: the handle of a cgroup2 directory is its inode, the kernel's cgroup id."""
    root = cgroupid.unified_root()
    if root is None:
        pytest.skip("no cgroup v2 hierarchy here")
    assert cgroupid.cgroup_id(root) == 1  # the root cgroup's kernfs id
    for entry in os.scandir(root):
        if entry.is_dir():
            assert cgroupid.cgroup_id(entry.path) == os.stat(entry.path).st_ino
            break
