"""`AenetModel`: pair list -> atomic energies for a set of elements.

TorchANI-style split: descriptor modules (one per distinct Chebyshev setup,
usually one shared by all species), one `AtomicNetwork` per element. The
model knows nothing of ASE, cells or neighbour lists: it takes centre
species and pair vectors, so a batch of structures is just a disjoint union
of pair lists, and a large structure can be evaluated in chunks of centres.
TorchScript-able (`torch.jit.script(model)`).
"""

from __future__ import annotations

from typing import List

import torch
from torch import Tensor, nn

from .descriptor import ChebyshevDescriptor
from .network import AtomicNetwork


class AenetModel(nn.Module):
    """Atomic energies of aenet potentials.

    Args:
        elements: element symbols; species index k means elements[k].
        descriptors: distinct descriptor setups.
        descriptor_of_element: index into `descriptors` for each element.
        networks: one AtomicNetwork per element (same order as `elements`).
    """

    def __init__(
        self,
        elements: List[str],
        descriptors: List[ChebyshevDescriptor],
        descriptor_of_element: List[int],
        networks: List[AtomicNetwork],
    ):
        super().__init__()
        if not (len(elements) == len(networks) == len(descriptor_of_element)):
            raise ValueError("elements, networks and descriptor_of_element must have equal length")
        self.elements: List[str] = list(elements)
        self.descriptors = nn.ModuleList(descriptors)
        self.networks = nn.ModuleList(networks)
        self.descriptor_of_element: List[int] = [int(k) for k in descriptor_of_element]
        self.cutoff: float = max(max(d.radial_cutoff, d.angular_cutoff) for d in descriptors)

    def features(
        self, center_species: Tensor, pair_center: Tensor, neighbor_species: Tensor, vectors: Tensor
    ) -> List[Tensor]:
        """Raw descriptors of every centre, one (M, n_features) tensor per setup.

        A centre whose element uses another setup gets a row it never reads.
        """
        n = center_species.shape[0]
        out: List[Tensor] = []
        if len(self.descriptors) == 1:
            for descriptor in self.descriptors:
                out.append(descriptor(n, pair_center, neighbor_species, vectors))
            return out
        setup_of_element = torch.tensor(self.descriptor_of_element, device=center_species.device)
        pair_setup = setup_of_element[center_species[pair_center]]
        for d, descriptor in enumerate(self.descriptors):
            sel = (pair_setup == d).nonzero().squeeze(1)
            out.append(descriptor(n, pair_center[sel], neighbor_species[sel], vectors[sel]))
        return out

    def energies_from_features(self, center_species: Tensor, features: List[Tensor]) -> Tensor:
        """(M,) atomic energies in eV from the per-setup descriptors."""
        n = center_species.shape[0]
        energies = torch.zeros(n, dtype=features[0].dtype, device=features[0].device)
        for s, network in enumerate(self.networks):
            atoms = (center_species == s).nonzero().squeeze(1)
            if atoms.numel() > 0:
                feats = features[self.descriptor_of_element[s]][atoms]
                energies = energies.index_copy(0, atoms, network(feats))
        return energies

    def forward(
        self, center_species: Tensor, pair_center: Tensor, neighbor_species: Tensor, vectors: Tensor
    ) -> Tensor:
        """Atomic energies (eV).

        center_species: (M,) int64 element index of each central atom
        pair_center: (P,) int64 centre (0..M-1) of each pair
        neighbor_species: (P,) int64 element index of each pair's neighbour
        vectors: (P, 3) r_neighbour - r_centre in Angstrom (images included)
        Returns (M,) energies including the atomic reference energies.
        """
        feats = self.features(center_species, pair_center, neighbor_species, vectors)
        return self.energies_from_features(center_species, feats)
