"""Mechanical-test MD: protocol, tension/compression, NVT, pull, stress,
checkpoints. Cheap stand-in potentials keep it fast; one NVE test uses the
published Li-Si potential."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
from ase import units
from ase.build import bulk

from aenet_torch_ase import AenetTorch, ProtocolError
from aenet_torch_ase.md.protocol import Protocol, parse_duration
from aenet_torch_ase.md.run import minimize, run
from aenet_torch_ase.md.stress import atomic_stress_gpa, global_stress_gpa, slab_average
from conftest import BinaryLennardJones, require_reference


def rows(run_dir, stage=None):
    with open(run_dir / "stress_strain.csv") as f:
        out = list(csv.DictReader(f))
    return [r for r in out if stage is None or r["stage"] == stage]


def column(rs, name):
    return np.array([float(r[name]) for r in rs])


@pytest.fixture(scope="module")
def lj_crystal():
    """Relaxed fcc crystal of the Lennard-Jones stand-in (108 atoms, 0 K cell)."""
    calc = BinaryLennardJones()
    a = bulk("Li", "fcc", a=4.13, cubic=True).repeat((3, 3, 3))
    a.calc = calc
    assert minimize(a, fmax=1e-5, relax_cell=True)
    return a


def elastic_young_modulus(atoms, calc, axis=0, h=1e-4):
    """E along a cubic axis from C11, C12 by finite strains at 0 K (GPa)."""
    s = []
    for sign in (1, -1):
        c = atoms.copy()
        c.calc = calc
        strain = np.ones(3)
        strain[axis] += sign * h
        c.set_cell(atoms.cell.array @ np.diag(strain), scale_atoms=True)
        s.append(c.get_stress(voigt=False))
    d = (s[0] - s[1]) / (2 * h) / units.GPa
    c11, c12 = d[axis, axis], d[(axis + 1) % 3, (axis + 1) % 3]
    return (c11 - c12) * (c11 + 2 * c12) / (c11 + c12)


def test_protocol_defaults_are_the_seeds_and_validation():
    p = Protocol()
    assert (p.mode, p.axis, p.strain_rate, p.temperature, p.timestep) == ("tensile", "y", 1e10, 300.0, 1.0)
    assert (p.relax_time, p.time, p.pressure, p.tdamp, p.pdamp) == (20.0, 50.0, 1.0, 100.0, 1000.0)
    assert p.relax_steps == 20000 and p.load_steps == 50000
    assert Protocol(mode="compress").signed_rate == -1e10
    assert parse_duration("500fs") == 0.5 and parse_duration("2ns") == 2000.0 and parse_duration("20") == 20.0
    with pytest.raises(ProtocolError, match="timestep 1000.0 fs is too long"):
        Protocol(timestep=1000.0)
    with pytest.raises(ProtocolError, match="axis must be x, y or z"):
        Protocol(axis="w")
    assert Protocol.from_dict(p.to_dict()) == p


def test_tensile_modulus_lateral_pressure_and_exact_strain(lj_crystal, tmp_path):
    """Stand-in crystal: E within 10 % of the 0 K elastic constants; lateral
    stresses average to the 1 bar target within their standard error; the
    strain follows L0 (1 + rate t) exactly."""
    calc = lj_crystal.calc
    e_ref = elastic_young_modulus(lj_crystal, calc)
    rate = 5e9
    p = Protocol(mode="tensile", axis="x", temperature=10, timestep=2.0, relax_time=1.0, time=2.0,
                 strain_rate=rate, pdamp_steps=1000, record_every=10, frame_every=500, checkpoint_every=500)
    out = run(lj_crystal, calc, p, tmp_path / "t", progress=False)
    load = rows(out, "load")
    strain, t = column(load, "strain"), column(load, "time_ps")
    np.testing.assert_allclose(strain, rate * t * 1e-12, rtol=0, atol=1e-12)
    assert strain[-1] == pytest.approx(0.01, abs=1e-12)
    modulus = np.polyfit(strain, column(load, "sxx_GPa"), 1)[0]
    assert modulus == pytest.approx(e_ref, rel=0.10)
    target = 1.0e-4  # 1 bar in GPa
    for name in ("syy_GPa", "szz_GPa"):
        lateral = column(load, name)
        blocks = lateral[: len(lateral) // 10 * 10].reshape(10, -1).mean(1)  # block averages: correlated data
        assert abs(lateral.mean() - target) < 2.5 * blocks.std(ddof=1) / np.sqrt(10) + 2e-3
    assert column(load, "ly_A")[-1] != column(load, "ly_A")[0]  # the barostat moved the lateral axes
    meta = json.loads((out / "run.json").read_text())
    assert meta["status"] == "finished" and meta["protocol"]["strain_rate"] == rate


def test_compression_and_fixed_lateral(lj_crystal, tmp_path):
    p = Protocol(mode="compress", axis="z", temperature=10, timestep=2.0, relax_time=0.1, time=0.4,
                 strain_rate=1e10, lateral="fixed", record_every=20, frame_every=100, checkpoint_every=100)
    out = run(lj_crystal, lj_crystal.calc, p, tmp_path / "c", progress=False)
    load = rows(out, "load")
    np.testing.assert_allclose(column(load, "strain"), -1e10 * column(load, "time_ps") * 1e-12, atol=1e-12)
    assert np.all(column(load, "lx_A") == column(load, "lx_A")[0])  # fixed lateral axes
    assert column(load, "szz_GPa")[-1] < column(load, "szz_GPa")[0]  # compressive stress builds up


def test_resume_equals_uninterrupted_run(lj_crystal, tmp_path):
    p = Protocol(mode="tensile", axis="y", temperature=30, timestep=2.0, relax_time=0.2, time=0.4,
                 strain_rate=1e10, pdamp_steps=1000, record_every=10, frame_every=50, checkpoint_every=50)
    full = run(lj_crystal, lj_crystal.calc, p, tmp_path / "full", progress=False)
    part = run(lj_crystal, lj_crystal.calc, p, tmp_path / "part", progress=False, max_steps=170)
    assert json.loads((part / "run.json").read_text())["status"] == "paused"
    # rows written after the checkpoint must be dropped on resume
    resumed = run(lj_crystal, BinaryLennardJones(), Protocol(), part, resume=True, progress=False)
    a, b = rows(full), rows(resumed)
    assert len(a) == len(b)
    for ra, rb in zip(a, b):
        assert (ra["stage"], ra["step"]) == (rb["stage"], rb["step"])
        for key in ("sxx_GPa", "syy_GPa", "temperature_K", "ly_A", "epot_eV"):
            assert float(ra[key]) == pytest.approx(float(rb[key]), rel=1e-10, abs=1e-12)
    import ase.io

    fa = ase.io.read(full / "trajectory.extxyz", ":")
    fb = ase.io.read(resumed / "trajectory.extxyz", ":")
    assert [x.info["step"] for x in fa] == [x.info["step"] for x in fb]
    np.testing.assert_allclose(fa[-1].positions, fb[-1].positions, atol=1e-9)


def test_nvt_temperature_and_maxwell_distribution(tmp_path):
    """Nose-Hoover chain: mean temperature within 2 % over 11 ps; velocity
    components Gaussian with variance kT/m."""
    calc = BinaryLennardJones()
    a = bulk("Li", "fcc", a=4.13, cubic=True).repeat((4, 4, 4))
    p = Protocol(mode="nvt", temperature=100.0, timestep=4.0, time=12.0, relax_time=0.0, minimize_fmax=0.0,
                 record_every=5, frame_every=100, checkpoint_every=5000)
    out = run(a, calc, p, tmp_path / "nvt", progress=False)
    temps = column(rows(out), "temperature_K")[50:]  # after 1 ps
    assert temps.mean() == pytest.approx(100.0, rel=0.02)
    import ase.io

    frames = ase.io.read(out / "trajectory.extxyz", "10:")  # after 4 ps: 20 frames x 256 atoms
    v = np.concatenate([f.get_velocities()[:, 0] for f in frames])
    m = frames[0].get_masses()[0]
    scaled = v * np.sqrt(m / (units.kB * 100.0))
    assert scaled.var() == pytest.approx(1.0, abs=0.08)
    kurtosis = (scaled**4).mean() / scaled.var() ** 2
    assert kurtosis == pytest.approx(3.0, abs=0.3)


def test_atomic_stress_averages_to_global(tiny_potential, triclinic_cell):
    a = triclinic_cell.repeat((2, 1, 1))
    a.calc = AenetTorch(tiny_potential)
    rng = np.random.default_rng(0)
    a.set_velocities(rng.normal(0, 0.02, (len(a), 3)))
    per_atom = atomic_stress_gpa(a)
    np.testing.assert_allclose(per_atom.mean(0), global_stress_gpa(a), atol=1e-10)
    centres, slabs = slab_average(a, per_atom, axis=0, n_slabs=2)
    counts = np.bincount(np.minimum((a.get_scaled_positions()[:, 0] * 2).astype(int), 1), minlength=2)
    np.testing.assert_allclose((slabs * counts[:, None, None]).sum(0) / len(a), global_stress_gpa(a), atol=1e-10)


def test_minimize_warns_when_not_converged(lj_crystal):
    a = lj_crystal.copy()
    a.rattle(0.2, seed=1)
    a.calc = lj_crystal.calc
    with pytest.warns(UserWarning, match="did not converge"):
        assert not minimize(a, fmax=1e-6, steps=2)
    assert minimize(a, fmax=1e-3, method="fire", steps=2000)


def test_stretch_cli(tmp_path, tiny_potential, triclinic_cell):
    from aenet_torch_ase.cli import main
    from aenet_torch_ase.io.nn_binary import write_nn

    for s, nn in tiny_potential.items():
        write_nn(nn, tmp_path / f"{s}.nn")
    big = triclinic_cell.repeat((1, 1, 1))
    big.set_cell(np.diag([8.0, 8.0, 8.0]), scale_atoms=True)  # orthogonal box for loading
    from aenet_torch_ase.io.structure_files import write_structure

    write_structure(tmp_path / "s.extxyz", big)
    args = ["stretch", str(tmp_path / "s.extxyz"), "--potential", f"Li={tmp_path}/Li.nn", f"Si={tmp_path}/Si.nn",
            "--out", str(tmp_path / "run"), "--axis", "x", "--relax", "20fs", "--time", "40fs",
            "--temperature", "50", "--fmax", "0.5", "--record-every", "5", "--frame-every", "10",
            "--timestep", "1"]
    assert main(args) == 0
    load = rows(tmp_path / "run", "load")
    assert len(load) == 9 and column(load, "strain")[-1] == pytest.approx(1e10 * 40e-15, abs=1e-12)
    assert main(args[:-2] + ["--timestep", "100"]) == 2  # a clear protocol error, not a traceback


def test_nve_energy_conservation_reference_potential():
    """NVE (velocity Verlet, 1 fs) with the published Li-Si potential on the
    256-atom amorphous cell: total-energy drift below 1e-5 eV/atom/ps over 3 ps
    (benchmarks/modulus_study.py's nve cases run 5 ps, 1 and 2 fs)."""
    import ase.io
    from ase.md.verlet import VelocityVerlet

    ref = require_reference() / "LiSi-Artrith2018"
    atoms = ase.io.read(ref / "reference_predictx-2.0.4.extxyz", index=0)
    atoms.calc = AenetTorch(ref)
    from ase.md.velocitydistribution import MaxwellBoltzmannDistribution, Stationary

    MaxwellBoltzmannDistribution(atoms, temperature_K=300, rng=np.random.default_rng(1))
    Stationary(atoms)
    dyn = VelocityVerlet(atoms, 1.0 * units.fs)
    energies = []
    dyn.attach(lambda: energies.append(atoms.get_total_energy()), interval=50)
    dyn.run(3000)
    e = np.array(energies) / len(atoms)
    drift = abs(np.polyfit(np.arange(len(e)) * 0.05, e, 1)[0])  # eV/atom/ps
    assert drift < 1e-5
    assert np.ptp(e) < 5e-4  # and no jumps


def test_ctrl_c_leaves_a_checkpoint_and_resume_finishes(tmp_path, tiny_potential):
    """SIGINT during a run: exit code 130, status 'interrupted', a checkpoint and
    a flushed CSV; `--resume` then completes the run."""
    import signal
    import subprocess
    import sys
    import time

    from aenet_torch_ase.io.nn_binary import write_nn
    from aenet_torch_ase.io.structure_files import write_structure
    from aenet_torch_ase.md.structures import random_alloy

    for s, nn in tiny_potential.items():
        write_nn(nn, tmp_path / f"{s}.nn")
    write_structure(tmp_path / "s.extxyz", random_alloy("LiSi", 40, seed=0, min_distance=2.2))
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "aenet_torch_ase.cli", "stretch", str(tmp_path / "s.extxyz"),
           "--potential", str(tmp_path), "--out", str(out), "--relax", "0.1ps", "--time", "30ps",
           "--record-every", "10", "--checkpoint-every", "100000", "--frame-every", "100000", "--fmax", "0"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.time() + 120
    while time.time() < deadline:
        time.sleep(0.5)
        if (out / "stress_strain.csv").exists() and len(rows(out)) > 20:
            break
    proc.send_signal(signal.SIGINT)
    proc.communicate(timeout=120)
    assert proc.returncode == 130
    meta = json.loads((out / "run.json").read_text())
    assert meta["status"] == "interrupted" and (out / "checkpoint.npz").exists()
    stopped = meta["checkpoint"]["step"]
    assert rows(out)[-1]["step"] == str(stopped) or int(rows(out)[-1]["step"]) <= stopped
    # shorten the remaining work, then resume from the checkpoint
    meta["protocol"]["time"] = (stopped + 30) * 1e-3 if meta["checkpoint"]["stage"] == "load" else 0.05
    (out / "run.json").write_text(json.dumps(meta))
    resume = subprocess.run(cmd + ["--resume"], capture_output=True, text=True, timeout=300)
    assert resume.returncode == 0, resume.stderr[-2000:]
    assert json.loads((out / "run.json").read_text())["status"] == "finished"
    steps = [int(r["step"]) for r in rows(out, "load")]
    assert steps == sorted(set(steps))  # no duplicated rows after the resume
