"""Per-atom stress and energy of saved frames, recomputed with a calculator.

LAMMPS's `pair_style aenet` gives no per-atom virial (and no meaningful
per-atom energy), so the deck dumps positions and velocities only; this
module recomputes, for every frame, what the ASE runner writes itself:

- `stress_GPa` (N, 9): per-atom virial stress in GPa, tension positive,
  atomic volume V/N (potential part from the calculator's `stresses`,
  kinetic part -m v (x) v from the frame's velocities), exactly
  `md.stress.atomic_stress_gpa`; its mean over the atoms is the global
  virial stress (LAMMPS's -p, in GPa);
- `energy_eV` (N,): per-atom energies (the calculator's `energies`).
"""

from __future__ import annotations

from typing import List, Sequence

import numpy as np

from ..md.stress import atomic_stress_gpa


def recompute_atomic_stress(frames: Sequence, calc, progress: bool = False) -> List:
    """Copies of `frames` with arrays `stress_GPa` (N, 9) and `energy_eV` (N,).

    calc: a calculator giving `stresses` and `energies` (AenetTorch). Frames
    need a cell with a volume; velocities (if any) give the kinetic term."""
    from tqdm import tqdm

    from ..errors import StructureError

    out = []
    for k, frame in enumerate(tqdm(frames, desc="per-atom stress", unit="frame", disable=not progress)):
        if frame.cell.rank < 3:
            raise StructureError(f"frame {k} has no cell volume: per-atom stress needs a periodic box")
        atoms = frame.copy()
        atoms.calc = calc
        stress = atomic_stress_gpa(atoms)
        energies = atoms.get_potential_energies()
        result = frame.copy()
        result.calc = None
        result.arrays["stress_GPa"] = stress.reshape(len(atoms), 9)
        result.arrays["energy_eV"] = np.asarray(energies, dtype=float)
        out.append(result)
    return out
