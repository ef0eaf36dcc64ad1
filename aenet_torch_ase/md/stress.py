"""Virial stress: global, per atom and averaged over regions, in GPa.

Sign: tension positive (ASE's convention; LAMMPS's pxx = -sxx). The virial
stress of seed Eq. 3 has a kinetic and a pair (potential) term:

    sigma = -(1/V) [ sum_i m_i v_i (x) v_i ]  +  potential virial / V

Per-atom stress uses the atomic-volume convention Omega_i = V/N (every atom
gets the mean volume), so the mean of the per-atom stresses over all atoms
is the global stress. Region averages are means over the atoms inside.
"""

from __future__ import annotations

import numpy as np
from ase import units
from ase.stress import voigt_6_to_full_3x3_stress

GPA = units.GPa  # eV/A^3 per GPa


def global_stress_gpa(atoms) -> np.ndarray:
    """(3, 3) virial stress with the kinetic term, GPa, tension positive."""
    return atoms.get_stress(voigt=False, include_ideal_gas=True) / GPA


def atomic_stress_gpa(atoms) -> np.ndarray:
    """(N, 3, 3) per-atom virial stress (kinetic + potential), GPa, with
    atomic volume V/N. Needs a calculator that gives `stresses` (AenetTorch)."""
    n = len(atoms)
    volume = atoms.get_volume()
    potential = voigt_6_to_full_3x3_stress(atoms.get_stresses()) * n  # stresses sum to the stress
    v = atoms.get_velocities()
    kinetic = -atoms.get_masses()[:, None, None] * v[:, :, None] * v[:, None, :] * n / volume
    return (potential + kinetic) / GPA


def slab_average(atoms, per_atom: np.ndarray, axis: int, n_slabs: int):
    """Mean per-atom quantity in `n_slabs` equal slabs along `axis` of the
    cell. Returns (slab centres in A, (n_slabs, ...) means; NaN for empty slabs)."""
    frac = atoms.get_scaled_positions(wrap=True)[:, axis]
    index = np.minimum((frac * n_slabs).astype(int), n_slabs - 1)
    counts = np.bincount(index, minlength=n_slabs)
    flat = per_atom.reshape(len(atoms), -1)
    sums = np.zeros((n_slabs, flat.shape[1]))
    np.add.at(sums, index, flat)
    with np.errstate(invalid="ignore", divide="ignore"):
        means = sums / counts[:, None]
    length = np.linalg.norm(atoms.cell.array[axis])
    centres = (np.arange(n_slabs) + 0.5) / n_slabs * length
    return centres, means.reshape((n_slabs,) + per_atom.shape[1:])


def sphere_average(atoms, per_atom: np.ndarray, center, radius: float) -> np.ndarray:
    """Mean per-atom quantity of the atoms within `radius` (A) of `center`."""
    inside = np.linalg.norm(atoms.positions - np.asarray(center), axis=1) <= radius
    if not inside.any():
        raise ValueError(f"no atoms within {radius} A of {center}")
    return per_atom[inside].mean(0)


def atomic_volume(atoms, radius: float = 6.0) -> float:
    """Volume per atom (A^3) of a structure's interior.

    `atoms.info['atomic_volume']` when present (`structures.nanoparticle`
    stores the bulk's V/N there); V/N for a periodic cell; otherwise the
    number of atoms within `radius` (A) of an atom, at the 90th percentile
    over the atoms (interior atoms, whose sphere is full), gives the
    density: (4/3 pi radius^3) / (count + 1)."""
    if "atomic_volume" in atoms.info:
        return float(atoms.info["atomic_volume"])
    if atoms.pbc.all() and atoms.cell.rank == 3:
        return atoms.get_volume() / len(atoms)
    from scipy.spatial import cKDTree

    counts = cKDTree(atoms.positions).query_ball_point(atoms.positions, radius, return_length=True)
    return 4.0 / 3.0 * np.pi * radius**3 / float(np.percentile(counts, 90))


def cross_section(atoms, axis: int, position: float) -> float:
    """Cross-section (A^2) of a non-periodic structure normal to `axis` at
    `position` (A): the atoms within a = Omega^(1/3) of the plane (Omega:
    `atomic_volume`, a the mean spacing), projected on the plane; the area
    of their convex hull grown by a/2 on every side (each atom stands for
    a cell of width a: hull area + perimeter a/2 + pi a^2/4). For a rod of
    a crystal this is its width x depth to within the corners; for a
    sphere cut at radius R from a glass, ~pi R^2. A structure periodic
    along both other axes (a film) has the cell's face as cross-section."""
    from scipy.spatial import ConvexHull, QhullError

    lateral = [k for k in range(3) if k != axis]
    if atoms.pbc[lateral].all():  # a film periodic across the axis: the cell's face
        cell = atoms.cell.array
        return float(abs(np.cross(cell[lateral[0]], cell[lateral[1]])[axis]))
    a = atomic_volume(atoms) ** (1.0 / 3.0)
    near = np.abs(atoms.positions[:, axis] - position) <= a
    plane = atoms.positions[near][:, [k for k in range(3) if k != axis]]
    r = a / 2
    try:
        hull = ConvexHull(plane)
    except (QhullError, ValueError):  # fewer than 3 atoms or all in a line: a chain of atoms
        return float(np.pi * r**2 * max(1, len(plane)))
    # ConvexHull in 2D: volume is the area, area is the perimeter
    return float(hull.volume + hull.area * r + np.pi * r**2)
