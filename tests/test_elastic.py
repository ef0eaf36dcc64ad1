"""0 K elastic constants (matscipy) against finite differences of the stress."""

from __future__ import annotations

import json

import numpy as np
import pytest
from ase import units
from ase.build import bulk
from ase.calculators.emt import EMT

from aenet_torch_ase.analysis.elastic import elastic_constants, uniaxial_moduli, voigt_reuss_hill


def stress_derivative_constants(atoms, h=1e-4):
    """C11, C12, C44 (GPa) of a cubic one-atom cell by central differences of the stress."""
    def stress(eps):
        a = atoms.copy()
        a.calc = atoms.calc
        a.set_cell(atoms.cell.array @ (np.eye(3) + eps), scale_atoms=True)
        return a.get_stress(voigt=False) / units.GPa

    e = np.zeros((3, 3))
    e[0, 0] = h
    d = (stress(e) - stress(-e)) / (2 * h)
    c11, c12 = d[0, 0], d[1, 1]
    s = np.zeros((3, 3))
    s[1, 2] = s[2, 1] = h / 2  # engineering shear strain h
    c44 = ((stress(s) - stress(-s)) / (2 * h))[1, 2]
    return c11, c12, c44


def test_elastic_constants_of_emt_copper_equal_finite_differences(tmp_path, capsys):
    cu = bulk("Cu", "fcc", a=3.6, cubic=True)
    cu.calc = EMT()
    from ase.filters import FrechetCellFilter
    from ase.optimize import BFGS

    BFGS(FrechetCellFilter(cu), logfile=None).run(fmax=1e-6)
    c11, c12, c44 = stress_derivative_constants(cu)
    result = elastic_constants(cu, EMT(), delta=0.002, steps=5, fmax=1e-5)
    C = np.array(result["C_GPa"])
    assert C[0, 0] == pytest.approx(c11, rel=0.01) and C[1, 1] == pytest.approx(c11, rel=0.01)
    assert C[0, 1] == pytest.approx(c12, rel=0.01) and C[1, 2] == pytest.approx(c12, rel=0.01)
    assert C[3, 3] == pytest.approx(c44, rel=0.01) and C[5, 5] == pytest.approx(c44, rel=0.01)
    assert np.abs(C[:3, 3:]).max() < 0.01 * c11  # cubic: no normal-shear coupling
    # cubic crystal: K = (C11 + 2 C12)/3 in every average; E along x = 1/S11
    for name in ("voigt", "reuss", "hill"):
        assert result[name]["bulk_GPa"] == pytest.approx((c11 + 2 * c12) / 3, rel=0.01)
    e100 = (c11 - c12) * (c11 + 2 * c12) / (c11 + c12)
    assert result["young_uniaxial_GPa"]["x"] == pytest.approx(e100, rel=0.02)
    assert result["reuss"]["shear_GPa"] <= result["voigt"]["shear_GPa"]


def test_moduli_formulas_on_an_isotropic_solid():
    """An isotropic C (Lame lambda, mu): every average gives E and nu of the solid."""
    lam, mu = 40.0, 25.0
    C = np.zeros((6, 6))
    C[:3, :3] = lam
    C[np.arange(3), np.arange(3)] = lam + 2 * mu
    C[np.arange(3, 6), np.arange(3, 6)] = mu
    E = mu * (3 * lam + 2 * mu) / (lam + mu)
    nu = lam / (2 * (lam + mu))
    vrh = voigt_reuss_hill(C)
    for name in ("voigt", "reuss", "hill"):
        assert vrh[name]["young_GPa"] == pytest.approx(E) and vrh[name]["poisson"] == pytest.approx(nu)
        assert vrh[name]["bulk_GPa"] == pytest.approx(lam + 2 * mu / 3) and vrh[name]["shear_GPa"] == pytest.approx(mu)
    u = uniaxial_moduli(C)
    assert all(u["young_GPa"][a] == pytest.approx(E) for a in "xyz")
    assert u["poisson"]["xy"] == pytest.approx(nu)


def test_elastic_command(tmp_path, capsys):
    from aenet_torch_ase.cli import main
    from aenet_torch_ase.io.nn_binary import write_nn

    from conftest import random_structure, tiny_nn_files

    for s, nn in tiny_nn_files().items():
        write_nn(nn, tmp_path / f"{s}.nn")
    atoms = random_structure(8, np.diag([5.5, 5.5, 5.5]), True, seed=3, min_dist=2.0)
    atoms.write(tmp_path / "s.extxyz")
    assert main(["elastic", str(tmp_path / "s.extxyz"), "--potential", str(tmp_path), "--clamped", "--steps", "3",
                 "--out", str(tmp_path / "e.json")]) == 0
    data = json.loads((tmp_path / "e.json").read_text())
    C = np.array(data["C_GPa"])
    assert C.shape == (6, 6) and np.allclose(C, C.T, atol=0.05 * np.abs(C).max())
    assert "uniaxial Young's modulus" in capsys.readouterr().out
    assert main(["elastic", str(tmp_path / "s.extxyz"), "--potential", str(tmp_path), "--delta", "0.5"]) == 2
