"""`NNFile`: the numbers one aenet potential file (`X.nn`) holds.

A plain container (numpy arrays, no torch) with one field per record of the
binary format, in the order of `shared/docs/aenet-formats.md` section 2:
network section (records 1-9), descriptor setup (10-26), training-set info
(27-36). Readers and writers for the binary and the aenet-PyTorch ASCII
format fill and read it; the model builder (`potential.build`) turns it into
torch modules.

Units: cutoffs in Angstrom, energies (`e_atom`, `shift`) in eV, `scale` in
1/eV (aenet's normalised energy is `scale * (E/atom - shift)`).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import List

import numpy as np

#: activation codes stored in `.nn` files and their train.in names
ACTIVATIONS = {0: "linear", 1: "tanh", 2: "sigmoid", 3: "mtanh", 4: "twist"}
ACTIVATION_CODES = {name: code for code, name in ACTIVATIONS.items()}
ACTIVATION_CODES.update({"l": 0, "t": 1, "s": 2, "m": 3, "w": 4})

# Fortran character lengths of the fixed-width string records
DESCRIPTION_LEN = 1024
FILE_LEN = 1024
SFTYPE_LEN = 100
TYPE_LEN = 2


@dataclass
class NNFile:
    """Contents of one aenet `.nn` potential file (one species)."""

    # --- network (records 1-9) ---
    nnodes: List[int]  # nodes per layer, input (= nsf) first, output (1) last
    activations: List[int]  # activation code of layers 2..L
    weights: np.ndarray  # flat W, Fortran layout (see `layer_matrices`)
    # --- descriptor setup (records 10-26) ---
    description: str
    atomtype: str
    envtypes: List[str]
    rc_min: float  # RMIN (Angstrom); sizes aenet's neighbour arrays only
    rc_max: float  # max(radial_Rc, angular_Rc) (Angstrom)
    sftype: str
    sf: np.ndarray  # (nsf,) int, all zero for Chebyshev
    sfparam: np.ndarray  # (nsf, nsfparam) float, Fortran sfparam(nsfparam, nsf)
    sfenv: np.ndarray  # (nsf, 2) int
    neval: int
    sfval_min: np.ndarray
    sfval_max: np.ndarray
    sfval_avg: np.ndarray
    sfval_cov: np.ndarray  # mean of squares
    # --- training-set info (records 27-36) ---
    trainset_file: str
    normalized: int  # raw logical: 0 false; 1 (gfortran) or -1 (ifort) true
    scale: float
    shift: float
    type_names: List[str]
    e_atom: np.ndarray  # (ntypes,) eV, atomic reference energies
    natoms_tot: int
    nstrucs: int
    e_min: float
    e_max: float
    e_av: float
    # bookkeeping records as stored (kept so a rewrite is byte-identical)
    nnodes_max: int = -1
    wsize: int = -1
    nvalues: int = -1
    iw: List[int] = field(default_factory=list)
    iv: List[int] = field(default_factory=list)
    source: str = ""  # where it was read from, for error messages

    def __post_init__(self):
        # fill derived bookkeeping when the caller did not give it
        iw, iv, nvalues = network_offsets(self.nnodes)
        if not self.iw:
            self.iw = iw
        if not self.iv:
            self.iv = iv
        if self.nvalues < 0:
            self.nvalues = nvalues
        if self.wsize < 0:
            self.wsize = iw[-1]
        if self.nnodes_max < 0:
            self.nnodes_max = max(self.nnodes)

    @classmethod
    def from_records(cls, v: dict, source: str = "") -> "NNFile":
        """NNFile from the record values of either file format, named as in
        the format description (counts such as nlayers, nenv, nsf, nTypes are
        implied by the arrays and dropped)."""
        _check_finite_records(v, source)
        e_min, e_max, e_av = (float(x) for x in v["E_min/E_max/E_av"])
        return cls(
            nnodes=list(v["nnodes"]), activations=list(v["f_a"]), weights=v["W"],
            description=v["description"], atomtype=v["atomtype"], envtypes=v["envtypes"],
            rc_min=v["Rc_min"], rc_max=v["Rc_max"], sftype=v["sftype"], sf=v["sf"],
            sfparam=v["sfparam"], sfenv=v["sfenv"], neval=v["neval"], sfval_min=v["sfval_min"],
            sfval_max=v["sfval_max"], sfval_avg=v["sfval_avg"], sfval_cov=v["sfval_cov"],
            trainset_file=v["file"], normalized=v["normalized"], scale=v["scale"],
            shift=v["shift"], type_names=v["typeName"], e_atom=v["E_atom"],
            natoms_tot=v["nAtomsTot"], nstrucs=v["nStrucs"], e_min=e_min, e_max=e_max,
            e_av=e_av, nnodes_max=v["nnodes_max"], wsize=v["Wsize"], nvalues=v["nvalues"],
            iw=list(v["iw"]), iv=list(v["iv"]), source=source,
        )

    # ---- derived views ----
    @property
    def nsf(self) -> int:
        return len(self.sfval_avg)

    @property
    def nlayers(self) -> int:
        return len(self.nnodes)

    @property
    def is_chebyshev(self) -> bool:
        return self.sftype.strip().lower() == "chebyshev"

    @property
    def chebyshev_parameters(self):
        """(radial_Rc [A], radial_N, angular_Rc [A], angular_N) of a Chebyshev setup."""
        p = self.sfparam[0]
        return float(p[0]), int(round(p[1])), float(p[2]), int(round(p[3]))

    def e_atom_of(self, symbol: str) -> float:
        """Atomic reference energy (eV) of `symbol` from the training-set record."""
        return float(self.e_atom[self.type_names.index(symbol)])

    def layer_matrices(self):
        """List of (weight (n_out, n_in), bias (n_out,)) per connection block."""
        out = []
        for l in range(self.nlayers - 1):
            n_in, n_out = self.nnodes[l], self.nnodes[l + 1]
            block = self.weights[self.iw[l] : self.iw[l + 1]]
            m = block.reshape(n_in + 1, n_out).T  # Fortran M(n_out, n_in+1)
            out.append((m[:, :n_in].copy(), m[:, n_in].copy()))
        return out

    def with_layer_matrices(self, matrices) -> "NNFile":
        """Copy of this file with the network weights replaced by `matrices`
        (list of (weight (n_out, n_in), bias (n_out,)), same architecture)."""
        flat = []
        for (w, b), l in zip(matrices, range(self.nlayers - 1)):
            w = np.asarray(w, dtype=np.float64)
            b = np.asarray(b, dtype=np.float64)
            if w.shape != (self.nnodes[l + 1], self.nnodes[l]):
                raise ValueError(
                    f"layer {l}: weight shape {w.shape} does not match the "
                    f"architecture {self.nnodes}"
                )
            m = np.concatenate([w, b[:, None]], axis=1)  # (n_out, n_in+1)
            flat.append(m.T.reshape(-1))
        return replace(self, weights=np.concatenate(flat))


#: real-valued records; a NaN or infinity in any of them makes every energy NaN
FLOAT_RECORDS = ("W", "Rc_min", "Rc_max", "sfparam", "sfval_min", "sfval_max", "sfval_avg", "sfval_cov",
                 "scale", "shift", "E_atom", "E_min/E_max/E_av")


def _check_finite_records(v: dict, source: str) -> None:
    from ..errors import PotentialFileError

    for name in FLOAT_RECORDS:
        values = np.asarray(v[name], dtype=float)
        if not np.all(np.isfinite(values)):
            k = int(np.flatnonzero(~np.isfinite(values.reshape(-1)))[0])
            raise PotentialFileError(
                f"{source or 'potential file'}: record {name} holds a non-finite number "
                f"({values.reshape(-1)[k]} at position {k + 1}); the file is damaged or the training diverged")


def network_offsets(nnodes):
    """aenet's iw, iv (0-based, one per layer) and nvalues for `nnodes`."""
    iw, iv = [0], [0]
    for l in range(len(nnodes) - 1):
        iw.append(iw[-1] + (nnodes[l] + 1) * nnodes[l + 1])
        iv.append(iv[-1] + nnodes[l] + 1)
    nvalues = iv[-1] + nnodes[-1]
    return iw, iv, nvalues


def typespin_weights(n: int):
    """aenet's integer type weights for `n` environment species (spec 1.4).

    Start at -(n div 2), step +1, skip 0 when n is even.
    """
    s0 = -(n // 2)
    weights = []
    w = s0
    while len(weights) < n:
        if not (n % 2 == 0 and w == 0):
            weights.append(float(w))
        w += 1
    return weights
