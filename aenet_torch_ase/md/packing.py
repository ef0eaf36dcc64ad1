"""Granular pour of spheres into a box, and all-atom stacks of nanoparticles.

`pack_spheres` is a small discrete-element simulation in numpy: spheres of
the given radii start at random, non-overlapping places in a tall column
above the box, fall under gravity onto the floor (z = 0) between rigid
walls at x, y = 0 and box, and settle with damped repulsive contacts
(linear spring-dashpot, no cohesion). A plain numpy model was chosen over
LAMMPS's GRANULAR package (`fix pour`): it needs no MPI library on the
path, is deterministic for a seed, and a few hundred spheres settle in
seconds. Lengths in Angstrom; time and mass are in reduced units (mass
proportional to r^3, gravity 1), which do not matter for the final heap.

`stack_nanoparticles` replaces each coarse sphere by an all-atom particle
of that radius, randomly oriented, and removes atoms that come closer than
a minimum distance to an atom of another particle.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Optional, Sequence

import numpy as np
from ase import Atoms
from scipy.spatial import cKDTree
from scipy.spatial.transform import Rotation
from tqdm import tqdm

from ..errors import StructureError


@dataclass
class SpherePacking:
    """Settled spheres: centres (n, 3) and radii (n,) in A; box (3,) the
    pour box (the heap may rise above box[2] when the spheres do not fit)."""

    centers: np.ndarray
    radii: np.ndarray
    box: np.ndarray
    info: dict = field(default_factory=dict)

    def gaps(self):
        """Surface gaps (A) of all sphere pairs (i < j): |ci - cj| - ri - rj."""
        i, j = np.triu_indices(len(self.radii), 1)
        d = np.linalg.norm(self.centers[i] - self.centers[j], axis=1)
        return i, j, d - self.radii[i] - self.radii[j]

    def height(self) -> float:
        return float((self.centers[:, 2] + self.radii).max())


def _contact_forces(x, v, r, m, box, k, gamma):
    """Spring-dashpot forces (n, 3) between spheres, with the walls and floor."""
    n = len(r)
    i, j = np.triu_indices(n, 1)
    d = x[j] - x[i]
    dist = np.linalg.norm(d, axis=1)
    overlap = r[i] + r[j] - dist
    touching = overlap > 0
    f = np.zeros_like(x)
    if touching.any():
        i, j, d, dist, overlap = i[touching], j[touching], d[touching], dist[touching], overlap[touching]
        normal = d / dist[:, None]
        vn = ((v[j] - v[i]) * normal).sum(1)
        mag = np.maximum(k * overlap - gamma * vn, 0.0)  # repulsive only
        np.add.at(f, i, -mag[:, None] * normal)
        np.add.at(f, j, mag[:, None] * normal)
    # walls: x, y in [0, box], floor z >= 0 (no ceiling)
    for axis in range(3):
        low = r - x[:, axis]
        hit = low > 0
        f[hit, axis] += np.maximum(k * low[hit] - gamma * v[hit, axis], 0.0)
        if axis < 2:
            high = x[:, axis] + r - box[axis]
            hit = high > 0
            f[hit, axis] -= np.maximum(k * high[hit] + gamma * v[hit, axis], 0.0)
    return f


def pack_spheres(n: int, radii: Sequence[float], box: Sequence[float], *,
                 fractions: Optional[Sequence[float]] = None, seed: int = 0,
                 max_steps: int = 200_000, progress: bool = True) -> SpherePacking:
    """Pour `n` spheres with radii drawn from `radii` (with `fractions`,
    default equal) into `box` (A) and let them settle.

    Returns the settled packing; `info` holds the steps taken, the largest
    overlap relative to the smaller radius, and whether it settled.
    """
    if int(n) < 1:
        raise StructureError(f"the number of particles must be at least 1, got {n}")
    rng = np.random.default_rng(seed)
    box = np.asarray(box, dtype=float)
    radii = np.asarray(radii, dtype=float)
    if box.shape != (3,) or (box <= 0).any():
        raise StructureError(f"box must be three positive lengths (A), got {box}")
    if (radii <= 0).any() or 2 * radii.max() > box[:2].min():
        raise StructureError(f"radii {radii} must be positive and fit between the walls of box {box}")
    p = np.full(len(radii), 1 / len(radii)) if fractions is None else np.asarray(fractions, dtype=float)
    if p.shape != radii.shape or (p < 0).any() or p.sum() <= 0:
        raise StructureError("fractions must be one non-negative weight per radius")
    # exact counts per radius (largest remainders), then shuffled
    exact = p / p.sum() * n
    counts = np.floor(exact).astype(int)
    counts[np.argsort(exact - counts)[::-1][: n - counts.sum()]] += 1
    r = rng.permutation(np.repeat(radii, counts))
    # starting column: random sequential placement at ~30 % packing fraction
    column = (4 / 3 * np.pi * (r**3).sum()) / (0.3 * box[0] * box[1])
    x = np.zeros((n, 3))
    for k in range(n):  # n coarse spheres (tens to hundreds), not atoms
        for _ in range(10000):
            c = np.array([rng.uniform(r[k], box[0] - r[k]), rng.uniform(r[k], box[1] - r[k]),
                          rng.uniform(r[k], r[k] + column)])
            if k == 0 or (np.linalg.norm(x[:k] - c, axis=1) >= r[:k] + r[k]).all():
                x[k] = c
                break
        else:
            column *= 1.5
            x[k] = [box[0] / 2, box[1] / 2, x[:k, 2].max() + 2 * r.max() + r[k]]
    m = r**3
    g = 1.0
    # stiffness: the whole weight on one contact compresses it by 0.2 % of the smallest radius
    k_spring = m.sum() * g / (0.002 * r.min())
    t_contact = np.pi * np.sqrt(m.min() / k_spring)
    dt = t_contact / 20
    gamma = 2 * 0.5 * np.sqrt(k_spring * m.min())  # damping ratio 0.5 for the lightest pair
    drag = 0.2 / (np.sqrt(2 * column / g))  # weak global drag speeds up settling
    v = np.zeros_like(x)
    f = _contact_forces(x, v, r, m, box, k_spring, gamma)
    settled = False
    step = 0
    check = 2000
    with tqdm(total=max_steps, desc="pouring spheres", unit="step", disable=not progress) as bar:
        while step < max_steps:
            for _ in range(check):
                a = f / m[:, None]
                a[:, 2] -= g
                a -= drag * v
                v += 0.5 * dt * a
                x += dt * v
                f = _contact_forces(x, v, r, m, box, k_spring, gamma)
                a = f / m[:, None]
                a[:, 2] -= g
                a -= drag * v
                v += 0.5 * dt * a
            step += check
            bar.update(check)
            # settled: every sphere moves less than 0.01 % of its radius per contact time
            if np.abs(v).max() * t_contact < 1e-4 * r.min():
                settled = True
                break
    packing = SpherePacking(centers=x, radii=r, box=box)
    _, _, gaps = packing.gaps()
    ii, jj = np.triu_indices(n, 1)
    smaller = np.minimum(r[ii], r[jj])
    packing.info = {
        "steps": step,
        "settled": settled,
        "max_relative_overlap": float(max(0.0, (-gaps / smaller).max())),
        "height": packing.height(),
        "seed": seed,
    }
    return packing


def stack_nanoparticles(packing: SpherePacking, make_particle: Callable[[float], Atoms], *,
                        min_distance: float = 2.0, seed: int = 0, vacuum: float = 10.0,
                        progress: bool = True) -> Atoms:
    """All-atom stack: one particle per coarse sphere.

    make_particle(radius) returns Atoms of a particle centred in its own box
    (e.g. `lambda r: nanoparticle(bulk_atoms, r)`); it is rotated at random
    and moved to the sphere's centre. Atoms closer than `min_distance` (A)
    to an atom of an earlier particle are removed. The result is
    non-periodic, in a box `vacuum` (A) larger than the heap; `info` holds
    the particle index of every atom ('particle' array) and the number of
    atoms removed.
    """
    rng = np.random.default_rng(seed)
    cache = {}
    numbers, positions, owner = [], [], []
    removed = 0
    tree = None
    kept_positions = np.zeros((0, 3))
    for k in tqdm(range(len(packing.radii)), desc="placing particles", disable=not progress):
        radius = float(packing.radii[k])
        if radius not in cache:
            cache[radius] = make_particle(radius)
        particle = cache[radius]
        local = particle.positions - particle.cell.array.sum(0) / 2
        rot = Rotation.random(random_state=rng.integers(2**31)).as_matrix()
        pos = local @ rot.T + packing.centers[k]
        keep = np.ones(len(pos), dtype=bool)
        if tree is not None:
            dist, _ = tree.query(pos, distance_upper_bound=min_distance)
            keep = ~np.isfinite(dist)
        removed += int((~keep).sum())
        numbers.append(particle.numbers[keep])
        positions.append(pos[keep])
        owner.append(np.full(int(keep.sum()), k))
        kept_positions = np.concatenate([kept_positions, pos[keep]])
        tree = cKDTree(kept_positions)
    pos = np.concatenate(positions)
    lo = pos.min(0) - vacuum
    atoms = Atoms(numbers=np.concatenate(numbers), positions=pos - lo,
                  cell=np.diag(pos.max(0) - lo + vacuum), pbc=False)
    atoms.arrays["particle"] = np.concatenate(owner)
    atoms.info["removed_atoms"] = removed
    atoms.info["n_particles"] = len(packing.radii)
    return atoms
