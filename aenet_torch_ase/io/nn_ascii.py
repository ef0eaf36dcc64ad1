"""aenet-PyTorch's `.nn.ascii` potential format (one binary record per line).

Layout as written by aenet-PyTorch's `output_nn.py` (spec section 2.1):
integers right-aligned in 17 columns, reals as `%24.17f`, one line per
binary record, training-set scalars as Python `repr`.

`to_binary_compatible` mimics aenet-PyTorch's `nnASCII2bin` conversion: the
character fields (description, training-set file, sftype) keep only their
first blank-delimited token and a true `normalized` becomes 1. With it,
`Ti.nn.ascii` converts to exactly the binary `Ti.nn` aenet-PyTorch ships.
"""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

import numpy as np

from ..errors import PotentialFileError
from .atomic_write import atomic_write_text
from .nn_binary import validate_nn
from .nn_file import NNFile


def read_nn_ascii(path) -> NNFile:
    """Read an aenet-PyTorch `.nn.ascii` file (character fields kept whole)."""
    path = Path(path)
    try:
        lines = path.read_text().splitlines()
    except (OSError, UnicodeDecodeError) as err:
        raise PotentialFileError(f"cannot read ASCII potential file {path}: {err}") from err
    return parse_nn_ascii(lines, str(path))


def parse_nn_ascii(lines, source="<ascii>") -> NNFile:
    pos = [0]

    def line(name):
        k = pos[0]
        if k >= len(lines):
            raise PotentialFileError(
                f"{source}: file ends before field '{name}' (line {k + 1}; truncated file?)"
            )
        pos[0] += 1
        return lines[k]

    def convert(name, text, kind, count=None):
        k = pos[0]
        tokens = text.split()
        try:
            values = [kind(t) for t in tokens]
        except ValueError:
            raise PotentialFileError(
                f"{source}, line {k}: field '{name}' should hold {kind.__name__} values, got {text.strip()[:60]!r}"
            ) from None
        if count is not None and len(values) != count:
            raise PotentialFileError(
                f"{source}, line {k}: field '{name}' has {len(values)} values, expected {count}"
            )
        return values

    def ints(name, count=None):
        return convert(name, line(name), int, count)

    def floats(name, count=None):
        return convert(name, line(name), float, count)

    def one_int(name):
        return ints(name, 1)[0]

    def one_float(name):
        return floats(name, 1)[0]

    v = {}
    v["nlayers"] = nl = one_int("nlayers")
    for name in ("nnodes_max", "Wsize", "nvalues"):
        v[name] = one_int(name)
    v["nnodes"] = ints("nnodes", nl)
    v["f_a"] = ints("f_a", nl - 1)
    v["iw"] = ints("iw", nl)
    v["iv"] = ints("iv", nl)
    v["W"] = np.array(floats("W", v["Wsize"]))
    v["description"] = line("description").strip()
    v["atomtype"] = line("atomtype").strip()
    nenv = one_int("nenv")
    v["envtypes"] = line("envtypes").split()
    if len(v["envtypes"]) != nenv:
        raise PotentialFileError(f"{source}: nenv = {nenv} but {len(v['envtypes'])} environment species listed")
    v["Rc_min"] = one_float("Rc_min")
    v["Rc_max"] = one_float("Rc_max")
    v["sftype"] = line("sftype").strip()
    nsf = one_int("nsf")
    nsfparam = one_int("nsfparam")
    v["sf"] = np.array(ints("sf", nsf), dtype=np.int64)
    v["sfparam"] = np.array(floats("sfparam", nsf * nsfparam)).reshape(nsf, nsfparam)
    v["sfenv"] = np.array(ints("sfenv", 2 * nsf), dtype=np.int64).reshape(nsf, 2)
    v["neval"] = one_int("neval")
    for name in ("sfval_min", "sfval_max", "sfval_avg", "sfval_cov"):
        v[name] = np.array(floats(name, nsf))
    v["file"] = line("file").strip()
    norm_text = line("normalized").strip()
    if norm_text.upper() in ("TRUE", "T", ".TRUE."):
        v["normalized"] = 1
    elif norm_text.upper() in ("FALSE", "F", ".FALSE."):
        v["normalized"] = 0
    else:
        raise PotentialFileError(f"{source}, line {pos[0]}: 'normalized' must be True or False, got {norm_text!r}")
    v["scale"] = one_float("scale")
    v["shift"] = one_float("shift")
    ntypes = one_int("nTypes")
    v["typeName"] = line("typeName").split()
    if len(v["typeName"]) != ntypes:
        raise PotentialFileError(f"{source}: nTypes = {ntypes} but {len(v['typeName'])} type names listed")
    v["E_atom"] = np.array(floats("E_atom", ntypes))
    v["nAtomsTot"] = one_int("nAtomsTot")
    v["nStrucs"] = one_int("nStrucs")
    v["E_min/E_max/E_av"] = floats("E_min E_max E_av", 3)
    nn = NNFile.from_records(v, source)
    validate_nn(nn)
    return nn


def to_binary_compatible(nn: NNFile) -> NNFile:
    """What aenet-PyTorch's nnASCII2bin stores: first token of each character
    field, logical true as 1."""

    def first(s):
        parts = s.split()
        return parts[0] if parts else ""

    return replace(
        nn,
        description=first(nn.description),
        trainset_file=first(nn.trainset_file),
        sftype=first(nn.sftype),
        normalized=1 if nn.normalized else 0,
    )


def nn_to_ascii(nn: NNFile) -> str:
    """Serialise `nn` in aenet-PyTorch's `.nn.ascii` layout."""

    def iline(values):
        return "".join(f"{int(v):17d} " for v in np.asarray(values).reshape(-1)) + "\n"

    def fline(values):
        return "".join(f"{float(v):24.17f} " for v in np.asarray(values).reshape(-1)) + "\n"

    def plain(values):
        return "".join(f"{v} " for v in values) + "\n"

    one = lambda v: f"{int(v):17d}\n"  # noqa: E731
    real = lambda v: f"{float(v):24.17f}\n"  # noqa: E731
    parts = [
        one(nn.nlayers), one(nn.nnodes_max), one(nn.wsize), one(nn.nvalues),
        iline(nn.nnodes), iline(nn.activations), iline(nn.iw), iline(nn.iv),
        fline(nn.weights),
        nn.description + "\n", nn.atomtype + "\n", one(len(nn.envtypes)),
        plain(nn.envtypes), real(nn.rc_min), real(nn.rc_max), nn.sftype + "\n",
        one(nn.nsf), one(nn.sfparam.shape[1]), iline(nn.sf), fline(nn.sfparam),
        iline(nn.sfenv), one(nn.neval),
        fline(nn.sfval_min), fline(nn.sfval_max), fline(nn.sfval_avg), fline(nn.sfval_cov),
        nn.trainset_file + "\n", ("True" if nn.normalized else "False") + "\n",
        f"{float(nn.scale)}\n", f"{float(nn.shift)}\n", f"{len(nn.type_names)}\n",
        plain(nn.type_names), plain(float(e) for e in nn.e_atom),
        f"{int(nn.natoms_tot)}\n", f"{int(nn.nstrucs)}\n",
        f"{float(nn.e_min)} {float(nn.e_max)} {float(nn.e_av)}\n",
    ]
    return "".join(parts)


def write_nn_ascii(nn: NNFile, path) -> None:
    """Write `nn` as `.nn.ascii` (atomically)."""
    validate_nn(nn)
    atomic_write_text(os.fspath(path), nn_to_ascii(nn))
