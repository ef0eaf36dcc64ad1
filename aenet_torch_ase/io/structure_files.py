"""Writing structures atomically in any ASE format (extxyz by default)."""

from __future__ import annotations

import os

from .atomic_write import replacing


def write_structure(path, atoms, format=None) -> None:
    """`ase.io.write` to a temporary file beside `path` (its extension kept,
    from which ASE tells the format), then synced and renamed over `path`
    (`atomic_write.replacing`)."""
    import ase.io

    suffix = os.path.splitext(os.fspath(path))[1] or ".extxyz"
    with replacing(path, suffix=suffix) as tmp:
        ase.io.write(tmp, atoms, format=format)
