"""Find and read the species files of a potential.

A potential is given as `{symbol: path}` (binary `.nn` or aenet-PyTorch
`.nn.ascii`, told apart by content), or as a directory holding one file per
species (`X.nn`, `X.*.nn`, `X.nn.ascii`, or aenet's `X.*.nn-NNNNN` snapshots).
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Dict, Mapping

from ..errors import PotentialFileError, SpeciesError
from .nn_ascii import read_nn_ascii
from .nn_binary import read_nn
from .nn_file import NNFile

_NN_NAME = re.compile(r"\.nn(\.ascii)?(-\d+)?$")


def is_ascii_potential(path) -> bool:
    """True when `path` looks like an `.nn.ascii` text file rather than a binary `.nn`."""
    with open(path, "rb") as f:
        head = f.read(24)
    # a binary file starts with the int32 record marker 4 (00 00 00 04 little-endian)
    if head[:4] == b"\x04\x00\x00\x00" or b"\x00" in head:
        return False  # record markers (also of a file cut to a few bytes); text never holds NUL
    try:
        head.decode("ascii")
    except UnicodeDecodeError:
        return False
    return True


def read_potential_file(path) -> NNFile:
    """Read one species file, binary or ASCII."""
    path = Path(path)
    if not path.is_file():
        raise PotentialFileError(f"potential file {path} does not exist")
    return read_nn_ascii(path) if is_ascii_potential(path) else read_nn(path)


def potential_files_in(directory) -> Dict[str, Path]:
    """{symbol: path} of the species files in `directory` (symbol from the file's contents)."""
    directory = Path(directory)
    candidates = sorted(p for p in directory.iterdir() if p.is_file() and _NN_NAME.search(p.name))
    found: Dict[str, list] = {}
    for p in candidates:
        found.setdefault(read_potential_file(p).atomtype, []).append(p)
    if not found:
        raise PotentialFileError(
            f"no potential files (*.nn, *.nn.ascii) in directory {directory}"
        )
    clash = {s: [q.name for q in ps] for s, ps in found.items() if len(ps) > 1}
    if clash:
        raise PotentialFileError(
            f"directory {directory} holds several files for the same species {clash}: "
            f"pass a dict {{symbol: path}} to choose one"
        )
    return {s: ps[0] for s, ps in found.items()}


def read_potential(spec) -> Dict[str, NNFile]:
    """{symbol: NNFile} from a dict {symbol: path or NNFile}, a directory, or one file."""
    if isinstance(spec, Mapping) and all(isinstance(v, NNFile) for v in spec.values()):
        for sym, nn in spec.items():
            if nn.atomtype != sym:
                raise SpeciesError(f"potential of '{nn.atomtype}' was given for '{sym}'")
        return dict(spec)
    if isinstance(spec, Mapping):
        paths = {str(k): Path(v) for k, v in spec.items()}
    elif isinstance(spec, (str, os.PathLike)) and Path(spec).is_dir():
        paths = potential_files_in(spec)
    elif isinstance(spec, (str, os.PathLike)) and Path(spec).is_file():
        nn = read_potential_file(spec)
        return {nn.atomtype: nn}
    else:
        raise PotentialFileError(
            f"cannot find a potential at {spec!r}: give a dict {{'Li': 'Li.nn', ...}}, "
            f"a directory of .nn files, or a saved model.pt"
        )
    files = {}
    for sym, path in paths.items():
        nn = read_potential_file(path)
        if nn.atomtype != sym:
            raise SpeciesError(
                f"{path}: file is the potential of '{nn.atomtype}', but was given for '{sym}'"
            )
        files[sym] = nn
    return files
