"""Pick the engine once, at import: the Cython modules, or their pure-Python twins.

``KTRACE_PUREPYTHON=1`` picks the twins. Otherwise the Cython modules must load: a missing or
broken build is an EngineError saying how to fix it, never a quiet switch to the twins, which are
several times slower and would make a run "against both engines" test one of them twice.
"""

from __future__ import annotations

import os

from .errors import EngineError

PURE = os.environ.get("KTRACE_PUREPYTHON") == "1"

if PURE:
    from ._pure import iotally, proctally, render, ring, scan, scap, scapwrite, statelane, tally, viewtally
else:
    try:
        from ._ext import iotally, proctally, render, ring, scan, scap, scapwrite, statelane, tally, viewtally  # type: ignore[no-redef,unused-ignore]
    except ImportError as e:
        raise EngineError(
            f"the Cython engine is not built ({e}): build it (`pip install -e .`, or "
            "`python setup.py build_ext --inplace` in a checkout), or set KTRACE_PUREPYTHON=1 for the "
            "pure-Python engine") from e

__all__ = ["PURE", "iotally", "proctally", "render", "ring", "scan", "scap", "scapwrite", "statelane", "tally",
           "viewtally"]
