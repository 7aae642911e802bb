"""Which kernel headers bcc will compile the probe against, checked against the running kernel's
/lib/modules and against made-up trees, and the command that provides them."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tracer.probe import headers as kheaders

RELEASE = os.uname().release


@pytest.fixture
def empty_root(tmp_path: Path) -> Path:
    root = tmp_path / "root"
    root.mkdir()
    return root


def test_headers_match_lib_modules(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("BCC_KERNEL_SOURCE", raising=False)
    ok, message = kheaders.headers_status()
    build = f"/lib/modules/{RELEASE}/build"
    if os.path.isdir(build):
        assert ok
        assert message.startswith(build)
        if os.path.islink(build):
            assert os.path.realpath(build) in message
    elif not os.path.exists("/sys/kernel/kheaders.tar.xz"):
        assert not ok
        assert "apt-get install" in message


def test_headers_fix_names_the_installed_debian_tree(empty_root: Path) -> None:
    (empty_root / "usr/src/linux-headers-6.1.0-9-amd64").mkdir(parents=True)
    (empty_root / "usr/src/linux-headers-6.1.0-56-amd64").mkdir(parents=True)
    (empty_root / "usr/src/linux-headers-6.1.0-56-common").mkdir(parents=True)
    fix = kheaders.headers_fix("6.18.44-custom", str(empty_root), arch="amd64")
    assert fix == (
        "apt-get install linux-headers-amd64 && mkdir -p /lib/modules/6.18.44-custom && "
        "ln -s /usr/src/linux-headers-6.1.0-56-amd64 /lib/modules/6.18.44-custom/build && "
        "ln -s /usr/src/linux-headers-6.1.0-56-common /lib/modules/6.18.44-custom/source"
    )


def test_headers_fix_without_any_tree_picks_the_newest_after_install(empty_root: Path) -> None:
    fix = kheaders.headers_fix("6.18.44-custom", str(empty_root), arch="amd64")
    assert fix.startswith(
        "apt-get install linux-headers-amd64 && mkdir -p /lib/modules/6.18.44-custom && ln -s "
    )
    assert "$(ls -d /usr/src/linux-headers-*-amd64 | sort -V | tail -n 1)" in fix


def test_headers_fix_for_a_debian_kernel_is_its_own_package(empty_root: Path) -> None:
    fix = kheaders.headers_fix("6.1.0-56-amd64", str(empty_root), arch="amd64")
    assert fix == "apt-get install linux-headers-6.1.0-56-amd64"


def test_bcc_kernel_source_env_reaches_headers_status(
    empty_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BCC_KERNEL_SOURCE", str(empty_root / "nowhere"))
    ok, message = kheaders.headers_status()
    assert not ok
    assert "BCC_KERNEL_SOURCE" in message and "fix:" in message
