"""`AenetTorch`: ASE calculator for aenet potentials, evaluated with PyTorch.

    from aenet_torch_ase import AenetTorch
    atoms.calc = AenetTorch({"Li": "Li.nn", "Si": "Si.nn"})
    atoms.get_potential_energy()   # eV
    atoms.get_forces()             # eV/A
    atoms.get_stress()             # eV/A^3, Voigt (xx yy zz yz xz xy), ASE sign

Energies and forces equal aenet 2.0.4's `predict.x` to round-off ("Total
energy", including the atomic reference energies of the `.nn` files).
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import threading
import zipfile
from pathlib import Path
from typing import Dict, Optional

import numpy as np
import torch
from ase.calculators.calculator import Calculator, all_changes
from ase.data import chemical_symbols
from ase.stress import full_3x3_to_voigt_6_stress

from . import __version__
from ._allocator import keep_freed_memory
from .errors import PotentialFileError, ResultError, SpeciesError, StructureError
from .io.atomic_write import atomic_write_bytes
from .io.nn_ascii import write_nn_ascii
from .io.nn_binary import nn_to_bytes, parse_nn_bytes, write_nn
from .io.nn_file import NNFile
from .io.potential_files import read_potential
from .pretrained import is_pretrained_name, pretrained_path
from .neighbors import DEFAULT_MAX_PAIRS, NeighborList, check_cell_images
from .potential import compiled_kernels
from .potential.build import build_model, model_to_nn_files
from .potential.evaluate import evaluate

_ARCHIVE_META = "aenet_potential.json"


def _is_torchscript_file(spec) -> bool:
    return isinstance(spec, (str, os.PathLike)) and Path(spec).is_file() and str(spec).endswith((".pt", ".pth"))


def _smallest_singular_value_bound(cell: np.ndarray) -> float:
    """A lower bound on the smallest singular value of a 3 x 3 cell (0 if
    singular): 1 / |C^-1|_F, a tenth of an SVD's time."""
    if np.linalg.det(cell) == 0.0:
        return 0.0
    return 1.0 / float(np.linalg.norm(np.linalg.inv(cell)))


class AenetTorch(Calculator):
    """ASE calculator for aenet (Chebyshev descriptor + per-species networks).

    Args:
        potential: `{symbol: path}` of binary `.nn` or `.nn.ascii` files, a
            directory holding one file per species, a `model.pt` written
            by `save()`, or the name of a bundled potential ("LiSi-demo").
            A model.pt is rebuilt from the `.nn` records it carries: no code
            from the archive runs unless `trust_code=True`.
        device: torch device ("cpu", "cuda", ...).
        dtype: torch.float64 (default; matches aenet to round-off) or torch.float32.
        angular: "2.0.4" (default, aenet >= 2.0.4) or "legacy" for potentials
            trained with older aenet (x = 2 cos(theta)/pi - 1).
        chunk_pairs: pairs evaluated at once; bounds memory for large systems
            (default: 131,072 with the torch kernels, 2,097,152 with the compiled ones).
        trust_code: run the TorchScript code stored in a model.pt instead of
            rebuilding the model from its `.nn` records. Only for archives
            you made or trust: TorchScript can read and write files.
        max_pairs: refuse structures whose neighbour list would hold more
            pairs than this (a thin periodic cell can ask for billions).
        skin: Angstrom. The neighbour list is built for cutoff + skin and
            reused while no pair can have crossed the cutoff (atoms moved
            less than half the skin, the cell deformed within what the skin
            covers, same atoms and pbc): exact, and MD steps skip most list
            builds. 0 builds a new list at every call.

    One calculator may be shared by several threads: calls are serialised
    (each thread gets the results of its own structure).

    Results: energy, free_energy (eV), energies (eV per atom), forces (eV/A),
    stress (eV/A^3, Voigt, positive = tensile) and stresses (per-atom virial
    divided by the cell volume, eV/A^3, Voigt; they sum to `stress`). Stress
    is given when the cell has a nonzero volume.
    """

    implemented_properties = ["energy", "free_energy", "energies", "forces", "stress", "stresses"]

    def __init__(
        self,
        potential,
        *,
        device="cpu",
        dtype=torch.float64,
        angular: str = "2.0.4",
        chunk_pairs: Optional[int] = None,
        trust_code: bool = False,
        max_pairs: int = DEFAULT_MAX_PAIRS,
        skin: float = 1.0,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self._lock = threading.RLock()
        keep_freed_memory()
        self.device = torch.device(device)
        self.dtype = dtype
        self.chunk_pairs = None if chunk_pairs is None else int(chunk_pairs)
        self.max_pairs = int(max_pairs)
        if is_pretrained_name(potential):
            potential = pretrained_path(potential)
        if _is_torchscript_file(potential):
            model, nn_files, angular = _load_archive(potential, trust_code=trust_code)
        else:
            nn_files = read_potential(potential)
            model = build_model(nn_files, angular=angular)
        self.angular = angular
        self.nn_files: Dict[str, NNFile] = nn_files
        self.model = model.to(device=self.device, dtype=dtype)
        self.elements = list(self.model.elements)
        self.cutoff = float(self.model.cutoff)
        # atomic number -> species index (-1: not covered), so that a call maps numbers in one
        # numpy gather instead of a Python loop over the atoms' symbols
        self._species_of_number = np.full(len(chemical_symbols), -1, dtype=np.int64)
        for k, e in enumerate(self.elements):
            if e in chemical_symbols:  # a name that is no element can never match an atom
                self._species_of_number[chemical_symbols.index(e)] = k
        self.skin = float(skin)
        self._neighbors = NeighborList(self.cutoff, skin=self.skin)
        self._checked_cell = None  # (cell, pbc, atom count) that passed the cell checks last

    # ------------------------------------------------------------------ ASE
    @classmethod
    def from_pretrained(cls, name: str = "LiSi-demo", **kwargs) -> "AenetTorch":
        """A bundled potential by name (see `aenet_torch_ase.pretrained`)."""
        return cls(pretrained_path(name), **kwargs)

    @property
    def fingerprint(self) -> str:
        """sha256 (hex) of the potential's `.nn` records, element by element:
        what identifies the potential in run records and checkpoints."""
        h = hashlib.sha256()
        for sym, nn in sorted(self.current_nn_files().items()):
            h.update(sym.encode())
            h.update(nn_to_bytes(nn))
        return h.hexdigest()

    def get_property(self, name, atoms=None, allow_calculation=True):
        # ASE keeps the atoms and results on the calculator: one thread's call
        # must not see (or overwrite) another's, so calls are serialised
        with self._lock:
            return super().get_property(name, atoms, allow_calculation)

    def check_state(self, atoms, tol=1e-15):
        """The properties that changed since the last calculation, as ASE's
        check but cheaper (it runs several times per MD step): cell, pbc and
        the per-atom arrays ASE compares (all_changes: not momenta, which MD
        changes between the forces and the stress of one step), compared
        bit for bit. A change smaller than ASE's default tolerance (1e-15)
        counts here, so at most a call more is made, never one fewer."""
        old = self.atoms
        if old is None:
            return list(all_changes)
        changes = []
        for prop in all_changes:
            if prop in self.ignored_changes:
                continue
            if prop in ("cell", "pbc"):
                if not np.array_equal(getattr(old, prop), getattr(atoms, prop)):
                    changes.append(prop)
            elif (prop in old.arrays) != (prop in atoms.arrays) or (
                    prop in old.arrays and not np.array_equal(old.arrays[prop], atoms.arrays[prop])):
                changes.append(prop)
        return changes

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
        from .potential.compiled_kernels import thread_policy

        with self._lock:
            if self.device.type == "cpu":
                with thread_policy():
                    self._calculate(atoms, properties, system_changes)
            else:
                self._calculate(atoms, properties, system_changes)

    def _calculate(self, atoms, properties, system_changes):
        super().calculate(atoms, properties, system_changes)
        atoms = self.atoms
        if len(atoms) == 0:  # like ASE's other calculators: nothing there, nothing to pay
            self._empty_results(atoms)
            return
        species, positions, cell, pbc = self._validated_tensors(atoms)
        # the whole cutoff + skin list: the descriptor skips pairs beyond its cutoffs; the compiled
        # kernels make the pair vectors themselves from positions and shifts (no (P, 3) array)
        compiled = compiled_kernels.usable(positions) and compiled_kernels.serves(self.model)
        i, j, shifts, vectors = self._neighbors.pairs(positions, cell, pbc, species, self.dtype,
                                                      within_cutoff=False, with_vectors=not compiled)
        volume = abs(float(np.linalg.det(atoms.cell.array))) if atoms.cell.rank == 3 else 0.0
        want_stress = volume > 0.0
        want_atomic = want_stress and "stresses" in properties
        result = evaluate(
            self.model, species, i, j, vectors,
            forces=True, virial=want_stress, atomic_virials=want_atomic,
            chunk_pairs=self.chunk_pairs, geometry=(positions, cell, shifts), dtype=self.dtype,
        )
        energies = result.energies.detach().cpu().double().numpy()
        self.results["energies"] = energies
        self.results["energy"] = float(energies.sum())
        self.results["free_energy"] = self.results["energy"]
        self.results["forces"] = result.forces.detach().cpu().double().numpy()
        if want_stress:
            w = result.virial.detach().cpu().double().numpy()
            self.results["stress"] = full_3x3_to_voigt_6_stress(0.5 * (w + w.T) / volume)
        if want_atomic:
            wa = result.atomic_virials.detach().cpu().double().numpy()
            wa = 0.5 * (wa + wa.transpose(0, 2, 1)) / volume
            self.results["stresses"] = full_3x3_to_voigt_6_stress(wa)
        self._check_finite(atoms)

    def _empty_results(self, atoms):
        self.results = {"energy": 0.0, "free_energy": 0.0, "energies": np.zeros(0), "forces": np.zeros((0, 3))}
        if atoms.cell.rank == 3:
            self.results["stress"] = np.zeros(6)
            self.results["stresses"] = np.zeros((0, 6))

    def _check_finite(self, atoms):
        for key in ("energies", "forces", "stress"):
            value = self.results.get(key)
            if value is not None and not np.all(np.isfinite(value)):
                bad = ""
                if key in ("energies", "forces"):
                    rows = np.flatnonzero(~np.isfinite(np.asarray(value).reshape(len(atoms), -1)).all(axis=1))
                    bad = f" (atoms {rows[:10].tolist()})"
                self.results = {}
                raise ResultError(
                    f"the model returned non-finite {key}{bad}: the potential's weights or statistics "
                    f"overflow for this structure (atoms far closer than in its training set?)")

    def _validated_tensors(self, atoms):
        numbers = atoms.numbers
        if len(numbers) and (numbers.min() < 0 or numbers.max() >= len(self._species_of_number)):
            raise StructureError(f"atomic numbers must lie in 0-{len(self._species_of_number) - 1}: "
                                 f"found {numbers.min()}..{numbers.max()}")
        index = self._species_of_number[numbers]
        if (index < 0).any():
            unknown = sorted({chemical_symbols[z] for z in numbers[index < 0]})
            raise SpeciesError(
                f"the structure contains {unknown}, but the potential covers only "
                f"{self.elements}: load a .nn file for each element in the structure"
            )
        pos = atoms.positions
        if not np.all(np.isfinite(pos)):
            bad = np.flatnonzero(~np.isfinite(pos).all(axis=1))
            raise StructureError(f"atom(s) {bad[:10].tolist()} have NaN or infinite positions")
        pbc = np.asarray(atoms.pbc, dtype=bool)
        cell = atoms.cell.array
        checked = self._checked_cell
        if pbc.any() and not (checked is not None and checked[2] == len(atoms) and np.array_equal(checked[0], cell)
                              and np.array_equal(checked[1], pbc)):
            # once per cell, not at every step of a fixed-cell run; the rank by an SVD only where a
            # full cell's smallest singular value (>= 1 / |C^-1|_F) is not plainly above the tolerance
            periodic_vectors = cell[pbc]
            if not (pbc.all() and _smallest_singular_value_bound(cell) > 1e-8) and \
                    np.linalg.matrix_rank(periodic_vectors, tol=1e-8) < pbc.sum():
                raise StructureError(
                    f"the cell {cell.tolist()} has zero length or volume along the periodic "
                    f"direction(s) {np.flatnonzero(pbc).tolist()}: set a proper cell "
                    f"(atoms.set_cell) or switch periodicity off (atoms.pbc = False)"
                )
            check_cell_images(cell, pbc, self.cutoff + self.skin, len(atoms), max_pairs=self.max_pairs)
            self._checked_cell = (cell.copy(), pbc.copy(), len(atoms))
        species = torch.from_numpy(index).to(self.device)
        # self.atoms is the calculator's own copy (ASE's calculate): its positions may be shared, not copied
        positions = torch.from_numpy(np.ascontiguousarray(pos, dtype=np.float64)).to(self.device)
        cell_t = torch.tensor(cell, dtype=torch.float64, device=self.device)
        pbc_t = torch.tensor(pbc, device=self.device)
        return species, positions, cell_t, pbc_t

    # ------------------------------------------------------------ exports
    def current_nn_files(self) -> Dict[str, NNFile]:
        """The `.nn` contents of the model as it is now (weights included)."""
        return model_to_nn_files(self.model, self.nn_files)

    def export_nn(self, directory, *, ascii: bool = False) -> Dict[str, Path]:
        """Write `<symbol>.nn` per species into `directory` (for predict.x and
        LAMMPS `pair_style aenet`); with ascii=True also `<symbol>.nn.ascii`.
        Returns {symbol: path of the binary file}."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        paths = {}
        for sym, nn in self.current_nn_files().items():
            paths[sym] = directory / f"{sym}.nn"
            write_nn(nn, paths[sym])
            if ascii:
                write_nn_ascii(nn, directory / f"{sym}.nn.ascii")
        return paths

    def save(self, path) -> None:
        """Write a self-contained TorchScript archive (model + the .nn records).

        `AenetTorch(path)` loads it without the .nn files."""
        scripted = script_model(self.model)
        meta = {
            "format": 1,
            "package_version": __version__,
            "angular": self.angular,
            "elements": self.elements,
            "nn_files": {
                s: base64.b64encode(nn_to_bytes(nn)).decode("ascii")
                for s, nn in self.current_nn_files().items()
            },
        }
        import io

        buffer = io.BytesIO()
        torch.jit.save(scripted, buffer, _extra_files={_ARCHIVE_META: json.dumps(meta)})
        atomic_write_bytes(os.fspath(path), buffer.getvalue())


def script_model(model):
    """TorchScript version of an AenetModel (float64 on CPU is saved as is)."""
    if isinstance(model, torch.jit.ScriptModule):
        return model
    # torch >= 2.13 may warn that TorchScript is deprecated: that is left visible
    return torch.jit.script(model)


def _read_archive_meta(path) -> dict:
    """The `.nn` records and settings stored in a model.pt by `save()`, read
    from the zip archive directly (no TorchScript is loaded or run)."""
    suffix = "/extra/" + _ARCHIVE_META
    try:
        with zipfile.ZipFile(path) as z:
            names = [n for n in z.namelist() if n.endswith(suffix)]
            if not names:
                raise PotentialFileError(f"{path}: not a model archive written by AenetTorch.save() "
                                         f"(it holds no {_ARCHIVE_META})")
            meta = json.loads(z.read(names[0]).decode("utf-8"))
    except (zipfile.BadZipFile, OSError, EOFError, UnicodeDecodeError, ValueError) as err:
        raise PotentialFileError(f"{path}: not a readable model archive ({type(err).__name__}: {err}); "
                                 f"write it with AenetTorch.save() or use the .nn files") from None
    if not isinstance(meta, dict) or not isinstance(meta.get("nn_files"), dict) or not meta["nn_files"]:
        raise PotentialFileError(f"{path}: its {_ARCHIVE_META} lists no .nn records")
    return meta


def _load_archive(path, trust_code: bool = False):
    """(model, nn_files, angular) of a model.pt. The model is rebuilt from
    the stored `.nn` records unless `trust_code`, which runs the archive's
    TorchScript instead."""
    meta = _read_archive_meta(path)
    try:
        nn_files = {
            s: parse_nn_bytes(base64.b64decode(b, validate=True), f"{path}:{s}.nn")
            for s, b in meta["nn_files"].items()
        }
    except (TypeError, ValueError) as err:
        raise PotentialFileError(f"{path}: damaged .nn records in the archive ({err})") from None
    angular = meta.get("angular", "2.0.4")
    if angular not in ("2.0.4", "legacy"):
        raise PotentialFileError(f"{path}: unknown angular convention {angular!r} in the archive")
    if not trust_code:
        return build_model(nn_files, angular=angular), nn_files, angular
    try:
        model = torch.jit.load(os.fspath(path), map_location="cpu")
    except Exception as err:  # torch raises RuntimeError and others for a damaged archive
        raise PotentialFileError(f"{path}: the TorchScript model cannot be loaded ({err})") from None
    return model, nn_files, angular
