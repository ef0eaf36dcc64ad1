"""One species' atomic network, with aenet's input and output scaling.

    g   = (G - sfval_avg) * feature_scale         (spec 1.5)
    y   = MLP(g)                                   (spec 1.6, aenet activations)
    E_i = y * energy_scale + energy_shift + e_atom (spec 1.7; eV)

`energy_scale` is 1/scale of the `.nn` file (eV per normalised unit).
"""

from __future__ import annotations

from typing import List

import torch
from torch import Tensor, nn

# aenet's scaled tanh: 1.7159 tanh(0.666666666666667 z) -- that literal, not
# exactly 2/3. Written inline below because TorchScript cannot read globals.


def activate(z: Tensor, code: int) -> Tensor:
    """aenet activation by code: 0 linear, 1 tanh, 2 sigmoid, 3 mtanh, 4 twist."""
    if code == 1:
        return torch.tanh(z)
    if code == 2:
        return torch.sigmoid(z)
    if code == 3:
        return 1.7159 * torch.tanh(0.666666666666667 * z)
    if code == 4:
        return 1.7159 * torch.tanh(0.666666666666667 * z) + 0.1 * z
    return z


class AtomicNetwork(nn.Module):
    """Feed-forward net of one species, mapping raw descriptors to atomic energies.

    Args:
        nnodes: nodes per layer, input (n_features) first, 1 last.
        activations: aenet activation code for each layer after the input.
        feature_shift, feature_scale: (n_features,) input normalisation.
        energy_scale, energy_shift: eV per network unit and eV offset.
        e_atom: atomic reference energy of this species (eV).
    """

    def __init__(
        self,
        nnodes: List[int],
        activations: List[int],
        feature_shift: Tensor,
        feature_scale: Tensor,
        energy_scale: float,
        energy_shift: float,
        e_atom: float,
    ):
        super().__init__()
        if len(activations) != len(nnodes) - 1:
            raise ValueError("one activation per layer after the input is needed")
        self.layers = nn.ModuleList(
            [nn.Linear(nnodes[l], nnodes[l + 1], dtype=torch.float64) for l in range(len(nnodes) - 1)]
        )
        self.activations: List[int] = [int(a) for a in activations]
        self.register_buffer("feature_shift", feature_shift.clone().to(torch.float64))
        self.register_buffer("feature_scale", feature_scale.clone().to(torch.float64))
        self.register_buffer("energy_scale", torch.tensor(float(energy_scale), dtype=torch.float64))
        self.register_buffer("energy_shift", torch.tensor(float(energy_shift), dtype=torch.float64))
        self.register_buffer("e_atom", torch.tensor(float(e_atom), dtype=torch.float64))

    def normalized(self, features: Tensor) -> Tensor:
        """features: (M, n_features) raw descriptors -> (M,) network outputs y
        (aenet's normalised energy; training compares these, so that large
        E_atom never meet float32 round-off)."""
        h = (features - self.feature_shift) * self.feature_scale
        for k, layer in enumerate(self.layers):
            h = activate(layer(h), self.activations[k])
        return h.squeeze(1)

    def forward(self, features: Tensor) -> Tensor:
        """features: (M, n_features) raw descriptors -> (M,) atomic energies in eV."""
        return self.normalized(features) * self.energy_scale + self.energy_shift + self.e_atom
