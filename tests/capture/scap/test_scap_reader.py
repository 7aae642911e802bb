"""ScapReader on files built here block by block: every block type and version, unknown events and
parameters skipped and counted, and the CLI on cut and damaged files."""

from __future__ import annotations

import gzip
import struct
from pathlib import Path
from typing import Any

import pytest
import scapbytes as S

from tracer.capture import EventBlock, FileStart, TableBlock
from tracer.capture.files import read_captures
from tracer.capture.scap import blocks as B
from tracer.capture.scap.reader import ScapReader, is_scap
from tracer.errors import CaptureError
from tracer.schema import record as R
from tracer.schema.events import SYSCALL_NR
from tracer.state.tables import Fd, Thread


def items(path: Path) -> tuple[ScapReader, dict[str, list[Any]], list[bytes]]:
    tables: dict[str, list[Any]] = {}
    recs: list[bytes] = []
    with ScapReader(path) as r:
        for it in r:
            if isinstance(it, TableBlock):
                tables[it.kind] = it.rows
            elif isinstance(it, EventBlock):
                off = 0
                while off < len(it.raw):
                    n = int.from_bytes(it.raw[off + R.OFF_LEN:off + R.OFF_LEN + 4], "little")
                    recs.append(it.raw[off:off + n])
                    off += n
    return r, tables, recs


def head(rec: bytes) -> tuple[int, ...]:
    return struct.unpack_from(R.FIXED_FMT, rec)


def write(tmp_path: Path, data: bytes, name: str = "x.scap", gz: bool = False) -> Path:
    p = tmp_path / name
    p.write_bytes(gzip.compress(data) if gz else data)
    return p


@pytest.mark.parametrize("gz", [False, True], ids=["plain", "gzip"])
def test_small_file(tmp_path: Path, gz: bool) -> None:
    p = write(tmp_path, S.small_file(), gz=gz)
    assert is_scap(p)
    r, tables, recs = items(p)
    assert r.complete and not r.notes
    assert r.header["machine"]["hostname"] == "node-1" and r.header["machine"]["cpus"] == 4
    assert r.header["interfaces"] == [["lo", "ipv4", "127.0.0.1", "127.0.0.1"]]
    t = Thread.from_row(tables["threads"][0])
    assert (t.tid, t.pid, t.ptid, t.comm, t.exe, t.args, t.cwd) == (100, 100, 1, "app", "/usr/bin/app", ["-v"], "/srv")
    assert tables["users"] == [[0, "root", "/root", "/bin/sh"]] and tables["groups"] == [[0, "root"]]
    fds = {f.num: f for f in (Fd.from_row(x) for x in tables["fds"][0][1])}
    assert fds[0].name == "/dev/null" and fds[3].name == "0.0.0.0:80" and fds[3].is_server
    evts = [head(x)[3] for x in recs]
    nr = SYSCALL_NR
    assert evts == [nr["open"] * 2, nr["open"] * 2 + 1, nr["read"] * 2, nr["read"] * 2 + 1, nr["close"] * 2,
                    nr["close"] * 2 + 1]
    ts, tid, pid, evt, cpu, length, ret, a0, *_ = head(recs[1])
    assert (ts, tid, pid, ret) == (S.TS0 + 10, 100, 100, 4)
    assert recs[1][R.REC_FIXED:R.REC_FIXED + 13] == b"/srv/data.txt"
    assert head(recs[3])[6] == 5 and head(recs[3])[7] == 4  # read's result, and its fd from the enter


@pytest.mark.parametrize("version", range(1, 10))
def test_process_list_versions(tmp_path: Path, version: int) -> None:
    t = S.T(7, 7, 1, "sshd", "/usr/sbin/sshd", ["-D"], "/", 0, 0, 7, 7,
            "cpuset=/\0memory=/docker/" + "ab" * 32 + "\0", extra=b"\x01appended by a newer writer")
    p = write(tmp_path, S.shb() + S.pl(version, [t, S.T(8, 7, 1, "sshd", "/usr/sbin/sshd")]))
    r, tables, _ = items(p)
    assert r.block_counts == {f"PL_V{version}": 1}
    got = [Thread.from_row(x) for x in tables["threads"]]
    assert [(x.tid, x.pid, x.comm, x.args) for x in got] == [(7, 7, "sshd", ["-D"]), (8, 7, "sshd", [])]
    assert got[0].fdlimit == 1024
    if version >= 2:
        assert got[0].vmsize_kb == 2048 and got[0].vmrss_kb == 1024
    if version >= 4:
        assert got[0].vtid == 7 and got[0].container_id == "ab" * 6
    else:
        assert got[0].container_id == "host"
    if version >= 9:
        assert got[0].loginuid == 1000


@pytest.mark.parametrize("v2", [False, True], ids=["FDL", "FDL_V2"])
def test_fd_lists(tmp_path: Path, v2: bool) -> None:
    t = S.T(50, 50, 1, "web", "/web")
    p = write(tmp_path, S.shb() + S.pl(5, [t]) + S.fdl(v2, 50, [
        S.fd_file(1, "/var/log/web.log", 2 | 8 | 4096), S.fd_server4(3, "0.0.0.0", 8080),
        S.fd_ipv4(4, "10.0.0.1", 8080, "10.0.0.9", 40000), S.fd_ipv4(5, "10.0.0.1", 5555, "10.0.0.7", 443),
        S.fd_unix(6, "/run/x.sock\n")]))
    _, tables, _ = items(p)
    assert tables["fds"][0][0] == 50
    fds = {f.num: f for f in (Fd.from_row(x) for x in tables["fds"][0][1])}
    assert fds[1].name == "/var/log/web.log" and fds[1].flags & 0o2000000  # O_CLOEXEC, in Linux's value
    assert fds[3].name == "0.0.0.0:8080" and fds[3].l4proto == "tcp"
    # A connection on a listening port is the server's end: named client->server, as sysdig does.
    assert fds[4].name == "10.0.0.9:40000->10.0.0.1:8080" and fds[4].is_server
    assert fds[5].name == "10.0.0.1:5555->10.0.0.7:443" and fds[5].is_server is False
    assert fds[6].type == "unix" and fds[6].name == "/run/x.sock"


@pytest.mark.parametrize("v2", [False, True], ids=["IL/UL", "IL_V2/UL_V2"])
def test_interfaces_and_users(tmp_path: Path, v2: bool) -> None:
    p = write(tmp_path, S.shb() + S.il(v2, [("eth0", "ipv4", "10.1.2.3"), ("eth0", "ipv6", "fe80::1")])
              + S.ul(v2, [(1000, 1000, "alice", "/home/alice", "/bin/bash")], [(1000, "alice"), (27, "sudo")]))
    r, tables, _ = items(p)
    assert r.header["interfaces"] == [["eth0", "ipv4", "10.1.2.3", "10.1.2.3"], ["eth0", "ipv6", "fe80::1", "fe80::1"]]
    assert tables["users"] == [[1000, "alice", "/home/alice", "/bin/bash"]]
    assert tables["groups"] == [[1000, "alice"], [27, "sudo"]]


@pytest.mark.parametrize("btype", [B.EV, B.EV_V2, B.EV_V2_LARGE, B.EVF, B.EVF_V2, B.EVF_V2_LARGE],
                         ids=["EV", "EV_V2", "EV_V2_LARGE", "EVF", "EVF_V2", "EVF_V2_LARGE"])
def test_event_blocks(tmp_path: Path, btype: int) -> None:
    """Every event block kind; EVF events flagged state-only are kept hidden."""
    flags = B.DF_STATE_ONLY if btype in B.FLAGGED_EVENTS else 0
    data = S.shb() + S.pl(5, [S.T(9, 9, 1, "a", "a")])
    data += S.ev(btype, S.TS0, 9, 6, [S.i64(3), S.u32(10)], cpu=3, flags=flags)
    data += S.ev(btype, S.TS0 + 5, 9, 7, [S.i64(2), b"hi"], cpu=3, flags=flags)
    _, _, recs = items(write(tmp_path, data))
    assert len(recs) == 2
    ts, tid, pid, evt, cpu, _len, ret, a0, *_rest, l0, _l1, rflags = head(recs[1])
    assert (ts, tid, evt, cpu, ret, a0, l0) == (S.TS0 + 5, 9, SYSCALL_NR["read"] * 2 + 1, 3, 2, 3, 2)
    assert recs[1][R.REC_FIXED:R.REC_FIXED + 2] == b"hi"
    assert bool(rflags & R.RF_HIDDEN) == bool(flags)


def test_unknown_events_and_parameters_are_counted(tmp_path: Path) -> None:
    data = S.shb() + S.pl(5, [S.T(9, 9, 1, "a", "a")])
    data += S.ev(B.EV_V2, S.TS0, 9, 1000, [b"x"])  # a type newer than the table
    data += S.ev(B.EV_V2, S.TS0 + 1, 9, 6, [S.i64(3), S.u32(10), b"newer", b"params"])  # appended params
    data += S.ev(B.EV_V2, S.TS0 + 2, 9, 7, [S.i64(1), b"z"])
    notes: list[str] = []
    items_ = list(read_captures([write(tmp_path, data)], on_note=notes.append))
    assert isinstance(items_[0], FileStart)
    blocks = [x for x in items_ if isinstance(x, EventBlock)]
    assert sum(b.count for b in blocks) == 2
    assert len(notes) == 1
    assert "1 events of unknown type 1000" in notes[0] and "1 parameters newer than the event table" in notes[0]


def test_old_events_without_a_parameter_count(tmp_path: Path) -> None:
    """Version-1 event blocks have no nparams: it is the count whose lengths fill the event."""
    data = S.shb() + S.ev(B.EV, S.TS0, 9, 3, [S.i64(5), S.cstr("/etc/hosts"), S.u32(1), S.u32(0), S.u32(0)])
    _, _, recs = items(write(tmp_path, data))
    assert head(recs[0])[6] == 5 and recs[0][R.REC_FIXED:R.REC_FIXED + 10] == b"/etc/hosts"


def test_not_scap_and_damaged_headers(tmp_path: Path) -> None:
    assert not is_scap(write(tmp_path, b"hello world", "a.scap"))
    with pytest.raises(CaptureError, match="not a scap capture"):
        ScapReader(write(tmp_path, S.mi(), "b.scap"))
    bad = bytearray(S.shb())
    bad[8] ^= 0xFF  # the byte-order magic
    with pytest.raises(CaptureError, match="damaged scap section header"):
        ScapReader(write(tmp_path, bytes(bad), "c.scap"))
    with pytest.raises(CaptureError, match="cut short"):
        ScapReader(write(tmp_path, S.shb()[:20], "d.scap"))
    with pytest.raises(CaptureError, match="not supported"):
        ScapReader(write(tmp_path, S.shb(major=2), "e.scap"))


def run_cli(*args: str) -> tuple[int, str, str]:
    import contextlib
    import io

    from tracer.cli import main

    out, err = io.StringIO(), io.StringIO()
    code = 0
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            main(list(args))
        except SystemExit as e:
            code = int(e.code or 0)
    return code, out.getvalue(), err.getvalue()


@pytest.mark.parametrize("gz", [False, True], ids=["plain", "gzip"])
def test_cli_on_a_cut_file(tmp_path: Path, gz: bool) -> None:
    data = S.small_file()
    whole = len(data) - len(S.ev(B.EV_V2, S.TS0 + 50, 100, 5, [S.i64(0)]))
    p = write(tmp_path, data[:whole + 11], gz=gz)
    if gz:
        p.write_bytes(p.read_bytes()[:-9])  # the gzip trailer too
    code, out, err = run_cli("-r", str(p), "-p", "%evt.num %evt.type %evt.dir")
    assert code == 0
    assert out.splitlines() == ["1 open >", "2 open <", "3 read >", "4 read <", "5 close >"]
    assert len(err.splitlines()) == 1 and "capture truncated: recovered 5 events" in err


def test_cli_on_garbage_and_a_damaged_block(tmp_path: Path) -> None:
    code, out, err = run_cli("-r", str(write(tmp_path, S.shb() + b"\x07" * 40, "g.scap")))
    assert (code, out) == (0, "") and len(err.splitlines()) == 1 and "damaged block at byte 28" in err
    bad = bytearray(S.shb()[:-4]) + b"\xff\xff\xff\x7f"
    code, out, err = run_cli("-r", str(write(tmp_path, bytes(bad), "h.scap")))
    assert code == 2 and out == "" and len(err.splitlines()) == 1


def test_kcap_and_scap_mixed(tmp_path: Path) -> None:
    root = Path(__file__).resolve().parents[3]
    code, out, err = run_cli("-r", str(root / "captures" / "01-webserver.kcap"), "-r",
                             str(root / "captures" / "scap" / "single_ipv6_conn.scap"), "-c", "topconns")
    assert code == 0 and err == ""
    assert "2001:db8::4:54405->2001:db8::3:1234" in out and "127.0.0.1:" in out


def test_legacy_block_ids(tmp_path: Path) -> None:
    """The unofficial ids of the first writers (``*_INT``) read like their official ones."""
    def retyped(blk: bytes, btype: int) -> bytes:
        return struct.pack("<I", btype) + blk[4:]

    t = S.T(5, 5, 1, "init", "/sbin/init", ["splash"])
    data = (S.shb() + retyped(S.mi("old-host"), B.MI_INT)
            + retyped(S.il(False, [("lo", "ipv4", "127.0.0.1")]), B.IL_INT)
            + retyped(S.ul(False, [(0, 0, "root", "/root", "/bin/sh")], []), B.UL_INT)
            + retyped(S.pl(1, [t]), B.PL_V1_INT) + retyped(S.fdl(False, 5, [S.fd_file(0, "/dev/console")]), B.FDL_INT)
            + retyped(S.ev(B.EV, S.TS0, 5, 4, [S.i64(0)]), B.EV_INT))
    r, tables, recs = items(write(tmp_path, data))
    assert r.complete and not r.notes and r.header["machine"]["hostname"] == "old-host"
    assert Thread.from_row(tables["threads"][0]).args == ["splash"]
    assert Fd.from_row(tables["fds"][0][1][0]).name == "/dev/console"
    assert head(recs[0])[3] == SYSCALL_NR["close"] * 2 and head(recs[0])[7] == 0


def test_a_damaged_table_block_is_skipped_and_reading_goes_on(tmp_path: Path) -> None:
    bad = bytearray(S.pl(9, [S.T(5, 5, 1, "init", "/sbin/init")]))
    struct.pack_into("<I", bad, 8, 0xFFFF)  # the entry's own length runs past its block
    data = S.shb() + bytes(bad) + S.ev(B.EV_V2, S.TS0, 5, 4, [S.i64(0)]) + S.ev(B.EV_V2, S.TS0 + 1, 5, 5, [S.i64(0)])
    notes: list[str] = []
    got = list(read_captures([write(tmp_path, data)], on_note=notes.append))
    assert sum(x.count for x in got if isinstance(x, EventBlock)) == 2
    assert len(notes) == 1 and "skipped 1 damaged PL_V9 block at byte 28" in notes[0]
