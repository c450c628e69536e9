"""The numba plumbing of deconflict: the decorators, the on-disk cache and its key.

Every compiled function of the project is decorated here (``compiled``, ``kernel``), and
numba's cache directory is chosen here, once, before any of them is defined. It lives in
``geo`` because ``geo`` is the lowest layer that compiles (the caps of ``geo.caps``), and
the layer rule lets ``engine`` import from ``geo`` but not the other way round; the engine's
kernels use the same decorators, the same cache and the array types below.

Numba checks only the timestamp of the file that defines a function, and compiled functions
call (and LLVM inlines) functions defined in other files, so a cache written for one version
of one file could be loaded against a changed version of another. The cache directory is
therefore named after a hash of every module of the packages that compile
(``COMPILED_PACKAGES``): all of ``geo`` and ``engine``, found on disk, so a new kernel file
is covered without being listed anywhere.
"""

from __future__ import annotations

import hashlib
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any, Final, TypeVar, cast

import numba
import numpy as np
import numpy.typing as npt
from llvmlite import ir
from numba.core import types
from numba.extending import intrinsic

Floats = npt.NDArray[np.float64]
Ints = npt.NDArray[np.int64]
Codes = npt.NDArray[np.int8]

F = TypeVar("F", bound=Callable[..., Any])
NUMBA_CONFIG: Any = numba.config  # settings numba read from NUMBA_* variables at import

PACKAGE: Final = Path(__file__).parent.parent
"""The ``deconflict`` package directory."""

COMPILED_PACKAGES: Final = ("geo", "engine")
"""The packages whose modules define compiled functions or what they inline."""


def hashed_modules(package: Path = PACKAGE) -> list[Path]:
    """Every module whose source keys numba's cache: each ``.py`` file of the packages that
    compile, in a fixed order."""
    return sorted(path for name in COMPILED_PACKAGES for path in (package / name).rglob("*.py"))


def cache_key(package: Path = PACKAGE) -> str:
    """A hash of the path and source of every ``hashed_modules`` file."""
    digest = hashlib.sha256()
    for path in hashed_modules(package):
        digest.update(path.relative_to(package).as_posix().encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def _cache_directory() -> str | None:
    """Where numba caches the compiled code: a directory named after ``cache_key`` (see the
    module's docstring). Beside the package if it is writable, else in the user's cache;
    None when neither is (numba then compiles at import). A NUMBA_CACHE_DIR set by the user
    wins."""
    if NUMBA_CONFIG.CACHE_DIR:
        return None
    key = cache_key()
    for base in (PACKAGE / "__pycache__", Path.home() / ".cache" / "deconflict"):
        directory = base / f"numba-{key}"
        try:
            directory.mkdir(parents=True, exist_ok=True)
            (directory / ".writable").touch()
        except OSError:
            continue
        for stale in base.glob("numba-*"):  # caches of earlier versions of the code
            if stale != directory:
                shutil.rmtree(stale, ignore_errors=True)
        return str(directory)
    return None


_CACHE = _cache_directory()
if _CACHE is not None:
    NUMBA_CONFIG.CACHE_DIR = _CACHE


def compiled(function: F) -> F:
    """``numba.njit`` with an on-disk cache, and without one where the package is read-only.

    Numba looks for a writable cache directory (``__pycache__`` beside the module, then a
    user-wide one) when the function is decorated and raises if there is none; the code
    then compiles at import instead of loading the cache.
    """
    return _compile(function, {"nogil": True, "error_model": "numpy"})


def kernel(function: F) -> F:
    """``compiled``, for functions of the hot loop that allocate nothing: without numba's
    reference counting, which otherwise costs two atomic operations per array argument and
    per array view on every call."""
    return _compile(function, {"nogil": True, "error_model": "numpy", "_nrt": False})


def _compile(function: F, options: dict[str, Any]) -> F:
    try:
        return numba.njit(cache=True, **options)(function)  # type: ignore[no-any-return]
    except RuntimeError:
        return numba.njit(**options)(function)  # type: ignore[no-any-return]


@intrinsic
def _prefetch(typingctx: Any, address: Any) -> Any:
    del typingctx

    def codegen(context: Any, builder: Any, signature: Any, args: Any) -> Any:
        byte_pointer = ir.IntType(8).as_pointer()
        int32 = ir.IntType(32)
        function_type = ir.FunctionType(ir.VoidType(), [byte_pointer, int32, int32, int32])
        function = builder.module.declare_intrinsic("llvm.prefetch.p0", fnty=function_type)
        pointer = builder.inttoptr(args[0], byte_pointer)
        builder.call(function, [pointer, int32(0), int32(3), int32(1)])  # read, keep, data
        return context.get_dummy_value()

    return types.void(types.intp), codegen


prefetch = cast(Callable[[int], None], _prefetch)
"""Ask the processor to bring the cache line at an address (an integer) in, from compiled
code: the candidate pass reads rows scattered over hundreds of megabytes, and issuing the
loads of a batch of candidates together overlaps their latencies."""
