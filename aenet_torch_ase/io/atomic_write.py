"""Atomic file writes: write to a temporary file beside the target, then rename.

A reader (or a crash) never sees a half-written file. The new file gets the
permissions an ordinary `open(path, "w")` would give it (0666 less the
umask: 0644 under umask 022), or keeps the mode of the file it replaces;
the directory is synced after the rename so the rename itself survives a
power cut.
"""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile
import threading

_UMASK_LOCK = threading.Lock()


def current_umask() -> int:
    """The process umask (read without changing it where /proc allows)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    with _UMASK_LOCK:  # os.umask can only be read by setting it
        mask = os.umask(0o022)
        os.umask(mask)
    return mask


def fsync_directory(directory: str) -> None:
    """Sync a directory after a rename in it, so the rename survives a power cut."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return  # some file systems do not open directories; the data itself is synced
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def fsync_file(path: str) -> None:
    """Flush a written file's data to the disk (before it is renamed into place)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def target_mode(path: str) -> int:
    """The permissions a file written to `path` should get: those of the file it
    replaces, else 0666 less the umask (mkstemp's temporary files are 0600)."""
    try:
        return stat.S_IMODE(os.stat(path).st_mode)
    except FileNotFoundError:
        return 0o666 & ~current_umask()


@contextlib.contextmanager
def replacing(path, suffix: str = ".tmp"):
    """A temporary file beside `path` (its name ends in `suffix`) for the
    block to write; when the block ends it gets the mode `target_mode`
    gives, is synced to disk and renamed over `path`, and the folder is
    synced. On an error the temporary file goes and `path` is untouched."""
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    mode = target_mode(path)
    fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(path) + ".", suffix=suffix, dir=directory)
    os.close(fd)
    try:
        yield tmp
        os.chmod(tmp, mode)
        fsync_file(tmp)  # the data on disk before the rename: a crash leaves the old file or the new one
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    fsync_directory(directory)


def atomic_write_bytes(path: str, data: bytes) -> None:
    """Write `data` to `path` atomically (same-directory temp file + os.replace)."""
    with replacing(path) as tmp, open(tmp, "wb") as f:
        f.write(data)


def atomic_write_text(path: str, text: str) -> None:
    """Write `text` (UTF-8) to `path` atomically."""
    atomic_write_bytes(path, text.encode("utf-8"))


def append_text(path, text: str) -> None:
    """Append `text` to `path` in one write call (a row or a whole frame), so
    a crash or a full disk can tear at most the last record, never interleave."""
    with open(path, "a") as f:
        f.write(text)
        f.flush()
