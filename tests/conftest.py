"""Shared fixtures: a tiny self-contained potential, small structures, and
the location of the aenet reference data (../shared, skipped when absent)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from ase import Atoms
from ase.calculators.calculator import Calculator, all_changes
from ase.stress import full_3x3_to_voigt_6_stress

from aenet_torch_ase.io.input_files import FingerprintSetup
from aenet_torch_ase.potential.new import new_nn_file

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
REFERENCE = SHARED / "reference"


def require_reference():
    """Path of shared/reference, or skip the test with the reason."""
    if not REFERENCE.is_dir():
        pytest.skip(f"aenet reference data not found at {REFERENCE} (only in the project's CI checkout)")
    return REFERENCE


def tiny_nn_files(legacy_stats=False, seed=1):
    """A two-species (Li, Si) potential with random weights: radial Rc 4.0 A
    order 6, angular Rc 3.2 A order 3, all five aenet activations in use."""
    e_atom = {"Li": -1.9, "Si": -5.4}
    files = {}
    rng = np.random.default_rng(seed)
    arch = {"Li": [(7, "tanh"), (5, "twist")], "Si": [(6, "sigmoid"), (4, "mtanh"), (3, "linear")]}
    for k, sym in enumerate(["Li", "Si"]):
        setup = FingerprintSetup(atom=sym, env=["Li", "Si"], rmin=1.0, basis="chebyshev",
                                 radial_rc=4.0, radial_n=6, angular_rc=3.2, angular_n=3)
        avg = rng.normal(0.0, 0.5, setup.n_features)
        a0 = setup.radial_n + 1  # angular T_0: keep the stats 2.0.4-like (mean cosine within [-1, 1])
        avg[a0] = 1.0
        cov = avg**2 + rng.uniform(0.5, 2.0, setup.n_features)
        files[sym] = new_nn_file(setup, arch[sym], e_atom, scale=0.7, shift=-0.3 * (k + 1),
                                 feature_avg=avg, feature_cov=cov, seed=seed + k, weight_scale=1.5)
    return files


@pytest.fixture
def tiny_potential():
    return tiny_nn_files()


def random_structure(n, cell, pbc, seed=0, min_dist=1.9):
    """n Li/Si atoms placed at random in `cell` with a minimum distance (A)."""
    rng = np.random.default_rng(seed)
    cell = np.asarray(cell, dtype=float)
    positions = []
    for _ in range(100000):
        if len(positions) == n:
            break
        p = rng.random(3) @ cell
        trial = Atoms(positions=positions + [p], cell=cell, pbc=pbc)
        if len(positions) and trial.get_distances(len(positions), range(len(positions)), mic=True).min() < min_dist:
            continue
        positions.append(p)
    else:
        raise RuntimeError("could not place the atoms: use a larger cell or a smaller min_dist")
    atoms = Atoms(symbols=["Li", "Si"] * (n // 2) + ["Li"] * (n % 2), positions=positions, cell=cell, pbc=pbc)
    rng.shuffle(atoms.numbers)
    return atoms


@pytest.fixture
def triclinic_cell():
    """8 atoms in a small triclinic cell (heights below the 4 A cutoff)."""
    cell = [[4.6, 0.0, 0.0], [1.1, 4.3, 0.0], [-0.7, 0.9, 4.9]]
    return random_structure(8, cell, True, seed=3, min_dist=1.8)


@pytest.fixture
def cluster():
    a = random_structure(10, np.eye(3) * 5.5, False, seed=4)
    a.cell = np.zeros((3, 3))
    return a


@pytest.fixture
def slab():
    """Periodic in x and y only."""
    return random_structure(10, [[5.2, 0, 0], [0.8, 5.0, 0], [0, 0, 6.0]], [True, True, False], seed=5)


def strain_derivative(atoms, calc, a_, b_, h=1e-5):
    """(1/V) dE/d(eps_ab) by central differences for a symmetric strain of
    cell and positions: the ASE stress component (a_, b_)."""
    e = []
    for sign in (1, -1):
        eps = np.zeros((3, 3))
        eps[a_, b_] += 0.5 * sign * h
        eps[b_, a_] += 0.5 * sign * h
        deformed = atoms.copy()
        deformed.set_cell(atoms.cell.array @ (np.eye(3) + eps), scale_atoms=True)
        deformed.calc = calc
        e.append(deformed.get_potential_energy())
    return (e[0] - e[1]) / (2 * h) / atoms.get_volume()


_NEIGHBOR_LISTS = {}


def _pairs(atoms, cutoff):
    """Full neighbour list (i, j, r_j - r_i + shift) from the package's vesin wrapper."""
    import torch

    from aenet_torch_ase.neighbors import NeighborList, pair_vectors

    pos = torch.tensor(atoms.positions)
    cell = torch.tensor(atoms.cell.array)
    if cutoff not in _NEIGHBOR_LISTS:
        _NEIGHBOR_LISTS[cutoff] = NeighborList(cutoff)
    i, j, shifts = _NEIGHBOR_LISTS[cutoff](pos, cell, torch.tensor(atoms.pbc))
    return i.numpy(), j.numpy(), pair_vectors(pos, cell, i, j, shifts).numpy()


class BinaryLennardJones(Calculator):
    """Kob-Andersen binary Lennard-Jones glass former as a cheap ASE
    calculator stand-in (Li plays A, Si plays B; sigma_AA = 2.6 A,
    epsilon_AA = 0.05 eV), truncated and shifted at 2.5 sigma."""

    implemented_properties = ["energy", "forces", "stress"]

    def __init__(self, sigma=2.6, epsilon=0.05):
        super().__init__()
        self.sig = sigma * np.array([[1.0, 0.8], [0.8, 0.88]])
        self.eps = epsilon * np.array([[1.0, 1.5], [1.5, 0.5]])

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
        super().calculate(atoms, properties, system_changes)
        a = self.atoms
        b = (a.numbers == 14).astype(int)  # 0 = Li (A), 1 = Si (B)
        rc = 2.5 * self.sig
        i, j, D = _pairs(a, rc.max())  # full list: each pair twice
        d = np.linalg.norm(D, axis=1)
        s, e, c = self.sig[b[i], b[j]], self.eps[b[i], b[j]], rc[b[i], b[j]]
        inside = d < c
        i, j, d, D, s, e, c = i[inside], j[inside], d[inside], D[inside], s[inside], e[inside], c[inside]
        sr6 = (s / d) ** 6
        shift = 4 * e * ((s / c) ** 12 - (s / c) ** 6)
        self.results["energy"] = 0.5 * (4 * e * (sr6**2 - sr6) - shift).sum()
        g = (4 * e * (-12 * sr6**2 + 6 * sr6) / d**2)[:, None] * D  # d(phi)/dD
        n = len(a)
        self.results["forces"] = np.stack(
            [0.5 * (np.bincount(i, g[:, k], n) - np.bincount(j, g[:, k], n)) for k in range(3)], axis=1)
        if a.cell.rank == 3:
            self.results["stress"] = full_3x3_to_voigt_6_stress(0.5 * (D.T @ g) / a.get_volume())
