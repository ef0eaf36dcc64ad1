"""Full neighbour lists with lattice shifts, from vesin-torch (CPU and CUDA).

All images within the cutoff are returned, including periodic images of the
central atom itself, so cells shorter than the cutoff are exact (as aenet).
"""

from __future__ import annotations

import torch
from torch import Tensor


class NeighborList:
    """Pairs (i, j, shift) with |r_j + shift . cell - r_i| < cutoff.

    Args:
        cutoff: Angstrom.
    """

    def __init__(self, cutoff: float):
        import vesin_torch

        self.cutoff = float(cutoff)
        self._nl = vesin_torch.NeighborList(cutoff=self.cutoff, full_list=True, sorted=False)

    def __call__(self, positions: Tensor, cell: Tensor, pbc: Tensor):
        """positions (N, 3), cell (3, 3) rows = lattice vectors, pbc (3,) bool;
        float64 tensors on any device. Returns i, j (P,) int64 (in no particular
        order) and shifts (P, 3) int64 lattice translations of j."""
        positions = positions.to(torch.float64)
        cell = cell.to(torch.float64)
        pbc = pbc.to(device=positions.device, dtype=torch.bool)
        if positions.shape[0] == 0:
            empty = torch.zeros(0, dtype=torch.int64, device=positions.device)
            return empty, empty, torch.zeros(0, 3, dtype=torch.int64, device=positions.device)
        if not bool(pbc.any()):
            # vesin wants a box only for periodic directions; keep it out of the way
            cell = torch.zeros_like(cell)
        i, j, shifts = self._nl.compute(points=positions, box=cell, periodic=pbc, quantities="ijS")
        return i.to(torch.int64), j.to(torch.int64), shifts.to(torch.int64)


def pair_vectors(positions: Tensor, cell: Tensor, i: Tensor, j: Tensor, shifts: Tensor) -> Tensor:
    """(P, 3) r_j - r_i + shifts @ cell, in the dtype of `positions`."""
    return positions[j] - positions[i] + shifts.to(positions.dtype) @ cell.to(positions.dtype)
