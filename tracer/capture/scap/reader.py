"""ScapReader: a sysdig/Falco .scap file (plain or gzip) as the items a .kcap reader yields.

The thread, fd, user and group tables become TableBlocks, each PPM event one ktrace record (see
``translate``) in EventBlocks, and the machine info the header. Problems never raise once the file
is open: a file cut short or a block whose lengths cannot be right ends the reading at the last
whole block with a note; unknown block types, unknown event types and parameters a newer writer
appended are skipped and counted (``skipped``). Only a file that is not a scap file, or whose
section header is damaged, raises CaptureError. Memory stays bounded: no block larger than
MAX_BLOCK is read.
"""

from __future__ import annotations

import gzip
import os
import zlib
from collections.abc import Callable, Iterator
from types import TracebackType
from typing import IO, Any, Final

from tracer import engine
from tracer.capture.reader import EventBlock, Item, TableBlock
from tracer.errors import CaptureError

from . import blocks as B
from .translate import Translator

MAX_BLOCK: Final = 64 << 20
EVENTS_PER_BLOCK: Final = 4096
READ_SIZE: Final = 1 << 20  # bytes read from the file at a time
GZIP_MAGIC: Final = b"\x1f\x8b"
SCAP_MAGIC: Final = B.SHB.to_bytes(4, "little")


def is_scap(path: str | os.PathLike[str]) -> bool:
    """Whether the file starts like a scap file: its section header, plain or gzipped."""
    try:
        with open(path, "rb") as f:
            head = f.read(4)
            if head[:2] == GZIP_MAGIC:
                f.seek(0)
                with gzip.GzipFile(fileobj=f) as g:
                    head = g.read(4)
    except (OSError, EOFError, zlib.error):
        return False
    return head == SCAP_MAGIC


class ScapReader:
    """Read one .scap file; the same surface as CaptureReader (iterate for items, ``header``,
    ``version``, ``notes``, ``complete``, ``events``, ``block_counts``, ``size``)."""

    def __init__(self, path: str | os.PathLike[str], *, on_note: Callable[[str], None] | None = None) -> None:
        self.path = os.fspath(path)
        self.notes: list[str] = []
        self._on_note = on_note
        self.complete = False
        self.damaged = False
        self.events = 0
        self.block_counts: dict[str, int] = {}
        self.skipped: dict[str, int] = {}  # what was skipped and counted: unknown blocks, events, params
        self.index = None
        try:
            self.size = os.stat(self.path).st_size
            self._raw = open(self.path, "rb")  # noqa: SIM115 -- closed by close()
        except OSError as e:
            raise CaptureError(f"cannot read {self.path}: {e.strerror or e}") from None
        self._f: IO[bytes] = self._raw
        self._buf = b""  # bytes read from the file (gunzipped), not yet all walked
        self._bpos = 0  # where the next block starts in _buf
        self._base = 0  # the file offset of _buf[0]
        self._stream_cut = False  # the gzip stream ended without its end marker
        try:
            if self._raw.read(2) == GZIP_MAGIC:
                self._f = gzip.GzipFile(fileobj=self._raw)  # type: ignore[assignment]
            self._raw.seek(0)
            head = self._read_block()
            if head is None or head[0] != B.SHB:
                raise CaptureError(f"{self.path} is not a scap capture (no section header block)")
            section = B.parse_shb(head[1])
        except CaptureError:
            self.close()
            raise
        except _Cut:
            self.close()
            raise CaptureError(f"{self.path}: scap section header cut short") from None
        except (OSError, EOFError, zlib.error, B.ScapFormatError) as e:
            self.close()
            raise CaptureError(f"{self.path}: damaged scap section header ({e})") from None
        self.version = (section.major, section.minor)
        if section.major != 1:
            self.close()
            raise CaptureError(f"{self.path}: scap format {section.major}.{section.minor} is not supported")
        self._data_start = 0
        self.header: dict[str, Any] = {"format": "scap", "scap_version": f"{section.major}.{section.minor}",
                                       "machine": {}}

    # --- the file --------------------------------------------------------------------------
    @property
    def _pos(self) -> int:
        """The file offset (of the gunzipped stream) of the next block."""
        return self._base + self._bpos

    def _fill(self, n: int) -> bool:
        """At least ``n`` bytes in _buf from _bpos, reading on in large pieces; False at the end of
        the file before that. A gzip stream cut short raises _Cut once the bytes before the cut are
        walked (read1 loses none of them)."""
        have = len(self._buf) - self._bpos
        if have >= n:
            return True
        parts = [self._buf[self._bpos:]]
        want = max(n - have, READ_SIZE)
        got = 0
        while got < want and not self._stream_cut:
            try:
                more = self._f.read1(want - got)  # type: ignore[attr-defined]
            except EOFError:
                self._stream_cut = True
                break
            if not more:
                break
            parts.append(more)
            got += len(more)
        self._base += self._bpos
        self._bpos = 0
        self._buf = b"".join(parts)
        if len(self._buf) >= n:
            return True
        if self._stream_cut:
            raise _Cut()
        return False

    def _read_block(self) -> tuple[int, bytes] | None:
        """(type, body) of the next block; None at a clean end of file. Raises ScapFormatError for
        a block cut short or whose lengths cannot be right, zlib.error for bad gzip."""
        if not self._fill(8):
            if len(self._buf) == self._bpos:
                return None
            raise _Cut()
        btype, total = B.BLOCK_HEAD.unpack_from(self._buf, self._bpos)
        if total < 12 or total & 3 and btype != B.SHB:
            raise B.ScapFormatError(f"block of type {btype:#x} says {total} bytes")
        if total > MAX_BLOCK:
            raise B.ScapFormatError(f"block of type {btype:#x} says {total} bytes, more than {MAX_BLOCK}")
        if not self._fill(total):
            raise _Cut()
        p = self._bpos
        buf = self._buf
        if int.from_bytes(buf[p + total - 4:p + total], "little") != total:
            raise B.ScapFormatError(f"block of type {btype:#x}: trailing length differs from {total}")
        self._bpos = p + total
        return btype, buf[p + 8:p + total - 4]

    def close(self) -> None:
        for f in (self._f, self._raw):
            try:
                f.close()
            except Exception:  # closing a damaged gzip stream may complain: nothing to keep
                pass

    def __enter__(self) -> ScapReader:
        return self

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    def _note(self, text: str) -> None:
        self.notes.append(text)
        if self._on_note is not None:
            self._on_note(text)

    def _count(self, what: str, n: int = 1) -> None:
        self.skipped[what] = self.skipped.get(what, 0) + n

    # --- items -----------------------------------------------------------------------------
    def __iter__(self) -> Iterator[Item]:
        """The items in file order (a scap file is read once, front to back)."""
        tr = Translator()
        dec = engine.scap.Decoder(tr, self.skipped, EVENTS_PER_BLOCK)
        threads: list[B.ScapThread] = []
        fds: dict[int, list[B.ScapFd]] = {}
        users: list[B.UserEntry] = []
        groups: list[B.GroupEntry] = []
        tables_sent = False
        block_start = self._pos
        end_note = ""
        gz = " of the gunzipped stream" if self._f is not self._raw else ""  # notes' offsets
        counts = self.block_counts

        def flush() -> EventBlock:
            return EventBlock(*dec.flush(), block_start)

        while True:
            if tables_sent:
                # The event blocks already read, walked in one go.
                self._bpos = dec.run(self._buf, self._bpos, len(self._buf))
                self.events = dec.events
                for bname, n in dec.take_counts():
                    counts[bname] = counts.get(bname, 0) + n
                if dec.error is not None:
                    bad, btype, text = dec.error
                    self.damaged = True
                    self._count(f"damaged {B.BLOCK_NAMES[btype]} block at byte {self._base + bad}{gz} ({text})")
                if dec.count >= EVENTS_PER_BLOCK:
                    yield flush()
                    block_start = self._pos
                    continue
                if dec.error is not None:
                    continue
            at = self._pos
            end_note = ""
            try:
                blk = self._read_block()
            except _Cut:
                end_note = f"capture truncated: recovered {self.events} events, lost the tail after byte {at}{gz}"
                break
            except (B.ScapFormatError, OSError, EOFError, zlib.error) as e:
                self.damaged = True
                end_note = f"damaged block at byte {at}{gz} ({e}): recovered {self.events} events, stopped there"
                break
            if blk is None:
                self.complete = True
                break
            btype, body = blk
            name = B.BLOCK_NAMES.get(btype)
            if name is None:
                self._count(f"blocks of unknown type {btype:#x}")
                continue
            counts[name] = counts.get(name, 0) + 1
            try:
                if btype in B.EVENT_BLOCKS:
                    if not tables_sent:
                        tables_sent = True
                        yield from self._tables(tr, threads, fds, users, groups)
                    dec.block(body, btype)
                    self.events = dec.events
                    if dec.count >= EVENTS_PER_BLOCK:
                        yield flush()
                        block_start = self._pos
                elif btype in (B.MI, B.MI_INT):
                    mi = B.parse_mi(body)
                    self.header["machine"] = {"hostname": mi.hostname, "cpus": mi.num_cpus,
                                              "memory": mi.memory_bytes, "kernel": None}
                    if mi.boot_ts:
                        self.header["machine"]["boot_ts"] = mi.boot_ts
                elif btype in B.PL_VERSION:
                    threads.extend(B.parse_proclist(body, B.PL_VERSION[btype]))
                elif btype in (B.FDL, B.FDL_INT, B.FDL_V2):
                    tid, lst = B.parse_fdlist(body, btype == B.FDL_V2)
                    fds.setdefault(tid, []).extend(lst)
                elif btype in (B.IL, B.IL_INT, B.IL_V2):
                    self.header["interfaces"] = [[i.name, i.family, i.addr, i.netmask]
                                                 for i in B.parse_iflist(body, btype == B.IL_V2)]
                elif btype in (B.UL, B.UL_INT, B.UL_V2):
                    u, g = B.parse_userlist(body, btype == B.UL_V2)
                    users.extend(u)
                    groups.extend(g)
                elif btype == B.SHB:
                    self._count("extra section headers")
            except B.ScapFormatError as e:
                self.damaged = True
                self._count(f"damaged {name} block at byte {at}{gz} ({e})")
        if not tables_sent:
            yield from self._tables(tr, threads, fds, users, groups)
        if dec.count:
            yield flush()
        for what, n in tr.skipped.items():
            self._count(what, n)
        skipped = ", ".join(f"{n} {what}" for what, n in self.skipped.items())
        if end_note or skipped:
            # One line: how the file ended, if not cleanly, and what was skipped and counted.
            self._note("; ".join(x for x in (end_note, f"skipped {skipped}" if skipped else "") if x))

    def _tables(self, tr: Translator, threads: list[B.ScapThread], fds: dict[int, list[B.ScapFd]],
                users: list[B.UserEntry], groups: list[B.GroupEntry]) -> Iterator[TableBlock]:
        from .state import fd_rows, thread_rows

        yield TableBlock("users", [[u.uid, u.name, u.home, u.shell] for u in users])
        yield TableBlock("groups", [[g.gid, g.name] for g in groups])
        yield TableBlock("threads", thread_rows(threads))
        yield TableBlock("fds", fd_rows(threads, fds))
        yield TableBlock("containers", [])
        tr.pids.update((t.tid, t.pid) for t in threads)


class _Cut(Exception):
    """The file ends inside a block."""
