"""Long-range order of a periodic structure: radial distribution function and
the static structure factor on the cell's reciprocal lattice.

A crystal has Bragg peaks with S(q) of order N; an amorphous or liquid
structure has S(q) of order 1 at every q beyond the first diffuse peak.
"""

from __future__ import annotations

import numpy as np
from ase import Atoms


def structure_factor(atoms: Atoms, q_max: float = 4.0, chunk: int = 2048):
    """S(q) = |sum_j exp(i q.r_j)|^2 / N for every reciprocal-lattice vector
    0 < |q| <= q_max (1/A, with the 2 pi). Returns (|q| (M,), S (M,))."""
    recip = 2 * np.pi * np.linalg.inv(atoms.cell.array).T  # rows b_k, a_i . b_k = 2 pi delta
    # heights of the reciprocal cell bound the needed integers
    vol = abs(np.linalg.det(recip))
    heights = np.array([vol / np.linalg.norm(np.cross(recip[(k + 1) % 3], recip[(k + 2) % 3])) for k in range(3)])
    n_max = np.ceil(q_max / heights).astype(int)
    grid = np.stack(np.meshgrid(*[np.arange(-m, m + 1) for m in n_max], indexing="ij"), -1).reshape(-1, 3)
    q = grid @ recip
    norm = np.linalg.norm(q, axis=1)
    sel = (norm > 1e-9) & (norm <= q_max)
    q, norm = q[sel], norm[sel]
    s = np.empty(len(q))
    for a in range(0, len(q), chunk):  # chunks of q vectors bound the (q, atoms) phase matrix
        phase = q[a : a + chunk] @ atoms.positions.T
        s[a : a + chunk] = (np.cos(phase).sum(1) ** 2 + np.sin(phase).sum(1) ** 2) / len(atoms)
    return norm, s


def radial_distribution(atoms: Atoms, r_max: float, bins: int = 200):
    """g(r) of all atoms up to r_max (A) with periodic images. Returns (r, g)."""
    from ase.neighborlist import neighbor_list

    d = neighbor_list("d", atoms, r_max)
    hist, edges = np.histogram(d, bins=bins, range=(0, r_max))
    r = 0.5 * (edges[1:] + edges[:-1])
    shell = 4 / 3 * np.pi * (edges[1:] ** 3 - edges[:-1] ** 3)
    rho = len(atoms) / atoms.get_volume()
    return r, hist / (len(atoms) * rho * shell)
