"""Build an `AenetModel` from aenet `.nn` contents, and write it back.

`build_model` checks that the species files fit together (each file's
central species, Chebyshev basis, environments that cover every species)
and groups species that share a descriptor setup. `model_to_nn_files`
returns the `.nn` contents with the model's current network weights, so a
model that was loaded and not changed writes back the same bytes.
"""

from __future__ import annotations

import warnings
from dataclasses import replace
from typing import Dict, List

import numpy as np
import torch

from ..errors import PotentialFileError, SpeciesError
from ..io.nn_file import NNFile, typespin_weights
from .descriptor import ChebyshevDescriptor
from .model import AenetModel
from .network import AtomicNetwork

ANGULAR_CONVENTIONS = ("2.0.4", "legacy")


def feature_scaling(nn: NNFile):
    """(shift, scale) of the network inputs (spec 1.5); scale 0 where sigma <= 1e-10."""
    avg = np.asarray(nn.sfval_avg, dtype=np.float64)
    var = np.asarray(nn.sfval_cov, dtype=np.float64) - avg**2
    sigma = np.sqrt(np.clip(var, 0.0, None))
    scale = np.zeros_like(sigma)
    usable = sigma > 1e-10
    scale[usable] = 1.0 / sigma[usable]
    return avg, scale


def guess_angular_convention(nn: NNFile):
    """'legacy', '2.0.4' or None (undecided), from the stored feature means.

    rho = <T_1>/<T_0> of the angular block is a mean of x: a cosine (|rho| <= 1)
    for aenet >= 2.0.4, and near -1.0 to -1.1 for the legacy mapping whose x
    lies in [-1.64, -0.36] (spec 1.9). A heuristic, not a stored flag.
    """
    if not nn.is_chebyshev:
        return None
    _, rn, _, an = nn.chebyshev_parameters
    a0 = rn + 1
    if an < 2 or a0 + 2 >= nn.nsf:
        return None
    t0, t1, t2 = nn.sfval_avg[a0], nn.sfval_avg[a0 + 1], nn.sfval_avg[a0 + 2]
    if not t0 > 1e-12:
        return None
    rho, rho2 = t1 / t0, t2 / t0
    if rho < -1.0 - 1e-6 or rho2 > 1.0 + 1e-6:
        return "legacy"
    return "2.0.4"


def check_compatible(nn_files: Dict[str, NNFile]) -> List[str]:
    """Validate a set of species files; return the element order of the model.

    Elements are ordered as in the environment list of the file of the
    alphabetically first symbol (the order never depends on dict order).
    """
    if not nn_files:
        raise SpeciesError("no species files given: pass e.g. {'Li': 'Li.nn', 'Si': 'Si.nn'}")
    symbols = sorted(nn_files)
    for sym in symbols:
        nn = nn_files[sym]
        src = nn.source or f"potential for {sym}"
        if nn.atomtype != sym:
            raise SpeciesError(
                f"{src}: file is the potential of '{nn.atomtype}', but was given for '{sym}'"
            )
        if not nn.is_chebyshev:
            raise PotentialFileError(
                f"{src}: descriptor basis '{nn.sftype}' is not supported yet; only "
                f"Chebyshev setups (BASIS type=Chebyshev) can be evaluated"
            )
        missing = [s for s in symbols if s not in nn.envtypes]
        if missing:
            raise SpeciesError(
                f"{src}: species {missing} are not in this setup's environment "
                f"{nn.envtypes}; the potential cannot describe {sym} atoms next to them. "
                f"Use species files trained together (same ENV list)"
            )
    ref_env = nn_files[symbols[0]].envtypes
    return sorted(symbols, key=ref_env.index)


def build_model(nn_files: Dict[str, NNFile], angular: str = "2.0.4", warn: bool = True) -> AenetModel:
    """AenetModel (float64, CPU) of the given species files.

    angular: '2.0.4' (x = cos theta, aenet >= 2.0.4, default) or 'legacy'
        (x = 2 cos(theta)/pi - 1, potentials trained with older aenet).
    warn: warn when the stored statistics suggest the other convention.
    """
    if angular not in ANGULAR_CONVENTIONS:
        raise ValueError(f"angular must be one of {ANGULAR_CONVENTIONS}, got {angular!r}")
    elements = check_compatible(nn_files)
    setups: List[tuple] = []
    descriptors: List[ChebyshevDescriptor] = []
    descriptor_of_element: List[int] = []
    networks: List[AtomicNetwork] = []
    for sym in elements:
        nn = nn_files[sym]
        rrc, rn, arc, an = nn.chebyshev_parameters
        key = (rrc, rn, arc, an, tuple(nn.envtypes))
        if key not in setups:
            setups.append(key)
            spins = typespin_weights(len(nn.envtypes))
            weights = [spins[nn.envtypes.index(e)] for e in elements]
            try:
                descriptors.append(
                    ChebyshevDescriptor(rrc, rn, arc, an, weights, len(nn.envtypes) > 1, angular == "legacy")
                )
            except ValueError as err:
                raise PotentialFileError(f"{nn.source or sym}: {err}") from None
        descriptor_of_element.append(setups.index(key))
        if warn:
            guess = guess_angular_convention(nn)
            if guess is not None and guess != angular:
                warnings.warn(
                    f"{nn.source or sym}: the stored descriptor statistics look like the "
                    f"'{guess}' angular convention, but angular='{angular}' was asked for. "
                    f"Potentials trained with aenet < 2.0.4 need angular='legacy' "
                    f"(see the aenet format notes, section 1.9).",
                    stacklevel=3,
                )
        shift, scale = feature_scaling(nn)
        net = AtomicNetwork(
            nn.nnodes, nn.activations, torch.from_numpy(shift), torch.from_numpy(scale),
            energy_scale=1.0 / nn.scale, energy_shift=nn.shift, e_atom=nn.e_atom_of(sym),
        )
        with torch.no_grad():
            for layer, (w, b) in zip(net.layers, nn.layer_matrices()):
                layer.weight.copy_(torch.from_numpy(w))
                layer.bias.copy_(torch.from_numpy(b))
        networks.append(net)
    return AenetModel(elements, descriptors, descriptor_of_element, networks)


def model_to_nn_files(model, templates: Dict[str, NNFile]) -> Dict[str, NNFile]:
    """The `.nn` contents of `model`: `templates` with the model's weights.

    Works for eager models and for loaded TorchScript models alike.
    """
    out = {}
    for s, sym in enumerate(model.elements):
        net = list(model.networks.children())[s]  # ScriptModule lists cannot be indexed
        matrices = [
            (layer.weight.detach().cpu().double().numpy(), layer.bias.detach().cpu().double().numpy())
            for layer in net.layers.children()
        ]
        out[sym] = replace(templates[sym].with_layer_matrices(matrices), source="")
    return out
