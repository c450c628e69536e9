"""Tests of the numba plumbing (``deconflict.geo.compiled``): what keys the on-disk cache.

Numba checks only the timestamp of the file that defines a function, and compiled functions
inline functions of other files, so the cache directory is named after a hash of every
module that compiles. These tests make sure no such module can be left out of the hash: a
module that compiles anywhere in the package must be one the hash reads, and a new file in
a compiled package changes the key without being listed anywhere.
"""

from __future__ import annotations

import ast
import os
import shutil
from pathlib import Path

from deconflict.geo.compiled import (
    COMPILED_PACKAGES,
    NUMBA_CONFIG,
    PACKAGE,
    cache_key,
    hashed_modules,
)

PLUMBING = "deconflict.geo.compiled"


def _compiles(path: Path) -> bool:
    """Whether a module imports numba, or the decorators and intrinsics of the plumbing."""
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import) and any(
            a.name.split(".")[0] == "numba" for a in node.names
        ):
            return True
        if isinstance(node, ast.ImportFrom) and node.module is not None:
            if node.module.split(".")[0] in ("numba", "llvmlite"):
                return True
            names = {a.name for a in node.names}
            if node.module == PLUMBING and names & {"compiled", "kernel", "prefetch"}:
                return True
    return False


def test_every_module_that_compiles_is_hashed() -> None:
    hashed = set(hashed_modules())
    compiling = [p for p in sorted(PACKAGE.rglob("*.py")) if _compiles(p)]
    assert len(compiling) >= 8, "the engine's kernel modules and geo's caps compile"
    missing = [str(p.relative_to(PACKAGE)) for p in compiling if p not in hashed]
    assert missing == []


def test_the_hash_reads_every_module_of_the_compiled_packages() -> None:
    for name in COMPILED_PACKAGES:
        modules = sorted((PACKAGE / name).glob("*.py"))
        assert modules
        assert set(modules) <= set(hashed_modules())


def test_a_new_module_changes_the_cache_key(tmp_path: Path) -> None:
    copy = tmp_path / "deconflict"
    for name in COMPILED_PACKAGES:
        shutil.copytree(PACKAGE / name, copy / name, ignore=shutil.ignore_patterns("__pycache__"))
    assert cache_key(copy) == cache_key()
    (copy / "engine" / "new_kernels.py").write_text("X = 1\n", encoding="utf-8")
    assert cache_key(copy) != cache_key()


def test_an_edited_module_changes_the_cache_key(tmp_path: Path) -> None:
    copy = tmp_path / "deconflict"
    for name in COMPILED_PACKAGES:
        shutil.copytree(PACKAGE / name, copy / name, ignore=shutil.ignore_patterns("__pycache__"))
    earth = copy / "geo" / "earth.py"
    earth.write_text(earth.read_text(encoding="utf-8") + "\n# edited\n", encoding="utf-8")
    assert cache_key(copy) != cache_key()


def test_numba_caches_in_a_directory_named_after_the_key() -> None:
    # Set at import, before any function is compiled; a NUMBA_CACHE_DIR of the user's own wins.
    if os.environ.get("NUMBA_CACHE_DIR"):
        assert os.environ["NUMBA_CACHE_DIR"] in NUMBA_CONFIG.CACHE_DIR
        return
    assert Path(NUMBA_CONFIG.CACHE_DIR).name == f"numba-{cache_key()}"
    assert not [
        p
        for p in Path(NUMBA_CONFIG.CACHE_DIR).parent.glob("numba-*")
        if p.name != f"numba-{cache_key()}"
    ], "stale caches are removed"
