"""Full neighbour lists with lattice shifts: on the CPU, fully periodic cells
and clusters of 64 atoms or more from the compiled cell list (`cell_list`:
1.4-3x faster than vesin's half list mirrored, and less memory), everything
else from vesin-torch (CPU and CUDA).

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


def cell_heights(cell) -> np.ndarray:
    """Distances (A) between the lattice planes of a full-rank cell, one per
    lattice vector k: the planes spanned by the two other vectors, 1 / |b_k|
    with b_k the columns of cell^-1 (one small inverse)."""
    return 1.0 / np.linalg.norm(np.linalg.inv(np.asarray(cell, dtype=float)), axis=0)


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
    if pbc.all() and abs(np.linalg.det(cell)) > 0:
        heights = dict(enumerate(cell_heights(cell)))
    for k in periodic if not heights else ():
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
        per_atom = min(per_atom, n_atoms / volume * 4.0 / 3.0 * math.pi * cutoff**3 + 1.0)
    pairs = n_atoms * per_atom
    if pairs > max_pairs:
        thinnest = min(heights, key=heights.get)
        raise StructureError(
            f"this structure would need about {pairs:.3g} neighbour pairs (more than the limit {max_pairs:.3g}; "
            f"{n_atoms} atoms, cutoff {cutoff:g} A, thinnest cell height {heights[thinnest]:.3g} A along lattice "
            f"vector {thinnest + 1}). Check the cell (lengths in Angstrom); for a really large system raise "
            f"max_pairs")


class NeighborList:
    """Pairs (i, j, shift) with |r_j + shift . cell - r_i| < cutoff, sorted by i.

    With `skin` > 0 (Angstrom) the list is built for cutoff + skin and reused
    while that is exact (Verlet list): `pairs` then recomputes the pair
    vectors of the stored list and keeps those inside the cutoff. It is
    rebuilt when the atom count, atomic numbers or pbc change, or when

        2 max_i |d_i| + eta (cutoff + skin) > skin,

    with d_i the displacement of atom i since the build measured in
    fractional coordinates (x = u C: a homogeneous deformation of the cell,
    as fix deform or a barostat applies, moves no atom) and eta the
    Frobenius norm of C0^-1 (C - C0), a bound on the relative change of
    the cell (its spectral norm). Then
    no pair can have entered the cutoff from beyond cutoff + skin, so the
    reused list gives exactly the pairs of a fresh one. Without a full-rank
    cell, displacements are Cartesian and any change of the cell rebuilds.

    Args:
        cutoff: Angstrom.
        skin: Angstrom; 0 builds a new list at every call.
    """

    def __init__(self, cutoff: float, skin: float = 0.0):
        import vesin_torch

        self.cutoff = float(cutoff)
        self.skin = float(skin)
        if self.skin < 0:
            raise ValueError(f"skin must not be negative, got {skin}")
        self._vesin = vesin_torch
        self._nl = {}
        self._saved = None
        self.builds = 0  # number of lists built (for tests and benchmarks)

    def _build(self, positions: Tensor, cell: Tensor, pbc: Tensor, cutoff: float):
        if positions.shape[0] == 0:
            empty = torch.zeros(0, dtype=torch.int64, device=positions.device)
            return empty, empty, torch.zeros(0, 3, dtype=torch.int32, device=positions.device)
        if not bool(pbc.any()):
            # vesin wants a box only for periodic directions; keep it out of the way
            cell = torch.zeros_like(cell)
        from . import cell_list
        from .potential import compiled_kernels

        if cell_list.serves(positions, cell, pbc, cutoff):
            i, j, shifts = cell_list.neighbor_list(positions, cell, cutoff, periodic=bool(pbc.all()))
            self.builds += 1
            return i, j, shifts
        threads = max(1, compiled_kernels._policy_threads[0] or torch.get_num_threads())
        # on the CPU, vesin's half list mirrored by a compiled kernel: vesin's
        # working memory while it builds a full list is ~2x the list itself
        # (the peak of a whole calculator call at 8,192 atoms)
        half = compiled_kernels.usable(positions)
        key = (cutoff, threads, half)
        if key not in self._nl:
            self._nl[key] = self._vesin.NeighborList(cutoff=cutoff, full_list=not half, sorted=not half,
                                                     n_threads=threads)
        i, j, shifts = self._nl[key].compute(points=positions, box=cell, periodic=pbc, quantities="ijS")
        self.builds += 1
        if half:
            return compiled_kernels.full_list_from_half(positions.shape[0], i, j, shifts)
        # shifts stay in vesin's int32 (12 bytes a pair instead of 24: a third of the list's memory)
        return i.to(torch.int64), j.to(torch.int64), shifts.to(torch.int32)

    def __call__(self, positions: Tensor, cell: Tensor, pbc: Tensor):
        """positions (N, 3), cell (3, 3) rows = lattice vectors, pbc (3,) bool;
        float64 tensors on any device. Returns i, j (P,) int64 (sorted by i)
        and shifts (P, 3) int32 lattice translations of j."""
        i, j, shifts, _ = self.pairs(positions, cell, pbc)
        return i, j, shifts

    def pairs(self, positions: Tensor, cell: Tensor, pbc: Tensor, numbers: Tensor | None = None,
              dtype: torch.dtype = torch.float64, within_cutoff: bool = True, with_vectors: bool = True):
        """(i, j, shifts, vectors) of the pairs inside the cutoff; vectors
        (P, 3) = r_j - r_i + shifts . cell in `dtype`. `numbers` (atomic
        numbers or species) only tells the list when to rebuild.
        within_cutoff=False returns the whole (cutoff + skin) list, for
        consumers that ignore pairs beyond the cutoff themselves (the
        descriptor does): it saves a compaction per call; with it,
        with_vectors=False returns None for the vectors (for consumers that make
        them from positions and shifts themselves)."""
        positions = positions.to(torch.float64)
        cell = cell.to(torch.float64)
        pbc = pbc.to(device=positions.device, dtype=torch.bool)
        if self.skin <= 0.0:
            i, j, shifts = self._build(positions, cell, pbc, self.cutoff)
            v = pair_vectors(positions, cell, i, j, shifts).to(dtype) if with_vectors or within_cutoff else None
            return i, j, shifts, v
        if not self._reusable(positions, cell, pbc, numbers):
            self._saved = None  # the old list goes before the new one is built (peak memory)
            i, j, shifts = self._build(positions, cell, pbc, self.cutoff + self.skin)
            full_rank = bool(pbc.any()) and abs(float(torch.linalg.det(cell))) > 0
            c = _numpy(cell)
            self._saved = {
                "i": i, "j": j, "shifts": shifts, "pbc": pbc.clone(),
                "numbers": None if numbers is None else numbers.clone(), "full_rank": full_rank,
                "frac": self._frame(_numpy(positions), c, full_rank),
                "host_cell": c.copy(), "cell_inverse": np.linalg.inv(c) if full_rank else None,
            }
        s = self._saved
        from .potential import compiled_kernels

        if not within_cutoff:
            v = pair_vectors(positions, cell, s["i"], s["j"], s["shifts"]).to(dtype) if with_vectors else None
            return s["i"], s["j"], s["shifts"], v
        if compiled_kernels.usable(positions):
            i, j, shifts, vectors = compiled_kernels.pairs_within(positions, cell, s["i"], s["j"], s["shifts"],
                                                                  self.cutoff)
            return i, j, shifts, vectors.to(dtype)
        vectors = pair_vectors(positions, cell, s["i"], s["j"], s["shifts"])
        inside = (vectors * vectors).sum(1) < self.cutoff * self.cutoff
        keep = inside.nonzero().squeeze(1)
        return s["i"][keep], s["j"][keep], s["shifts"][keep], vectors[keep].to(dtype)

    @staticmethod
    def _frame(positions: np.ndarray, cell: np.ndarray, full_rank: bool) -> np.ndarray:
        """Fractional coordinates (full-rank cell) or positions."""
        return np.linalg.solve(cell.T, positions.T).T if full_rank else positions.copy()

    def _reusable(self, positions: Tensor, cell: Tensor, pbc: Tensor, numbers) -> bool:
        s = self._saved
        if s is None or positions.shape[0] != s["frac"].shape[0] or not torch.equal(pbc, s["pbc"]):
            return False
        if numbers is not None and (s["numbers"] is None or not torch.equal(numbers, s["numbers"])):
            return False
        # the criterion in numpy on the host: a dozen small operations, which cost ~0.35 ms a call as
        # torch operations (5 % of an MD step at 1,024 atoms) and ~0.05 ms in numpy
        x, c = _numpy(positions), _numpy(cell)
        if s["full_rank"]:
            # eta bounds the largest relative length change of any vector under r -> r C0^-1 C: the
            # Frobenius norm is at least the spectral norm (an SVD: 5x the time), so the bound is safe
            # and rebuilds at most a little early
            eta = float(np.linalg.norm(s["cell_inverse"] @ (c - s["host_cell"])))
            # displacement from the build positions carried along by the cell's deformation,
            # (u - u0) C with u = x C^-1, i.e. x - u0 C (no solve per call)
            d = x - s["frac"] @ c
        else:
            if bool(pbc.any()) and not np.array_equal(c, s["host_cell"]):
                return False
            eta = 0.0
            d = x - s["frac"]
        if d.size == 0:
            return True
        largest = math.sqrt(float(np.einsum("ij,ij->i", d, d).max()))
        return 2.0 * largest + eta * (self.cutoff + self.skin) <= self.skin


def _numpy(t: Tensor) -> np.ndarray:
    """A float64 tensor's values as a host array (no copy on the CPU)."""
    return t.detach().cpu().numpy()


def pair_vectors(positions: Tensor, cell: Tensor, i: Tensor, j: Tensor, shifts: Tensor) -> Tensor:
    """(P, 3) r_j - r_i + shifts @ cell, in the dtype of `positions`."""
    from .potential import compiled_kernels

    if positions.dtype == torch.float64 and compiled_kernels.usable(positions) and i.numel() > 4096 \
            and not (positions.requires_grad or cell.requires_grad):
        return compiled_kernels.pair_vectors(positions, cell, i, j, shifts)
    return positions[j] - positions[i] + shifts.to(positions.dtype) @ cell.to(positions.dtype)
