"""sysdig's .scap format beside ktrace's own: the PPM event table (``table``), the blocks
(``blocks``), and ``reader.ScapReader``, which turns a scap file into the items a .kcap reader
yields. Importing the package gives tracer.event libsinsp's rules for the records read from one."""

from __future__ import annotations

from tracer.event import PpmRules, register_ppm_rules

from .render import ppm_info
from .state import ensure_thread, ppm_fd, ppm_fd_num
from .table import SCAP_TABLE_VERSION
from .translate import read_annex

register_ppm_rules(PpmRules(read_annex, ensure_thread, ppm_fd_num, ppm_fd, ppm_info))

__all__ = ["SCAP_TABLE_VERSION"]
