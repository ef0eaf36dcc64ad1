"""Writing structures atomically in any ASE format (extxyz by default)."""

from __future__ import annotations

import os
import tempfile

from .atomic_write import fsync_directory, fsync_file, target_mode


def write_structure(path, atoms, format=None) -> None:
    """`ase.io.write` to a temporary file beside `path`, synced to disk, then
    renamed over `path` (the directory synced after)."""
    import ase.io

    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    suffix = os.path.splitext(path)[1] or ".extxyz"
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=suffix, dir=directory)
    os.close(fd)
    try:
        ase.io.write(tmp, atoms, format=format)
        os.chmod(tmp, target_mode(path))
        fsync_file(tmp)  # the data on disk before the rename: a crash leaves the old file or the new one
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    fsync_directory(directory)
