"""New (untrained) aenet potentials: an `NNFile` from a descriptor setup and
an architecture, with random weights. Training starts from these; tests use
them as small self-contained potentials."""

from __future__ import annotations

from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from ..io.input_files import FingerprintSetup
from ..io.nn_file import ACTIVATION_CODES, NNFile


def new_nn_file(
    setup: FingerprintSetup,
    hidden: Sequence[Tuple[int, str]],
    e_atom: Dict[str, float],
    *,
    scale: float = 1.0,
    shift: float = 0.0,
    feature_avg: Optional[np.ndarray] = None,
    feature_cov: Optional[np.ndarray] = None,
    seed: int = 0,
    weight_scale: float = 1.0,
) -> NNFile:
    """An aenet potential for `setup.atom` with random weights.

    hidden: [(nodes, activation name), ...], e.g. [(15, "tanh"), (15, "tanh")];
        the output layer is one linear node, as train.x writes it.
    e_atom: atomic reference energies (eV) of every species of the training set.
    scale, shift: aenet's energy normalisation (1/eV, eV/atom).
    feature_avg, feature_cov: descriptor mean and mean of squares; default
        0 and 1 (identity input scaling).
    weight_scale: standard deviation factor of the Glorot-style initial weights.
    """
    if setup.basis != "chebyshev":
        raise ValueError(f"only Chebyshev setups are supported, got {setup.basis!r}")
    nsf = setup.n_features
    try:
        codes = [ACTIVATION_CODES[a.lower()] for _, a in hidden] + [0]
    except KeyError as err:
        raise ValueError(f"unknown activation {err.args[0]!r}; use one of {sorted(ACTIVATION_CODES)}") from None
    nnodes = [nsf] + [int(n) for n, _ in hidden] + [1]
    rng = np.random.default_rng(seed)
    flat: List[np.ndarray] = []
    for l in range(len(nnodes) - 1):
        n_in, n_out = nnodes[l], nnodes[l + 1]
        w = rng.normal(0.0, weight_scale * np.sqrt(2.0 / (n_in + n_out)), size=(n_out, n_in))
        b = np.zeros(n_out)
        flat.append(np.concatenate([w, b[:, None]], axis=1).T.reshape(-1))
    sfparam = np.zeros((nsf, 4))
    sfparam[0] = [setup.radial_rc, setup.radial_n, setup.angular_rc, setup.angular_n]
    avg = np.zeros(nsf) if feature_avg is None else np.asarray(feature_avg, dtype=float)
    cov = np.ones(nsf) if feature_cov is None else np.asarray(feature_cov, dtype=float)
    types = list(e_atom)
    return NNFile(
        nnodes=nnodes, activations=codes, weights=np.concatenate(flat),
        description=setup.description, atomtype=setup.atom, envtypes=list(setup.env),
        rc_min=setup.rmin, rc_max=max(setup.radial_rc, setup.angular_rc), sftype="Chebyshev",
        sf=np.zeros(nsf, dtype=np.int64), sfparam=sfparam, sfenv=np.zeros((nsf, 2), dtype=np.int64),
        neval=0, sfval_min=np.zeros(nsf), sfval_max=np.zeros(nsf), sfval_avg=avg, sfval_cov=cov,
        trainset_file="", normalized=1, scale=float(scale), shift=float(shift),
        type_names=types, e_atom=np.array([e_atom[t] for t in types], dtype=float),
        natoms_tot=0, nstrucs=0, e_min=-1.0, e_max=1.0, e_av=0.0,
    )
