"""Full neighbour lists with lattice shifts, from vesin-torch (CPU and CUDA).

All images within the cutoff are returned, including periodic images of the
central atom itself, so cells shorter than the cutoff are exact (as aenet).
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import Tensor

#: more pairs than this (about 10 GB of neighbour list) is refused
DEFAULT_MAX_PAIRS = 300_000_000
#: periodic images per direction (either side) beyond which a cell is taken as broken:
#: 100 images of an 8 A cutoff is a height of 0.08 A, far below any real cell (> 1 A)
MAX_IMAGES_PER_DIRECTION = 100


def check_cell_images(cell, pbc, cutoff: float, n_atoms: int, max_pairs: int = DEFAULT_MAX_PAIRS) -> None:
    """Refuse a periodic cell that would need an absurd neighbour list.

    For each periodic direction the cell height (distance between the lattice
    planes of the two other vectors) says how many periodic images the
    cutoff sphere reaches; with the atom density it gives the expected
    number of pairs. A cell height of 1e-3 A with an 8 A cutoff needs 8,000
    images and, for a few hundred atoms, billions of pairs: refused here in
    microseconds, before the neighbour-list code allocates anything.
    Raises StructureError naming the direction and its height.
    """
    from .errors import StructureError

    cell = np.asarray(cell, dtype=float)
    pbc = np.asarray(pbc, dtype=bool)
    periodic = np.flatnonzero(pbc)
    if len(periodic) == 0 or n_atoms == 0:
        return
    heights = {}
    for k in periodic:
        a, b = [cell[m] for m in range(3) if m != k]
        normal = np.cross(a, b)
        if not pbc.all():  # heights within the periodic sub-lattice only
            others = [cell[m] for m in periodic if m != k]
            if len(others) == 0:
                heights[k] = float(np.linalg.norm(cell[k]))
                continue
            if len(others) == 1:
                o = others[0] / np.linalg.norm(others[0])
                heights[k] = float(np.linalg.norm(cell[k] - (cell[k] @ o) * o))
                continue
        heights[k] = float(abs(cell[k] @ normal) / np.linalg.norm(normal))
    images = 1.0
    for k, h in heights.items():
        n = math.ceil(cutoff / h) if h > 0 else math.inf
        if n > MAX_IMAGES_PER_DIRECTION:
            raise StructureError(
                f"the cell height along lattice vector {k + 1} is {h:.3g} A (distance between the lattice planes "
                f"of the other two vectors): with the cutoff {cutoff:g} A a neighbour list would need {n:.3g} "
                f"periodic images on each side in that direction. Check the cell (lengths in Angstrom) or "
                f"switch periodicity off along it")
        images *= 2 * cutoff / h + 1.0  # cell thicknesses the cutoff sphere spans
    # expected pairs: each atom sees the cell's atoms in ~ (2 rc / h + 1) images per periodic direction,
    # capped by the cutoff sphere's share of that slab volume (pi/6 of a cube)
    per_atom = n_atoms * images
    if pbc.all():
        volume = abs(float(np.linalg.det(cell)))
        per_atom = min(per_atom, n_atoms / volume * 4.0 / 3.0 * math.pi * cutoff**3 + n_atoms)
    pairs = n_atoms * per_atom
    if pairs > max_pairs:
        thinnest = min(heights, key=heights.get)
        raise StructureError(
            f"this structure would need about {pairs:.3g} neighbour pairs (more than the limit {max_pairs:.3g}; "
            f"{n_atoms} atoms, cutoff {cutoff:g} A, thinnest cell height {heights[thinnest]:.3g} A along lattice "
            f"vector {thinnest + 1}). Check the cell (lengths in Angstrom); for a really large system raise "
            f"max_pairs")


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
