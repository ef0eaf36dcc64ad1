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
