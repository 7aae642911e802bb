"""``<NA>``: what sysdig shows for a value nobody knows (a field unset, a container unnamed)."""

from __future__ import annotations

from typing import Final

NA: Final = "<NA>"
