"""Shared fixtures: the engine under test, and skips for tests that need a kernel or docker.

Tests marked ``live`` load a BPF program; those marked ``docker`` start containers.  Each is skipped,
with the reason, where the machine cannot do it: the reasons are found once per session.  With
``CI=true`` they fail instead: there the set-up was meant to provide BPF and docker, and a run that
skipped them must not pass.
"""

from __future__ import annotations

import functools
import os
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest

BUSYBOX_IMAGE = "ktrace-busybox:latest"

# A trivial program on the tracepoint ktrace uses: compiles against the kernel headers, loads,
# attaches and detaches.  Run in a child so a crash or a hang cannot take the test session with it.
_TRIVIAL_BCC = """
from bcc import BPF
b = BPF(text="TRACEPOINT_PROBE(raw_syscalls, sys_enter) { return 0; }")
b.cleanup()
"""


def _last_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else "no output"


def unavailable(reason: str) -> None:
    """Skip the test for ``reason``; under CI=true, where the set-up provides it, fail instead."""
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason} (CI=true: scripts/setup.sh should have provided it)", pytrace=False)
    pytest.skip(reason)


@functools.cache
def live_skip_reason() -> str | None:
    """Why live (BPF) tests cannot run here, or None if they can."""
    if os.geteuid() != 0:
        return "live test: needs root (run the suite as root)"
    try:
        proc = subprocess.run(
            [sys.executable, "-c", _TRIVIAL_BCC], capture_output=True, text=True, timeout=120
        )
    except subprocess.TimeoutExpired:
        return "live test: loading a trivial bcc program timed out"
    if proc.returncode != 0:
        return (
            f"live test: cannot load a trivial bcc program ({_last_line(proc.stderr)}); see `ktrace doctor`"
        )
    return None


@functools.cache
def docker_skip_reason() -> str | None:
    """Why docker tests cannot run here, or None if they can."""
    try:
        info = subprocess.run(["docker", "info"], capture_output=True, text=True, timeout=30)
    except FileNotFoundError:
        return "docker test: no docker client (sh scripts/setup.sh installs and starts docker)"
    except subprocess.TimeoutExpired:
        return "docker test: `docker info` timed out"
    if info.returncode != 0:
        return f"docker test: `docker info` failed ({_last_line(info.stderr)})"
    image = subprocess.run(["docker", "image", "inspect", BUSYBOX_IMAGE], capture_output=True, timeout=30)
    if image.returncode != 0:
        return f"docker test: image {BUSYBOX_IMAGE} missing (sh scripts/setup.sh builds it)"
    return None


def pytest_runtest_setup(item: pytest.Item) -> None:
    if item.get_closest_marker("live") is not None:
        reason = live_skip_reason()
        if reason:
            unavailable(reason)
    if item.get_closest_marker("docker") is not None:
        reason = docker_skip_reason()
        if reason:
            unavailable(reason)


def pytest_configure(config: pytest.Config) -> None:
    # The engine the run asked for must load: a Cython run without the extension stops here.
    from tracer.errors import EngineError

    try:
        import tracer.engine  # noqa: F401
    except EngineError as e:
        raise pytest.UsageError(str(e)) from e


def pytest_report_header(config: pytest.Config) -> str:
    from tracer import engine

    mods = ", ".join(f"{m.__name__} ({m.__file__})" for m in (engine.scan, engine.ring))
    return f"ktrace engine: {_engine()}: {mods}"


def _engine() -> str:
    """Which engine runs, from the modules tracer.engine loaded (not from the environment)."""
    from tracer import engine

    kinds = {m.__name__.split(".")[1] for m in (engine.scan, engine.ring)}
    assert len(kinds) == 1, f"engine modules of both kinds loaded: {kinds}"
    return {"_ext": "cython", "_pure": "pure"}[kinds.pop()]


@pytest.fixture(scope="session")
def engine() -> str:
    """``"cython"`` or ``"pure"``: the engine whose modules tracer.engine loaded."""
    return _engine()


@pytest.fixture(scope="session")
def live_reason() -> str | None:
    """Why live tests are skipped here, or None: for tests that compare ktrace's own verdict."""
    return live_skip_reason()


@pytest.fixture(scope="session")
def live() -> None:
    """Skip the test unless BPF programs can be loaded here (same as marking it ``live``); session
    scoped, so module-scoped fixtures that start a probe can depend on it."""
    reason = live_skip_reason()
    if reason:
        unavailable(reason)


@pytest.fixture
def docker() -> str:
    """Skip the test unless docker runs and has the busybox image; gives the image's name."""
    reason = docker_skip_reason()
    if reason:
        unavailable(reason)
    return BUSYBOX_IMAGE


@pytest.fixture
def utc() -> Iterator[None]:
    """TZ=UTC for the test (local times print the same everywhere)."""
    old = os.environ.get("TZ")
    os.environ["TZ"] = "UTC"
    time.tzset()
    yield
    if old is None:
        del os.environ["TZ"]
    else:
        os.environ["TZ"] = old
    time.tzset()
