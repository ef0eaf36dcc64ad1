"""XSF structures in aenet's convention (spec 3.5).

aenet's XSF files differ from the XSF standard that `ase.io.read` follows:
the energy is a comment `# total energy = ... eV`, forces are in eV/A (ASE
would multiply them by Hartree, a 27x error), and the element column holds
chemical symbols. Use `read_xsf` for aenet files.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Optional

import numpy as np
from ase import Atoms
from ase.calculators.singlepoint import SinglePointCalculator
from ase.data import chemical_symbols

from ..errors import InputFileError
from .atomic_write import atomic_write_text

_NUMBER = re.compile(r"=\s*([-+0-9.eEdD]+)")


def _energy_after(line: str, path, number) -> float:
    m = _NUMBER.search(line)
    if not m:
        raise InputFileError(f"{path}, line {number}: no number after '=' in {line.strip()!r}")
    return float(m.group(1).replace("d", "e").replace("D", "e"))


def read_xsf(path) -> Atoms:
    """Read an aenet XSF file.

    Returns Atoms with positions (A), cell and pbc (periodic iff PRIMVEC),
    and, when present, a SinglePointCalculator holding the total energy (eV)
    and forces (eV/A). `atoms.info` gets `aenet_total_energy` and
    `aenet_cohesive_energy` where the file has them.
    """
    path = Path(path)
    try:
        lines = path.read_text().splitlines()
    except (OSError, UnicodeDecodeError) as err:
        raise InputFileError(f"cannot read XSF file {path}: {err}") from err
    total = cohesive = None
    cell = None
    atom_lines = None
    crystal_line = None
    k = 0
    while k < len(lines):
        line = lines[k]
        if "total energy" in line:
            total = _energy_after(line, path, k + 1)
        elif "cohesive energy" in line:
            cohesive = _energy_after(line, path, k + 1)
        key = line.strip().upper()
        if key == "CRYSTAL":
            crystal_line = k + 1
        if key == "PRIMVEC":
            try:
                cell = np.array([[float(x) for x in lines[k + d].split()[:3]] for d in (1, 2, 3)])
            except (IndexError, ValueError):
                raise InputFileError(f"{path}, line {k + 2}: PRIMVEC needs three lines of 3 numbers") from None
            k += 3
        elif key == "PRIMCOORD":
            try:
                count = int(lines[k + 1].split()[0])
            except (IndexError, ValueError):
                raise InputFileError(f"{path}, line {k + 2}: PRIMCOORD needs the atom count") from None
            atom_lines = (k + 2, lines[k + 2 : k + 2 + count])
            if len(atom_lines[1]) < count:
                raise InputFileError(f"{path}: PRIMCOORD announces {count} atoms, file has fewer lines")
            after = k + 2 + count
            if after < len(lines) and _looks_like_atom_line(lines[after]):
                raise InputFileError(f"{path}, line {after + 1}: PRIMCOORD announces {count} atoms but more atom "
                                     f"lines follow: correct the count (line {k + 2})")
            k += 1 + count
        elif key == "ATOMS":
            block = []
            j = k + 1
            while j < len(lines) and lines[j].strip():
                block.append(lines[j])
                j += 1
            atom_lines = (k + 1, block)
            k = j
        k += 1
    if atom_lines is None:
        raise InputFileError(f"{path}: no PRIMCOORD or ATOMS block: not an XSF structure")
    if crystal_line is not None and cell is None:
        raise InputFileError(f"{path}, line {crystal_line}: CRYSTAL without PRIMVEC: a periodic structure needs "
                             f"its lattice vectors (PRIMVEC and three lines); for a molecule use ATOMS")
    first, block = atom_lines
    symbols, positions, forces = [], [], []
    has_forces = None
    for n, line in enumerate(block):
        cols = line.split()
        number = first + n + 1
        if len(cols) < 4:
            raise InputFileError(f"{path}, line {number}: atom line needs 'symbol x y z [fx fy fz]'")
        sym = cols[0]
        if sym not in chemical_symbols[1:]:
            hint = " (aenet XSF files name elements by symbol, not atomic number)" if sym.isdigit() else ""
            raise InputFileError(f"{path}, line {number}: {sym!r} is not a chemical symbol{hint}")
        try:
            values = [float(x) for x in cols[1:7]]
        except ValueError:
            raise InputFileError(f"{path}, line {number}: non-numeric coordinates {line.strip()!r}") from None
        if len(values) not in (3, 6):
            raise InputFileError(f"{path}, line {number}: atom line needs 'symbol x y z [fx fy fz]', "
                                 f"got {len(values)} numbers")
        line_has_forces = len(values) == 6
        if has_forces is None:
            has_forces = line_has_forces
        elif line_has_forces != has_forces:
            raise InputFileError(f"{path}, line {number}: this atom line {'has' if line_has_forces else 'lacks'} "
                                 f"force columns but the first atom line {'does not' if line_has_forces else 'does'}:"
                                 f" give forces for every atom or for none")
        symbols.append(sym)
        positions.append(values[:3])
        forces.append(values[3:6] if line_has_forces else [np.nan] * 3)
    atoms = Atoms(symbols=symbols, positions=positions)
    if cell is not None:
        atoms.set_cell(cell)
        atoms.pbc = True
    forces = np.array(forces)
    if has_forces and np.isfinite(forces).all():
        f_out: Optional[np.ndarray] = forces
    else:
        f_out = None
    if total is not None:
        atoms.info["aenet_total_energy"] = total
    if cohesive is not None:
        atoms.info["aenet_cohesive_energy"] = cohesive
    if total is not None or f_out is not None:
        atoms.calc = SinglePointCalculator(atoms, energy=total, forces=f_out)
    return atoms


def _looks_like_atom_line(line: str) -> bool:
    cols = line.split()
    if len(cols) < 4 or cols[0] not in chemical_symbols[1:]:
        return False
    try:
        [float(x) for x in cols[1:4]]
    except ValueError:
        return False
    return True


def write_xsf(path, atoms: Atoms, energy: Optional[float] = None, forces=None) -> None:
    """Write `atoms` as aenet XSF (symbols, A, eV, eV/A), atomically."""
    out = []
    if energy is not None:
        out.append(f"# total energy = {energy:.10f} eV\n\n")
    periodic = bool(np.any(atoms.pbc)) and atoms.cell.rank == 3
    if periodic:
        out.append("CRYSTAL\nPRIMVEC\n")
        for v in atoms.cell.array:
            out.append("  " + " ".join(f"{x:16.10f}" for x in v) + "\n")
        out.append(f"PRIMCOORD\n{len(atoms)} 1\n")
    else:
        out.append("ATOMS\n")
    for k, (s, p) in enumerate(zip(atoms.get_chemical_symbols(), atoms.positions)):
        row = f"{s:<3s}" + "".join(f"{x:16.10f}" for x in p)
        if forces is not None:
            row += "".join(f"{x:16.10f}" for x in forces[k])
        out.append(row + "\n")
    atomic_write_text(str(path), "".join(out))


def read_structure(path) -> Atoms:
    """Read one structure: aenet XSF by this module's reader (eV, eV/A), any
    other format through `ase.io.read` (last frame)."""
    path = Path(path)
    if not path.is_file():
        raise InputFileError(f"structure file {path} does not exist")
    if path.suffix.lower() == ".xsf":
        return read_xsf(path)
    import ase.io

    try:
        return ase.io.read(path)
    except Exception as err:  # ASE raises many kinds for unreadable files
        raise InputFileError(f"cannot read structure {path} with ASE: {err}") from err
