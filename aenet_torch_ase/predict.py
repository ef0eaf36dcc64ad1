"""`aenet-torch predict`: a drop-in for aenet's `predict.x`.

Reads the same `predict.in`, evaluates every structure with `AenetTorch`
and prints, per structure, the cohesive and total energy (eV), with FORCES
the forces (eV/A) and with PRINT_ATOMIC_ENERGIES the per-atom energies (eV),
in predict.x's layout.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import List, Optional, TextIO

import numpy as np
from tqdm import tqdm

from .calculator import AenetTorch
from .errors import InputFileError
from .io.input_files import read_predict_in
from .io.xsf import read_structure

_RULE = " " + "+" * 70


def format_structure(number: int, name: str, atoms, calc: AenetTorch, forces: bool, atomic: bool) -> str:
    energy = atoms.get_potential_energy()
    e_atom = {s: calc.nn_files[s].e_atom_of(s) for s in calc.elements}
    cohesive = energy - sum(e_atom[s] for s in atoms.get_chemical_symbols())
    out = [
        f" Structure number  : {number}",
        f" File name         : {name}",
        f" Number of atoms   : {len(atoms)}",
        f" Number of species : {len(set(atoms.get_chemical_symbols()))}",
        "",
    ]
    if atoms.cell.rank == 3 and atoms.pbc.any():
        out.append(" Lattice vectors (Angstrom):\n")
        for label, v in zip("abc", atoms.cell.array):
            out.append(f"   {label} = ( {v[0]:17.8f}{v[1]:17.8f}{v[2]:17.8f} )")
        out.append("")
    if forces or atomic:
        f = atoms.get_forces()
        ea = atoms.get_potential_energies()
        head = "          x             y             z     "
        head += "        Fx           Fy            Fz      " if forces else ""
        head += "     E_i" if atomic else ""
        out += [" Cartesian atomic coordinates (input)" + (" and corresponding atomic forces:" if forces else ":"), "", head]
        out.append(" " + "-" * (len(head) - 1))
        for k, (s, p) in enumerate(zip(atoms.get_chemical_symbols(), atoms.positions)):
            row = f" {s:<3s}{p[0]:14.6f}{p[1]:14.6f}{p[2]:14.6f}"
            if forces:
                row += f"{f[k, 0]:14.6f}{f[k, 1]:13.6f}{f[k, 2]:14.6f}"
            if atomic:
                row += f"{ea[k]:16.6f}"
            out.append(row)
        out.append("")
    out += [
        f" Cohesive energy            : {cohesive:21.8f} eV",
        f" Total energy               : {energy:21.8f} eV",
    ]
    if forces:
        f = atoms.get_forces()
        imax = int(np.argmax(np.linalg.norm(f, axis=1)))
        mean = f.mean(0)
        out += [
            f" Mean force (must be zero)  : {mean[0]:13.6f} {mean[1]:13.6f} {mean[2]:13.6f}",
            f" Maximum force              : {f[imax, 0]:13.6f} {f[imax, 1]:13.6f} {f[imax, 2]:13.6f}",
            f" RMS force                  : {np.sqrt((f**2).sum(1).mean()):13.6f}",
            f" The maximum force is acting on atom {imax + 1}.",
            " All forces are given in eV/Angstrom.",
        ]
    out += ["", _RULE, ""]
    return "\n".join(out)


def relax(atoms, settings: dict):
    """RELAX section: ASE optimiser to F_conv (eV/A) within `steps` steps."""
    from ase.optimize import BFGS, FIRE, LBFGS

    methods = {"bfgs": BFGS, "lbfgs": LBFGS, "fire": FIRE}
    name = settings.get("method", "bfgs").lower()
    if name not in methods:
        raise InputFileError(f"RELAX method={name!r} is not available; use one of {sorted(methods)}")
    fmax = float(settings.get("f_conv", 0.01))
    steps = int(settings.get("steps", 99))
    opt = methods[name](atoms, logfile=None)
    converged = opt.run(fmax=fmax, steps=steps)
    return converged


def run_predict(predict_in, structures: Optional[List[str]] = None, *, angular: str = "2.0.4",
                device: str = "cpu", out: Optional[TextIO] = None) -> None:
    """Evaluate the structures of `predict_in` (or `structures`) and print
    the predict.x-style report to `out`."""
    out = sys.stdout if out is None else out
    inp = read_predict_in(predict_in)
    calc = AenetTorch({t: inp.networks[t] for t in inp.types}, angular=angular, device=device)
    files = [Path(s) for s in structures] if structures else inp.files
    if not files:
        raise InputFileError(f"{predict_in}: no FILES section and no structure given on the command line")
    out.write(f" Species: {' '.join(calc.elements)}  (angular convention: {calc.angular})\n\n")
    show_bar = len(files) > 1 and out is not sys.stderr
    for number, path in enumerate(tqdm(files, desc="structures", disable=not show_bar, file=sys.stderr), 1):
        atoms = read_structure(path)
        atoms.calc = calc
        if inp.relax is not None:
            if not relax(atoms, inp.relax):
                out.write(f" WARNING: relaxation of {path} did not converge\n")
        out.write(format_structure(number, str(path), atoms, calc, inp.forces, inp.print_atomic_energies))
        out.write("\n")
