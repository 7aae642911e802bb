"""A compiled probe as data: its programs' instructions and the maps they use, by name.

bcc compiles the probe and creates its maps at once, writing each map's fd into the instructions
that load it (``ld_imm64`` with ``src_reg = BPF_PSEUDO_MAP_FD``). :func:`compile_image` asks bcc
for the result and turns those fds back into map names; :func:`relocate` writes the fds of new maps
in. Between the two, an :class:`Image` can be stored (cache.py) and loaded without bcc or LLVM.
"""

from __future__ import annotations

import base64
import ctypes
import hashlib
import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import bpfsys

INSN = 8
LD_IMM64 = 0x18  # BPF_LD | BPF_DW | BPF_IMM: a 64-bit constant over two instruction slots
PSEUDO_MAP_FD = 1
# Program functions: bcc makes RAW_TRACEPOINT_PROBE(name) raw_tracepoint__name; the probe names a
# regular tracepoint's program kt_tp__category__name, and kt_raw__name a raw tracepoint's that only
# adds to what the others give (attached when the kernel has it, like a regular one).
RAW_TP_PREFIX = "raw_tracepoint__"
TP_PREFIX = "kt_tp__"
OPTIONAL_RAW_TP_PREFIX = "kt_raw__"

MAGIC = b"ktrace-probe-image 1\n"


@dataclass(frozen=True)
class MapSpec:
    name: str
    type: int
    key_size: int
    value_size: int
    max_entries: int
    flags: int


@dataclass(frozen=True)
class ProgSpec:
    name: str  # bcc's function name
    tracepoint: str  # the raw tracepoint it attaches to, or "category/name" of a regular one
    insns: bytes  # map fds zeroed
    refs: tuple[tuple[int, str], ...]  # (instruction index, map name) of each map load
    license: str

    @property
    def raw(self) -> bool:
        return "/" not in self.tracepoint

    @property
    def optional(self) -> bool:
        """A program the probe works without (on a kernel that lacks what it attaches to)."""
        return not self.name.startswith(RAW_TP_PREFIX)


@dataclass(frozen=True)
class Image:
    maps: tuple[MapSpec, ...]
    programs: tuple[ProgSpec, ...]


class ImageError(ValueError):
    """Instructions or a stored image that cannot be used."""


def symbolize(insns: bytes, fd_names: Mapping[int, str]) -> tuple[bytes, tuple[tuple[int, str], ...]]:
    """Replace the map fds in ``insns`` by 0 and return where each map was: (index, map name)."""
    if len(insns) % INSN:
        raise ImageError(f"{len(insns)} bytes of instructions: not a multiple of {INSN}")
    out = bytearray(insns)
    refs: list[tuple[int, str]] = []
    n = len(insns) // INSN
    i = 0
    while i < n:
        at = i * INSN
        if out[at] == LD_IMM64:
            if i + 1 >= n:
                raise ImageError(f"ld_imm64 at {i} has no second half")
            src = out[at + 1] >> 4
            if src == PSEUDO_MAP_FD:
                fd = int.from_bytes(out[at + 4 : at + 8], "little", signed=True)
                if fd not in fd_names:
                    raise ImageError(f"instruction {i} loads fd {fd}, which is none of the probe's maps")
                refs.append((i, fd_names[fd]))
                out[at + 4 : at + 8] = bytes(4)
            elif src != 0:  # map values, BTF ids, functions: the probe uses none
                raise ImageError(f"instruction {i}: ld_imm64 with src_reg {src} is not supported")
            i += 2
        else:
            i += 1
    return bytes(out), tuple(refs)


def relocate(prog: ProgSpec, fds: Mapping[str, int]) -> bytes:
    """``prog``'s instructions with each map load given the fd of that map in ``fds``."""
    out = bytearray(prog.insns)
    n = len(out) // INSN
    for i, name in prog.refs:
        at = i * INSN
        if not 0 <= i < n - 1 or out[at] != LD_IMM64 or out[at + 1] >> 4 != PSEUDO_MAP_FD:
            raise ImageError(f"{prog.name}: instruction {i} is not a map load")
        if name not in fds:
            raise ImageError(f"{prog.name}: no map named {name}")
        out[at + 4 : at + 8] = fds[name].to_bytes(4, "little", signed=True)
    return bytes(out)


# --- storage ---------------------------------------------------------------------------------------


def dumps(image: Image, meta: Mapping[str, str]) -> bytes:
    """The image as bytes: a magic line, the body's sha256, the body (JSON)."""
    doc = {
        "meta": dict(meta),
        "maps": [[m.name, m.type, m.key_size, m.value_size, m.max_entries, m.flags] for m in image.maps],
        "programs": [
            {
                "name": p.name,
                "tracepoint": p.tracepoint,
                "license": p.license,
                "insns": base64.b64encode(p.insns).decode(),
                "refs": [list(r) for r in p.refs],
            }
            for p in image.programs
        ],
    }
    body = json.dumps(doc, separators=(",", ":")).encode()
    return MAGIC + hashlib.sha256(body).hexdigest().encode() + b"\n" + body


def loads(data: bytes) -> tuple[Image, dict[str, str]]:
    """Parse :func:`dumps`' bytes; any damage raises ImageError."""
    if not data.startswith(MAGIC):
        raise ImageError("not a probe image")
    digest, nl, body = data[len(MAGIC) :].partition(b"\n")
    if not nl or hashlib.sha256(body).hexdigest().encode() != digest:
        raise ImageError("damaged (checksum)")
    try:
        doc = json.loads(body)
        meta = {str(k): str(v) for k, v in _typed(doc["meta"], dict).items()}
        maps = tuple(_map(row) for row in _typed(doc["maps"], list))
        programs = tuple(_prog(p) for p in _typed(doc["programs"], list))
    except (KeyError, TypeError, ValueError) as e:
        raise ImageError(f"damaged ({e})") from None
    image = Image(maps, programs)
    names = {m.name for m in maps}
    for p in programs:
        relocate(p, {name: 0 for name in names})  # every map load points at a map that exists
    return image, meta


def _typed(v: Any, t: type) -> Any:
    if not isinstance(v, t):
        raise TypeError(f"{t.__name__} expected")
    return v


def _map(row: Any) -> MapSpec:
    row = _typed(row, list)
    if len(row) != 6:
        raise ValueError("map row")
    name = _typed(row[0], str)
    nums = [_typed(x, int) for x in row[1:]]
    if any(not 0 <= x < 1 << 32 for x in nums):
        raise ValueError("map field out of range")
    return MapSpec(name, *nums)


def _prog(p: Any) -> ProgSpec:
    p = _typed(p, dict)
    insns = base64.b64decode(_typed(p["insns"], str), validate=True)
    if not insns or len(insns) % INSN:
        raise ValueError("instructions")
    refs = tuple((_typed(i, int), _typed(name, str)) for i, name in (_typed(r, list) for r in p["refs"]))
    return ProgSpec(_typed(p["name"], str), _typed(p["tracepoint"], str), insns, refs, _typed(p["license"], str))


# --- compiling with bcc ------------------------------------------------------------------------------


def _libbcc() -> ctypes.CDLL:
    try:
        lib = ctypes.CDLL("libbcc.so.0", use_errno=True)  # loads LLVM: only when compiling
    except OSError as e:
        raise ImageError(f"bcc's library is missing ({e}): apt-get install libbpfcc") from None
    vp, cp, u64 = ctypes.c_void_p, ctypes.c_char_p, ctypes.c_ulonglong
    sigs: dict[str, tuple[Any, list[Any]]] = {
        "bpf_module_create_c": (vp, [cp, ctypes.c_uint, ctypes.POINTER(cp), ctypes.c_int, ctypes.c_bool, cp]),
        "bpf_module_destroy": (None, [vp]),
        "bpf_module_license": (cp, [vp]),
        "bpf_num_functions": (u64, [vp]),
        "bpf_function_name": (cp, [vp, u64]),
        "bpf_function_start": (vp, [vp, cp]),
        "bpf_function_size": (ctypes.c_size_t, [vp, cp]),
        "bpf_num_tables": (u64, [vp]),
        "bpf_table_name": (cp, [vp, u64]),
        "bpf_table_fd_id": (ctypes.c_int, [vp, u64]),
    }
    for name, (res, args) in sigs.items():
        fn = getattr(lib, name)
        fn.restype, fn.argtypes = res, args
    return lib


def compile_image(src: Path, cflags: Sequence[str]) -> Image:
    """Compile ``src`` with bcc (clang + LLVM) and read back its programs and maps.

    bcc creates the maps while compiling; they are closed again here (the loader makes its own).
    Raises ImageError when bcc fails (it prints the compiler's messages on stderr).
    """
    lib = _libbcc()
    argv = (ctypes.c_char_p * len(cflags))(*(f.encode() for f in cflags))
    mod = lib.bpf_module_create_c(str(src).encode(), 0, argv, len(cflags), True, None)
    if not mod:
        raise ImageError(f"bcc could not compile {src.name}")
    try:
        fd_names: dict[int, str] = {}
        maps = []
        for t in range(lib.bpf_num_tables(mod)):
            name = lib.bpf_table_name(mod, t).decode()
            fd = lib.bpf_table_fd_id(mod, t)
            info = bpfsys.map_info(fd)  # the kernel's own view: exact sizes, ring bytes, flags
            fd_names[fd] = name
            maps.append(MapSpec(name, info.type, info.key_size, info.value_size, info.max_entries, info.map_flags))
        lic = (lib.bpf_module_license(mod) or b"GPL").decode()
        progs = []
        for f in range(lib.bpf_num_functions(mod)):
            fname = lib.bpf_function_name(mod, f)
            name = fname.decode()
            if name.startswith(RAW_TP_PREFIX):
                tracepoint = name.removeprefix(RAW_TP_PREFIX)
            elif name.startswith(TP_PREFIX):
                tracepoint = name.removeprefix(TP_PREFIX).replace("__", "/", 1)
            elif name.startswith(OPTIONAL_RAW_TP_PREFIX):
                tracepoint = name.removeprefix(OPTIONAL_RAW_TP_PREFIX)
            else:
                continue
            size = lib.bpf_function_size(mod, fname)
            insns = ctypes.string_at(lib.bpf_function_start(mod, fname), size)
            code, refs = symbolize(insns, fd_names)
            progs.append(ProgSpec(name, tracepoint, code, refs, lic))
        if not any(p.raw and not p.optional for p in progs):
            raise ImageError(f"{src.name} has no RAW_TRACEPOINT_PROBE")
        return Image(tuple(maps), tuple(progs))
    finally:
        lib.bpf_module_destroy(mod)  # closes bcc's map fds


def libbcc_path() -> Path | None:
    """Where the dynamic loader would find libbcc.so.0 (without loading it: that costs LLVM)."""
    import sysconfig

    arch = sysconfig.get_config_var("MULTIARCH") or ""
    dirs = [d for d in os.environ.get("LD_LIBRARY_PATH", "").split(":") if d]
    dirs += [f"/usr/lib/{arch}", f"/lib/{arch}", "/usr/local/lib", "/usr/lib64", "/lib64", "/usr/lib", "/lib"]
    for d in dirs:
        p = Path(d) / "libbcc.so.0"
        if p.exists():
            return p.resolve()
    return None
