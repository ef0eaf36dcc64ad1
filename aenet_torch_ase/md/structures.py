"""Structure models: crystal supercells, amorphous alloys, spherical nanoparticles.

Lengths in Angstrom, densities in g/cm^3, temperatures in K, times in fs.

    bulk("Li13Si4", size=(106, 126, 120))             # ~95,000-atom supercell
    amorphous("LiSi3", 512, calc)                      # random placement + melt-quench
    nanoparticle(bulk("LiSi", n_atoms=20000), 30.0)    # R = 30 A sphere
"""

from __future__ import annotations

import itertools
import math
import os
import re
from pathlib import Path
from typing import Dict, Optional, Sequence, Union

import numpy as np
from ase import Atoms, units
from ase.data import atomic_masses, atomic_numbers

from ..errors import StructureError
from ..neighbors import cell_heights

DATA = Path(__file__).resolve().parents[1] / "data" / "structures"

#: packaged crystal structures (see data/structures/README.md for sources and licence)
CRYSTALS = {
    "Li13Si4": "Li13Si4_Pbam.cif",
    "LiSi": "LiSi_I41a.cif",
    "Li15Si4": "Li15Si4_I-43d.cif",
    "Li12Si7": "Li12Si7_Pnma.cif",
    "Li7Si3": "Li7Si3_P3212.cif",
}

# Atomic volumes for the Li-Si density interpolation (A^3 per atom):
# a-Si at 2.28 g/cm^3, and the Li15Si4 crystal (the fully lithiated phase)
# whose volume per Si, minus that of Si, gives the volume each Li adds.
# The volume of LixSi per Si is then linear in x (close to what is observed
# for lithiated silicon up to Li15Si4).
_V_SI = atomic_masses[atomic_numbers["Si"]] / (2.28 * units.mol / 1e24)
_V_LI15SI4_PER_SI = 1179.608 / 16
_V_LI_IN_ALLOY = (_V_LI15SI4_PER_SI - _V_SI) / 3.75


def crystal(name: str) -> Atoms:
    """A packaged Li-Si crystal by phase name ('Li13Si4', 'LiSi', 'Li15Si4',
    'Li12Si7', 'Li7Si3'), or any structure file ASE reads."""
    import ase.io

    if name in CRYSTALS:
        return ase.io.read(DATA / CRYSTALS[name])
    if os.path.isfile(name):
        return ase.io.read(name)
    raise StructureError(
        f"unknown crystal {name!r}: use one of {sorted(CRYSTALS)} or a structure file path "
        f"(no LiSi3 crystal is known: make it with amorphous('LiSi3', ...))"
    )


def parse_composition(composition: Union[str, Dict[str, float]]) -> Dict[str, float]:
    """'Li13Si4' or {'Li': 13, 'Si': 4} -> {'Li': 13.0, 'Si': 4.0}."""
    if isinstance(composition, dict):
        out = {str(k): float(v) for k, v in composition.items() if v > 0}
    else:
        tokens = re.findall(r"([A-Z][a-z]?)(\d*\.?\d*)", composition)
        if not tokens or "".join(s + n for s, n in tokens) != composition.replace(" ", ""):
            raise StructureError(f"cannot read composition {composition!r}; write it like 'Li13Si4'")
        out = {}
        for sym, num in tokens:
            out[sym] = out.get(sym, 0.0) + (float(num) if num else 1.0)
    for sym in out:
        if sym not in atomic_numbers:
            raise StructureError(f"{sym!r} in composition {composition!r} is not an element")
    if not out:
        raise StructureError(f"composition {composition!r} has no atoms")
    return out


def lisi_volume_per_atom(composition) -> float:
    """Estimated atomic volume (A^3) of amorphous LixSi: a-Si (2.28 g/cm^3) and
    Li15Si4, linear in x per Si. Only for compositions of Li and Si."""
    comp = parse_composition(composition)
    if set(comp) - {"Li", "Si"}:
        raise StructureError(f"no density estimate for {comp}: pass density= (g/cm^3)")
    n_li, n_si = comp.get("Li", 0.0), comp.get("Si", 0.0)
    return (n_si * _V_SI + n_li * _V_LI_IN_ALLOY) / (n_li + n_si)


def density_of(atoms: Atoms) -> float:
    """Mass density in g/cm^3 of a cell."""
    return atoms.get_masses().sum() / units.mol / (atoms.get_volume() * 1e-24)


def bulk(source, *, n_atoms: Optional[int] = None, size: Optional[Sequence[float]] = None) -> Atoms:
    """Supercell of a crystal (phase name, file, or Atoms).

    n_atoms: target atom count; the box is kept as close to cubic as the
        repeats allow. size: target box lengths (A) along the three cell
        vectors (face-to-face widths for non-orthogonal cells).
    The chosen repeats are in `atoms.info['repeats']`.
    """
    unit = source.copy() if isinstance(source, Atoms) else crystal(str(source))
    if unit.cell.rank != 3:
        raise StructureError("bulk() needs a periodic unit cell with three lattice vectors")
    h = cell_heights(unit.cell.array)
    if (n_atoms is None) == (size is None):
        raise StructureError("give exactly one of n_atoms= or size=")
    if size is not None:
        size = np.asarray(size, dtype=float)
        if size.shape != (3,) or (size <= 0).any():
            raise StructureError(f"size must be three positive lengths in A, got {size}")
        reps = np.maximum(1, np.rint(size / h)).astype(int)
    else:
        if n_atoms < len(unit):
            raise StructureError(f"n_atoms={n_atoms} is smaller than the unit cell ({len(unit)} atoms)")
        edge = (n_atoms / len(unit) * unit.get_volume()) ** (1 / 3)
        ranges = [range(max(1, math.floor(edge / hk) - 1), math.ceil(edge / hk) + 2) for hk in h]
        best, best_score = None, np.inf
        for r in itertools.product(*ranges):
            count = len(unit) * np.prod(r)
            lengths = np.array(r) * h
            score = abs(math.log(count / n_atoms)) + 0.1 * np.std(np.log(lengths))
            if score < best_score:
                best, best_score = r, score
        reps = np.array(best)
    atoms = unit.repeat(tuple(int(r) for r in reps))
    atoms.info["repeats"] = tuple(int(r) for r in reps)
    return atoms


def random_alloy(composition, n_atoms: int, *, density: Optional[float] = None,
                 min_distance: float = 2.0, seed: int = 0, max_tries: int = 10000) -> Atoms:
    """Atoms of `composition` placed at random in a cubic periodic box at
    `density` (g/cm^3; default the Li-Si estimate), no two closer than
    `min_distance` (A). Random sequential placement, vectorised: each round
    draws positions for all atoms not yet placed and keeps those that clash
    with nothing placed so far.""" 
    from scipy.spatial import cKDTree

    comp = parse_composition(composition)
    total = sum(comp.values())
    counts = {s: int(round(n_atoms * c / total)) for s, c in comp.items()}
    diff = n_atoms - sum(counts.values())
    counts[max(comp, key=comp.get)] += diff
    symbols = [s for s, c in counts.items() for _ in range(c)]
    rng = np.random.default_rng(seed)
    rng.shuffle(symbols)
    atoms = Atoms(symbols)
    if density is None:
        volume = lisi_volume_per_atom(comp) * n_atoms
    else:
        volume = atoms.get_masses().sum() / units.mol / (density * 1e-24)
    edge = volume ** (1 / 3)
    atoms.set_cell([edge] * 3)
    atoms.pbc = True
    pos = np.zeros((n_atoms, 3))
    placed = np.zeros(n_atoms, dtype=bool)
    for _ in range(max_tries):
        todo = np.flatnonzero(~placed)
        if len(todo) == 0:
            break
        trial = rng.random((len(todo), 3)) * edge
        ok = np.ones(len(todo), dtype=bool)
        if placed.any():  # far enough from every atom already placed
            dist, _ = cKDTree(pos[placed], boxsize=edge).query(trial, distance_upper_bound=min_distance)
            ok = ~np.isfinite(dist)
        close = cKDTree(trial, boxsize=edge).query_pairs(min_distance, output_type="ndarray")
        if len(close):  # and from the other new ones: keep the first of each close pair
            ok[np.unique(close.max(axis=1))] = False
        pos[todo[ok]] = trial[ok]
        placed[todo[ok]] = True
    else:
        raise StructureError(
            f"could not place {n_atoms} atoms {min_distance} A apart at this density: lower min_distance"
        )
    atoms.positions = pos
    return atoms


def melt_quench(atoms: Atoms, calc, *, t_melt: float = 2000.0, t_final: float = 300.0,
                melt_time: float = 2000.0, quench_time: float = 5000.0, timestep: float = 1.0,
                friction: float = 0.01, fmax: float = 0.05, relax_steps: int = 500,
                seed: int = 0, progress: bool = True, guard: Optional[float] = None) -> Atoms:
    """Melt at `t_melt`, cool linearly to `t_final` (Langevin NVT, fixed box),
    then minimise the energy (FIRE to `fmax` eV/A). Times in fs, friction in
    1/fs. Returns the structure (a copy) with `calc` attached.

    guard: a distance r0 (A): melt and quench with a repulsive wall on pairs
    closer than r0 added to `calc` (`guard.ShortRangeWall`), for potentials
    with a hole at short range (the published Li-Si potential: 1.5); the
    final minimisation uses `calc` alone, and a pair left below r0 raises
    StructureError."""
    from ase.md.langevin import Langevin
    try:  # ASE >= 3.29
        from ase.md.velocitydistribution import thermalize_momenta
    except ImportError:
        from ase.md.velocitydistribution import MaxwellBoltzmannDistribution as thermalize_momenta
    from ase.optimize import FIRE
    from tqdm import tqdm

    from .guard import guarded

    atoms = atoms.copy()
    atoms.calc = calc if guard is None else guarded(calc, guard)
    rng = np.random.default_rng(seed)
    thermalize_momenta(atoms, temperature_K=t_melt, rng=rng)
    dyn = Langevin(atoms, timestep * units.fs, temperature_K=t_melt, friction=friction / units.fs,
                   fixcm=False, rng=rng)  # the centre of mass may drift: it does not matter here
    n_melt = int(round(melt_time / timestep))
    n_quench = int(round(quench_time / timestep))
    segment = max(1, n_quench // 100)  # temperature updated 100 times during the quench
    with tqdm(total=n_melt + n_quench, desc="melt-quench", unit="step", disable=not progress) as bar:
        done = 0
        while done < n_melt:
            k = min(200, n_melt - done)
            dyn.run(k)
            done += k
            bar.update(k)
        done = 0
        while done < n_quench:
            k = min(segment, n_quench - done)
            dyn.set_temperature(temperature_K=t_melt + (t_final - t_melt) * (done + k) / n_quench)
            dyn.run(k)
            done += k
            bar.update(k)
    atoms.calc = calc
    FIRE(atoms, logfile=None).run(fmax=fmax, steps=relax_steps)
    if guard is not None:
        closest = closest_pair(atoms)
        if closest < guard:
            raise StructureError(f"melt-quench with a wall at {guard:g} A: two atoms are {closest:.2f} A apart "
                                 f"after the final minimisation without the wall; the potential has a hole there: "
                                 f"quench more slowly or to a lower temperature, or use another potential")
    return atoms


def closest_pair(atoms: Atoms, search: float = 3.0) -> float:
    """Closest pair distance (A), periodic images included (inf if none within `search` A)."""
    from .guard import neighbours

    d = neighbours("d", atoms, search)
    return float(d.min()) if d.size else float("inf")


def amorphous(composition, n_atoms: int, calc, *, density: Optional[float] = None,
              min_distance: float = 2.0, seed: int = 0, **quench) -> Atoms:
    """Amorphous alloy of any composition (e.g. 'LiSi3'): random placement
    (`random_alloy`) then `melt_quench` with `calc` (keyword arguments pass
    through: t_melt, t_final, melt_time, quench_time, timestep, ...)."""
    start = random_alloy(composition, n_atoms, density=density, min_distance=min_distance, seed=seed)
    return melt_quench(start, calc, seed=seed, **quench)


def amorphize(atoms: Atoms, calc, **quench) -> Atoms:
    """Melt-quench an existing (e.g. crystalline) structure at its density."""
    return melt_quench(atoms, calc, **quench)


def nanoparticle(bulk_atoms: Atoms, radius: float, *, center=None, vacuum: float = 10.0) -> Atoms:
    """All atoms (periodic images included) within `radius` (A) of `center`.

    center: Cartesian point in the bulk (default: the cell centre). The
    particle sits in the middle of a non-periodic cubic box of edge
    2 (radius + vacuum). `atoms.info` reports the composition obtained
    against the bulk's: 'composition', 'bulk_composition', 'radius', and
    the bulk's volume per atom 'atomic_volume' (A^3; the pull test's
    cross-section uses it).
    """
    if bulk_atoms.cell.rank != 3 or not bulk_atoms.pbc.all():
        raise StructureError("nanoparticle() cuts from a periodic bulk structure (pbc in all directions)")
    if radius <= 0:
        raise StructureError(f"radius must be positive, got {radius}")
    cell = bulk_atoms.cell.array
    c = cell.sum(0) / 2 if center is None else np.asarray(center, dtype=float)
    frac = bulk_atoms.cell.scaled_positions(bulk_atoms.positions)
    frac -= np.floor(frac)
    pos0 = frac @ cell
    h = cell_heights(cell)
    n = np.ceil(radius / h).astype(int) + 1
    grid = np.stack(np.meshgrid(*[np.arange(-k, k + 1) for k in n], indexing="ij"), -1).reshape(-1, 3)
    shifts = grid @ cell
    # keep only translations whose cell can reach the sphere (bounds memory)
    cell_center = cell.sum(0) / 2
    reach = radius + np.linalg.norm(cell.sum(0)) + np.linalg.norm(cell, axis=1).sum()
    shifts = shifts[np.linalg.norm(shifts + cell_center - c, axis=1) <= reach]
    rel = pos0[None, :, :] + shifts[:, None, :] - c  # (n_shifts, N, 3)
    inside = np.linalg.norm(rel, axis=2) <= radius
    which = np.nonzero(inside)
    numbers = bulk_atoms.numbers[which[1]]
    edge = 2 * (radius + vacuum)
    particle = Atoms(numbers=numbers, positions=rel[which] + edge / 2, cell=[edge] * 3, pbc=False)
    particle.info["radius"] = float(radius)
    particle.info["atomic_volume"] = float(bulk_atoms.get_volume() / len(bulk_atoms))  # A^3, for the pull stress
    particle.info["composition"] = _fractions(particle)
    particle.info["bulk_composition"] = _fractions(bulk_atoms)
    return particle


def _fractions(atoms: Atoms) -> Dict[str, float]:
    symbols = atoms.get_chemical_symbols()
    return {s: symbols.count(s) / len(symbols) for s in sorted(set(symbols))}
