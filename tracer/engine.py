"""Pick the engine once, at import: the Cython modules, or their pure-Python twins.

``KTRACE_PUREPYTHON=1`` forces the twins; a missing extension falls back to them too, so ktrace
runs (slowly) without a compiler.
"""

from __future__ import annotations

import os

if os.environ.get("KTRACE_PUREPYTHON") == "1":
    from ._pure import ring, scan, scap

    PURE = True
else:
    try:
        from ._ext import ring, scan, scap  # type: ignore[no-redef,unused-ignore]

        PURE = False
    except ImportError:
        from ._pure import ring, scan, scap

        PURE = True

__all__ = ["PURE", "ring", "scan", "scap"]
