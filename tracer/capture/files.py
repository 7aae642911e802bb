"""Opening capture files of either format: ktrace's .kcap and sysdig's .scap, told by content."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from tracer.capture.reader import CaptureReader, FileStart, Item
from tracer.capture.scap.reader import ScapReader, is_scap


def read_captures(
    paths: Iterable[str | os.PathLike[str]], *, on_note: Callable[[str], None] | None = None
) -> Iterator[FileStart | Item]:
    """Items of several captures in sequence (``-r a -r b``), each file's after a FileStart.

    Notes go to ``on_note`` prefixed with the file's path.
    """
    for p in paths:
        path = os.fspath(p)

        def note(text: str, path: str = path) -> None:
            if on_note is not None:
                on_note(f"{path}: {text}")

        with open_capture(path, on_note=note) as r:
            yield FileStart(path, r.header, r.version)
            yield from r


def open_capture(path: str, *, on_note: Callable[[str], None] | None = None) -> Any:
    """A reader for a .kcap file, or for a sysdig .scap file (recognised by its magic)."""
    if is_scap(path):
        return ScapReader(path, on_note=on_note)
    return CaptureReader(path, on_note=on_note)
