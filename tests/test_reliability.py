"""Hostile-but-fair inputs: no file runs code, no run destroys another, no
crash on a thin cell or a shared calculator, no wrong number without an
error, and every user mistake ends as a one-line error with exit 2."""

from __future__ import annotations

import json
import os
import signal
import stat
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from ase import Atoms
from ase.build import bulk

from aenet_torch_ase import AenetTorch
from aenet_torch_ase.analysis.stress_strain import StressStrain
from aenet_torch_ase.cli import build_parser, main
from aenet_torch_ase.errors import (InputFileError, OutputError, PotentialFileError, ProtocolError, ResultError,
                                    StructureError)
from aenet_torch_ase.io.atomic_write import atomic_write_text
from aenet_torch_ase.io.input_files import read_fingerprint_setup, read_predict_in
from aenet_torch_ase.io.nn_binary import nn_to_bytes, read_nn, write_nn
from aenet_torch_ase.io.structure_files import write_structure
from aenet_torch_ase.io.training_inputs import read_train_in
from aenet_torch_ase.io.xsf import read_xsf, write_xsf
from aenet_torch_ase.md.protocol import Protocol
from aenet_torch_ase.md.run import run
from aenet_torch_ase.training.dataset import TrainingSet, load_structures
from aenet_torch_ase.training.trainer import TrainConfig, Trainer

from conftest import BinaryLennardJones, random_structure, tiny_nn_files

E_ATOM = {"Li": -1.9, "Si": -5.4}


def cli(capsys, *argv):
    """Run the CLI in-process: (exit code, stderr)."""
    code = main([str(a) for a in argv])
    err = capsys.readouterr().err
    return code, err


def assert_clean_error(code, err, fragment):
    assert code == 2, err
    assert "error:" in err and "Traceback" not in err
    assert fragment in err, err


@pytest.fixture(scope="module")
def potential_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("pot")
    for sym, nn in tiny_nn_files().items():
        write_nn(nn, d / f"{sym}.nn")
    return d


@pytest.fixture
def lj_cell():
    a = bulk("Li", "fcc", a=4.13, cubic=True).repeat((2, 2, 2))
    a.numbers[::4] = 14
    return a


def quick_protocol(**kw):
    base = dict(mode="tensile", axis="y", temperature=30, timestep=2.0, relax_time=0.04, time=0.04,
                minimize_fmax=0.0, record_every=5, frame_every=10, checkpoint_every=10)
    base.update(kw)
    return Protocol(**base)


# ---------------------------------------------------------------- security

class _Payload:
    """Unpickling this object would create the marker file."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


@pytest.fixture(scope="module")
def small_sets(tmp_path_factory):
    """Two featurised training sets of the same size (A and B, other labels) and a train.in."""
    d = tmp_path_factory.mktemp("train")
    sets = {}
    for name, seed in (("A", 1), ("B", 2)):
        teacher = AenetTorch(tiny_nn_files(seed=seed))
        refs = []
        for k in range(10):
            atoms = random_structure(8, np.diag([5.6, 5.6, 5.6]), True, seed=50 + k, min_dist=1.9)
            atoms.calc = teacher
            write_xsf(d / f"{name}{k}.xsf", atoms, energy=atoms.get_potential_energy(), forces=atoms.get_forces())
            refs.append(d / f"{name}{k}.xsf")
        from aenet_torch_ase.io.input_files import FingerprintSetup

        setups = {e: FingerprintSetup(atom=e, env=["Li", "Si"], rmin=1.0, basis="chebyshev", radial_rc=4.0,
                                      radial_n=4, angular_rc=3.2, angular_n=2) for e in ("Li", "Si")}
        ts = TrainingSet.featurize(load_structures(refs), setups, E_ATOM, forces=True)
        ts.save(d / f"{name}.train")
        sets[name] = ts
    (d / "train.in").write_text("TRAININGSET A.train\nTESTPERCENT 20\nITERATIONS 2\nBATCHSIZE 4\nFORCES alpha=0.3\n"
                                "METHOD\nmethod=adam lr=0.01\nNETWORKS\nLi Li.nn 1 3:tanh\nSi Si.nn 1 3:tanh\n")
    return d, sets


def small_config(**kw):
    base = dict(networks={"Li": [(3, "tanh")], "Si": [(3, "tanh")]}, epochs=4, batch_size=4, test_percent=20,
                lr=0.01, checkpoint_every=2)
    base.update(kw)
    return TrainConfig(**base)


def test_crafted_training_checkpoint_runs_nothing(small_sets, tmp_path, capsys):
    d, _ = small_sets
    out = tmp_path / "run"
    out.mkdir()
    marker = tmp_path / "pwned"
    torch.save({"config": {}, "networks": {}, "x": _Payload(str(marker))}, out / "checkpoint.pt")
    code, err = cli(capsys, "train", d / "train.in", "--out", out, "--resume")
    assert_clean_error(code, err, "refused without running anything")
    assert not marker.exists()
    # a damaged checkpoint: clean error too
    (out / "checkpoint.pt").write_bytes(os.urandom(300))
    code, err = cli(capsys, "train", d / "train.in", "--out", out, "--resume")
    assert_clean_error(code, err, "checkpoint.pt")


def test_model_archive_is_rebuilt_from_records_unless_trusted(tiny_potential, tmp_path):
    """The archive's TorchScript (here: perturbed weights) runs only with trust_code=True."""
    from aenet_torch_ase.calculator import _ARCHIVE_META, _read_archive_meta, script_model

    honest = AenetTorch(tiny_potential)
    honest.save(tmp_path / "honest.pt")
    meta = _read_archive_meta(tmp_path / "honest.pt")
    tampered = AenetTorch(tiny_potential)
    with torch.no_grad():
        next(tampered.model.networks[0].parameters()).add_(0.5)
    torch.jit.save(script_model(tampered.model), str(tmp_path / "crafted.pt"),
                   _extra_files={_ARCHIVE_META: json.dumps(meta)})
    atoms = random_structure(10, np.diag([6.0, 6.0, 6.0]), True, seed=4)
    e_honest = honest.get_potential_energy(atoms)
    e_tampered = tampered.get_potential_energy(atoms)
    assert abs(e_honest - e_tampered) > 1e-3
    assert AenetTorch(tmp_path / "crafted.pt").get_potential_energy(atoms) == pytest.approx(e_honest, abs=1e-10)
    trusted = AenetTorch(tmp_path / "crafted.pt", trust_code=True)
    assert trusted.get_potential_energy(atoms) == pytest.approx(e_tampered, abs=1e-10)
    # truncated and random archives: a clear error
    data = (tmp_path / "honest.pt").read_bytes()
    (tmp_path / "cut.pt").write_bytes(data[: len(data) // 2])
    (tmp_path / "noise.pt").write_bytes(os.urandom(2000))
    for name in ("cut.pt", "noise.pt"):
        with pytest.raises(PotentialFileError, match="not a readable model archive"):
            AenetTorch(tmp_path / name)


# ---------------------------------------------------------------- data loss

def test_run_refuses_an_existing_run_unless_overwrite(lj_cell, tmp_path):
    calc = BinaryLennardJones()
    out = run(lj_cell, calc, quick_protocol(), tmp_path / "r", progress=False)
    (out / "analysis").mkdir()
    before = (out / "stress_strain.csv").read_bytes()
    with pytest.raises(OutputError, match="already holds a run .*--overwrite"):
        run(lj_cell, calc, quick_protocol(), out, progress=False)
    assert (out / "stress_strain.csv").read_bytes() == before
    run(lj_cell, calc, quick_protocol(), out, progress=False, overwrite=True, max_steps=3)
    # the new (paused) run has no leftovers of the old one
    assert not (out / "final.extxyz").exists() and not (out / "analysis").exists()
    assert json.loads((out / "run.json").read_text())["status"] == "paused"


def test_cli_stretch_demo_train_refuse_existing_runs(potential_dir, small_sets, tmp_path, capsys):
    (tmp_path / "s").mkdir()
    (tmp_path / "s" / "run.json").write_text("{}")
    structure = tmp_path / "cell.extxyz"
    random_structure(8, np.diag([6.0, 6.0, 6.0]), True, seed=1).write(structure)
    code, err = cli(capsys, "stretch", structure, "--potential", potential_dir, "--out", tmp_path / "s")
    assert_clean_error(code, err, f"{tmp_path / 's'} already holds a run")
    (tmp_path / "demo").mkdir()
    (tmp_path / "demo" / "summary.json").write_text("{}")
    code, err = cli(capsys, "demo", "--out", tmp_path / "demo", "--potential", potential_dir)
    assert_clean_error(code, err, "already holds a demo")
    d, _ = small_sets
    assert main(["train", str(d / "train.in"), "--out", str(tmp_path / "t")]) == 0
    first = (tmp_path / "t" / "Li.nn").read_bytes()
    code, err = cli(capsys, "train", d / "train.in", "--out", tmp_path / "t")
    assert_clean_error(code, err, "already holds a training")
    assert (tmp_path / "t" / "Li.nn").read_bytes() == first
    assert main(["train", str(d / "train.in"), "--out", str(tmp_path / "t"), "--overwrite"]) == 0
    # two trainings from one train.in with different --out keep their own networks
    assert main(["train", str(d / "train.in"), "--out", str(tmp_path / "u"), "--epochs", "3"]) == 0
    assert (tmp_path / "u" / "Li.nn").is_file() and not (d / "Li.nn").exists()


def test_two_networks_lines_naming_one_file(tmp_path):
    p = tmp_path / "train.in"
    p.write_text("TRAININGSET x.train\nNETWORKS\nTi  nets/Ti.nn 1 3:tanh\nO ./nets/Ti.nn 1 3:tanh\n")
    with pytest.raises(InputFileError, match=r"line 4: NETWORKS lines 3 \(Ti\) and 4 \(O\) name the same file"):
        read_train_in(p)


def test_unwritable_network_destination_fails_before_training(small_sets, tmp_path):
    _, sets = small_sets
    (tmp_path / "blocker").write_text("a file, not a folder")
    trainer = Trainer(sets["A"], small_config(files={"Li": str(tmp_path / "blocker" / "Li.nn")}), tmp_path / "out")
    with pytest.raises(OutputError, match="cannot write into the folder of the network files"):
        trainer.train(progress=False)
    assert trainer.epoch == 0 and not (tmp_path / "out" / "train_log.csv").exists()


def test_unwritable_output_folder_is_a_clean_error(potential_dir, tmp_path, capsys):
    (tmp_path / "blocker").write_text("a file")
    structure = tmp_path / "cell.extxyz"
    random_structure(8, np.diag([6.0, 6.0, 6.0]), True, seed=1).write(structure)
    t0 = time.time()
    code, err = cli(capsys, "stretch", structure, "--potential", potential_dir, "--out", tmp_path / "blocker" / "r")
    assert_clean_error(code, err, "cannot write into the output folder")
    code, err = cli(capsys, "lammps", "export", "--potential", potential_dir, "--structure", structure,
                    "--out", tmp_path / "blocker" / "deck")
    assert_clean_error(code, err, "cannot write into the LAMMPS deck folder")
    assert time.time() - t0 < 30
    if os.geteuid() != 0:  # root writes into read-only folders anyway
        ro = tmp_path / "ro"
        ro.mkdir()
        ro.chmod(0o500)
        code, err = cli(capsys, "stretch", structure, "--potential", potential_dir, "--out", ro / "r")
        assert_clean_error(code, err, "cannot write")


def test_atomic_writes_follow_the_umask_and_keep_modes(tmp_path):
    old = os.umask(0o022)
    try:
        atomic_write_text(str(tmp_path / "new.txt"), "x")
        assert stat.S_IMODE((tmp_path / "new.txt").stat().st_mode) == 0o644
        os.umask(0o077)
        atomic_write_text(str(tmp_path / "private.txt"), "x")
        assert stat.S_IMODE((tmp_path / "private.txt").stat().st_mode) == 0o600
        os.umask(0o022)
        (tmp_path / "new.txt").chmod(0o640)
        atomic_write_text(str(tmp_path / "new.txt"), "y")  # replacing keeps the file's mode
        assert stat.S_IMODE((tmp_path / "new.txt").stat().st_mode) == 0o640
        AenetTorch(tiny_nn_files()).export_nn(tmp_path / "pot")
        assert stat.S_IMODE((tmp_path / "pot" / "Li.nn").stat().st_mode) == 0o644
        write_structure(tmp_path / "s.extxyz", Atoms("Li2", positions=[[0, 0, 0], [2, 0, 0]], cell=[5, 5, 5]))
        assert stat.S_IMODE((tmp_path / "s.extxyz").stat().st_mode) == 0o644  # not mkstemp's 0600
    finally:
        os.umask(old)


@pytest.mark.parametrize("writer", ["text", "structure"])
def test_atomic_writes_sync_the_data_before_the_rename_and_the_folder_after(tmp_path, monkeypatch, writer):
    """A power cut leaves the old file or the whole new one: the temporary
    file's data reach the disk before it is renamed into place, and the
    folder (the rename) after."""
    events = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd):
        events.append(("fsync", "dir" if stat.S_ISDIR(os.fstat(fd).st_mode) else os.fstat(fd).st_size))
        real_fsync(fd)

    def replace(src, dst):
        events.append(("replace", os.path.getsize(src)))
        real_replace(src, dst)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    target = tmp_path / "out.extxyz"
    if writer == "text":
        atomic_write_text(str(target), "some text\n")
    else:
        write_structure(target, Atoms("Li2", positions=[[0, 0, 0], [2, 0, 0]], cell=[5, 5, 5]))
    size = target.stat().st_size
    assert size > 0
    assert events == [("fsync", size), ("replace", size), ("fsync", "dir")]


def test_convert_refuses_same_input_and_output(potential_dir, tmp_path, capsys):
    path = tmp_path / "Li.nn"
    path.write_bytes((potential_dir / "Li.nn").read_bytes())
    before = path.read_bytes()
    code, err = cli(capsys, "convert", path, path)
    assert_clean_error(code, err, "same file")
    code, err = cli(capsys, "convert", path, tmp_path / "." / "Li.nn")
    assert_clean_error(code, err, "same file")
    assert path.read_bytes() == before


# ---------------------------------------------------------------- crashes

def test_one_calculator_shared_by_two_threads(tiny_potential):
    calc = AenetTorch(tiny_potential)
    structures = [random_structure(n, np.diag([7.0, 7.5, 8.0]), True, seed=n) for n in (12, 18)]
    reference = []
    for a in structures:
        own = AenetTorch(tiny_potential)
        reference.append((own.get_potential_energy(a), own.get_forces(a)))
    failures = []

    def work(k):
        atoms = structures[k].copy()
        atoms.calc = calc
        try:
            for step in range(25):  # the same structure, asked again and again, while the other thread asks its own
                e, f = atoms.get_potential_energy(), atoms.get_forces()
                if abs(e - reference[k][0]) > 1e-9 or np.abs(f - reference[k][1]).max() > 1e-9:
                    failures.append((k, step, e - reference[k][0]))
                if step % 3 == 0:
                    atoms.calc.reset()
        except Exception as err:  # any error in a thread is a failure
            failures.append((k, repr(err)))

    threads = [threading.Thread(target=work, args=(k,)) for k in (0, 1, 0, 1)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert failures == []


@pytest.mark.parametrize("height", [1e-2, 1e-3, 1e-7])
def test_thin_periodic_cell_is_refused_fast(tiny_potential, height):
    calc = AenetTorch(tiny_potential)
    rng = np.random.default_rng(0)
    atoms = Atoms("Li32Si32", positions=rng.random((64, 3)) * [20, 20, height], cell=[20, 20, height], pbc=True)
    atoms.calc = calc
    t0 = time.perf_counter()
    with pytest.raises(StructureError, match=f"cell height along lattice vector 3 is {height:.3g} A"):
        atoms.get_potential_energy()
    assert time.perf_counter() - t0 < 0.5


def test_small_but_sound_cells_still_work(tiny_potential):
    calc = AenetTorch(tiny_potential)
    one = bulk("Li", "bcc", a=3.44)  # heights ~2.8 A, below the 4 A cutoff: many images, all needed
    one.calc = calc
    assert np.isfinite(one.get_potential_energy())


def test_torn_frame_and_row_are_dropped_on_resume_and_in_analysis(lj_cell, tmp_path):
    calc = BinaryLennardJones()
    p = quick_protocol(relax_time=0.02, time=0.06)
    full = run(lj_cell, calc, p, tmp_path / "full", progress=False)
    out = run(lj_cell, calc, p, tmp_path / "torn", progress=False, max_steps=25)
    with open(out / "trajectory.extxyz", "a") as f:
        f.write("32\nLattice=\"8.26 0 0 0 8.26 0 0 0 8.26\" Properties=species:S:1:pos:R:3 stage=load\nLi 0.0 0")
    with open(out / "stress_strain.csv", "a") as f:
        f.write("load,30,0.06,0.01,0.1")
    with pytest.warns(UserWarning, match="incomplete"):
        run(None, calc, Protocol(), out, resume=True, progress=False)
    import ase.io

    steps = [a.info["step"] for a in ase.io.read(out / "trajectory.extxyz", ":")]
    assert steps == [a.info["step"] for a in ase.io.read(full / "trajectory.extxyz", ":")]
    assert (out / "stress_strain.csv").read_text() == (full / "stress_strain.csv").read_text()
    # analysis of a run whose CSV ends in a torn line
    with open(out / "stress_strain.csv", "a") as f:
        f.write("load,99,0.1")
    with pytest.warns(UserWarning, match="incomplete"):
        curve = StressStrain.from_run(out)
    assert len(curve.strain) == len(StressStrain.from_run(full).strain)


class _InterruptingLJ(BinaryLennardJones):
    """Sends SIGINT to this process on its 4th force call; counts the calls after."""

    def __init__(self):
        super().__init__()
        self.calls = 0

    def calculate(self, *args, **kwargs):
        self.calls += 1
        if self.calls == 4:
            os.kill(os.getpid(), signal.SIGINT)
        super().calculate(*args, **kwargs)


def test_ctrl_c_during_minimisation_stops_at_once(lj_cell, tmp_path):
    lj_cell.rattle(0.2, seed=1)
    calc = _InterruptingLJ()
    out = tmp_path / "m"
    with pytest.raises(KeyboardInterrupt):
        run(lj_cell, calc, quick_protocol(minimize_fmax=1e-6), out, progress=False)
    assert calc.calls <= 6  # the signal came at call 4: at most a step or two more
    meta = json.loads((out / "run.json").read_text())
    assert meta["status"] == "interrupted" and "nothing to resume" in meta["note"]
    with pytest.raises(InputFileError, match="nothing to resume"):
        run(None, BinaryLennardJones(), Protocol(), out, resume=True, progress=False)


# ---------------------------------------------------------------- wrong numbers without an error

class _OtherLJ(BinaryLennardJones):
    pass


def test_resume_checks_structure_and_potential(lj_cell, tmp_path):
    calc = BinaryLennardJones()
    out = run(lj_cell, calc, quick_protocol(), tmp_path / "r", progress=False, max_steps=5)
    shuffled = lj_cell[np.random.default_rng(0).permutation(len(lj_cell))]
    with pytest.raises(StructureError, match="not the run's"):
        run(shuffled, calc, Protocol(), out, resume=True, progress=False)
    with pytest.raises(StructureError, match="has 31 atoms"):
        run(lj_cell[:-1], calc, Protocol(), out, resume=True, progress=False)
    with pytest.raises(ProtocolError, match="another potential"):
        run(None, _OtherLJ(), Protocol(), out, resume=True, progress=False)
    # AenetTorch potentials are told apart by the hash of their .nn records
    a, b = AenetTorch(tiny_nn_files(seed=1)), AenetTorch(tiny_nn_files(seed=2))
    assert a.fingerprint != b.fingerprint and a.fingerprint == AenetTorch(tiny_nn_files(seed=1)).fingerprint
    run(None, calc, Protocol(), out, resume=True, progress=False)  # the structure comes from the checkpoint
    assert json.loads((out / "run.json").read_text())["status"] == "finished"


def test_resume_without_the_structure_keeps_what_it_carried(lj_cell, tmp_path):
    """A run resumed from its checkpoint alone keeps the structure's own
    per-atom arrays (a stack's 'particle') and info in its frames and final
    structure, as a run resumed with the structure file does."""
    import ase.io

    calc = BinaryLennardJones()
    atoms = lj_cell.copy()
    atoms.arrays["particle"] = np.arange(len(atoms)) % 3
    atoms.info.update(source="stack of 3", n_particles=3, radii=np.array([1.5, 2.0, 2.5]))
    out = run(atoms, calc, quick_protocol(), tmp_path / "r", progress=False, max_steps=5)
    run(None, calc, Protocol(), out, resume=True, progress=False)
    assert json.loads((out / "run.json").read_text())["status"] == "finished"
    for final in (ase.io.read(out / "final.extxyz"), ase.io.read(out / "trajectory.extxyz", -1)):
        np.testing.assert_array_equal(final.arrays["particle"], atoms.arrays["particle"])
        assert final.info["source"] == "stack of 3" and final.info["n_particles"] == 3
        np.testing.assert_allclose(final.info["radii"], [1.5, 2.0, 2.5])


def test_train_resume_refuses_another_training_set(small_sets, tmp_path):
    _, sets = small_sets
    assert sets["A"].n_structures == sets["B"].n_structures
    Trainer(sets["A"], small_config(), tmp_path / "t").train(progress=False, max_epochs=2)
    with pytest.raises(InputFileError, match="another training set"):
        Trainer(sets["B"], small_config(), tmp_path / "t").train(progress=False, resume=True)
    Trainer(sets["A"], small_config(), tmp_path / "t").train(progress=False, resume=True)


def test_xsf_inconsistencies_are_errors(tmp_path):
    head = "CRYSTAL\nPRIMVEC\n5 0 0\n0 5 0\n0 0 5\nPRIMCOORD\n"
    cases = {
        "count": (head + "1 1\nLi 0 0 0\nLi 2 2 2\n", "line 9: PRIMCOORD announces 1 atoms but more atom lines"),
        "primvec": ("CRYSTAL\nPRIMCOORD\n1 1\nLi 0 0 0\n", "line 1: CRYSTAL without PRIMVEC"),
        "forces": (head + "2 1\nLi 0 0 0 0.1 0.2 0.3\nLi 2 2 2\n", "line 9: this atom line lacks force columns"),
    }
    for name, (text, message) in cases.items():
        (tmp_path / f"{name}.xsf").write_text(text)
        with pytest.raises(InputFileError, match=message):
            read_xsf(tmp_path / f"{name}.xsf")
    # no forces at all while FORCES is on
    write_xsf(tmp_path / "noforces.xsf", random_structure(8, np.diag([6.0] * 3), True, seed=2), energy=-10.0)
    from aenet_torch_ase.io.input_files import FingerprintSetup

    setups = {e: FingerprintSetup(atom=e, env=["Li", "Si"], rmin=1.0, basis="chebyshev", radial_rc=4.0,
                                  radial_n=4, angular_rc=3.2, angular_n=2) for e in ("Li", "Si")}
    with pytest.raises(InputFileError, match="FORCES is on, but 1 structure"):
        TrainingSet.featurize(load_structures([tmp_path / "noforces.xsf"]), setups, E_ATOM, forces=True)


def test_non_finite_potentials_and_results(tiny_potential, tmp_path):
    nn = tiny_potential["Li"]
    bad = nn.with_layer_matrices(nn.layer_matrices())
    bad.weights[3] = np.nan
    data = bytearray(nn_to_bytes(bad))
    (tmp_path / "Li.nn").write_bytes(bytes(data))
    with pytest.raises(PotentialFileError, match="record W holds a non-finite number .* position 4"):
        read_nn(tmp_path / "Li.nn")
    # a model that overflows: huge output bias, given directly (not through a file)
    mats = nn.layer_matrices()
    mats[-1] = (mats[-1][0] * 1e308, mats[-1][1] + 1e308)
    calc = AenetTorch({"Li": nn.with_layer_matrices(mats), "Si": tiny_potential["Si"]})
    atoms = random_structure(8, np.diag([6.0] * 3), True, seed=2)
    atoms.calc = calc
    with pytest.raises(ResultError, match="non-finite energies"):
        atoms.get_potential_energy()


def test_forces_alpha_on_one_line_and_unknown_basis_parameters(tmp_path):
    p = tmp_path / "train.in"
    p.write_text("TRAININGSET x.train\nFORCES alpha=0.9\nNETWORKS\nTi Ti.nn 1 3:tanh\n")
    assert read_train_in(p).alpha == 0.9
    p.write_text("TRAININGSET x.train\nFORCES beta=0.9\nNETWORKS\nTi Ti.nn 1 3:tanh\n")
    with pytest.raises(InputFileError, match="line 2: FORCES takes 'alpha"):
        read_train_in(p)
    s = tmp_path / "X.stp"
    s.write_text("ATOM Ti\nENV 1\nTi\nBASIS type=Chebyshev\n"
                 "radial_Rc = 8.0 radial_N = 16 angular_Rc = 6.5 angular_N = 4 angular_Rmin = 1\n")
    with pytest.raises(InputFileError, match=r"line 5: unknown Chebyshev parameters \['angular_Rmin'\]"):
        read_fingerprint_setup(s)
    s.write_text("ATOM Ti\nENV 1\nTi\nBASIS type=Chebyshev order=2\n"
                 "radial_Rc = 8.0 radial_N = 16 angular_Rc = 6.5 angular_N = 4\n")
    with pytest.raises(InputFileError, match=r"line 4: unknown BASIS parameters \['order'\]"):
        read_fingerprint_setup(s)


def test_modulus_not_given_when_the_window_is_not_reached(tmp_path, capsys):
    strain = np.linspace(0, 0.012, 40)
    curve = StressStrain(strain=strain, stress=50 * strain + np.random.default_rng(0).normal(0, 0.2, 40))
    e = curve.young_modulus((0.0, 0.02))
    assert e["value"] is None and "reached strain 0.0120" in e["note"]
    assert curve.young_modulus((0.0, 0.01))["value"] == pytest.approx(50, rel=0.5)
    assert curve.summary()["yield_0.2pct_offset"] is None


# ---------------------------------------------------------------- clean errors everywhere

def test_empty_atoms_give_zero(tiny_potential):
    calc = AenetTorch(tiny_potential)
    empty = Atoms(cell=[5, 5, 5], pbc=True)
    empty.calc = calc
    assert empty.get_potential_energy() == 0.0
    assert empty.get_forces().shape == (0, 3) and np.all(empty.get_stress() == 0)
    assert Atoms(calculator=calc).get_potential_energy() == 0.0


@pytest.fixture
def bad_inputs(tmp_path, potential_dir):
    """Files for the table of bad command lines."""
    t = tmp_path
    structure = t / "cell.extxyz"
    random_structure(8, np.diag([6.0, 6.0, 6.0]), True, seed=1).write(structure)
    cluster = t / "cluster.extxyz"
    random_structure(8, np.diag([6.0, 6.0, 6.0]), False, seed=1).write(cluster)
    (t / "relax.in").write_text(f"TYPES\n2\nLi\nSi\nNETWORKS\nLi {potential_dir}/Li.nn\nSi {potential_dir}/Si.nn\n"
                                f"RELAX\nmethod=teleport steps=10\nFILES\n1\n{structure}\n")
    (t / "count.in").write_text(f"TYPES\n1\nLi\nSi\nNETWORKS\nLi {potential_dir}/Li.nn\nSi {potential_dir}/Si.nn\n")
    for name, text in (("lr.in", "METHOD\nmethod=adam lr=-1\n"), ("reg.in", "REGULARIZATION -1\n")):
        (t / name).write_text("TRAININGSET x.train\n" + text + "NETWORKS\nLi Li.nn 1 3:tanh\n")
    (t / "cut.nn").write_bytes((potential_dir / "Li.nn").read_bytes()[:3])
    (t / "model.pt").write_bytes(os.urandom(500))
    for name in ("npz", "json"):
        run_dir = t / f"damaged_{name}"
        run_dir.mkdir()
        (run_dir / "run.json").write_text('{"protocol": {}, "status": "paused"}' if name == "npz" else "{broken")
        (run_dir / "checkpoint.npz").write_bytes(os.urandom(100))
    (t / "blocker").write_text("a file")
    return t


BAD_COMMANDS = [
    # (argv with {t} = tmp folder, {pot} = potential folder, fragment of the message)
    ("predict {t}/relax.in", "RELAX method='teleport' is not available"),
    ("predict {t}/count.in", "TYPES announces 1 entries but more follow"),
    ("train {t}/lr.in", "METHOD lr must be positive"),
    ("train {t}/reg.in", "REGULARIZATION (weight decay) must not be negative"),
    ("stretch {t}/cell.extxyz --potential {pot} --out {t}/r --time abc", "--time 'abc': give a duration"),
    ("stretch {t}/cluster.extxyz --potential {pot} --out {t}/r", "use mode 'pull' (--mode pull)"),
    ("stretch --potential {pot} --out {t}/damaged_npz --resume", "checkpoint.npz is damaged"),
    ("stretch --potential {pot} --out {t}/damaged_json --resume", "run.json is damaged"),
    ("stretch {t}/cell.extxyz --potential {pot} --out {t}/blocker", "is a file, not a folder"),
    ("stretch --potential {pot} --out {t}/r2", "give the structure file"),
    ("build stack Li13Si4 --particles 0 -o {t}/s.extxyz", "number of particles must be at least 1"),
    ("analyze {t}/nope_dir", "nope_dir is not a folder"),
    ("analyze {t} --window 0.02 0", "low then high"),
    ("info {t}/cut.nn", "truncated"),
    ("stretch {t}/cell.extxyz --potential {t}/model.pt --out {t}/r3", "not a readable model archive"),
    ("lammps export --potential {pot} --structure {t}/cell.extxyz --out {t}/blocker/x", "cannot write into"),
]


@pytest.mark.parametrize("argv, fragment", BAD_COMMANDS)
def test_bad_command_lines_end_in_one_clean_error(bad_inputs, potential_dir, capsys, argv, fragment):
    args = argv.format(t=bad_inputs, pot=potential_dir).split()
    code, err = cli(capsys, *args)
    assert_clean_error(code, err, fragment)
    assert "nope_dir/analysis" not in err


def test_bom_in_input_files(potential_dir, tmp_path):
    p = tmp_path / "predict.in"
    p.write_bytes("\ufeffTYPES\n2\nLi\nSi\nNETWORKS\nLi Li.nn\nSi Si.nn\n".encode("utf-8"))
    assert read_predict_in(p).types == ["Li", "Si"]


def test_failed_run_says_failed_and_failed_demo_leaves_no_folder(lj_cell, tmp_path):
    class Breaking(BinaryLennardJones):
        calls = 0

        def calculate(self, *args, **kwargs):
            Breaking.calls += 1
            if Breaking.calls > 6:
                raise RuntimeError("the potential broke")
            super().calculate(*args, **kwargs)

    with pytest.raises(RuntimeError):
        run(lj_cell, Breaking(), quick_protocol(), tmp_path / "f", progress=False)
    meta = json.loads((tmp_path / "f" / "run.json").read_text())
    assert meta["status"] == "failed" and "the potential broke" in meta["error"]
    from aenet_torch_ase.demo import run_demo

    with pytest.raises(PotentialFileError):
        run_demo(tmp_path / "demo", potential={"Li": tmp_path / "missing.nn"}, progress=False)
    assert not (tmp_path / "demo").exists()


def test_demo_help_describes_quick():
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command").choices["demo"]
    text = sub.format_help()
    assert "1,024 atoms" in text and "3 %" in text


def test_large_sound_cells_pass_the_image_check():
    """The pair estimate of the thin-cell guard must not refuse a real large
    system: 100,000 atoms at a solid's density with a 9 A list cutoff."""
    from aenet_torch_ase.neighbors import check_cell_images

    n = 100_000
    side = (n / 0.05) ** (1 / 3)  # 0.05 atoms/A^3
    check_cell_images(np.eye(3) * side, np.array([True] * 3), 9.0, n)
    check_cell_images(np.diag([side, side, 30.0]), np.array([True, True, False]), 9.0, n // 10)
    with pytest.raises(StructureError, match="neighbour pairs"):
        check_cell_images(np.eye(3) * 20.0, np.array([True] * 3), 9.0, 400_000)  # 50 atoms/A^3
