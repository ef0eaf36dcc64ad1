"""Batches of structures as one disjoint pair list (for training and
high-throughput evaluation).

The model evaluates centres from a pair list, so a batch is the
concatenation of the structures' pair lists with atom indices offset; the
energy of structure b is the sum of its atoms' energies.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import List, Sequence

import torch
from torch import Tensor

from .neighbors import NeighborList, pair_vectors


@dataclass
class StructureBatch:
    """Concatenated structures. Shapes: N atoms, P pairs, B structures."""

    species: Tensor  # (N,) element index
    structure: Tensor  # (N,) structure index of each atom
    pair_i: Tensor  # (P,) centre (batch atom index)
    pair_j: Tensor  # (P,) neighbour
    vectors: Tensor  # (P, 3) r_j - r_i + shift, Angstrom
    n_structures: int

    def energies(self, atomic_energies: Tensor) -> Tensor:
        """(B,) total energy per structure (eV) from (N,) atomic energies."""
        out = torch.zeros(self.n_structures, dtype=atomic_energies.dtype, device=atomic_energies.device)
        return out.index_add(0, self.structure, atomic_energies)


def make_batch(structures: Sequence, elements: List[str], cutoff: float, *, device="cpu",
               dtype=torch.float64) -> StructureBatch:
    """Build a StructureBatch from ASE Atoms objects (species must be in `elements`)."""
    index = {e: k for k, e in enumerate(elements)}
    nl = NeighborList(cutoff)
    species, owner, pi, pj, vec = [], [], [], [], []
    offset = 0
    for b, atoms in enumerate(structures):
        pos = torch.tensor(atoms.positions, dtype=torch.float64, device=device)
        cell = torch.tensor(atoms.cell.array, dtype=torch.float64, device=device)
        i, j, shifts = nl(pos, cell, torch.tensor(atoms.pbc, device=device))
        vec.append(pair_vectors(pos, cell, i, j, shifts).to(dtype))
        pi.append(i + offset)
        pj.append(j + offset)
        species.append(torch.tensor([index[s] for s in atoms.get_chemical_symbols()], device=device))
        owner.append(torch.full((len(atoms),), b, dtype=torch.int64, device=device))
        offset += len(atoms)
    return StructureBatch(
        species=torch.cat(species), structure=torch.cat(owner), pair_i=torch.cat(pi),
        pair_j=torch.cat(pj), vectors=torch.cat(vec), n_structures=len(structures),
    )
