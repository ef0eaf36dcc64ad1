"""A short-range repulsive wall for preparing structures with a potential that
has a hole at short distances.

Machine-learned potentials know nothing of distances their training set did
not hold. The published Li-Si potential lets two Li atoms fall onto each
other (0.1-0.8 A) in hot Li-rich melts: a hole, not physics. LAMMPS users
overlay a repulsive pair term (`pair_style hybrid/overlay aenet zbl`) while
they melt; this is the same idea for ASE runs:

    atoms.calc = guarded(AenetTorch("LiSi-Artrith2018"), r0=1.5)

adds E_wall = k/2 sum_{pairs r < r0} (r0 - r)^2 (eV; r, r0 in A; k in eV/A^2),
which is zero for every pair at or beyond r0. Sound structures of the Li-Si
potential have no pair below ~1.6 A (closest pairs of relaxed and 300 K
a-Li13Si4: 1.66-1.81 A), so the wall only acts where the potential is
wrong; `melt_quench(..., guard=1.5)` uses it during the melt and the quench
and takes it off for the final minimisation, so that the structure returned
is a minimum of the potential alone (and is checked to have no pair below
the wall).
"""

from __future__ import annotations

import numpy as np
from ase.calculators.calculator import Calculator, all_changes
from ase.calculators.mixing import SumCalculator

#: default wall distance (A) and stiffness (eV/A^2)
WALL_DISTANCE = 1.5
WALL_STIFFNESS = 50.0


def neighbours(quantities: str, atoms, cutoff: float):
    """Full pair list (periodic images included): matscipy's `neighbour_list`
    for periodic cells, ASE's `neighbor_list` otherwise (clusters, slabs:
    matscipy wants every atom inside a cell)."""
    if atoms.pbc.all() and atoms.cell.rank == 3:
        from matscipy.neighbours import neighbour_list

        return neighbour_list(quantities, atoms, cutoff)
    from ase.neighborlist import neighbor_list

    return neighbor_list(quantities, atoms, cutoff)


class PairTerm(Calculator):
    """E = 1/2 sum over the full pair list (periodic images included) of
    phi(r) for r < `cutoff`, with forces and stress (eV, eV/A, eV/A^3,
    ASE's sign: positive in tension). Subclasses give `phi(r)`: the pair
    energies and their derivatives dphi/dr."""

    implemented_properties = ["energy", "free_energy", "forces", "stress"]
    cutoff = 0.0

    def phi(self, r: np.ndarray):
        raise NotImplementedError

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
        super().calculate(atoms, properties, system_changes)
        a = self.atoms
        n = len(a)
        i, j, vec = neighbours("ijD", a, self.cutoff)  # full list: each pair twice
        r = np.linalg.norm(vec, axis=1)
        e, de = self.phi(r)
        energy = 0.5 * float(np.sum(e))  # 1/2 for the double count
        # d E / d vec over the full list (each pair once per direction, hence 1/2)
        g = (0.5 * de / np.where(r > 0, r, 1.0))[:, None] * vec
        forces = np.zeros((n, 3))
        for c in range(3):
            forces[:, c] = np.bincount(i, g[:, c], minlength=n) - np.bincount(j, g[:, c], minlength=n)
        if a.cell.rank == 3:
            virial = vec.T @ g
            stress = (virial / a.get_volume())[[0, 1, 2, 1, 0, 0], [0, 1, 2, 2, 2, 1]]
        else:
            stress = np.zeros(6)
        self.results = {"energy": energy, "free_energy": energy, "forces": forces, "stress": stress}


class ShortRangeWall(PairTerm):
    """phi(r) = k/2 (r0 - r)^2 for pairs closer than r0, zero beyond (the
    wall; `PairTerm` gives energy, forces and stress)."""

    def __init__(self, r0: float = WALL_DISTANCE, k: float = WALL_STIFFNESS):
        if not (r0 > 0 and k > 0):
            raise ValueError(f"ShortRangeWall needs r0 > 0 and k > 0 (got r0={r0}, k={k})")
        super().__init__()
        self.r0, self.k = float(r0), float(k)
        self.cutoff = self.r0

    def phi(self, r):
        gap = self.r0 - r
        return 0.5 * self.k * gap * gap, -self.k * gap


def guarded(calc, r0: float = WALL_DISTANCE, k: float = WALL_STIFFNESS) -> SumCalculator:
    """`calc` plus a `ShortRangeWall(r0, k)` (ASE's SumCalculator)."""
    return SumCalculator([calc, ShortRangeWall(r0, k)])
