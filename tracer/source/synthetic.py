"""Re-exports for imports of the test kit's former home; the kit is :mod:`tracer.testing`."""

from __future__ import annotations

from ..testing import Synth, split

__all__ = ["Synth", "split"]
