"""aenet's binary `.nn` format: Fortran unformatted sequential records.

Each record is `[int32 n][n bytes][int32 n]`, little-endian; a file holds
exactly 36 records (spec section 2). Reading then writing a file reproduces
it byte for byte (the logical `normalized` keeps its stored value, 1 or -1).
"""

from __future__ import annotations

import os
import struct
from pathlib import Path

import numpy as np

from ..errors import PotentialFileError
from .atomic_write import atomic_write_bytes
from .nn_file import DESCRIPTION_LEN, FILE_LEN, SFTYPE_LEN, TYPE_LEN, NNFile

N_RECORDS = 36


class _RecordReader:
    """Reads typed Fortran records from bytes, naming the file in errors."""

    def __init__(self, data: bytes, source: str):
        self.data = data
        self.pos = 0
        self.count = 0
        self.source = source

    def fail(self, what: str) -> PotentialFileError:
        return PotentialFileError(
            f"{self.source}: {what} (record {self.count} of {N_RECORDS}, byte "
            f"offset {self.pos}). Is this an aenet binary .nn file written by "
            f"train.x or aenet-torch? An ASCII file must end in '.ascii' or be "
            f"read with read_nn_ascii()."
        )

    def record(self, name: str, nbytes: int | None = None) -> bytes:
        self.count += 1
        d, p = self.data, self.pos
        if p + 4 > len(d):
            raise self.fail(f"file ends before record '{name}' (truncated file)")
        (n,) = struct.unpack_from("<i", d, p)
        if n < 0 or p + 8 + n > len(d):
            raise self.fail(
                f"record '{name}' claims {n} bytes but only {len(d) - p - 4} remain "
                f"(truncated or corrupted file)"
            )
        (tail,) = struct.unpack_from("<i", d, p + 4 + n)
        if tail != n:
            raise self.fail(
                f"record '{name}': start marker {n} != end marker {tail} (corrupted file)"
            )
        if nbytes is not None and n != nbytes:
            raise self.fail(f"record '{name}' has {n} bytes, expected {nbytes}")
        self.pos = p + 8 + n
        return d[p + 4 : p + 4 + n]

    def int(self, name):
        return struct.unpack("<i", self.record(name, 4))[0]

    def ints(self, name, count):
        return np.frombuffer(self.record(name, 4 * count), dtype="<i4").astype(np.int64)

    def double(self, name):
        return struct.unpack("<d", self.record(name, 8))[0]

    def doubles(self, name, count):
        return np.frombuffer(self.record(name, 8 * count), dtype="<f8").astype(np.float64)

    def string(self, name, length):
        raw = self.record(name, length)
        try:
            return raw.decode("ascii").rstrip(" ")
        except UnicodeDecodeError:
            raise self.fail(f"record '{name}' is not ASCII text") from None

    def names(self, name, count):
        s = self.record(name, TYPE_LEN * count).decode("ascii", errors="replace")
        return [s[k : k + TYPE_LEN].strip() for k in range(0, len(s), TYPE_LEN)]


def read_nn(path) -> NNFile:
    """Read an aenet binary `.nn` potential file.

    Raises PotentialFileError naming the file and the first bad record.
    """
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as err:
        raise PotentialFileError(f"cannot read potential file {path}: {err}") from err
    return parse_nn_bytes(data, str(path))


def parse_nn_bytes(data: bytes, source: str = "<bytes>") -> NNFile:
    r = _RecordReader(data, source)
    v = {}
    v["nlayers"] = nl = r.int("nlayers")
    if not 2 <= nl <= 1000:
        raise r.fail(f"nlayers = {nl} is not a plausible layer count")
    for name in ("nnodes_max", "Wsize", "nvalues"):
        v[name] = r.int(name)
    v["nnodes"] = [int(x) for x in r.ints("nnodes", nl)]
    v["f_a"] = [int(x) for x in r.ints("f_a", nl - 1)]
    v["iw"] = [int(x) for x in r.ints("iw", nl)]
    v["iv"] = [int(x) for x in r.ints("iv", nl)]
    v["W"] = r.doubles("W", v["Wsize"])
    v["description"] = r.string("description", DESCRIPTION_LEN)
    v["atomtype"] = r.string("atomtype", TYPE_LEN).strip()
    v["envtypes"] = r.names("envtypes", r.int("nenv"))
    v["Rc_min"] = r.double("Rc_min")
    v["Rc_max"] = r.double("Rc_max")
    v["sftype"] = r.string("sftype", SFTYPE_LEN)
    nsf = r.int("nsf")
    nsfparam = r.int("nsfparam")
    v["sf"] = r.ints("sf", nsf)
    v["sfparam"] = r.doubles("sfparam", nsfparam * nsf).reshape(nsf, nsfparam)
    v["sfenv"] = r.ints("sfenv", 2 * nsf).reshape(nsf, 2)
    v["neval"] = r.int("neval")
    for name in ("sfval_min", "sfval_max", "sfval_avg", "sfval_cov"):
        v[name] = r.doubles(name, nsf)
    v["file"] = r.string("file", FILE_LEN)
    (v["normalized"],) = struct.unpack("<i", r.record("normalized", 4))
    v["scale"] = r.double("scale")
    v["shift"] = r.double("shift")
    ntypes = r.int("nTypes")
    v["typeName"] = r.names("typeName", ntypes)
    v["E_atom"] = r.doubles("E_atom", ntypes)
    v["nAtomsTot"] = r.int("nAtomsTot")
    v["nStrucs"] = r.int("nStrucs")
    v["E_min/E_max/E_av"] = r.doubles("E_min/E_max/E_av", 3)
    if r.pos != len(data):
        raise r.fail(f"{len(data) - r.pos} unexpected bytes after the last record")
    nn = NNFile.from_records(v, source)
    validate_nn(nn)
    return nn


def validate_nn(nn: NNFile) -> None:
    """Check the internal consistency of a potential; raise PotentialFileError."""
    src = nn.source or "potential"

    def bad(msg):
        return PotentialFileError(f"{src}: {msg}")

    if nn.nnodes[-1] != 1:
        raise bad(f"the output layer has {nn.nnodes[-1]} nodes; aenet networks have 1")
    if nn.nnodes[0] != nn.nsf:
        raise bad(
            f"the network has {nn.nnodes[0]} inputs but the descriptor setup has "
            f"{nn.nsf} functions: network and setup do not belong together"
        )
    expected = sum((nn.nnodes[l] + 1) * nn.nnodes[l + 1] for l in range(nn.nlayers - 1))
    if len(nn.weights) != expected:
        raise bad(f"{len(nn.weights)} weights stored, the architecture {nn.nnodes} needs {expected}")
    bad_codes = [a for a in nn.activations if a not in (0, 1, 2, 3, 4)]
    if bad_codes:
        raise bad(f"unknown activation code(s) {bad_codes} (aenet knows 0-4)")
    if nn.atomtype not in nn.envtypes:
        raise bad(f"central species '{nn.atomtype}' is not in its own environment list {nn.envtypes}")
    if nn.scale == 0.0 or not np.isfinite(nn.scale):
        raise bad(f"energy scale {nn.scale} is not usable (must be finite and nonzero)")
    if nn.atomtype not in nn.type_names:
        raise bad(
            f"species '{nn.atomtype}' has no atomic reference energy in the training-set "
            f"record (types {nn.type_names})"
        )
    if nn.is_chebyshev:
        rrc, rn, arc, an = nn.chebyshev_parameters
        nbase = (rn + 1) + (an + 1)
        want = nbase * (2 if len(nn.envtypes) > 1 else 1)
        if nn.nsf != want:
            raise bad(
                f"Chebyshev setup radial_N={rn}, angular_N={an} with {len(nn.envtypes)} "
                f"species needs {want} functions, the file has {nn.nsf}"
            )
        if not (rrc > 0 and arc > 0):
            raise bad(f"Chebyshev cutoffs must be positive (radial {rrc}, angular {arc})")


def nn_to_bytes(nn: NNFile) -> bytes:
    """Serialise `nn` as aenet binary `.nn` bytes (36 Fortran records)."""
    out = bytearray()

    def rec(payload: bytes):
        out.extend(struct.pack("<i", len(payload)))
        out.extend(payload)
        out.extend(struct.pack("<i", len(payload)))

    def i4(*values):
        return np.asarray(values, dtype="<i4").tobytes()

    def f8(values):
        return np.asarray(values, dtype="<f8").reshape(-1).tobytes()

    def text(s, length, what):
        b = s.encode("ascii")
        if len(b) > length:
            raise PotentialFileError(
                f"{what} is {len(b)} characters, the .nn format holds {length}: shorten it"
            )
        return b.ljust(length, b" ")

    def names(seq):
        return b"".join(text(s, TYPE_LEN, f"species name '{s}'") for s in seq)

    rec(i4(len(nn.nnodes)))
    rec(i4(nn.nnodes_max))
    rec(i4(nn.wsize))
    rec(i4(nn.nvalues))
    rec(i4(*nn.nnodes))
    rec(i4(*nn.activations))
    rec(i4(*nn.iw))
    rec(i4(*nn.iv))
    rec(f8(nn.weights))
    rec(text(nn.description, DESCRIPTION_LEN, "description"))
    rec(text(nn.atomtype, TYPE_LEN, "atomtype"))
    rec(i4(len(nn.envtypes)))
    rec(names(nn.envtypes))
    rec(f8(nn.rc_min))
    rec(f8(nn.rc_max))
    rec(text(nn.sftype, SFTYPE_LEN, "sftype"))
    rec(i4(nn.nsf))
    rec(i4(nn.sfparam.shape[1]))
    rec(i4(*np.asarray(nn.sf).reshape(-1)))
    rec(f8(nn.sfparam))  # (nsf, nsfparam) row-major == Fortran sfparam(nsfparam, nsf)
    rec(i4(*np.asarray(nn.sfenv).reshape(-1)))
    rec(i4(nn.neval))
    rec(f8(nn.sfval_min))
    rec(f8(nn.sfval_max))
    rec(f8(nn.sfval_avg))
    rec(f8(nn.sfval_cov))
    rec(text(nn.trainset_file, FILE_LEN, "training-set file name"))
    rec(i4(nn.normalized))
    rec(f8(nn.scale))
    rec(f8(nn.shift))
    rec(i4(len(nn.type_names)))
    rec(names(nn.type_names))
    rec(f8(nn.e_atom))
    rec(i4(nn.natoms_tot))
    rec(i4(nn.nstrucs))
    rec(f8([nn.e_min, nn.e_max, nn.e_av]))
    return bytes(out)


def write_nn(nn: NNFile, path) -> None:
    """Write `nn` as an aenet binary `.nn` file (atomically: temp file + rename)."""
    validate_nn(nn)
    atomic_write_bytes(os.fspath(path), nn_to_bytes(nn))
