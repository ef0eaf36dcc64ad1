"""The bundled published Li-Si potential: unmodified files, found by name,
aenet's numbers."""

from __future__ import annotations

import ase.io
import numpy as np
import pytest
from ase.build import bulk

from aenet_torch_ase import AenetTorch
from aenet_torch_ase.pretrained import pretrained_names, pretrained_path

from conftest import REFERENCE


def test_published_potential_is_bundled_with_its_licence():
    assert "LiSi-Artrith2018" in pretrained_names()
    folder = pretrained_path("LiSi-Artrith2018")
    import hashlib

    md5 = {p.name: hashlib.md5(p.read_bytes()).hexdigest() for p in folder.glob("*.nn")}
    assert md5 == {"Li.15t-15t.nn": "11d06311f059f7020b786a2bc9983b76",
                   "Si.15t-15t.nn": "42852889971d03667c346bbc96e3f325"}
    text = (folder / "LICENSE.md").read_text()
    assert "Mozilla Public License" in text and "J. Chem. Phys. 148, 241711" in text
    assert "collapse" in (folder / "MODEL_CARD.md").read_text()
    calc = AenetTorch("LiSi-Artrith2018")
    assert calc.elements == ["Li", "Si"] and calc.cutoff == 8.0
    atoms = bulk("Si", "diamond", a=5.43).repeat(2)
    atoms.numbers[::3] = 3
    atoms.calc = calc
    assert np.isfinite(atoms.get_potential_energy())
    assert np.abs(atoms.get_forces().sum(0)).max() < 1e-10


def test_bundled_potential_gives_aenets_numbers():
    path = REFERENCE / "LiSi-Artrith2018" / "reference_predictx-2.0.4.extxyz"
    if not path.is_file():
        pytest.skip(f"aenet reference data not found at {path} (only in the project's CI checkout)")
    atoms = ase.io.read(path, index=0)
    atoms.calc = AenetTorch("LiSi-Artrith2018")
    assert atoms.get_potential_energy() == pytest.approx(atoms.info["aenet_energy"], abs=1e-8)
    np.testing.assert_allclose(atoms.get_forces(), atoms.arrays["aenet_forces"], atol=1e-8)
