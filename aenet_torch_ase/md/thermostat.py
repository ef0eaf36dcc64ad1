"""Nose-Hoover chain NVT for the atoms that are free to move.

The same integrator as ASE's `NoseHooverChainNVT` (Martyna, Klein,
Tuckerman, J. Chem. Phys. 97, 2635 (1992); Trotter splitting
NHC(dt/2) kick(dt/2) drift(dt) kick(dt/2) NHC(dt/2), the chain integrated
with the fourth-order Suzuki-Yoshida weights), with two differences that
the mechanical tests need and that ASE's class cannot give without
changing its private state:

- atoms held by `FixAtoms` (the grips of a pull test) are not integrated
  and do not count as degrees of freedom: the chain's target kinetic
  energy is (3/2) N_free kT, so the free atoms are at the set temperature
  (ASE's counts 3N; with half the atoms held, the free half ran at ~2T);
- `after_drift(q)` is called after the drift, before the force evaluation,
  so a prescribed motion (the moving grip, a box deformation) costs no
  extra force call.

Units: ASE's (positions A, momenta amu A / ASE time, timestep and tdamp in
ASE time units). With no atom held it equals ASE's integrator to round-off
(tests/test_md.py).
"""

from __future__ import annotations

import math
from typing import Callable, Optional

import numpy as np
from ase import units
from ase.constraints import FixAtoms

#: Suzuki-Yoshida fourth-order weights for the chain's sub-steps
_SY4 = (1 / (2 - 2 ** (1 / 3)), -(2 ** (1 / 3)) / (2 - 2 ** (1 / 3)), 1 / (2 - 2 ** (1 / 3)))


def twice_kinetic(p: np.ndarray, inv_masses: np.ndarray) -> float:
    """sum_i |p_i|^2 / m_i (eV) of momenta p (N, 3), inv_masses (N,) = 1 / m."""
    return float(np.einsum("ij,ij,i->", p, p, inv_masses))


def held_atoms(atoms) -> np.ndarray:
    """Boolean mask of the atoms a `FixAtoms` constraint holds."""
    held = np.zeros(len(atoms), dtype=bool)
    for c in atoms.constraints:
        if isinstance(c, FixAtoms):
            held[c.index] = True
    return held


class NoseHooverChain:
    """A Nose-Hoover chain acting on one set of momenta (atoms' or a cell's).

    ndof: degrees of freedom of those momenta; tau: damping time (ASE time
    units); masses Q_0 = ndof kT tau^2, Q_j = kT tau^2. `integrate` takes
    `twice_kinetic` (sum p^2 / m of the momenta now) and returns the factor
    by which the caller multiplies those momenta. ASE's
    `NoseHooverChainThermostat` and `MTKBarostat` chains (ASE scales the
    momenta at every sub-step and recomputes their kinetic energy; here the
    factors are multiplied up and the kinetic energy tracked through them:
    equal to ASE's to round-off, tests/test_md.py and tests/test_pull.py).
    """

    def __init__(self, ndof: int, kT: float, tau: float, length: int = 3, loops: int = 1):
        self.ndof, self.kT, self.loops = int(ndof), float(kT), int(loops)
        self.Q = np.full(length, kT * tau**2)
        self.Q[0] *= self.ndof
        self.eta = np.zeros(length)
        self.p_eta = np.zeros(length)

    def integrate(self, twice_kinetic: float, delta: float) -> float:
        """Advance the chain by delta; returns the momenta's scale factor."""
        # on Python floats (math.exp): it runs 12 times per MD step, where
        # numpy's per-scalar overhead was a tenth of a 1,000-atom step
        p_eta, eta, Q = self.p_eta.tolist(), self.eta.tolist(), self.Q.tolist()
        ke, factor = float(twice_kinetic), 1.0
        for _ in range(self.loops):
            for w in _SY4:
                f = self._substep(p_eta, eta, Q, ke, w * delta / self.loops)
                ke *= f * f
                factor *= f
        self.p_eta[:] = p_eta
        self.eta[:] = eta
        return factor

    def energy(self) -> float:
        """The chain's energy (eV)."""
        return float(self.ndof * self.kT * self.eta[0] + self.kT * self.eta[1:].sum()
                     + (0.5 * self.p_eta**2 / self.Q).sum())

    def _substep(self, p_eta: list, eta: list, Q: list, ke: float, delta: float) -> float:
        n = len(p_eta)
        for j in reversed(range(n)):
            self._kick(p_eta, Q, j, ke, delta)
        for j in range(n):
            eta[j] += delta * p_eta[j] / Q[j]
        f = math.exp(-delta * p_eta[0] / Q[0])
        ke *= f * f
        for j in range(n):
            self._kick(p_eta, Q, j, ke, delta)
        return f

    def _kick(self, p_eta, Q, j: int, twice_kinetic: float, delta: float) -> None:
        last = j == len(p_eta) - 1
        if not last:
            p_eta[j] *= math.exp(-delta / 4 * p_eta[j + 1] / Q[j + 1])
        if j == 0:
            g = twice_kinetic - self.ndof * self.kT
        else:
            g = p_eta[j - 1] ** 2 / Q[j - 1] - self.kT
        p_eta[j] += delta / 2 * g
        if not last:
            p_eta[j] *= math.exp(-delta / 4 * p_eta[j + 1] / Q[j + 1])


class NoseHooverChainNVT:
    """NVT of the atoms not held by `FixAtoms`; one force call per step.

    timestep, tdamp: ASE time units (fs * units.fs). State: `q`, `p`
    (positions and momenta of all atoms; held atoms have p = 0), `eta`,
    `p_eta` (the chain), restored by assigning them.
    """

    def __init__(self, atoms, timestep: float, temperature_K: float, tdamp: float, *, tchain: int = 3,
                 tloop: int = 1, after_drift: Optional[Callable[[np.ndarray], None]] = None):
        self.atoms = atoms
        self.dt = float(timestep)
        self.after_drift = after_drift
        self.free = ~held_atoms(atoms)
        self.masses = atoms.get_masses()[:, None]
        self.inv_masses = 1.0 / atoms.get_masses()
        self.kT = units.kB * temperature_K
        self.chain = NoseHooverChain(3 * int(self.free.sum()), self.kT, tdamp, tchain, tloop)
        self.q = atoms.get_positions()
        self.p = atoms.get_momenta()
        self.p[~self.free] = 0.0

    # the chain's state, as checkpoints store it
    eta = property(lambda self: self.chain.eta, lambda self, v: setattr(self.chain, "eta", v))
    p_eta = property(lambda self: self.chain.p_eta, lambda self, v: setattr(self.chain, "p_eta", v))

    # -- one step
    def step(self) -> None:
        half = self.dt / 2
        free, m = self.free, self.masses[self.free]
        self._chain(half)
        self.p[free] += half * self._forces()[free]
        self.q[free] += self.dt * self.p[free] / m
        if self.after_drift is not None:
            self.after_drift(self.q)
        self.p[free] += half * self._forces()[free]
        self._chain(half)
        self._update_atoms()

    def run(self, steps: int) -> None:
        for _ in range(steps):
            self.step()

    def thermostat_energy(self) -> float:
        """The chain's energy (eV): with the kinetic and potential energy, the
        conserved quantity."""
        return self.chain.energy()

    # -- parts
    def _update_atoms(self) -> None:
        # the held atoms' positions may move by prescription (a grip): bypass FixAtoms
        self.atoms.set_positions(self.q, apply_constraint=False)
        self.atoms.set_momenta(self.p, apply_constraint=False)

    def _forces(self) -> np.ndarray:
        self._update_atoms()
        return self.atoms.get_forces(md=True)

    def _chain(self, delta: float) -> None:
        # held atoms have p = 0: sums over all atoms are sums over the free ones
        self.p *= self.chain.integrate(twice_kinetic(self.p, self.inv_masses), delta)
