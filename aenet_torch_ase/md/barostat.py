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
from ase.stress import voigt_6_to_full_3x3_stress
from scipy.special import exprel

from ..errors import ProtocolError
from .thermostat import NoseHooverChain


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
        self.masses = atoms.get_masses()[:, None]
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
        self.p_c = np.zeros(3)  # cell momenta along the axes
        self._forces = self._stress = None  # at the current q and h (stress: without the ideal-gas part)

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
            self._stress = self.atoms.get_stress()  # Voigt, without the ideal-gas part

    def _volume(self) -> float:
        return float(np.abs(np.linalg.det(self.h)))

    def _p_g(self) -> np.ndarray:
        return (self.p_c * self.h0_basis.T) @ self.h0_basis

    def _thermostat_chain(self, delta: float) -> None:
        def scale(f):
            self.p *= f

        self.thermostat.integrate(np.sum(self.p**2 / self.masses), scale, delta)

    def _barostat_chain(self, delta: float) -> None:
        def scale(f):
            self.p_c *= f

        self.barostat.integrate(np.sum(self.p_c**2) / self.W, scale, delta)

    def _kinetic_stress(self) -> np.ndarray:
        # ASE's Atoms.get_kinetic_stress (Voigt), from the current momenta and cell
        s = -((self.p / self.masses).T @ self.p) / self._volume()
        return np.array([s[0, 0], s[1, 1], s[2, 2], s[1, 2], s[0, 2], s[0, 1]])

    def _kick_cell(self, delta: float) -> None:
        self._evaluate()
        stress = -voigt_6_to_full_3x3_stress(self._stress + self._kinetic_stress())
        kinetic = np.sum(self.p**2 / self.masses) / (3 * self.n_atoms)
        pv = self._volume() * (stress - self.pressure * np.eye(3))
        gc = np.diag(self.h0_basis @ pv @ self.h0_basis.T) + kinetic
        self.p_c[self.mask] += delta * gc[self.mask]

    def _kick(self, delta: float) -> None:
        self._evaluate()
        p_g = self._p_g()
        eigvals, U = np.linalg.eigh(p_g)
        kappas = eigvals + np.trace(p_g) / (3 * self.n_atoms)
        y = self.p @ U
        sol = y * np.exp(-kappas * delta / self.W)[None, :] \
            + delta * (self._forces @ U) * exprel(-kappas * delta / self.W)[None, :]
        self.p = sol @ U.T

    def _drift(self, delta: float) -> None:
        eigvals, U = np.linalg.eigh(self._p_g())
        x = self.q @ U
        y = self.p @ U
        sol = x * np.exp(eigvals * delta / self.W)[None, :] \
            + delta * y / self.masses * exprel(eigvals * delta / self.W)[None, :]
        self.q = sol @ U.T

    def _drift_cell(self, delta: float) -> None:
        eigvals, U = np.linalg.eigh(self._p_g())
        n = self.h @ U
        self.h = (n * np.exp(eigvals * delta / self.W)[None, :]) @ U.T
