"""Energies, forces and virials of one structure from a pair list.

The model sees only pair vectors v_p = r_j - r_i + shift_p, so with
g_p = dE/dv_p (one backward pass):

    F_i   = sum_{p: i(p)=i} g_p - sum_{p: j(p)=i} g_p
    W     = sum_p v_p (x) g_p            (virial; stress = W / V, ASE sign:
                                          positive in tension)
    W_i   = 1/2 sum_{p touching i} v_p (x) g_p   (per-atom; sums to W)

This equals the strain derivative dE/d(eps) of a homogeneous deformation of
cell and positions, and covers periodic self-images. Work is chunked over
central atoms so that memory stays bounded for large structures: the energy
is a sum over centres, so per-chunk gradients add up exactly.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import torch
from torch import Tensor

from . import compiled_kernels


#: pairs per chunk of the torch path: keeps each (orders x pairs) work tensor
#: below glibc's 32 MB mmap limit (see _allocator) and the whole step's memory
#: bounded (the compiled path needs no chunks: it makes no per-pair arrays)
DEFAULT_CHUNK_PAIRS = 131_072


@dataclass
class Evaluation:
    energies: Tensor  # (N,) eV, detached
    forces: Optional[Tensor] = None  # (N, 3) eV/A
    virial: Optional[Tensor] = None  # (3, 3) eV, sum_p v (x) dE/dv
    atomic_virials: Optional[Tensor] = None  # (N, 3, 3) eV

    @property
    def energy(self) -> float:
        return float(self.energies.sum())


def chunk_bounds(pair_i: Tensor, n_atoms: int, chunk_pairs: int):
    """Contiguous centre ranges [(a, b, pair_start, pair_end)] with about
    `chunk_pairs` pairs each; `pair_i` must be sorted when there is more
    than one chunk."""
    n_pairs = pair_i.numel()
    if n_pairs <= chunk_pairs:
        return [(0, n_atoms, 0, n_pairs)]
    counts = torch.bincount(pair_i, minlength=n_atoms).cpu()
    ends = torch.cumsum(counts, 0)
    bounds = []
    a, start = 0, 0
    while a < n_atoms:
        # last centre whose pairs still fit (at least one centre per chunk)
        limit = start + chunk_pairs
        b = int(torch.searchsorted(ends, torch.tensor(limit), right=True))
        b = min(max(b, a + 1), n_atoms)
        end = int(ends[b - 1])
        bounds.append((a, b, start, end))
        a, start = b, end
    return bounds


def evaluate(
    model,
    species: Tensor,
    pair_i: Tensor,
    pair_j: Tensor,
    vectors: Optional[Tensor],
    *,
    forces: bool = True,
    virial: bool = True,
    atomic_virials: bool = False,
    chunk_pairs: Optional[int] = None,
    geometry: Optional[tuple] = None,
    dtype: Optional[torch.dtype] = None,
) -> Evaluation:
    """Evaluate `model` on one structure (or a disjoint union of structures).

    species: (N,) int64 element indices; pair_i, pair_j: (P,) int64, a full
    list (each pair in both directions, any order); vectors: (P, 3) in the
    model's dtype, r_j - r_i + lattice shift (Angstrom); or None with
    geometry = (positions (N, 3), cell (3, 3), shifts (P, 3)) and `dtype`:
    the vectors r_j - r_i + shifts . cell are then made only where needed
    (the compiled kernels compute them on the fly). chunk_pairs: pairs per
    chunk of centres of the torch path.
    """
    need_grad = forces or virial or atomic_virials
    if compiled_kernels.usable(species) and compiled_kernels.serves(model):
        # the whole structure at once: no (pairs x orders) or per-pair gradient arrays, memory stays bounded
        e, f, w, wa = compiled_kernels.evaluate_model(model, species, pair_i, pair_j, vectors, geometry=geometry,
                                                      dtype=dtype, gradients=need_grad,
                                                      atomic_virials=atomic_virials)
        return Evaluation(energies=e, forces=f if forces else None, virial=w if virial else None,
                          atomic_virials=wa)
    if vectors is None:
        positions, cell, shifts = geometry
        vectors = (positions[pair_j] - positions[pair_i] + shifts.to(positions.dtype) @ cell).to(dtype)
    if chunk_pairs is None:
        chunk_pairs = DEFAULT_CHUNK_PAIRS
    if pair_i.numel() > chunk_pairs and not bool((pair_i[1:] >= pair_i[:-1]).all()):
        # chunks are contiguous ranges of centres (neighbour lists come sorted by centre)
        order = torch.argsort(pair_i, stable=True)
        pair_i, pair_j, vectors = pair_i[order], pair_j[order], vectors[order]
    n = species.shape[0]
    dtype, device = vectors.dtype, vectors.device
    energies = torch.empty(n, dtype=dtype, device=device)
    f = torch.zeros(n, 3, dtype=dtype, device=device) if forces else None
    w = torch.zeros(3, 3, dtype=dtype, device=device) if virial else None
    wa = torch.zeros(n, 3, 3, dtype=dtype, device=device) if atomic_virials else None
    neighbor_species = species[pair_j]
    for a, b, p0, p1 in chunk_bounds(pair_i, n, chunk_pairs):
        v = vectors[p0:p1]
        ci = pair_i[p0:p1]
        cj = pair_j[p0:p1]
        with torch.enable_grad() if need_grad else torch.no_grad():
            if need_grad:
                v = v.detach().requires_grad_(True)
            e = model(species[a:b], ci - a if a else ci, neighbor_species[p0:p1], v)
            energies[a:b] = e.detach()
            if not need_grad:
                continue
            (g,) = torch.autograd.grad(e.sum(), v)
        v = v.detach()
        if f is not None:
            f.index_add_(0, ci, g)
            f.index_add_(0, cj, -g)
        if w is not None:
            w += v.T @ g
        if wa is not None:
            outer = 0.5 * v.unsqueeze(2) * g.unsqueeze(1)
            wa.index_add_(0, ci, outer)
            wa.index_add_(0, cj, outer)
    return Evaluation(energies=energies, forces=f, virial=w, atomic_virials=wa)
