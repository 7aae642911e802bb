"""The compiled-probe cache: its key, which files it trusts, and damaged entries (no kernel needed:
compiling is replaced by a counter)."""

from __future__ import annotations

import os
import stat
import struct
from pathlib import Path

import pytest

from tracer import doctor
from tracer.doctor import INFO, OK, WARN
from tracer.probe import cache
from tracer.probe.image import Image, MapSpec, ProgSpec
from tracer.probe.loader import CF_COMMS, CONFIG_FMT, PROBE_SRC, ProbeConfig, compile_flags, pack_config
from tracer.testing import run_cli

IMAGE = Image((MapSpec("kt_a", 2, 4, 8, 1, 0),), (ProgSpec("raw_tracepoint__t", "t", b"\x95" + bytes(7), (), "GPL"),))
FLAGS = ["-I/somewhere", "-DKT_SEGMAX=2048"]


class Compiler:
    """Stands in for bcc: counts compilations."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, src: Path, cflags: list[str]) -> Image:
        self.calls += 1
        return IMAGE


@pytest.fixture
def src(tmp_path: Path) -> Path:
    d = tmp_path / "probe"
    d.mkdir()
    (d / "gen.h").write_text("#define A 1\n")
    p = d / "p.bpf.c"
    p.write_text("int x;\n")
    return p


@pytest.fixture
def cdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    d = tmp_path / "cache"
    monkeypatch.setenv(cache.ENV_DIR, str(d))
    return d


@pytest.fixture
def compiler(monkeypatch: pytest.MonkeyPatch) -> Compiler:
    c = Compiler()
    monkeypatch.setattr(cache, "compile_image", c)
    return c


# --- the key ---------------------------------------------------------------------------------------


def test_key_is_stable_and_ignores_where_the_headers_are(src: Path) -> None:
    assert cache.key(src, FLAGS) == cache.key(src, FLAGS)
    assert cache.key(src, FLAGS) == cache.key(src, ["-I/elsewhere", *FLAGS[1:]])


@pytest.mark.parametrize("change", ["source", "header", "new header", "flag"])
def test_key_changes_with_what_the_compiler_sees(src: Path, change: str) -> None:
    before = cache.key(src, FLAGS)
    flags = FLAGS
    if change == "source":
        src.write_text("int y;\n")
    elif change == "header":
        (src.parent / "gen.h").write_text("#define A 2\n")
    elif change == "new header":
        (src.parent / "other.h").write_text("\n")
    else:
        flags = [*FLAGS[:1], "-DKT_SEGMAX=4096"]
    assert cache.key(src, flags) != before


def test_per_run_settings_do_not_reach_the_compiler() -> None:
    base = compile_flags(ProbeConfig())
    for cfg in (ProbeConfig(ring_mb=8), ProbeConfig(snaplen=1000), ProbeConfig(self_tgid=1),
                ProbeConfig(pids=frozenset({1}), comms=frozenset({"x"}), cgroups={1: True})):
        assert compile_flags(cfg) == base
    assert compile_flags(ProbeConfig(snaplen=2048)) != base  # needs a larger segment bound


@pytest.mark.parametrize(("snaplen", "segmax", "kept"), [(80, 2048, 80), (2047, 2048, 2047), (2048, 4096, 2048),
                                                         (4095, 4096, 4095), (65000, 4096, 4095)])
def test_snaplen_fits_the_segment_bound(snaplen: int, segmax: int, kept: int) -> None:
    cfg = ProbeConfig(snaplen=snaplen, self_tgid=7, comms=frozenset({"x"}))
    assert f"-DKT_SEGMAX={segmax}" in compile_flags(cfg)
    assert struct.unpack(CONFIG_FMT, pack_config(cfg)) == (7, kept, CF_COMMS, 0)


def test_the_real_probe_has_a_key() -> None:
    k = cache.key(PROBE_SRC, compile_flags(ProbeConfig()))
    assert len(k) == 64 and int(k, 16) >= 0


# --- hits and misses -------------------------------------------------------------------------------


def test_miss_compiles_and_stores_then_hits(src: Path, cdir: Path, compiler: Compiler) -> None:
    image, out = cache.obtain(src, FLAGS)
    assert (out.status, image, compiler.calls) == ("miss", IMAGE, 1)
    assert out.path is not None and out.path.parent == cdir
    assert stat.S_IMODE(out.path.stat().st_mode) == 0o600
    assert stat.S_IMODE(cdir.stat().st_mode) == 0o700
    assert [p.name for p in cdir.iterdir()] == [out.path.name]  # no temporary file left
    image, out2 = cache.obtain(src, FLAGS)
    assert (out2.status, out2.path, image, compiler.calls) == ("hit", out.path, IMAGE, 1)
    assert cache.lookup(src, FLAGS)[1].status == "hit"


def test_another_flag_is_another_entry(src: Path, cdir: Path, compiler: Compiler) -> None:
    cache.obtain(src, FLAGS)
    _, out = cache.obtain(src, [*FLAGS, "-DKT_PATHMAX=512"])
    assert out.status == "miss" and compiler.calls == 2 and len(list(cdir.iterdir())) == 2


@pytest.mark.parametrize("damage", ["truncated", "empty", "flipped byte", "garbage"])
def test_a_damaged_entry_is_compiled_again(src: Path, cdir: Path, compiler: Compiler, damage: str) -> None:
    _, out = cache.obtain(src, FLAGS)
    assert out.path is not None
    data = out.path.read_bytes()
    bad = {"truncated": data[: len(data) // 2], "empty": b"", "flipped byte": data[:-2] + b"X" + data[-1:],
           "garbage": os.urandom(300)}[damage]
    out.path.write_bytes(bad)
    image, out2 = cache.obtain(src, FLAGS)
    assert (out2.status, image, compiler.calls) == ("miss", IMAGE, 2)
    assert cache.obtain(src, FLAGS)[1].status == "hit"  # replaced by a good one


def test_a_group_writable_entry_is_not_used(src: Path, cdir: Path, compiler: Compiler) -> None:
    _, out = cache.obtain(src, FLAGS)
    assert out.path is not None
    out.path.chmod(0o666)
    assert cache.lookup(src, FLAGS)[1].status == "off"
    _, out2 = cache.obtain(src, FLAGS)
    assert out2.status == "off" and "writable by group or others" in out2.why and compiler.calls == 2
    assert stat.S_IMODE(out.path.stat().st_mode) == 0o600  # the directory is ours: replaced


def test_a_shared_directory_is_not_used(src: Path, cdir: Path, compiler: Compiler) -> None:
    cache.obtain(src, FLAGS)
    cdir.chmod(0o777)
    try:
        image, out = cache.obtain(src, FLAGS)
        assert (out.status, image, compiler.calls) == ("off", IMAGE, 2)
        assert "writable by group or others (mode 0777)" in out.why
        assert cache.lookup(src, FLAGS)[1].status == "off"
    finally:
        cdir.chmod(0o700)


@pytest.mark.skipif(os.geteuid() != 0, reason="giving a file away needs root")
def test_an_entry_owned_by_another_user_is_not_used(src: Path, cdir: Path, compiler: Compiler) -> None:
    _, out = cache.obtain(src, FLAGS)
    assert out.path is not None
    os.chown(out.path, 4242, -1)
    _, out2 = cache.obtain(src, FLAGS)
    assert out2.status == "off" and "owned by uid 4242" in out2.why and compiler.calls == 2
    os.chown(cdir, 4242, -1)
    _, out3 = cache.obtain(src, FLAGS)
    assert out3.status == "off" and "directory" in out3.why and compiler.calls == 3


def test_a_symlinked_entry_is_not_followed(src: Path, cdir: Path, compiler: Compiler, tmp_path: Path) -> None:
    _, out = cache.obtain(src, FLAGS)
    assert out.path is not None
    elsewhere = tmp_path / "elsewhere.img"
    out.path.rename(elsewhere)
    out.path.symlink_to(elsewhere)
    _, out2 = cache.obtain(src, FLAGS)
    assert out2.status == "miss" and compiler.calls == 2


def test_a_fifo_in_place_of_an_entry_does_not_hang(src: Path, cdir: Path, compiler: Compiler) -> None:
    _, out = cache.obtain(src, FLAGS)
    assert out.path is not None
    out.path.unlink()
    os.mkfifo(out.path, 0o600)
    _, out2 = cache.obtain(src, FLAGS)
    assert out2.status == "off" and "not a regular file" in out2.why and compiler.calls == 2
    assert cache.obtain(src, FLAGS)[1].status == "hit"


def test_trust_rules() -> None:
    def st(uid: int, mode: int) -> os.stat_result:
        return os.stat_result((mode, 0, 0, 1, uid, 0, 0, 0, 0, 0))

    assert cache.untrusted(st(0, stat.S_IFREG | 0o600), "f", euid=0) is None
    assert cache.untrusted(st(0, stat.S_IFREG | 0o644), "f", euid=0) is None
    assert cache.untrusted(st(0, stat.S_IFDIR | 0o755), "d", euid=0) is None
    assert "owned by uid 1000" in (cache.untrusted(st(1000, stat.S_IFREG | 0o600), "f", euid=0) or "")
    for mode in (0o620, 0o602, 0o666, 0o1777):
        assert "writable" in (cache.untrusted(st(0, stat.S_IFREG | mode), "f", euid=0) or "")


def test_default_directory(monkeypatch: pytest.MonkeyPatch) -> None:
    assert cache.cache_dir({cache.ENV_DIR: "/x"}) == Path("/x")
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    assert cache.cache_dir({}) == Path("/var/cache/ktrace")
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    assert cache.cache_dir({"XDG_CACHE_HOME": "/c"}) == Path("/c/ktrace")


# --- what ktrace doctor says -----------------------------------------------------------------------


def test_doctor_reports_the_default_entry(cdir: Path, compiler: Compiler) -> None:
    env = {cache.ENV_DIR: str(cdir)}
    check = doctor.check_probe_cache(env)
    assert check.status == INFO and "miss" in check.detail and "--warm" in check.fix
    cache.obtain(PROBE_SRC, compile_flags(ProbeConfig()), env)
    check = doctor.check_probe_cache(env)
    assert check.status == OK and str(cdir) in check.detail
    cdir.chmod(0o775)
    try:
        check = doctor.check_probe_cache(env)
        assert check.status == WARN and "writable by group or others" in check.detail
    finally:
        cdir.chmod(0o700)


# --- ktrace cache ----------------------------------------------------------------------------------


def test_cache_command_warms_then_reports_a_hit(cdir: Path, compiler: Compiler) -> None:
    """``ktrace cache --warm`` (what scripts/setup.sh runs) stores the default probe once; the next
    start, and ``--status``, find it."""
    before = run_cli("cache", "--status")
    assert before.code == 0 and "miss" in before.out
    warm = run_cli("cache", "--warm")
    assert warm.code == 0, warm.err
    assert compiler.calls == 1
    assert run_cli("cache", "--warm").code == 0
    assert compiler.calls == 1  # a hit: nothing compiled again
    after = run_cli("cache", "--status")
    assert after.code == 0 and "hit" in after.out and str(cdir) in after.out
    assert [p.suffix for p in cdir.iterdir()] == [".img"]


def test_cache_command_without_an_action_is_a_usage_error() -> None:
    r = run_cli("cache")
    assert r.code == 2 and r.out == ""
    assert r.err.count("\n") == 1 and "--warm or --status" in r.err
