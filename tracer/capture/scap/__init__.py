"""sysdig's .scap format beside ktrace's own: the PPM event table (``table``), the blocks
(``blocks``), and ``ScapReader``, which turns a scap file into the items a .kcap reader yields."""

from __future__ import annotations

from .reader import ScapReader, is_scap
from .table import SCAP_TABLE_VERSION

__all__ = ["SCAP_TABLE_VERSION", "ScapReader", "is_scap"]
