"""AenetTorch calculator: ASE conventions, errors, caching, save/load, export."""

from __future__ import annotations

import numpy as np
import pytest
from ase import Atoms

from aenet_torch_ase import AenetTorch, SpeciesError, StructureError
from aenet_torch_ase.io.nn_binary import nn_to_bytes, write_nn
from conftest import require_reference


def test_implemented_properties_and_results(tiny_potential, triclinic_cell):
    calc = AenetTorch(tiny_potential)
    a = triclinic_cell
    a.calc = calc
    e = a.get_potential_energy()
    assert set(calc.implemented_properties) >= {"energy", "free_energy", "energies", "forces", "stress", "stresses"}
    assert a.get_potential_energy(force_consistent=True) == e
    assert abs(a.get_potential_energies().sum() - e) < 1e-10
    assert a.get_forces().shape == (len(a), 3)
    assert a.get_stress().shape == (6,)


def test_no_recomputation_when_atoms_unchanged(tiny_potential, triclinic_cell, monkeypatch):
    calc = AenetTorch(tiny_potential)
    a = triclinic_cell
    a.calc = calc
    calls = []
    import aenet_torch_ase.calculator as module

    original = module.evaluate
    monkeypatch.setattr(module, "evaluate", lambda *x, **k: calls.append(1) or original(*x, **k))
    a.get_potential_energy()
    a.get_forces()
    a.get_stress()
    assert len(calls) == 1
    a.positions[0, 0] += 0.01
    a.get_forces()
    assert len(calls) == 2


def test_unknown_element(tiny_potential):
    a = Atoms("LiSiO", positions=[[0, 0, 0], [2, 0, 0], [0, 2, 0]])
    a.calc = AenetTorch(tiny_potential)
    with pytest.raises(SpeciesError, match=r"\['O'\].*covers only \['Li', 'Si'\]"):
        a.get_potential_energy()


def test_check_state_agrees_with_ase(tiny_potential):
    """The calculator's shortcut for unchanged atoms gives ASE's answer for every kind of change."""
    from ase.calculators.calculator import compare_atoms

    a = Atoms("LiSiSiLi", positions=[[0, 0, 0], [2.3, 0, 0], [0, 2.4, 0], [1.1, 1.3, 1.9]], cell=[6, 6, 6], pbc=True)
    calc = AenetTorch(tiny_potential)
    a.calc = calc
    a.get_potential_energy()

    def changed(b):
        return sorted(calc.check_state(b)), sorted(compare_atoms(calc.atoms, b, tol=1e-15))

    edits = [lambda b: None, lambda b: b.set_momenta(np.ones((4, 3))),
             lambda b: b.positions.__setitem__((1, 0), b.positions[1, 0] + 1e-9),
             lambda b: b.numbers.__setitem__(0, 14), lambda b: b.set_cell(b.cell * 1.001),
             lambda b: b.set_pbc([True, True, False]), lambda b: b.set_initial_charges([0.1, 0, 0, 0]),
             lambda b: b.set_initial_magnetic_moments([0, 0, 0, 1.0])]
    for edit in edits:
        b = a.copy()
        edit(b)
        ours, ase_ = changed(b)
        assert ours == ase_
    assert changed(a) == ([], [])
    b = a.copy()
    b.positions[0, 2] += 1e-9
    assert "positions" in changed(b)[0]


def test_species_follow_atomic_numbers(tiny_potential):
    """The species index comes from atomic numbers (a table, not symbols): the same
    energy for any order of the atoms, and numbers beyond the periodic table refused."""
    a = Atoms("LiSiSiLi", positions=[[0, 0, 0], [2.3, 0, 0], [0, 2.4, 0], [1.1, 1.3, 1.9]])
    a.calc = AenetTorch(tiny_potential)
    e = a.get_potential_energy()
    b = a[[3, 1, 0, 2]]
    b.calc = AenetTorch(tiny_potential)
    assert b.get_potential_energy() == pytest.approx(e, abs=1e-12)
    np.testing.assert_allclose(b.get_forces(), a.get_forces()[[3, 1, 0, 2]], atol=1e-12)
    c = a.copy()
    c.numbers[1] = 14 + 3 - c.numbers[1]  # Si -> Li: another structure, another energy
    c.calc = AenetTorch(tiny_potential)
    assert abs(c.get_potential_energy() - e) > 1e-6
    a.numbers[2] = 300
    with pytest.raises(StructureError, match="atomic numbers must lie in"):
        a.get_potential_energy()


def test_nan_positions(tiny_potential):
    a = Atoms("LiSi", positions=[[0, 0, 0], [np.nan, 0, 0]])
    a.calc = AenetTorch(tiny_potential)
    with pytest.raises(StructureError, match=r"atom\(s\) \[1\].*NaN"):
        a.get_potential_energy()


def test_zero_volume_periodic_cell(tiny_potential):
    a = Atoms("LiSi", positions=[[0, 0, 0], [2, 0, 0]], cell=[[3, 0, 0], [0, 3, 0], [0, 0, 0]], pbc=True)
    a.calc = AenetTorch(tiny_potential)
    with pytest.raises(StructureError, match="zero length or volume"):
        a.get_potential_energy()


def test_cell_checks_follow_a_changed_cell(tiny_potential, triclinic_cell):
    """A calculator checks a cell once and remembers it: a cell changed
    afterwards, to one with no volume or one a tiny fraction of an Angstrom
    thick (below the rank tolerance), is checked again and refused."""
    atoms = triclinic_cell.copy()
    atoms.calc = AenetTorch(tiny_potential)
    atoms.get_potential_energy()
    good = atoms.cell.array.copy()
    for third in ([0.0, 0.0, 0.0], [0.0, 0.0, 1e-9], good[0] + good[1]):
        atoms.set_cell([good[0], good[1], third])
        with pytest.raises(StructureError, match="zero length or volume"):
            atoms.get_potential_energy()
    atoms.set_cell(good)
    assert np.isfinite(atoms.get_potential_energy())


def test_cluster_has_no_stress(tiny_potential, cluster):
    from ase.calculators.calculator import PropertyNotImplementedError

    cluster.calc = AenetTorch(tiny_potential)
    cluster.get_forces()
    with pytest.raises(PropertyNotImplementedError):
        cluster.get_stress()


def test_torchscript_save_load_identical(tiny_potential, triclinic_cell, tmp_path):
    calc = AenetTorch(tiny_potential)
    calc.save(tmp_path / "model.pt")
    loaded = AenetTorch(tmp_path / "model.pt")
    assert loaded.elements == calc.elements
    a = triclinic_cell
    a.calc = calc
    e, f, s = a.get_potential_energy(), a.get_forces(), a.get_stress()
    a.calc = loaded
    assert a.get_potential_energy() == pytest.approx(e, abs=1e-12)
    np.testing.assert_allclose(a.get_forces(), f, atol=1e-12)
    np.testing.assert_allclose(a.get_stress(), s, atol=1e-13)
    # the archive carries the .nn records: export works without the original files
    paths = loaded.export_nn(tmp_path / "from_pt")
    for sym, path in paths.items():
        assert path.read_bytes() == nn_to_bytes(tiny_potential[sym])


def test_export_and_directory_loading(tiny_potential, triclinic_cell, tmp_path):
    calc = AenetTorch(tiny_potential)
    paths = calc.export_nn(tmp_path / "pot", ascii=True)
    assert sorted(p.name for p in (tmp_path / "pot").iterdir()) == ["Li.nn", "Li.nn.ascii", "Si.nn", "Si.nn.ascii"]
    for sym, p in paths.items():
        assert p.read_bytes() == nn_to_bytes(tiny_potential[sym])
    a = triclinic_cell
    a.calc = calc
    e = a.get_potential_energy()
    # a directory of binary files, and of aenet-style snapshot names
    snap = tmp_path / "snap"
    snap.mkdir()
    write_nn(tiny_potential["Li"], snap / "Li.7t-5w.nn-00042")
    write_nn(tiny_potential["Si"], snap / "Si.6s-4m-3l.nn-00042")
    for source in (tmp_path / "pot", snap):
        if source == tmp_path / "pot":
            for p in source.glob("*.ascii"):
                p.unlink()
        a.calc = AenetTorch(source)
        assert a.get_potential_energy() == pytest.approx(e, abs=1e-10)


def test_export_reflects_changed_weights(tiny_potential, tmp_path):
    import torch

    calc = AenetTorch(tiny_potential)
    with torch.no_grad():
        next(calc.model.networks[0].layers[0].parameters()).add_(0.5)
    paths = calc.export_nn(tmp_path)
    again = AenetTorch(tmp_path)
    a = Atoms("LiSi", positions=[[0, 0, 0], [2.4, 0, 0]])
    a.calc = calc
    e = a.get_potential_energy()
    a.calc = again
    assert a.get_potential_energy() == pytest.approx(e, abs=1e-12)
    assert paths["Li"].read_bytes() != nn_to_bytes(tiny_potential["Li"])


def test_reference_directory_and_device_argument():
    ref = require_reference() / "LiSi-Artrith2018"
    calc = AenetTorch(ref, device="cpu")
    assert calc.elements == ["Li", "Si"] and calc.cutoff == 8.0
