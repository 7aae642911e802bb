"""Which kernel headers bcc compiles the probe against, whether they will do, and the command that
provides them when they are missing.

bcc looks for ``/lib/modules/<release>/build`` (or ``$BCC_KERNEL_SOURCE``, or the kernel's own
``/sys/kernel/kheaders.tar.xz``). Headers of another kernel version do: the probe reads
tracepoint arguments, BPF helpers and user memory only. ``local`` is where ``/`` is, for tests.
"""

from __future__ import annotations

import os
import platform
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

WHY_OTHER_HEADERS_ARE_FINE: Final = (
    "that is fine: the probe reads tracepoint arguments, BPF helpers and user memory only, "
    "no kernel struct whose layout differs between versions"
)

# Debian's architecture names, as in linux-headers-<arch>.
_DEBIAN_ARCH: Final = {"x86_64": "amd64", "aarch64": "arm64"}


@dataclass(frozen=True)
class Headers:
    """What bcc will use: ``usable`` or not, ``detail`` says which tree, ``fix`` the command that
    provides one, ``note`` why a tree of another version is fine."""

    usable: bool
    detail: str
    fix: str = ""
    note: str = ""


def _at(local: str, path: str) -> str:
    return os.path.join(local, path.lstrip("/"))


def _read(path: str) -> str | None:
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return f.read()
    except OSError:
        return None


def debian_arch() -> str:
    return _DEBIAN_ARCH.get(platform.machine(), platform.machine())


def _version_key(text: str) -> list[tuple[int, int | str]]:
    """Natural sort key: ``6.1.0-10`` sorts after ``6.1.0-9``."""
    return [(0, int(p)) if p.isdigit() else (1, p) for p in re.split(r"(\d+)", text) if p]


def _tree_release(tree: str) -> str | None:
    """Kernel release a headers tree was made for, as uname shows it: from its Debian directory name
    (linux-headers-6.1.0-56-amd64), else its include/config/kernel.release."""
    m = re.fullmatch(r"linux-headers-(.+)", os.path.basename(tree.rstrip("/")))
    if m:
        return m.group(1)
    text = _read(os.path.join(tree, "include", "config", "kernel.release"))
    return text.strip() if text and text.strip() else None


def newest_debian_headers(local: str = "/", arch: str | None = None) -> str | None:
    """The newest installed /usr/src/linux-headers-*-<arch> tree (a path as seen from ``/``)."""
    arch = arch or debian_arch()
    src = _at(local, "/usr/src")
    try:
        names = [n for n in os.listdir(src) if n.startswith("linux-headers-") and n.endswith(f"-{arch}")]
    except OSError:
        return None
    names = [n for n in names if os.path.isdir(os.path.join(src, n))]
    if not names:
        return None
    return "/usr/src/" + max(names, key=_version_key)


def headers_fix(release: str, local: str = "/", arch: str | None = None) -> str:
    """The exact command that gives bcc a headers tree for kernel ``release``."""
    arch = arch or debian_arch()
    moddir = f"/lib/modules/{release}"
    if release.endswith(f"-{arch}"):  # a Debian kernel: its own headers package exists
        return f"apt-get install linux-headers-{release}"
    tree = newest_debian_headers(local, arch)
    if tree is None:
        tree = f'"$(ls -d /usr/src/linux-headers-*-{arch} | sort -V | tail -n 1)"'
        common: str | None = '"$(ls -d /usr/src/linux-headers-*-common | sort -V | tail -n 1)"'
    else:
        common = tree[: -len(arch)] + "common"
        if not os.path.isdir(_at(local, common)):
            common = None
    fix = f"apt-get install linux-headers-{arch} && mkdir -p {moddir} && ln -s {tree} {moddir}/build"
    return fix + (f" && ln -s {common} {moddir}/source" if common else "")


def find_headers(release: str, local: str = "/", env: Mapping[str, str] | None = None) -> Headers:
    """The headers bcc will compile against for kernel ``release``, and whether that is fine."""
    env = os.environ if env is None else env
    bcc_src = env.get("BCC_KERNEL_SOURCE")
    if bcc_src:
        tree = _at(local, bcc_src)
        if not os.path.isdir(tree):
            return Headers(False, f"BCC_KERNEL_SOURCE={bcc_src} does not exist",
                           "unset BCC_KERNEL_SOURCE, or point it at a /usr/src/linux-headers-* tree")
        return Headers(True, f"BCC_KERNEL_SOURCE={bcc_src} (bcc uses it instead of /lib/modules)",
                       note=_version_note(tree, release))
    build = _at(local, f"/lib/modules/{release}/build")
    shown = f"/lib/modules/{release}/build"
    if os.path.isdir(build):
        target = os.path.realpath(build)
        arrow = f" -> {os.path.realpath(build)}" if os.path.islink(build) else ""
        return Headers(True, f"{shown}{arrow}", note=_version_note(target, release))
    if os.path.islink(build):
        return Headers(False, f"{shown} -> {os.readlink(build)}, which does not exist",
                       headers_fix(release, local).replace("ln -s ", "ln -sfn "))
    if os.path.exists(_at(local, "/sys/kernel/kheaders.tar.xz")):
        return Headers(True, f"no {shown}; bcc uses the kernel's own /sys/kernel/kheaders.tar.xz")
    return Headers(False, f"no {shown} (bcc compiles the probe against it)", headers_fix(release, local))


def _version_note(tree: str, release: str) -> str:
    """Empty when the tree is the running kernel's; else which it is and why that is fine."""
    tree_release = _tree_release(tree)
    if tree_release is None or tree_release == release:
        return ""
    debian = "Debian " if re.fullmatch(r"linux-headers-.+-(amd64|arm64)", os.path.basename(tree)) else ""
    return f"{debian}headers of {tree_release}, not of the running {release}; " + WHY_OTHER_HEADERS_ARE_FINE


def headers_status() -> tuple[bool, str]:
    """(usable, message) about the running kernel's headers; the message includes the fix if any.

    For the probe loader's error message when compilation fails.
    """
    h = find_headers(os.uname().release)
    message = h.detail + (f" ({h.note})" if h.note else "")
    return h.usable, message + (f"; fix: {h.fix}" if h.fix else "")
