"""0 K elastic constants with matscipy: relaxed-ion 6x6 Cij and the moduli.

    from aenet_torch_ase.analysis.elastic import elastic_constants
    result = elastic_constants(atoms, AenetTorch("LiSi-Artrith2018"))
    result["C_GPa"], result["hill"]["young_GPa"], result["young_uniaxial_GPa"]

The cell is strained by +-delta in each of the six Voigt components
(matscipy's `fit_elastic_constants`, `N_steps` strains per component, a
linear fit of stress against strain); with `relax_ions` the atoms are
relaxed (FIRE to `fmax`) in every strained cell, giving the relaxed-ion
constants of an amorphous or multi-atom cell. From C (GPa; the ASE stress
convention, tension positive) and S = C^-1:

- Voigt, Reuss and Hill bulk K and shear G moduli; Hill's Young's modulus
  E = 9KG/(3K+G) and Poisson's ratio (3K-2G)/(2(3K+G)) (isotropic averages,
  what a glass should give in any direction);
- the uniaxial Young's modulus along x, y, z with lateral relaxation,
  E_i = 1/S_ii (what a tensile test along that axis measures at 0 K),
  and the Poisson ratios nu_ij = -S_ij/S_ii.

Units: GPa. The structure should be relaxed (forces and stress near zero)
first; the residual stress is reported.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from ase import units

from ..errors import StructureError


def voigt_reuss_hill(C: np.ndarray) -> dict:
    """Voigt, Reuss and Hill averages of a 6x6 stiffness matrix (GPa)."""
    C = np.asarray(C, dtype=float)
    S = np.linalg.inv(C)
    kv = (C[0, 0] + C[1, 1] + C[2, 2] + 2 * (C[0, 1] + C[0, 2] + C[1, 2])) / 9.0
    gv = (C[0, 0] + C[1, 1] + C[2, 2] - (C[0, 1] + C[0, 2] + C[1, 2]) + 3 * (C[3, 3] + C[4, 4] + C[5, 5])) / 15.0
    kr = 1.0 / (S[0, 0] + S[1, 1] + S[2, 2] + 2 * (S[0, 1] + S[0, 2] + S[1, 2]))
    gr = 15.0 / (4 * (S[0, 0] + S[1, 1] + S[2, 2]) - 4 * (S[0, 1] + S[0, 2] + S[1, 2]) + 3 * (S[3, 3] + S[4, 4] + S[5, 5]))
    out = {}
    for name, k, g in (("voigt", kv, gv), ("reuss", kr, gr), ("hill", (kv + kr) / 2, (gv + gr) / 2)):
        out[name] = {"bulk_GPa": float(k), "shear_GPa": float(g), "young_GPa": float(9 * k * g / (3 * k + g)),
                     "poisson": float((3 * k - 2 * g) / (2 * (3 * k + g)))}
    return out


def uniaxial_moduli(C: np.ndarray) -> dict:
    """Young's moduli along x, y, z with free lateral faces (1/S_ii, GPa) and Poisson ratios."""
    S = np.linalg.inv(np.asarray(C, dtype=float))
    e = {axis: float(1.0 / S[k, k]) for k, axis in enumerate("xyz")}
    nu = {f"{'xyz'[i]}{'xyz'[j]}": float(-S[i, j] / S[i, i]) for i in range(3) for j in range(3) if i != j}
    return {"young_GPa": e, "poisson": nu}


def elastic_constants(atoms, calc, *, delta: float = 0.005, steps: int = 5, relax_ions: bool = True,
                      fmax: float = 1e-3, symmetry: str = "triclinic") -> dict:
    """Relaxed-ion (or clamped-ion) elastic constants of `atoms` with `calc` (see module docstring)."""
    from ase.optimize import FIRE
    from matscipy.elasticity import fit_elastic_constants

    if not (atoms.pbc.all() and atoms.cell.rank == 3):
        raise StructureError("elastic constants need a periodic cell (pbc on all three axes)")
    if not 0 < delta < 0.1:
        raise StructureError(f"strain step delta must be between 0 and 0.1, got {delta}")
    a = atoms.copy()
    a.calc = calc
    residual = a.get_stress(voigt=True) / units.GPa
    kwargs = {"optimizer": FIRE, "fmax": fmax} if relax_ions else {"optimizer": None}
    C, C_err = fit_elastic_constants(a, symmetry=symmetry, N_steps=steps, delta=delta, verbose=False, **kwargs)
    C = np.asarray(C) / units.GPa
    C_err = np.asarray(C_err) / units.GPa
    return {
        "atoms": len(atoms), "formula": atoms.get_chemical_formula(mode="metal"),
        "relaxed_ions": bool(relax_ions), "strain_step": delta, "strains_per_component": steps, "fmax_eV_per_A": fmax,
        "residual_stress_GPa": residual.tolist(),
        "C_GPa": C.tolist(), "C_stderr_GPa": C_err.tolist(),
        **voigt_reuss_hill(C),
        "young_uniaxial_GPa": uniaxial_moduli(C)["young_GPa"],
        "poisson_uniaxial": uniaxial_moduli(C)["poisson"],
        "units": "GPa; Voigt order xx yy zz yz xz xy; stress positive in tension",
    }


def write_report(result: dict, path) -> Path:
    from ..io.atomic_write import atomic_write_text

    path = Path(path)
    atomic_write_text(str(path), json.dumps(result, indent=2) + "\n")
    return path


def format_report(result: dict) -> str:
    C = np.array(result["C_GPa"])
    lines = [f"{result['formula']} ({result['atoms']} atoms), {'relaxed' if result['relaxed_ions'] else 'clamped'} "
             f"ions, strain +-{result['strain_step']}: elastic constants C_ij (GPa, Voigt xx yy zz yz xz xy)"]
    lines += ["  " + " ".join(f"{x:8.1f}" for x in row) for row in C]
    h = result["hill"]
    lines.append(f"Hill: K = {h['bulk_GPa']:.1f} GPa, G = {h['shear_GPa']:.1f} GPa, E = {h['young_GPa']:.1f} GPa, "
                 f"nu = {h['poisson']:.3f} (Voigt E {result['voigt']['young_GPa']:.1f}, Reuss E "
                 f"{result['reuss']['young_GPa']:.1f})")
    e = result["young_uniaxial_GPa"]
    lines.append(f"uniaxial Young's modulus (lateral faces free): x {e['x']:.1f}, y {e['y']:.1f}, z {e['z']:.1f} GPa")
    return "\n".join(lines)
