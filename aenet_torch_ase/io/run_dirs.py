"""Output folders of runs (stretch, demo, train): never destroy an earlier run.

`prepare_run_dir` refuses a folder that already holds a run unless the
caller asks to overwrite it (then the earlier run's files are removed first)
or to resume it; `check_writable` tries a real write, so a read-only folder
fails before the work starts, not after it.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Iterable, List

from ..errors import OutputError


def check_writable(directory, what: str = "output folder") -> Path:
    """Create `directory` if needed and check a file can be written in it."""
    directory = Path(directory)
    try:
        directory.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".write-test.", dir=directory)
        os.close(fd)
        os.unlink(probe)
    except OSError as err:
        reason = err.strerror or str(err)
        raise OutputError(f"cannot write into the {what} {directory} ({reason}): choose another folder "
                          f"or fix its permissions") from None
    return directory


def existing_run_files(directory, names: Iterable[str]) -> List[str]:
    directory = Path(directory)
    if not directory.is_dir():
        return []
    return [n for n in names if (directory / n).exists()]


def prepare_run_dir(directory, run_files: Iterable[str], *, overwrite: bool = False, resume: bool = False,
                    what: str = "run") -> Path:
    """Make `directory` ready for a new run (or check it for a resume).

    run_files: names (files or folders) a run of this kind writes. A new run
    into a folder holding any of them is refused unless `overwrite`, which
    removes them all first (so no file of the earlier run is left beside
    the new one)."""
    directory = Path(directory)
    if directory.exists() and not directory.is_dir():
        raise OutputError(f"{directory} is a file, not a folder: choose another output folder")
    run_files = list(run_files)
    if resume:
        if not directory.is_dir():
            raise OutputError(f"cannot resume: {directory} does not exist (start a new {what} without --resume)")
        return check_writable(directory)
    found = existing_run_files(directory, run_files)
    if found and not overwrite:
        raise OutputError(
            f"{directory} already holds a {what} ({', '.join(found)}): pass --overwrite (overwrite=True) "
            f"to replace it, --resume (resume=True) to continue it, or choose another output folder")
    check_writable(directory)
    for name in found:
        path = directory / name
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink()
    return directory
