"""Reference structures for training, and the featurised training set.

`load_structures` reads aenet XSF files with this package's reader (eV,
eV/A) and anything else through ASE (extxyz, ASE db, ...: every frame).
`TrainingSet.featurize` computes, once, what an epoch needs:

* descriptors of every atom (one table per element), and their
  statistics (aenet's sfval_min/max/avg/cov, stored later in the `.nn`);
* for the structures used in force training, the descriptor derivatives
  with respect to the pair vectors in sparse form (`DescriptorJacobian`),
  with pair centre and neighbour atoms, grouped by structure.

The result is saved as one torch file (`save`/`load`), the "training set
file" that `aenet-torch generate` writes and `aenet-torch train` reads. It
is this package's format, not aenet's binary training set.
"""

from __future__ import annotations

import io
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Sequence

import numpy as np
import torch
from torch import Tensor

from .._allocator import keep_freed_memory
from ..threads import adaptive_threads
from ..batch import make_batch
from ..errors import InputFileError, SpeciesError
from ..io.atomic_write import atomic_write_bytes
from ..io.input_files import FingerprintSetup, read_fingerprint_setup
from ..io.xsf import read_xsf
from ..potential.build import build_model
from ..potential.descriptor_jacobian import descriptor_jacobian
from ..potential.new import new_nn_file

FORMAT = "aenet-torch-trainingset"
VERSION = 1
#: pairs per featurisation group (bounds memory; about 1,000 atoms of a dense solid)
GROUP_PAIRS = 200_000
#: arrays of the force data of one descriptor setup (see `TrainingSet.force_data`)
FORCE_KEYS = ("rad_center", "rad_neighbor", "rad_species", "rad_unit", "rad_dbasis",
              "ang_center", "ang_neighbor", "ang")


@dataclass
class Reference:
    """One reference structure: ASE Atoms, energies in eV, forces in eV/A."""

    atoms: object
    name: str
    energy: float  # total energy (eV)
    forces: Optional[np.ndarray] = None


def _from_atoms(atoms, name: str) -> Reference:
    if atoms.calc is None:
        raise InputFileError(f"{name}: no energy: training structures need a total energy (eV)")
    try:
        energy = float(atoms.get_potential_energy())
    except Exception as err:  # ASE raises several kinds when the property is missing
        raise InputFileError(f"{name}: no energy: {err}") from None
    forces = None
    try:
        forces = np.asarray(atoms.get_forces(), dtype=float)
    except Exception:
        forces = None
    if forces is not None and not np.isfinite(forces).all():
        forces = None
    return Reference(atoms=atoms, name=name, energy=energy, forces=forces)


def load_structures(paths: Sequence, progress: bool = False) -> List[Reference]:
    """Read training structures: `.xsf` in aenet's convention (not ASE's
    Hartree-based XSF reader), other files through `ase.io.read(..., ':')`."""
    from tqdm import tqdm

    out: List[Reference] = []
    for path in tqdm(list(paths), desc="reading", unit="file", disable=not progress, leave=False):
        path = Path(path)
        if not path.is_file():
            raise InputFileError(f"structure file {path} does not exist")
        if path.suffix.lower() == ".xsf":
            atoms = read_xsf(path)
            if "aenet_total_energy" not in atoms.info and "aenet_cohesive_energy" not in atoms.info:
                raise InputFileError(f"{path}: no '# total energy = ... eV' line")
            forces = atoms.calc.results.get("forces") if atoms.calc is not None else None
            out.append(Reference(atoms=atoms, name=str(path),
                                 energy=float(atoms.info.get("aenet_total_energy", np.nan)), forces=forces))
            continue
        import ase.io

        try:
            frames = ase.io.read(path, index=":")
        except Exception as err:
            raise InputFileError(f"cannot read {path} with ASE: {err}") from err
        for k, atoms in enumerate(frames):
            out.append(_from_atoms(atoms, f"{path}@{k}" if len(frames) > 1 else str(path)))
    return out


def cohesive_energy(ref: Reference, e_atom: Dict[str, float]) -> float:
    """Energy minus the atomic reference energies (eV), as aenet's generate.x:
    the XSF 'cohesive energy' when present and nonzero, else E_total - sum E_atom."""
    coh = ref.atoms.info.get("aenet_cohesive_energy")
    if coh is not None and coh != 0.0:
        return float(coh)
    if not np.isfinite(ref.energy):
        raise InputFileError(f"{ref.name}: no total energy")
    return ref.energy - sum(e_atom[s] for s in ref.atoms.get_chemical_symbols())


@dataclass
class TrainingSet:
    """Featurised reference data (CPU tensors; energies eV, forces eV/A).

    Shapes: B structures, N atoms; per element s, N_s atoms.
    """

    elements: List[str]
    e_atom: Dict[str, float]
    setups: Dict[str, FingerprintSetup]
    angular: str
    names: List[str]
    n_atoms: Tensor  # (B,)
    energy: Tensor  # (B,) total energy incl. E_atom (eV)
    cohesive: Tensor  # (B,) energy - sum E_atom (eV)
    force_train: Tensor  # (B,) bool: forces used for training (FORCESPERCENT subset)
    species: Tensor  # (N,)
    structure: Tensor  # (N,)
    forces: Tensor  # (N, 3), NaN where a structure has none
    features: List[Tensor]  # per element (N_s, nsf_s)
    atom_row: Tensor  # (N,) row of each atom in its element's table
    # per descriptor setup (elements sharing it: `setup_elements`): FORCE_KEYS, type_weights, offsets
    force_data: List[Dict[str, Optional[Tensor]]]
    setup_elements: List[List[int]]
    stats: Dict[str, Dict[str, object]] = field(default_factory=dict)

    # ---------------------------------------------------------------- build
    @classmethod
    def featurize(
        cls,
        references: Sequence[Reference],
        setups: Dict[str, FingerprintSetup],
        e_atom: Dict[str, float],
        *,
        forces: bool = True,
        forces_percent: float = 100.0,
        seed: int = 0,
        angular: str = "2.0.4",
        progress: bool = False,
    ) -> "TrainingSet":
        """Descriptors (and, for the force subset, their derivatives) of
        `references`, computed with the Chebyshev `setups` (one per element).

        e_atom: atomic reference energies (eV) of every element.
        forces_percent: share of the structures that carry forces whose
            forces are used for training (picked with `seed`).
        """
        from tqdm import tqdm

        if not references:
            raise InputFileError("no structures to featurise")
        keep_freed_memory()
        templates = _setup_templates(setups, e_atom)
        model = build_model(templates, angular=angular, warn=False)
        elements = model.elements
        index = {e: k for k, e in enumerate(elements)}
        for ref in references:
            unknown = sorted(set(ref.atoms.get_chemical_symbols()) - set(index))
            if unknown:
                raise SpeciesError(f"{ref.name}: species {unknown} have no setup; the training set "
                                   f"covers {elements} (add them to TYPES and SETUPS)")
        B = len(references)
        cohesive = torch.tensor([cohesive_energy(r, e_atom) for r in references], dtype=torch.float64)
        n_atoms = torch.tensor([len(r.atoms) for r in references], dtype=torch.int64)
        energy = cohesive + torch.tensor(
            [sum(e_atom[s] for s in r.atoms.get_chemical_symbols()) for r in references], dtype=torch.float64)
        has_forces = np.array([r.forces is not None for r in references])
        force_train = np.zeros(B, dtype=bool)
        if forces and not has_forces.all():
            missing = [references[b].name for b in np.flatnonzero(~has_forces)]
            raise InputFileError(f"FORCES is on, but {len(missing)} structure(s) have no forces "
                                 f"(first: {missing[0]}): add the force columns (XSF: 'symbol x y z fx fy fz', eV/A) "
                                 f"or drop FORCES")
        if forces:
            with_f = np.flatnonzero(has_forces)
            n_pick = int(round(len(with_f) * forces_percent / 100.0))
            pick = np.random.default_rng(seed).permutation(with_f)[:n_pick]
            force_train[np.sort(pick)] = True
        f_rows = [r.forces if r.forces is not None else np.full((len(r.atoms), 3), np.nan) for r in references]
        all_forces = torch.from_numpy(np.concatenate(f_rows).astype(np.float64))

        species_parts, feat_parts = [], [[] for _ in elements]
        n_setups = len(model.descriptors)
        setup_elements = [[s for s, d in enumerate(model.descriptor_of_element) if d == g] for g in range(n_setups)]
        force_parts = [{k: [] for k in FORCE_KEYS} for _ in range(n_setups)]
        atom_offset = 0
        groups = _groups(references, GROUP_PAIRS)
        bar = tqdm(total=B, desc="featurising", unit="structure", disable=not progress)
        for group in groups:
            with adaptive_threads():  # fewer threads while other processes hold cores
                atoms_list = [references[b].atoms for b in group]
                batch = make_batch(atoms_list, elements, model.cutoff)
                species_parts.append(batch.species)
                n = batch.species.numel()
                with torch.no_grad():
                    feats = model.features(batch.species, batch.pair_i, batch.species[batch.pair_j], batch.vectors)
                for s in range(len(elements)):
                    rows = (batch.species == s).nonzero().squeeze(1)
                    feat_parts[s].append(feats[model.descriptor_of_element[s]][rows])
                in_force = torch.from_numpy(force_train[group])[batch.structure]  # (n,) atom in a force structure
                if in_force.any():
                    _add_force_data(model, batch, in_force, atom_offset, force_parts)
                atom_offset += n
            bar.update(len(group))
        bar.close()
        species = torch.cat(species_parts)
        structure = torch.repeat_interleave(torch.arange(B), n_atoms)
        atom_row = torch.zeros_like(species)
        for s in range(len(elements)):
            sel = (species == s).nonzero().squeeze(1)
            atom_row[sel] = torch.arange(sel.numel())
        features = [torch.cat(p) if p else torch.zeros(0, templates[e].nnodes[0], dtype=torch.float64)
                    for p, e in zip(feat_parts, elements)]
        force_data = []
        for g, parts in enumerate(force_parts):
            d = {k: torch.cat(v) for k, v in parts.items()} if parts["rad_center"] else \
                _empty_force_data(setups[elements[setup_elements[g][0]]])
            descriptor = model.descriptors[g]
            d["type_weights"] = descriptor.type_weights.clone() if descriptor.weighted else None
            for kind in ("rad", "ang"):
                counts = torch.bincount(structure[d[f"{kind}_center"]], minlength=B)
                d[f"{kind}_offsets"] = torch.cat([torch.zeros(1, dtype=torch.int64), torch.cumsum(counts, 0)])
            force_data.append(d)
        ts = cls(
            elements=list(elements), e_atom={e: float(e_atom[e]) for e in elements},
            setups={e: setups[e] for e in elements}, angular=angular,
            names=[r.name for r in references], n_atoms=n_atoms, energy=energy, cohesive=cohesive,
            force_train=torch.from_numpy(force_train), species=species, structure=structure,
            forces=all_forces, features=features, atom_row=atom_row, force_data=force_data,
            setup_elements=setup_elements,
        )
        ts.stats = ts.feature_statistics()
        return ts

    # ---------------------------------------------------------------- info
    @property
    def n_structures(self) -> int:
        return int(self.n_atoms.numel())

    @property
    def atom_start(self) -> Tensor:
        return torch.cumsum(self.n_atoms, 0) - self.n_atoms

    def feature_statistics(self) -> Dict[str, Dict[str, object]]:
        """Per element: aenet's descriptor statistics over all atoms
        (min, max, mean and mean of squares -> `sfval_*` of the `.nn`)."""
        out = {}
        for e, f in zip(self.elements, self.features):
            if f.shape[0] == 0:
                raise SpeciesError(f"the training set has no {e} atoms: its network cannot be trained")
            out[e] = {"neval": int(f.shape[0]), "min": f.min(0).values.numpy(), "max": f.max(0).values.numpy(),
                      "avg": f.mean(0).numpy(), "cov": (f * f).mean(0).numpy()}
        return out

    def fingerprint(self) -> str:
        """sha256 (hex) of the data a training depends on (energies, atoms,
        forces, descriptors): two training sets of the same size differ here."""
        import hashlib

        h = hashlib.sha256()
        h.update(json.dumps([self.elements, self.e_atom, self.angular], sort_keys=True).encode())
        for t in (self.n_atoms, self.energy, self.force_train, self.species, self.forces, *self.features):
            h.update(t.detach().cpu().contiguous().numpy().tobytes())
        return h.hexdigest()

    def summary(self) -> Dict[str, object]:
        coh = (self.cohesive / self.n_atoms).numpy()
        return {
            "structures": self.n_structures, "atoms": int(self.n_atoms.sum()),
            "elements": self.elements,
            "structures_with_force_training": int(self.force_train.sum()),
            "cohesive_energy_per_atom_eV": {"min": float(coh.min()), "max": float(coh.max()),
                                             "mean": float(coh.mean())},
        }

    # ---------------------------------------------------------------- files
    def save(self, path) -> None:
        """Write the training set as one torch file (atomically)."""
        data = {
            "format": FORMAT, "version": VERSION, "elements": self.elements, "e_atom": self.e_atom,
            "setups": {e: asdict(s) for e, s in self.setups.items()}, "angular": self.angular,
            "names": self.names,
        }
        for k in ("n_atoms", "energy", "cohesive", "force_train", "species", "structure", "forces", "atom_row"):
            data[k] = getattr(self, k)
        data["features"] = self.features
        data["force_data"] = self.force_data
        data["setup_elements"] = self.setup_elements
        buf = io.BytesIO()
        torch.save(data, buf)
        atomic_write_bytes(str(path), buf.getvalue())

    @classmethod
    def load(cls, path) -> "TrainingSet":
        path = Path(path)
        if not path.is_file():
            raise InputFileError(f"training set {path} does not exist: run 'aenet-torch generate generate.in' first")
        try:
            data = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as err:
            raise InputFileError(
                f"{path} is not a training set written by 'aenet-torch generate' ({err.__class__.__name__}). "
                f"aenet's own binary/ASCII training sets are not read: featurise the XSF files with "
                f"'aenet-torch generate generate.in'") from None
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise InputFileError(f"{path} is not a training set written by 'aenet-torch generate'")
        if data["version"] > VERSION:
            raise InputFileError(f"{path} was written by a newer aenet-torch-ase (format {data['version']})")
        setups = {e: FingerprintSetup(**s) for e, s in data.pop("setups").items()}
        data.pop("format"), data.pop("version")
        ts = cls(setups=setups, **data)
        ts.stats = ts.feature_statistics()
        return ts


def _setup_templates(setups: Dict[str, FingerprintSetup], e_atom: Dict[str, float]):
    """Network-less `.nn` contents of the setups (to build the descriptors)."""
    missing = [e for e in setups if e not in e_atom]
    if missing:
        raise SpeciesError(f"no atomic reference energy for {missing}")
    for e, s in setups.items():
        if s.atom != e:
            raise SpeciesError(f"{s.source or 'setup'}: setup of '{s.atom}' given for '{e}'")
    return {e: new_nn_file(s, [], e_atom) for e, s in setups.items()}


def _groups(references: Sequence[Reference], pair_budget: int) -> List[List[int]]:
    """Consecutive structures in groups of about `pair_budget` pairs (estimated
    from the atom count; a group holds at least one structure)."""
    groups, current, load = [], [], 0
    for b, r in enumerate(references):
        cost = 100 * len(r.atoms)
        if current and load + cost > pair_budget:
            groups.append(current)
            current, load = [], 0
        current.append(b)
        load += cost
    if current:
        groups.append(current)
    return groups


def _add_force_data(model, batch, in_force: Tensor, atom_offset: int, force_parts) -> None:
    """Append the descriptor derivatives of the group's force-structure centres."""
    pair_sel = in_force[batch.pair_i].nonzero().squeeze(1)
    pi, pj = batch.pair_i[pair_sel], batch.pair_j[pair_sel]
    nspec = batch.species[pj]
    n = batch.species.numel()
    for g, descriptor in enumerate(model.descriptors):
        jac = descriptor_jacobian(descriptor, n, pi, nspec, batch.vectors[pair_sel])
        # keep the centres whose element uses this setup
        uses = torch.tensor([d == g for d in model.descriptor_of_element])
        rsel = uses[batch.species[jac.radial_center]].nonzero().squeeze(1)
        asel = uses[batch.species[jac.angular_center]].nonzero().squeeze(1)
        parts = force_parts[g]
        parts["rad_center"].append(jac.radial_center[rsel] + atom_offset)
        parts["rad_neighbor"].append(pj[jac.radial_pairs[rsel]] + atom_offset)
        parts["rad_species"].append(jac.radial_species[rsel])
        parts["rad_unit"].append(jac.radial_unit[rsel])
        parts["rad_dbasis"].append(jac.radial_dbasis[rsel])
        parts["ang_center"].append(jac.angular_center[asel] + atom_offset)
        parts["ang_neighbor"].append(pj[jac.angular_pairs[asel]] + atom_offset)
        parts["ang"].append(jac.angular[asel])


def _empty_force_data(setup: FingerprintSetup) -> Dict[str, Optional[Tensor]]:
    nr, na = setup.radial_n + 1, setup.angular_n + 1
    ca = 2 * na if len(setup.env) > 1 else na
    z, i64, f64 = torch.zeros, torch.int64, torch.float64
    return {
        "rad_center": z(0, dtype=i64), "rad_neighbor": z(0, dtype=i64), "rad_species": z(0, dtype=i64),
        "rad_unit": z(0, 3, dtype=f64), "rad_dbasis": z(0, nr, dtype=f64),
        "ang_center": z(0, dtype=i64), "ang_neighbor": z(0, dtype=i64), "ang": z(0, ca, 3, dtype=f64),
    }


def setups_from_files(paths: Dict[str, Path]) -> Dict[str, FingerprintSetup]:
    """Read the `*.fingerprint.stp` of each element."""
    return {e: read_fingerprint_setup(p) for e, p in paths.items()}
