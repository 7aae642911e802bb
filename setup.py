"""Build of ktrace's Cython extensions: every ext/<stem>.pyx becomes tracer._ext.<stem>.

Everything else (metadata, packages, scripts, tool configuration) is in pyproject.toml.
The extensions are globbed at build time, so adding a .pyx needs no change here.  A stub
ext/<stem>.pyi, if there is one, is copied next to the built module (tracer/_ext/<stem>.pyi),
where mypy and PEP 561 look for it.
"""

from __future__ import annotations

import filecmp
import shutil
from pathlib import Path

from setuptools import Extension, setup

EXT_DIR = Path("ext")
PKG_DIR = Path("tracer") / "_ext"


def copy_stubs() -> None:
    for stub in sorted(EXT_DIR.glob("*.pyi")):
        dest = PKG_DIR / stub.name
        if not dest.exists() or not filecmp.cmp(stub, dest, shallow=False):
            shutil.copyfile(stub, dest)


def extensions() -> list[Extension]:
    sources = sorted(EXT_DIR.glob("*.pyx"))
    if not sources:
        return []
    from Cython.Build import cythonize  # a build requirement; not needed when there is nothing to build

    exts = [
        Extension(
            f"tracer._ext.{pyx.stem}",
            [pyx.as_posix()],
            include_dirs=[EXT_DIR.as_posix()],
            extra_compile_args=["-O2"],
        )
        for pyx in sources
    ]
    return cythonize(
        exts,
        include_path=[EXT_DIR.as_posix()],
        build_dir="build/cython",  # generated .c files stay out of the source tree
        compiler_directives={"language_level": 3},
    )


copy_stubs()
setup(ext_modules=extensions())
