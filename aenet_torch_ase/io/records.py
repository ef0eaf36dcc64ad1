"""Append-only run records (CSV rows, extxyz frames) that survive a crash.

Each row or frame is written with one write call (`append_text`), so a
crash or a full disk tears at most the last record. The readers here drop
such a torn tail with a warning instead of failing, so a run can be resumed
and analysed without a hand repair.
"""

from __future__ import annotations

import io
import warnings
from pathlib import Path
from typing import List, Tuple


def frame_text(atoms) -> str:
    """One extxyz frame as text (the calculator-free `atoms`, info and arrays)."""
    import ase.io

    buf = io.StringIO()
    ase.io.write(buf, atoms, format="extxyz")
    return buf.getvalue()


def read_csv_rows(path) -> Tuple[List[str], List[List[str]]]:
    """(header, rows) of a CSV run record; a torn last line (no newline at
    the end, or the wrong number of fields) is dropped with a warning."""
    path = Path(path)
    text = path.read_text()
    lines = text.split("\n")
    torn = lines[-1] != ""  # the file does not end with a newline: last write cut short
    lines = lines[:-1] if not torn else lines
    if torn:
        warnings.warn(f"{path}: the last line is incomplete (the run was cut off while writing it); "
                      f"it is ignored", stacklevel=2)
        lines = lines[:-1]
    if not lines:
        return [], []
    header = lines[0].split(",")
    rows = []
    for number, line in enumerate(lines[1:], start=2):
        fields = line.split(",")
        if len(fields) != len(header):
            if number == len(lines):
                warnings.warn(f"{path}: the last line is incomplete; it is ignored", stacklevel=2)
                continue
            from ..errors import InputFileError

            raise InputFileError(f"{path}, line {number}: {len(fields)} fields where the header has "
                                 f"{len(header)}")
        rows.append(fields)
    return header, rows


def _complete_frames(path: Path) -> Tuple[List[str], int]:
    """Texts of the complete extxyz frames of `path` and the line where a torn tail starts (0: none)."""
    lines = path.read_text().split("\n")
    if lines and lines[-1] == "":
        lines = lines[:-1]
        ends_cleanly = True
    else:
        ends_cleanly = False
    frames, k = [], 0
    while k < len(lines):
        try:
            n = int(lines[k].split()[0])
        except (ValueError, IndexError):
            return frames, k + 1
        end = k + 2 + n
        if end > len(lines) or (end == len(lines) and not ends_cleanly):
            return frames, k + 1
        frames.append("\n".join(lines[k:end]) + "\n")
        k = end
    return frames, 0


def read_frames(path) -> list:
    """All complete frames of an extxyz trajectory; a torn last frame is
    dropped with a warning."""
    import ase.io

    path = Path(path)
    texts, torn_at = _complete_frames(path)
    frames = []
    for k, t in enumerate(texts):
        try:
            frames.append(ase.io.read(io.StringIO(t), format="extxyz"))
        except Exception as err:  # ASE raises several kinds for a malformed frame
            if k < len(texts) - 1 or torn_at:
                from ..errors import InputFileError

                raise InputFileError(f"{path}: frame {k + 1} cannot be read ({err})") from None
            torn_at = -1  # the last frame, cut where its lines still count up
    if torn_at:
        warnings.warn(f"{path}: the last frame is incomplete (the run was cut off while writing it); "
                      f"it is ignored", stacklevel=2)
    return frames


def rewrite_frames(path, frames) -> None:
    """Replace `path` by `frames` atomically (after dropping a torn tail or
    frames written after a checkpoint)."""
    from .atomic_write import atomic_write_text

    atomic_write_text(str(path), "".join(frame_text(f) for f in frames))
