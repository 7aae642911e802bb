"""A cache of the compiled probe, so that a start needs no clang (0.85 s of a 1 s start).

An entry is an :class:`~tracer.probe.image.Image` in a file named by a key: the sha256 of the probe
source, the generated header, the compile-time flags, libbcc's identity, the kernel release and
header tree, and this module's schema. Per-run settings never reach the compiler (they are in the
probe's kt_config map), so one entry serves every run with the same compile-time flags.

Root loads code from these files, so one is used only when it and its directory belong to the
current user and are not writable by group or others; anything else is ignored (the probe is
compiled, and ``-v`` or ``ktrace doctor`` say why). Files are written whole (temporary file +
rename, mode 0600); a damaged one is compiled again as if missing.

    ktrace cache --warm     # compile the default configuration once (setup does)
    ktrace cache --status   # would a start load it?
"""

from __future__ import annotations

import hashlib
import os
import stat
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from .image import Image, ImageError, compile_image, dumps, libbcc_path, loads

SCHEMA = "1"
ENV_DIR = "KTRACE_CACHE_DIR"
KEEP = 8  # entries kept per directory: the newest ones


@dataclass(frozen=True)
class Outcome:
    """How the probe was obtained: ``status`` is "hit", "miss" or "off" (no usable cache)."""

    status: str
    path: Path | None
    why: str = ""

    def note(self) -> str:
        where = f" ({self.path})" if self.path else ""
        return f"probe cache: {self.status}{where}" + (f": {self.why}" if self.why else "")


def cache_dir(env: Mapping[str, str] | None = None) -> Path:
    """$KTRACE_CACHE_DIR, else /var/cache/ktrace for root, else ~/.cache/ktrace."""
    env = os.environ if env is None else env
    if env.get(ENV_DIR):
        return Path(env[ENV_DIR])
    if os.geteuid() == 0:
        return Path("/var/cache/ktrace")
    return Path(env.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "ktrace"


def _headers_tree(env: Mapping[str, str]) -> str:
    src = env.get("BCC_KERNEL_SOURCE")
    if src:
        return os.path.realpath(src)
    return os.path.realpath(f"/lib/modules/{os.uname().release}/build")


def key(src: Path, cflags: Sequence[str], env: Mapping[str, str] | None = None) -> str:
    """The entry's name: changes with anything that can change what bcc produces."""
    env = os.environ if env is None else env
    h = hashlib.sha256()

    def part(b: bytes) -> None:
        h.update(len(b).to_bytes(8, "little") + b)

    part(SCHEMA.encode())
    part(src.read_bytes())
    for hdr in sorted(src.parent.glob("*.h")):  # the generated header, and any other it includes
        part(hdr.name.encode() + b"\0" + hdr.read_bytes())
    for f in cflags:
        if not f.startswith("-I"):  # where the headers are does not matter, what they say does
            part(f.encode())
    lib = libbcc_path()
    if lib is not None:
        st = lib.stat()
        part(f"{lib}:{st.st_size}:{st.st_mtime_ns}".encode())
    part(os.uname().release.encode())
    part(_headers_tree(env).encode())
    return h.hexdigest()


def entry_path(directory: Path, k: str) -> Path:
    return directory / f"probe-{k[:32]}.img"


def untrusted(st: os.stat_result, what: str, euid: int | None = None) -> str | None:
    """Why a file or directory must not be trusted with code root runs, or None when it may be."""
    euid = os.geteuid() if euid is None else euid
    if st.st_uid != euid:
        return f"{what} is owned by uid {st.st_uid}, not {euid}"
    if st.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        return f"{what} is writable by group or others (mode {stat.S_IMODE(st.st_mode):04o})"
    return None


def _check_dir(directory: Path, create: bool) -> str | None:
    if create:
        try:
            directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        except OSError as e:
            return f"cannot create {directory}: {e.strerror}"
    try:
        st = directory.stat()
    except OSError as e:
        return f"{directory}: {e.strerror}"
    if not stat.S_ISDIR(st.st_mode):
        return f"{directory} is not a directory"
    return untrusted(st, f"directory {directory}")


def read(path: Path) -> Image:
    """The image stored at ``path``. Raises UntrustedError if it must not be trusted, ImageError if
    it is damaged, OSError if it cannot be read (FileNotFoundError: no entry)."""
    # No symlink followed; O_NONBLOCK: a fifo planted there must not hang the start.
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK)
    try:
        st = os.fstat(fd)  # checked on the open file: no swap between check and read
        why = untrusted(st, f"file {path}") if stat.S_ISREG(st.st_mode) else f"{path} is not a regular file"
        if why:
            raise UntrustedError(why)
        with os.fdopen(fd, "rb", closefd=False) as f:
            data = f.read()
    finally:
        os.close(fd)
    return loads(data)[0]


class UntrustedError(ImageError):
    """A cache file that another user could have written."""


def write(path: Path, image: Image) -> None:
    """Store ``image`` at ``path`` whole or not at all (mode 0600)."""
    import tempfile  # only on a miss: it costs a start a few ms

    fd, tmp = tempfile.mkstemp(prefix=".probe-", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(dumps(image, {"schema": SCHEMA}))
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    _prune(path.parent)


def _prune(directory: Path) -> None:
    try:
        entries = sorted(directory.glob("probe-*.img"), key=lambda p: p.stat().st_mtime_ns, reverse=True)
        for old in entries[KEEP:]:
            old.unlink()
    except OSError:
        pass  # another ktrace pruning at the same time


def lookup(src: Path, cflags: Sequence[str], env: Mapping[str, str] | None = None) -> tuple[Image | None, Outcome]:
    """The cached image for these flags, if there is a trusted, intact one; never compiles."""
    directory = cache_dir(env)
    path = entry_path(directory, key(src, cflags, env))
    if not directory.exists():
        return None, Outcome("miss", path, "no entry yet")
    why = _check_dir(directory, create=False)
    if why:
        return None, Outcome("off", directory, why)
    try:
        return read(path), Outcome("hit", path)
    except FileNotFoundError:
        return None, Outcome("miss", path, "no entry yet")
    except UntrustedError as e:
        return None, Outcome("off", path, str(e))
    except (ImageError, OSError) as e:
        return None, Outcome("miss", path, f"unusable entry ({e})")


def obtain(src: Path, cflags: Sequence[str], env: Mapping[str, str] | None = None) -> tuple[Image, Outcome]:
    """The probe for these flags: from the cache, or compiled (and stored when the cache is usable)."""
    directory = cache_dir(env)
    why_dir = _check_dir(directory, create=True)
    if why_dir:
        return compile_image(src, cflags), Outcome("off", directory, why_dir)
    path = entry_path(directory, key(src, cflags, env))
    try:
        return read(path), Outcome("hit", path)
    except FileNotFoundError:
        status, why = "miss", "compiled and stored"
    except UntrustedError as e:
        status, why = "off", f"{e}; compiled and replaced"
    except (ImageError, OSError) as e:
        status, why = "miss", f"unusable entry ({e}); compiled and replaced"
    image = compile_image(src, cflags)
    try:
        write(path, image)  # the directory is ours: even an untrusted file in it is replaced
    except OSError as e:
        why = f"compiled, not stored ({e.strerror or e})"
    return image, Outcome(status, path, why)


def forget(path: Path | None) -> None:
    """Drop an entry the kernel refused (e.g. after a change the key does not see)."""
    if path is not None:
        try:
            path.unlink()
        except OSError:
            pass  # then it is refused again, and reported
