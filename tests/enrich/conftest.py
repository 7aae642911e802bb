"""For the container tests: make the ``ktrace-busybox:latest`` image when it is missing.

The root conftest skips ``docker`` tests when docker or the image is missing. Docker being there
but the image not is fixable on the spot, from Debian's busybox-static (no registry needed), so
this hook runs first and builds it; the root conftest's cached verdict is then dropped.
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import tempfile

import pytest

IMAGE = "ktrace-busybox:latest"
BUSYBOX = "/bin/busybox"


@functools.cache
def ensure_busybox_image() -> str | None:
    """Build the image if docker runs and it is missing; a reason string if it could not."""
    try:
        if subprocess.run(["docker", "info"], capture_output=True, timeout=30).returncode != 0:
            return "docker not running"
        if subprocess.run(["docker", "image", "inspect", IMAGE], capture_output=True, timeout=30).returncode == 0:
            return None
    except (FileNotFoundError, subprocess.TimeoutExpired):
        return "no usable docker client"
    if not os.path.exists(BUSYBOX):
        return f"{BUSYBOX} missing (apt-get install busybox-static)"
    root = tempfile.mkdtemp(prefix="ktrace-busybox-")
    try:
        for d in ("bin", "etc", "tmp", "proc", "sys", "dev"):
            os.makedirs(os.path.join(root, d))
        shutil.copy2(BUSYBOX, os.path.join(root, "bin", "busybox"))
        applets = subprocess.run([BUSYBOX, "--list"], capture_output=True, text=True, check=True).stdout.split()
        for applet in applets:
            if applet != "busybox":
                os.symlink("busybox", os.path.join(root, "bin", applet))
        with open(os.path.join(root, "etc", "passwd"), "w") as f:
            f.write("root:x:0:0:root:/root:/bin/sh\n")
        with open(os.path.join(root, "etc", "group"), "w") as f:
            f.write("root:x:0:\n")
        tar = subprocess.Popen(["tar", "-C", root, "-cf", "-", "."], stdout=subprocess.PIPE)
        imp = subprocess.run(
            # no -q: docker 20.10 (Debian 12's docker.io) does not have it
            ["docker", "import", "-c", "ENV PATH=/bin", "-c", 'CMD ["/bin/sh"]', "-", IMAGE],
            stdin=tar.stdout,
            capture_output=True,
            timeout=120,
        )
        tar.wait()
        if imp.returncode != 0:
            return f"docker import failed: {imp.stderr.decode(errors='replace').strip()}"
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return None


_verdict_dropped = False


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    global _verdict_dropped
    if item.get_closest_marker("docker") is None or _verdict_dropped:
        return
    if ensure_busybox_image() is None:
        _verdict_dropped = True
        # The root conftest caches "image missing" if it looked before the image existed.
        for plugin in item.config.pluginmanager.get_plugins():
            cached = getattr(plugin, "docker_skip_reason", None)
            if cached is not None and hasattr(cached, "cache_clear"):
                cached.cache_clear()
