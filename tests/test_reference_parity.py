"""Parity with aenet 2.0.4's own numbers (shared/reference; skipped when absent).

Tolerances from the reference README: 1e-8 eV total energy, 1e-8 eV/A forces.
"""

from __future__ import annotations

import warnings

import ase.io
import numpy as np
import pytest
import torch

from aenet_torch_ase import AenetTorch
from aenet_torch_ase.neighbors import NeighborList, pair_vectors
from conftest import require_reference, strain_derivative

# (folder, {species: file}, reference file, angular convention)
CASES = [
    ("LiSi-Artrith2018", {"Li": "Li.15t-15t.nn", "Si": "Si.15t-15t.nn"}, "reference_predictx-2.0.4.extxyz", "2.0.4"),
    ("TiO2/aenet-example-15t-15t", {"Ti": "Ti.15t-15t.nn", "O": "O.15t-15t.nn"}, "reference_predictx-2.0.4.extxyz", "2.0.4"),
    ("TiO2/aenet-example-15t-15t", {"Ti": "Ti.15t-15t.nn", "O": "O.15t-15t.nn"}, "reference_legacy-angular-domain.extxyz", "legacy"),
    ("TiO2/aenet-example-10t-10t", {"Ti": "Ti.10t-10t.nn", "O": "O.10t-10t.nn"}, "reference_predictx-2.0.4.extxyz", "2.0.4"),
    ("TiO2/aenet-example-10t-10t", {"Ti": "Ti.10t-10t.nn", "O": "O.10t-10t.nn"}, "reference_legacy-angular-domain.extxyz", "legacy"),
    ("TiO2/aenet-python-5t-5t", {"Ti": "Ti.nn", "O": "O.nn"}, "reference_predictx-2.0.4.extxyz", "2.0.4"),
    ("TiO2/aenet-python-5t-5t", {"Ti": "Ti.nn.ascii", "O": "O.nn.ascii"}, "reference_predictx-2.0.4.extxyz", "2.0.4"),
]


def make_calc(folder, files, angular):
    base = require_reference() / folder
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the convention warning is tested separately
        return AenetTorch({s: base / f for s, f in files.items()}, angular=angular)


@pytest.mark.parametrize("folder,files,reference,angular", CASES, ids=lambda x: str(x)[:40])
def test_energies_forces_atomic_energies(folder, files, reference, angular):
    calc = make_calc(folder, files, angular)
    frames = ase.io.read(require_reference() / folder / reference, index=":")
    assert len(frames) >= 15
    for atoms in frames:
        e_ref = atoms.info["aenet_energy"]
        f_ref = atoms.arrays["aenet_forces"]
        ea_ref = atoms.arrays["aenet_atomic_energies"]
        atoms.calc = calc
        name = atoms.info["name"]
        assert abs(atoms.get_potential_energy() - e_ref) < 1e-8, name
        np.testing.assert_allclose(atoms.get_forces(), f_ref, rtol=0, atol=1e-8, err_msg=name)
        np.testing.assert_allclose(atoms.get_potential_energies(), ea_ref, rtol=0, atol=1e-8, err_msg=name)


def test_cohesive_energy():
    calc = make_calc(*CASES[0][:2], "2.0.4")
    for atoms in ase.io.read(require_reference() / CASES[0][0] / CASES[0][2], index=":")[:4]:
        atoms.calc = calc
        e_atom = sum(calc.nn_files[s].e_atom_of(s) for s in atoms.get_chemical_symbols())
        assert abs(atoms.get_potential_energy() - e_atom - atoms.info["aenet_cohesive_energy"]) < 1e-8


@pytest.mark.parametrize("folder,files,keys", [
    ("LiSi-Artrith2018", {"Li": "Li.15t-15t.nn", "Si": "Si.15t-15t.nn"}, [("raw", "2.0.4"), ("raw_legacy", "legacy")]),
    ("TiO2/aenet-example-15t-15t", {"Ti": "Ti.15t-15t.nn", "O": "O.15t-15t.nn"}, [("raw", "2.0.4"), ("raw_legacy", "legacy")]),
    ("TiO2/aenet-python-5t-5t", {"Ti": "Ti.nn", "O": "O.nn"}, [("raw", "2.0.4")]),
])
def test_descriptors(folder, files, keys):
    """Raw and normalised descriptor vectors equal aenet's stp_eval output."""
    from aenet_torch_ase.potential.build import feature_scaling

    z = np.load(require_reference() / folder / "descriptors.npz")
    assert len(z["structures"]) >= 3
    for key, angular in keys:
        calc = make_calc(folder, files, angular)
        model = calc.model
        for name in z["structures"]:
            symbols = [str(s) for s in z[f"{name}/symbols"]]
            pos = torch.tensor(z[f"{name}/positions"])
            cell = torch.tensor(z[f"{name}/cell"])
            pbc = torch.tensor(np.asarray(z[f"{name}/pbc"], dtype=bool))
            i, j, S = NeighborList(model.cutoff)(pos, cell, pbc)
            v = pair_vectors(pos, cell, i, j, S)
            species = torch.tensor([model.elements.index(s) for s in symbols])
            with torch.no_grad():
                feats = model.features(species, i, species[j], v)
            ref = z[f"{name}/{key}"]
            ref_norm = z[f"{name}/{key.replace('raw', 'normalized')}"]
            for k, sym in enumerate(symbols):
                got = feats[model.descriptor_of_element[model.elements.index(sym)]][k].numpy()
                np.testing.assert_allclose(got, ref[k], rtol=1e-11, atol=1e-11, err_msg=f"{name} atom {k}")
                shift, scale = feature_scaling(calc.nn_files[sym])
                np.testing.assert_allclose((got - shift) * scale, ref_norm[k], rtol=1e-10, atol=1e-10)


def test_legacy_convention_warning():
    base = require_reference() / "TiO2/aenet-example-15t-15t"
    files = {"Ti": base / "Ti.15t-15t.nn", "O": base / "O.15t-15t.nn"}
    with pytest.warns(UserWarning, match="angular='legacy'"):
        AenetTorch(files)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        AenetTorch(files, angular="legacy")  # no warning when the right convention is chosen
        lisi = require_reference() / "LiSi-Artrith2018"
        AenetTorch(lisi)  # a 2.0.4 potential: no warning


def test_stress_of_reference_potential_matches_strain_derivative():
    """Stress of the real Li-Si potential (small triclinic reference cell)
    against a central difference of the energy in the strain."""
    calc = make_calc(*CASES[0][:2], "2.0.4")
    frames = ase.io.read(require_reference() / CASES[0][0] / CASES[0][2], index=":")
    atoms = next(a for a in frames if a.info["name"] == "LiSi-bcc-24at-triclinic")
    atoms.calc = calc
    s = atoms.get_stress(voigt=False)
    for a_, b_ in [(0, 0), (1, 2), (0, 1), (2, 2)]:
        assert abs(strain_derivative(atoms, calc, a_, b_) - s[a_, b_]) < 1e-8
