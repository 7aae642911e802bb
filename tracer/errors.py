"""Errors with exit codes: every user-facing failure is one of these, shown as one line."""

from __future__ import annotations


class KtraceError(Exception):
    """Base of every error ktrace reports to the user; ``exit_code`` is what the CLI exits with."""

    exit_code = 2

    def show(self) -> str:
        return f"ktrace: {self}"


class UsageError(KtraceError):
    """A wrong flag or flag value."""


class FilterError(KtraceError):
    """A filter that does not parse or type-check; ``pos`` is the 0-based column of the problem."""

    def __init__(self, message: str, text: str = "", pos: int = 0) -> None:
        super().__init__(message)
        self.message = message
        self.text = text
        self.pos = pos

    def show(self) -> str:
        if not self.text:
            return f"ktrace: filter error: {self.message}"
        # Tabs and newlines become spaces of the same width, so the caret stays under the spot.
        echoed = self.text.replace("\t", " ").replace("\n", " ").replace("\r", " ")
        caret = " " * self.pos + "^"
        return f"ktrace: filter error: {self.message}\n  {echoed}\n  {caret}"


class CaptureError(KtraceError, ValueError):
    """A capture file that cannot be read (not a capture, newer major version, damaged header)."""


class ProbeError(KtraceError):
    """The probe cannot be compiled, loaded or attached (no root, no BPF, no headers)."""


class EngineError(KtraceError, ImportError):
    """The Cython engine was asked for (KTRACE_PUREPYTHON unset) and cannot be loaded."""
