"""Map references in compiled instructions: made symbolic for storage, given new fds at load."""

from __future__ import annotations

import struct

import pytest

from tracer.probe.image import Image, ImageError, MapSpec, ProgSpec, dumps, loads, relocate, symbolize


def insn(code: int, dst: int = 0, src: int = 0, off: int = 0, imm: int = 0) -> bytes:
    return struct.pack("<BBhi", code, (src << 4) | dst, off, imm)


def ld_imm64(dst: int, src: int, value: int) -> bytes:
    """Both halves of a 64-bit load; for a map, ``value`` is its fd."""
    lo, hi = value & 0xFFFFFFFF, value >> 32
    return insn(0x18, dst, src, imm=struct.unpack("<i", struct.pack("<I", lo))[0]) + insn(0, imm=hi)


MOV_R0_0 = insn(0xB7)
EXIT = insn(0x95)
CONST = ld_imm64(3, 0, 0x11223344_55667788)  # a plain 64-bit constant: not a map


def program(fd_a: int, fd_b: int) -> bytes:
    return MOV_R0_0 + ld_imm64(1, 1, fd_a) + CONST + ld_imm64(2, 1, fd_b) + ld_imm64(1, 1, fd_a) + EXIT


def imm(code: bytes, i: int) -> int:
    return int(struct.unpack_from("<i", code, i * 8 + 4)[0])


def test_map_fds_become_names_and_zeros() -> None:
    code, refs = symbolize(program(7, 9), {7: "kt_a", 9: "kt_b", 11: "kt_unused"})
    assert refs == ((1, "kt_a"), (5, "kt_b"), (7, "kt_a"))
    assert [imm(code, i) for i, _ in refs] == [0, 0, 0]
    assert code == program(0, 0)  # nothing else changed, the constant included


def test_relocation_writes_the_new_fds_back() -> None:
    code, refs = symbolize(program(7, 9), {7: "kt_a", 9: "kt_b"})
    prog = ProgSpec("raw_tracepoint__x", "x", code, refs, "GPL")
    assert relocate(prog, {"kt_a": 40, "kt_b": 41}) == program(40, 41)


def test_a_constant_that_looks_like_a_map_load_is_left_alone() -> None:
    # Only the first slot of an ld_imm64 is an instruction; its second half is data.
    tricky = MOV_R0_0 + insn(0x18, 1, 0, imm=5) + insn(0x18, 1, 1, imm=7) + EXIT
    code, refs = symbolize(tricky, {7: "kt_a"})
    assert refs == () and code == tricky


@pytest.mark.parametrize(
    ("code", "message"),
    [
        (program(7, 8), "fd 8"),  # a fd that is none of the maps
        (MOV_R0_0 + ld_imm64(1, 2, 7) + EXIT, "src_reg 2"),  # map value: not supported
        (MOV_R0_0 + EXIT + b"\0\0\0", "multiple of 8"),
        (MOV_R0_0 + insn(0x18, 1, 1, imm=7), "second half"),
    ],
)
def test_instructions_that_cannot_be_stored(code: bytes, message: str) -> None:
    with pytest.raises(ImageError, match=message):
        symbolize(code, {7: "kt_a"})


@pytest.mark.parametrize(("refs", "fds", "message"), [
    (((0, "kt_a"),), {"kt_a": 1}, "not a map load"),
    (((3, "kt_a"),), {"kt_a": 1}, "not a map load"),  # the constant's load
    (((99, "kt_a"),), {"kt_a": 1}, "not a map load"),
    (((1, "kt_a"),), {"kt_b": 1}, "no map named kt_a"),
])
def test_relocation_refuses_bad_references(refs: tuple[tuple[int, str], ...], fds: dict[str, int],
                                           message: str) -> None:
    prog = ProgSpec("p", "x", program(0, 0), refs, "GPL")
    with pytest.raises(ImageError, match=message):
        relocate(prog, fds)


def sample() -> Image:
    code, refs = symbolize(program(7, 9), {7: "kt_a", 9: "kt_b"})
    maps = (MapSpec("kt_a", 2, 4, 16, 1, 0), MapSpec("kt_b", 27, 0, 0, 1 << 20, 0))
    return Image(maps, (ProgSpec("raw_tracepoint__sys_enter", "sys_enter", code, refs, "GPL"),))


def test_storage_round_trip() -> None:
    image, meta = loads(dumps(sample(), {"schema": "1"}))
    assert image == sample()
    assert meta == {"schema": "1"}


def test_damaged_storage_is_refused() -> None:
    data = dumps(sample(), {})
    for bad in (b"", data[:20], data[: len(data) // 2], data[:-1], data.replace(b"kt_b", b"kt_c")):
        with pytest.raises(ImageError):
            loads(bad)


def test_stored_references_must_name_stored_maps() -> None:
    img = sample()
    prog = img.programs[0]
    orphan = Image(img.maps[:1], (prog,))  # kt_b's map left out
    with pytest.raises(ImageError, match="kt_b"):
        loads(dumps(orphan, {}))
