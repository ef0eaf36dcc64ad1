"""Full neighbour lists by a compiled cell list (CPU): fully periodic cells
and clusters (no periodic direction).

vesin builds the list for partly periodic cells and on the GPU. Its bins
are at least a cutoff wide, so in a cell of two or three cutoffs (1,024
atoms of Li-Si, cutoff + skin 9 A) each atom tests ~15x more candidates
than it has neighbours: a rebuild took ~3x a whole calculator call and ~12 %
of an MD run's time. Here the bins are about half a cutoff high, the atoms
are sorted by bin (contiguous loads), and each atom scans the bins within
reach: every periodic image (j, S) of every atom is visited exactly once,
so cells thinner than the cutoff are exact too. A cluster is binned in a
box around its atoms, with no images. The list is built full and sorted by
centre in two parallel passes (count, fill), so it needs no mirror of a
half list, and its order does not depend on the thread count.

A pair (i, j, S) means r_j + S . cell - r_i, |.| < cutoff, with the
positions as given (not wrapped); the self pair (i, i, 0) is left out."""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import Tensor

from .neighbors import cell_heights
from .potential.compiled_kernels import njit, prange, torch_threads


#: most bin images an atom may scan (a cell far thinner than the cutoff needs many): beyond, vesin builds
MOST_IMAGES = 4096
#: fewer atoms than this go to vesin, whose fixed cost per call is ~0.2 ms lower (a training set's small
#: cells); from 128 atoms on the cell list was 1.1-4.6x faster (Si cells of 54-250 atoms, 6.5-8 A)
MIN_ATOMS = 64


def _layout(cell: np.ndarray, cutoff: float, n_atoms: int):
    """(bins per lattice direction, reach in bins): bins about half a
    cutoff high (fewest candidates for the bins' own cost), no more bins than
    twice the atoms, and a reach that covers the cutoff sphere (the
    fractional extent of a sphere of radius rc along direction k is rc /
    h_k, h_k the distance between lattice planes)."""
    heights = cell_heights(cell)
    bins = np.maximum(1, np.floor(heights / (0.5 * cutoff))).astype(np.int64)
    while bins.prod() > max(1, 2 * n_atoms) and bins.max() > 1:
        bins[np.argmax(bins)] -= 1
    reach = np.ceil(cutoff * bins / heights * (1.0 + 1e-12)).astype(np.int64)
    return bins, reach


def _binning_box(positions: np.ndarray, cell: np.ndarray, periodic: bool):
    """(positions, cell) the builder works in: the cell itself, or for a
    cluster a box around the atoms (origin at their lowest corner, a
    margin so that none lies on its far faces; shifts are then all zero)."""
    if periodic:
        return positions, cell
    low = positions.min(axis=0)
    return positions - low, np.diag(positions.max(axis=0) - low + 1.0)


def serves(positions: Tensor, cell: Tensor, pbc: Tensor, cutoff: float) -> bool:
    """True when this builder serves the call: CPU, numba present, at least
    MIN_ATOMS atoms with finite positions, and either all three directions
    periodic with a full-rank
    cell that needs at most MOST_IMAGES bin images per atom, or none
    periodic (a cluster). Partly periodic cells go to vesin."""
    from .potential import compiled_kernels

    periodic = bool(pbc.all())
    if not (compiled_kernels.usable(positions) and (periodic or not bool(pbc.any()))
            and positions.shape[0] >= MIN_ATOMS and float(cutoff) > 0.0):
        return False
    pos = positions.detach().to(torch.float64).cpu().numpy()
    if not np.isfinite(pos).all():
        return False
    if not periodic:
        return True
    c = cell.detach().to(torch.float64).cpu().numpy()
    if not abs(np.linalg.det(c)) > 0.0:
        return False
    _, reach = _layout(c, float(cutoff), positions.shape[0])
    return int(np.prod(2 * reach + 1)) <= MOST_IMAGES


def neighbor_list(positions: Tensor, cell: Tensor, cutoff: float, periodic: bool = True):
    """(i, j, shifts) of all pairs closer than `cutoff` (A) in a fully
    periodic full-rank cell (or, periodic=False, a cluster: cell ignored):
    int64, int64, int32 (P, 3), sorted by i."""
    pos, c = _binning_box(positions.detach().to(torch.float64).contiguous().numpy(),
                          cell.detach().to(torch.float64).contiguous().numpy(), periodic)
    bins, reach = _layout(c, float(cutoff), pos.shape[0])
    with torch_threads(dynamic=True):
        i, j, s = _build(np.ascontiguousarray(pos), c, np.linalg.inv(c), bins, reach, float(cutoff), periodic)
    return torch.from_numpy(i), torch.from_numpy(j), torch.from_numpy(s)


@njit(error_model="numpy", cache=True)
def _sort_into_bins(pos, inverse, bins):
    """The atoms' lattice offsets (r = r' + offset . cell, r' inside the
    cell), their bins, and the atoms sorted by bin (a counting sort):
    (offset (N, 3), bin coordinates (N, 3), starts of the bins' atoms
    (n_bins + 1), order (N))."""
    n = pos.shape[0]
    offset = np.empty((n, 3), dtype=np.int64)
    which = np.empty((n, 3), dtype=np.int64)
    flat = np.empty(n, dtype=np.int64)
    for a in range(n):
        for k in range(3):
            u = pos[a, 0] * inverse[0, k] + pos[a, 1] * inverse[1, k] + pos[a, 2] * inverse[2, k]
            f = math.floor(u)
            offset[a, k] = int(f)
            w = u - f
            b = int(w * bins[k])
            which[a, k] = min(max(b, 0), bins[k] - 1)  # w rounds to 1.0 for u just below an integer
        flat[a] = (which[a, 2] * bins[1] + which[a, 1]) * bins[0] + which[a, 0]
    n_bins = bins[0] * bins[1] * bins[2]
    starts = np.zeros(n_bins + 1, dtype=np.int64)
    for a in range(n):
        starts[flat[a] + 1] += 1
    for b in range(n_bins):
        starts[b + 1] += starts[b]
    fill = starts[:-1].copy()
    order = np.empty(n, dtype=np.int64)
    for a in range(n):
        order[fill[flat[a]]] = a
        fill[flat[a]] += 1
    return offset, which, starts, order


@njit(error_model="numpy", cache=True)
def _images(bins, reach, periodic):
    """Per direction k, for a bin coordinate b + d (d within the reach,
    stored at b + d + reach[k]): the bin it wraps to and its image, so that
    the scan needs no integer division; without periodicity, -1 beyond the
    box (no bin). Returns (target, image), each (3, max(bins) + 2 max(reach))."""
    width = bins.max() + 2 * reach.max()
    target = np.zeros((3, width), dtype=np.int64)
    image = np.zeros((3, width), dtype=np.int64)
    for k in range(3):
        for u in range(bins[k] + 2 * reach[k]):
            b = u - reach[k]
            sk = b // bins[k]
            target[k, u] = b - sk * bins[k] if periodic else (b if sk == 0 else -1)
            image[k, u] = sk if periodic else 0
    return target, image


@njit(error_model="numpy", cache=True)
def _scan(a, write, cell, which, ranks, starts, sorted_pos, bins, reach, target, image, rc2, sm, sr, runs):
    """Neighbours of atom a: counted (write False) or written as their
    places in the sorted atoms (sm) and runs (sr; the runs' images in
    runs), sm and sr with room for their count + 1. The bins within reach
    are scanned row by row along the first lattice direction; bins next to each other in
    memory with the same image form one run of atoms (one loop over ~40
    atoms instead of five of ~8). Writing is without branches: each
    candidate goes to the next free slot, which moves on only if it is a
    neighbour (a fifth of the candidates are; a branch on it mispredicts).
    Candidates are compared in the frame of the wrapped positions
    r' = r - offset . cell: the vector of (a, j) through image s is
    r'_j + s . cell - r'_a, and its shift in the frame of the given
    positions is s - offset_j + offset_a."""
    count = 0
    n_runs = 0
    rank = ranks[a]  # a's place among the sorted atoms
    ax, ay, az = sorted_pos[rank, 0], sorted_pos[rank, 1], sorted_pos[rank, 2]  # its wrapped position
    bx, by, bz = which[a, 0], which[a, 1], which[a, 2]
    n_dx = 2 * reach[0] + 1
    for uz in range(bz, bz + 2 * reach[2] + 1):
        tz, sz = target[2, uz], image[2, uz]
        if tz < 0:  # beyond a cluster's box
            continue
        for uy in range(by, by + 2 * reach[1] + 1):
            ty, sy = target[1, uy], image[1, uy]
            if ty < 0:
                continue
            row = (tz * bins[1] + ty) * bins[0]
            ux = bx
            while ux < bx + n_dx:
                # a run: from bin ux on, while the next bin follows in memory with the same image
                sx = image[0, ux]
                t0 = target[0, ux]
                t1 = t0
                ux += 1
                if t0 < 0:
                    continue
                while ux < bx + n_dx and image[0, ux] == sx and target[0, ux] == t1 + 1:
                    t1 += 1
                    ux += 1
                cx = ax - (sx * cell[0, 0] + sy * cell[1, 0] + sz * cell[2, 0])
                cy = ay - (sx * cell[0, 1] + sy * cell[1, 1] + sz * cell[2, 1])
                cz = az - (sx * cell[0, 2] + sy * cell[1, 2] + sz * cell[2, 2])
                m0, m1 = starts[row + t0], starts[row + t1 + 1]
                if not write:
                    for m in range(m0, m1):  # straight-line: SIMD over the run's atoms
                        vx = sorted_pos[m, 0] - cx
                        vy = sorted_pos[m, 1] - cy
                        vz = sorted_pos[m, 2] - cz
                        count += vx * vx + vy * vy + vz * vz < rc2
                    continue
                self_image = sx == 0 and sy == 0 and sz == 0
                runs[n_runs, 0], runs[n_runs, 1], runs[n_runs, 2] = sx, sy, sz
                last = sm.shape[0] - 1
                for m in range(m0, m1):
                    vx = sorted_pos[m, 0] - cx
                    vy = sorted_pos[m, 1] - cy
                    vz = sorted_pos[m, 2] - cz
                    slot = min(count, last)  # never past the scratch, whatever the arithmetic
                    sm[slot] = m
                    sr[slot] = n_runs
                    count += (vx * vx + vy * vy + vz * vz < rc2) & ~(self_image & (m == rank))
                n_runs += 1
    return count if write else count - 1  # the count included a itself (distance 0, image 0) once


#: atoms per work item of the parallel passes
CHUNK = 64


@njit(error_model="numpy", parallel=True, cache=True)
def _build(pos, cell, inverse, bins, reach, cutoff, periodic):
    n = pos.shape[0]
    offset, which, starts, order = _sort_into_bins(pos, inverse, bins)
    sorted_pos = np.empty((n, 3))
    ranks = np.empty(n, dtype=np.int64)
    for m in range(n):
        a = order[m]
        ranks[a] = m
        for k in range(3):
            sorted_pos[m, k] = pos[a, k] - (offset[a, 0] * cell[0, k] + offset[a, 1] * cell[1, k]
                                            + offset[a, 2] * cell[2, k])
    rc2 = cutoff * cutoff
    target, image = _images(bins, reach, periodic)
    none = np.empty(0, dtype=np.int64)
    no_runs = np.empty((0, 3), dtype=np.int64)
    most_runs = (2 * reach[0] + 1) * (2 * reach[1] + 1) * (2 * reach[2] + 1)
    counts = np.zeros(n + 1, dtype=np.int64)
    n_chunks = (n + CHUNK - 1) // CHUNK
    for c in prange(n_chunks):
        for a in range(c * CHUNK, min(n, c * CHUNK + CHUNK)):
            counts[a + 1] = _scan(a, False, cell, which, ranks, starts, sorted_pos, bins, reach, target, image, rc2,
                                  none, none, no_runs)
    widest = 0
    for a in range(n):
        widest = max(widest, counts[a + 1])
        counts[a + 1] += counts[a]
    total = counts[n]
    oi = np.empty(total, dtype=np.int64)
    oj = np.empty(total, dtype=np.int64)
    os_ = np.empty((total, 3), dtype=np.int32)
    for c in prange(n_chunks):
        sm = np.empty(widest + 1, dtype=np.int64)  # + 1: the slot a last non-neighbour is written to
        sr = np.empty(widest + 1, dtype=np.int64)
        runs = np.empty((most_runs, 3), dtype=np.int64)
        for a in range(c * CHUNK, min(n, c * CHUNK + CHUNK)):
            q = counts[a]
            k = _scan(a, True, cell, which, ranks, starts, sorted_pos, bins, reach, target, image, rc2, sm, sr, runs)
            k = min(k, counts[a + 1] - q)  # the passes do the same arithmetic: equal counts
            oa0, oa1, oa2 = offset[a, 0], offset[a, 1], offset[a, 2]
            for p in range(k):
                j = order[sm[p]]
                r = sr[p]
                oi[q + p] = a
                oj[q + p] = j
                os_[q + p, 0] = runs[r, 0] + oa0 - offset[j, 0]
                os_[q + p, 1] = runs[r, 1] + oa1 - offset[j, 1]
                os_[q + p, 2] = runs[r, 2] + oa2 - offset[j, 2]
    return oi, oj, os_
