"""MTK NPT with a barostat on some cell axes only (the tensile test's
lateral axes), one energy/force/stress call per step.

The integrator of ASE's `MaskedMTKNPT` (Martyna, Tobias, Klein, J. Chem.
Phys. 101, 4177 (1994); masked cell fluctuations as in ASE's implementation
note, arXiv:2603.24061): Nose-Hoover chains on the particles and on the
cell momenta, the cell moving along the initial direction of each free axis
(h0_basis), the Trotter factorisation

    baro-NHC(dt/2) NHC(dt/2) cell-kick(dt/2) kick(dt/2)
    drift(dt) cell-drift(dt) kick(dt/2) cell-kick(dt/2) NHC(dt/2) baro-NHC(dt/2)

operation for operation, so that it equals ASE's to round-off (tests). Owned
here rather than driven through ASE's private methods (`_integrate_q_cell`,
`_h`, ...) because the runner needs two things ASE's class does not offer:
`after_drift(q)`, called after the cell drift and before the force
evaluation (the exact strain ramp of the tensile axis, applied to `h` and
the positions, costs no extra force call), and one update of the atoms and
one calculator call per step (ASE's updates the atoms and asks for forces or
stress four times per step).

Units: ASE's (positions A, momenta amu A / ASE time, timestep, tdamp and
pdamp in ASE time units, pressure in eV/A^3). State for checkpoints: `q`,
`p`, `h`, `p_c` and the two chains' `eta`, `p_eta`.
"""

from __future__ import annotations

from typing import Callable, Optional

import numpy as np
from ase import units
from scipy.special import exprel

from ..errors import ProtocolError
from .thermostat import NoseHooverChain, twice_kinetic


def _similar(U: Optional[np.ndarray], d: np.ndarray) -> np.ndarray:
    """U diag(d) U^T, the map of rows x (N, 3) -> x U diag(d) U^T in one
    product (ASE rotates into the eigenbasis and back: three (N, 3)
    products); with U None (identity), d itself: a per-axis factor."""
    return d if U is None else (U * d) @ U.T


def _apply(x: np.ndarray, m: np.ndarray) -> np.ndarray:
    """x (N, 3) times a map from `_similar`."""
    return x * m if m.ndim == 1 else x @ m


class MaskedMTK:
    """NPT with the cell free along the axes where `mask` is True.

    atoms: no constraints (as ASE's MTK); its calculator must give forces
    and stress. after_drift(q) may change `self.h` and q in place.
    """

    def __init__(self, atoms, timestep: float, temperature_K: float, pressure_au: float, tdamp: float,
                 pdamp: float, mask, *, tchain: int = 3, pchain: int = 3, tloop: int = 1, ploop: int = 1,
                 after_drift: Optional[Callable[[np.ndarray], None]] = None):
        if len(atoms.constraints) > 0:
            raise ProtocolError("the MTK barostat does not support constraints: remove them (atoms.set_constraint())")
        self.atoms = atoms
        self.dt = float(timestep)
        self.after_drift = after_drift
        self.mask = np.asarray(mask, dtype=bool)
        self._free = self.mask.astype(float)  # 1 on the axes the barostat moves, 0 elsewhere
        self.masses = atoms.get_masses()[:, None]
        self.inv_masses = 1.0 / atoms.get_masses()
        self.n_atoms = len(atoms)
        self.kT = units.kB * temperature_K
        self.pressure = float(pressure_au)
        self.thermostat = NoseHooverChain(3 * self.n_atoms, self.kT, tdamp, tchain, tloop)
        self.barostat = NoseHooverChain(int(self.mask.sum()), self.kT, pdamp, pchain, ploop)
        self.W = (self.n_atoms + 1) * self.kT * pdamp**2  # virtual mass of the cell momenta
        self.q = atoms.get_positions()
        self.p = atoms.get_momenta()
        self.h = np.array(atoms.get_cell())
        self.h0_basis = self.h / np.linalg.norm(self.h, axis=1)[:, None]
        # cell vectors along x, y, z (the tensile test's box): p_g is diagonal, the
        # eigenbasis the axes, and each map a per-axis factor (no eigh, no matmul:
        # between force calls every small numpy call costs several microseconds)
        self._aligned = bool(np.array_equal(self.h0_basis, np.eye(3)))
        self.p_c = np.zeros(3)  # cell momenta along the axes
        self._forces = self._stress = None  # at the current q and h (stress 3x3: without the ideal-gas part)
        self._eig_of = self._eig = None  # eigen-decomposition of p_g, for the p_c it was made from

    # -- one step
    def step(self) -> None:
        dt2 = self.dt / 2
        self._barostat_chain(dt2)
        self._thermostat_chain(dt2)
        self._kick_cell(dt2)
        self._kick(dt2)
        self._drift(self.dt)
        self._drift_cell(self.dt)
        if self.after_drift is not None:
            self.after_drift(self.q)
        self._forces = self._stress = None
        self._kick(dt2)
        self._kick_cell(dt2)
        self._thermostat_chain(dt2)
        self._barostat_chain(dt2)
        self._update_atoms()

    def run(self, steps: int) -> None:
        for _ in range(steps):
            self.step()

    def conserved_energy(self) -> float:
        """Potential + kinetic + chains + cell kinetic + P V (eV): conserved
        in the absence of a prescribed motion."""
        return float(self.atoms.get_potential_energy() + self.atoms.get_kinetic_energy()
                     + self.thermostat.energy() + self.barostat.energy()
                     + np.sum(self.p_c**2) / (2 * self.W) + self.pressure * self._volume())

    # -- parts
    def _update_atoms(self) -> None:
        self.atoms.set_positions(self.q)
        self.atoms.set_momenta(self.p)
        self.atoms.set_cell(self.h, scale_atoms=False)

    def _evaluate(self) -> None:
        """Forces and stress (one calculator call) at the current q and h."""
        if self._forces is None:
            self._update_atoms()
            self._forces = self.atoms.get_forces(md=True)
            # the stress (3x3, without the ideal-gas part) plus the target pressure: the cell's force
            xx, yy, zz, yz, xz, xy = self.atoms.get_stress().tolist()
            P = self.pressure
            self._stress = np.array([[xx + P, xy, xz], [xy, yy + P, yz], [xz, yz, zz + P]])

    def _volume(self) -> float:
        # on Python floats: a 3x3 determinant through LAPACK cost ~30 us between force calls
        (a, b, c), (d, e, f), (g, h, i) = self.h.tolist()
        return abs(a * (e * i - f * h) - b * (d * i - f * g) + c * (d * h - e * g))

    def _p_g(self) -> np.ndarray:
        return (self.p_c * self.h0_basis.T) @ self.h0_basis

    def _eigh_p_g(self):
        """(eigenvalues, eigenvectors or None for the axes) of p_g: the kicks
        and drifts of one step share the same p_c, so one decomposition
        serves them."""
        if self._aligned:
            return self.p_c, None
        key = tuple(self.p_c)
        if self._eig_of != key:
            self._eig, self._eig_of = np.linalg.eigh(self._p_g()), key
        return self._eig

    def _thermostat_chain(self, delta: float) -> None:
        self.p *= self.thermostat.integrate(twice_kinetic(self.p, self.inv_masses), delta)

    def _barostat_chain(self, delta: float) -> None:
        self.p_c *= self.barostat.integrate(float(self.p_c @ self.p_c) / self.W, delta)

    def _kick_cell(self, delta: float) -> None:
        self._evaluate()
        # p^T p / m: ASE's Atoms.get_kinetic_stress (times -V) and, as its trace, the kinetic energy
        # (few numpy calls: between force calls each small one costs several microseconds)
        if self._aligned:  # only the diagonal counts
            pp = np.einsum("ia,ia,i->a", self.p, self.p, self.inv_masses)
            gc = pp - self._volume() * self._stress.diagonal() + pp.sum() / (3 * self.n_atoms)
        else:
            pp = (self.p * self.inv_masses[:, None]).T @ self.p
            pv = pp - self._volume() * self._stress  # V (sigma_kinetic - sigma - P I)
            gc = np.einsum("ai,ij,aj->a", self.h0_basis, pv, self.h0_basis) + np.trace(pp) / (3 * self.n_atoms)
        self.p_c += (delta * self._free) * gc

    def _kick(self, delta: float) -> None:
        self._evaluate()
        eigvals, U = self._eigh_p_g()
        kappas = eigvals + eigvals.sum() / (3 * self.n_atoms)
        a = kappas * (-delta / self.W)
        self.p = _apply(self.p, _similar(U, np.exp(a))) + _apply(self._forces, _similar(U, delta * exprel(a)))

    def _drift(self, delta: float) -> None:
        eigvals, U = self._eigh_p_g()
        a = eigvals * (delta / self.W)
        self.q = _apply(self.q, _similar(U, np.exp(a))) \
            + _apply(self.p * self.inv_masses[:, None], _similar(U, delta * exprel(a)))

    def _drift_cell(self, delta: float) -> None:
        eigvals, U = self._eigh_p_g()
        self.h = _apply(self.h, _similar(U, np.exp(eigvals * (delta / self.W))))
