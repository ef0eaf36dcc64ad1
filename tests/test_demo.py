"""The bundled LiSi-demo potential and `aenet-torch demo`."""

from __future__ import annotations

import json

import ase.io
import numpy as np
import pytest

from aenet_torch_ase import AenetTorch
from aenet_torch_ase.cli import main
from aenet_torch_ase.demo import BUNDLED_CELLS, DATA, bundled_cell
from aenet_torch_ase.errors import PotentialFileError
from aenet_torch_ase.pretrained import pretrained_names, pretrained_path

from conftest import require_reference


def test_bundled_potential_loads_by_name():
    assert "LiSi-demo" in pretrained_names()
    folder = pretrained_path("LiSi-demo")
    assert (folder / "MODEL_CARD.md").is_file() and (folder / "Li.nn").stat().st_size < 100_000
    a, b = AenetTorch("LiSi-demo"), AenetTorch.from_pretrained("LiSi-demo")
    assert a.elements == b.elements == ["Li", "Si"]
    atoms = ase.io.read(BUNDLED_CELLS[256])
    atoms.calc = a
    e1 = atoms.get_potential_energy()
    atoms.calc = b
    assert atoms.get_potential_energy() == e1
    with pytest.raises(PotentialFileError, match="no bundled potential named 'NoSuch'"):
        AenetTorch.from_pretrained("NoSuch")


CELLS = [("LiSi-demo", n) for n in sorted(BUNDLED_CELLS)] + \
    [("LiSi-Artrith2018", n) for n in (256, 1024) if bundled_cell("LiSi-Artrith2018", n) is not None]


@pytest.mark.parametrize("potential, n", CELLS)
def test_bundled_cells_are_relaxed_amorphous_li13si4(potential, n):
    path = bundled_cell(potential, n)
    assert path is not None and path.parent == DATA
    atoms = ase.io.read(path)
    assert len(atoms) == n
    symbols = atoms.get_chemical_symbols()
    assert symbols.count("Li") / len(symbols) == pytest.approx(13 / 17, abs=0.01)
    atoms.calc = AenetTorch(potential)
    assert np.abs(atoms.get_forces()).max() < 0.1  # minimised with this potential
    # amorphous: no long-range order (radial distribution flat beyond 6 A)
    from aenet_torch_ase.analysis.order import radial_distribution

    r, g = radial_distribution(atoms, r_max=min(7.5, 0.49 * atoms.cell.lengths().min()), bins=60)
    far = g[r > 5.5]
    assert np.abs(far - 1.0).max() < 0.5


def test_demo_potential_against_its_teacher():
    """Held-out teacher-labelled structures: the 15 structures of the shared
    reference set (a-LiSi parent and variations), labelled by aenet's
    predict.x with the teacher potential; none was in the demo's data."""
    ref = require_reference() / "LiSi-Artrith2018" / "reference_predictx-2.0.4.extxyz"
    frames = ase.io.read(ref, index=":")
    calc = AenetTorch("LiSi-demo")
    card = json.loads((pretrained_path("LiSi-demo") / "model_card.json").read_text())
    de, df = [], []
    for atoms in frames:
        e_ref, f_ref = atoms.info["aenet_energy"], atoms.arrays["aenet_forces"]
        atoms.calc = calc
        de.append((atoms.get_potential_energy() - e_ref) / len(atoms))
        df.append(np.linalg.norm(atoms.get_forces() - f_ref, axis=1))
    e_rmse = float(np.sqrt(np.mean(np.square(de))))
    f_rmse = float(np.sqrt(np.mean(np.square(np.concatenate(df)))))
    # measured: 81 meV/atom and 0.71 eV/A (the set holds a dimer, an atom and a
    # compressed 24-atom cell at -244 meV/atom); the model card's held-out set:
    # 20 meV/atom, 0.59 eV/A. Bounds leave room for round-off only.
    assert e_rmse < 0.12 and f_rmse < 1.0
    assert card["held_out"]["energy_rmse_eV_per_atom"] < 0.05


@pytest.mark.parametrize("n", [n for n in (256, 1024) if bundled_cell("LiSi-Artrith2018", n) is not None])
def test_published_potential_cells_are_melt_quenched_glasses(n):
    """The published potential's cells are melt-quenched (with the wall), hold no collapsed
    Li pair, lie well below the energy of the random packing annealed 2 ps at 500 K that the
    earlier cells were (-2.973 eV/atom at 256 atoms; melt-quenched: ~-3.07) and carry the 0 K
    relaxed-ion moduli measured when they were made (matscipy)."""
    from aenet_torch_ase.md.structures import closest_pair

    atoms = ase.io.read(bundled_cell("LiSi-Artrith2018", n))
    assert "melted at 1200 K" in atoms.info["recipe"] and "wall" in atoms.info["recipe"]
    assert closest_pair(atoms) > 1.6
    atoms.calc = AenetTorch("LiSi-Artrith2018")
    assert atoms.get_potential_energy() / n < -3.04
    # minimised in the box of its 300 K / 1 bar mean: at 0 K that box is under ~0.9 GPa of thermal tension
    assert np.abs(atoms.get_stress()).max() * 160.2 < 1.5
    assert 30.0 < atoms.info["young_0K_uniaxial_y_GPa"] < 90.0 and 30.0 < atoms.info["young_0K_hill_GPa"] < 90.0


def test_quick_demo_end_to_end(tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["demo", "--quick", "--atoms", "256", "--axes", "xyz", "--out", str(out)]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["potential"] == "LiSi-Artrith2018" and summary["timestep_fs"] == 1.0
    e = summary["young_modulus_GPa"]
    # Measured on this melt-quenched 256-atom cell at 300 K, 1e10 1/s (docs/modulus.md): along y
    # 30.4 +- 3.4 and 16.7 +- 3.5 GPa (this quick demo, fit 0-3 %, two runs); full ramps of the same
    # cell gave 17.2, 34.0 (and 36.5 on an earlier cell of the same recipe) over 0-3 %, SE 3.5; with x
    # and z: x 28.7, z 36.3, mean 27.2 +- 1.9 GPa. The old random-packed cell gave 3-11 GPa: the lower
    # bound on the mean catches a cell (or runner) that flows; the upper one a stress that is not the
    # system's. One axis alone scatters too much for the lower bound: it only has to be positive.
    axes = summary["young_modulus_axes_GPa"]
    assert sorted(axes) == ["x", "y", "z"] and axes["y"] == e
    for fit in axes.values():
        assert np.isfinite(fit["value"]) and 0.0 < fit["value"] < 90.0 and fit["stderr"] < 8.0
    mean = summary["young_modulus_mean_GPa"]
    assert mean["value"] == pytest.approx(np.mean([f["value"] for f in axes.values()]), rel=1e-12)
    assert 12.0 < mean["value"] < 70.0
    assert mean["stderr"] == pytest.approx(np.sqrt(sum(f["stderr"] ** 2 for f in axes.values())) / 3, rel=1e-12)
    assert (out / "elastic_xyz.png").stat().st_size > 10_000
    for axis in "xz":  # the extra ramps: their own velocities, to the end of the window only
        proto = json.loads((out / f"run_{axis}" / "run.json").read_text())["protocol"]
        assert proto["axis"] == axis and proto["seed"] != json.loads(
            (out / "run" / "run.json").read_text())["protocol"]["seed"]
    e0 = ase.io.read(bundled_cell("LiSi-Artrith2018", 256)).info["young_0K_uniaxial_y_GPa"]
    assert summary["young_modulus_0K_relaxed_ion_y_GPa"] == e0
    assert (out / "run" / "analysis" / "stress_strain.png").stat().st_size > 10_000
    assert len(summary["files"]["shear_strain"]) >= 2
    for f in summary["files"]["shear_strain"]:
        assert (out / "run" / "analysis" / f.split("/")[-1]).is_file()
    printed = capsys.readouterr().out
    assert "Young's modulus" in printed and "45.04" in printed and "45.7" in printed
    assert f"Young's modulus {mean['value']:.1f} +- {mean['stderr']:.1f} GPa (mean of 3 ramps" in printed
    # the 256-atom cell records the 0 K modulus along y only: no 0 K mean over the axes is made up
    assert summary["young_modulus_0K_relaxed_ion_mean_GPa"] is None
    assert f"0 K relaxed-ion Young's modulus of the same cell along y: {e0:.1f} GPa" in printed
    assert "no failure within the strain reached" in printed  # 3 % strain of noise is no failure


def test_mean_modulus_of_axes():
    """The mean over axes and its standard error sqrt(sum SE^2)/n; no mean when an axis has none."""
    from aenet_torch_ase.demo import mean_modulus

    fits = {"x": {"value": 40.0, "stderr": 3.0}, "y": {"value": 44.0, "stderr": 4.0},
            "z": {"value": 36.0, "stderr": 0.0}}
    m = mean_modulus(fits)
    assert m["value"] == pytest.approx(40.0) and m["stderr"] == pytest.approx(5.0 / 3.0) and m["axes"] == ["x", "y", "z"]
    fits["z"] = {"value": None, "stderr": None, "note": "window not reached"}
    assert mean_modulus(fits)["value"] is None


def test_a_collapsed_new_cell_is_a_clear_error(monkeypatch):
    """make_cell refuses a cell whose atoms collapsed while it was made, with
    an aenet-torch error (the CLI prints it without a traceback) that says
    what to use instead. The expensive steps are stood in for; the check is
    the real one."""
    from aenet_torch_ase import demo
    from aenet_torch_ase.errors import AenetError
    from aenet_torch_ase.md import run, structures

    def collapse(atoms, calc, **kw):
        atoms = atoms.copy()
        atoms.positions[1] = atoms.positions[0] + [0.5, 0.0, 0.0]
        return atoms

    monkeypatch.setattr(run, "minimize", lambda atoms, **kw: None)
    monkeypatch.setattr(structures, "melt_quench", collapse)
    monkeypatch.setattr(demo, "relax_to_zero_stress", lambda atoms: None)
    monkeypatch.setattr(demo, "equilibrate_volume", lambda atoms, calc, **kw: None)
    with pytest.raises(AenetError, match=r"two atoms collapsed \(0\.50 A\).*bundled cell"):
        demo.make_cell(68, calc=None, progress=False)
