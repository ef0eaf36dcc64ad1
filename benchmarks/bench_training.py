"""Training speed and accuracy on the aenet-PyTorch TiO2 example (1000
structures, ../shared/reference/TiO2-dataset).

    python benchmarks/bench_training.py [--epochs 20] [--accuracy-minutes 5]

Prints one figure per line:
* seconds to read + featurise the 1000 structures (forces on 25%, the
  example's descriptor: radial 6.5 A / order 20, angular 5.0 A / order 6);
* median seconds per epoch (batch 128, alpha 0.1, adamw) for 5-5 and 25-25
  tanh networks, float64 and float32, with the torch thread count, and the
  ratio to aenet-PyTorch's ~0.5 s per epoch measured on this 2-core machine
  (issue 3; aenet-PyTorch itself is not run here);
* peak resident memory of the whole process (MB);
* with --accuracy-minutes > 0: a 5-5 training run (at most 2000 epochs or
  that wall-clock length) and its best test errors (energy RMSE per atom;
  force RMSE over per-atom vectors, aenet-PyTorch's definition), beside
  aenet-PyTorch's published 10,000-epoch result 7.8 meV/atom and 0.388 eV/A
  (on its own test split) and beside aenet-PyTorch's trained potential
  (shared reference TiO2/aenet-python-5t-5t) evaluated on our test split.
Each measurement runs in its own process so peak memory is its own.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

DATA = Path(__file__).resolve().parents[2] / "shared" / "reference" / "TiO2-dataset" / "dir_xsf.tar.gz"
E_ATOM = {"Ti": -1604.604515075, "O": -432.503149303}
AENET_PYTORCH_EPOCH_S = 0.5


def _setups():
    from aenet_torch_ase.io.input_files import FingerprintSetup

    return {e: FingerprintSetup(atom=e, env=["Ti", "O"], rmin=0.35, basis="chebyshev", radial_rc=6.5,
                                radial_n=20, angular_rc=5.0, angular_n=6) for e in ("Ti", "O")}


def _peak_mb():
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _threads_used() -> float:
    """Mean thread count the thread policy picked in this process."""
    import numpy as np
    import torch

    from aenet_torch_ase import threads

    return float(np.mean(threads.picked)) if threads.picked else float(torch.get_num_threads())


def featurise(folder: Path, out: Path):
    import torch

    from aenet_torch_ase.training.dataset import TrainingSet, load_structures

    files = sorted(folder.glob("*.xsf"))
    t, c = time.perf_counter(), time.process_time()
    ts = TrainingSet.featurize(load_structures(files), _setups(), E_ATOM, forces=True, forces_percent=25, seed=0)
    seconds, cpu = time.perf_counter() - t, time.process_time() - c
    ts.save(out)
    return {"featurise_s": seconds, "cores": cpu / seconds, "threads_used": _threads_used(), "peak_mb": _peak_mb(), "threads": torch.get_num_threads()}


def epochs(set_path: Path, hidden: int, dtype: str, n: int):
    import numpy as np
    import torch

    from aenet_torch_ase.threads import adaptive_threads
    from aenet_torch_ase.training.dataset import TrainingSet
    from aenet_torch_ase.training.trainer import TrainConfig, Trainer

    ts = TrainingSet.load(set_path)
    cfg = TrainConfig(networks={"Ti": [(hidden, "tanh")] * 2, "O": [(hidden, "tanh")] * 2}, epochs=n + 1,
                      batch_size=128, forces=True, alpha=0.1, lr=1e-4, regularization=1e-3, dtype=dtype)
    with tempfile.TemporaryDirectory() as tmp:
        tr = Trainer(ts, cfg, tmp)
        times, cpu = [], []
        for _ in range(n):
            t, c = time.perf_counter(), time.process_time()
            with adaptive_threads():  # as Trainer.train does
                tr._train_epoch()
            tr.epoch += 1
            times.append(time.perf_counter() - t)
            cpu.append(time.process_time() - c)
    return {"epoch_s": float(np.median(times)), "cores": float(np.sum(cpu) / np.sum(times)),
            "threads_used": _threads_used(), "peak_mb": _peak_mb(),
            "threads": torch.get_num_threads()}


def reference_on_split(set_path: Path, test_idx):
    """Test errors of aenet-PyTorch's own trained 5-5 TiO2 potential (shared
    reference TiO2/aenet-python-5t-5t) on the same test structures."""
    import numpy as np

    from aenet_torch_ase.calculator import AenetTorch
    from aenet_torch_ase.training.dataset import TrainingSet

    folder = DATA.parents[1] / "TiO2" / "aenet-python-5t-5t"
    if not folder.is_dir():
        return None
    ts = TrainingSet.load(set_path)
    calc = AenetTorch({"Ti": str(folder / "Ti.nn"), "O": str(folder / "O.nn")}, dtype=__import__("torch").float64)
    tmp = Path(tempfile.mkdtemp())
    with tarfile.open(DATA) as tar:
        tar.extractall(tmp, filter="data")
    from aenet_torch_ase.training.dataset import load_structures

    refs = load_structures([tmp / "dir_xsf" / Path(ts.names[i]).name for i in test_idx])
    de, df = [], []
    for i, r in zip(test_idx, refs):
        a = r.atoms.copy()
        a.calc = calc
        de.append((a.get_potential_energy() - r.energy) / len(a))
        if bool(ts.force_train[i]):
            df.append(np.linalg.norm(a.get_forces() - r.forces, axis=1))
    return {"energy_rmse": float(np.sqrt(np.mean(np.square(de)))),
            "force_rmse": float(np.sqrt(np.mean(np.square(np.concatenate(df)))))}


def accuracy(set_path: Path, minutes: float):
    import torch

    from aenet_torch_ase.training.dataset import TrainingSet
    from aenet_torch_ase.training.trainer import TrainConfig, Trainer

    ts = TrainingSet.load(set_path)
    # what worked here (see the README): learning rate 3e-3 decaying 100x over
    # 2000 epochs, batch 32, alpha 0.2, float32; stopped at the time limit
    epochs_n = 2000
    cfg = TrainConfig(networks={"Ti": [(5, "tanh")] * 2, "O": [(5, "tanh")] * 2}, epochs=epochs_n, batch_size=32,
                      np_seed=1, ph_seed=2, forces=True, alpha=0.2, lr=3e-3, lr_final=3e-5, regularization=1e-3,
                      dtype="float32", iter_write=25, checkpoint_every=10**9)
    with tempfile.TemporaryDirectory() as tmp:
        tr = Trainer(ts, cfg, tmp)
        t = time.perf_counter()
        deadline = t + minutes * 60
        while tr.epoch < epochs_n and time.perf_counter() < deadline:
            tr.train(progress=False, max_epochs=25)
        s = tr.write_outputs()
        seconds = time.perf_counter() - t
    return {"seconds": seconds, "epochs": tr.epoch, "best_epoch": s["best_epoch"], "test": s["best_test"],
            "threads": torch.get_num_threads(), "peak_mb": _peak_mb(),
            "reference": reference_on_split(set_path, [int(i) for i in tr.test_idx])}


def _child(args, busy: int = 0):
    hogs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(busy)]
    try:
        if busy:
            time.sleep(1.0)
        return _run_child(args)
    finally:
        for h in hogs:
            h.kill()


def _run_child(args):
    out = subprocess.run([sys.executable, __file__, "--worker", json.dumps(args)], capture_output=True, text=True)
    if out.returncode:
        raise SystemExit(out.stderr)
    return json.loads(out.stdout.strip().splitlines()[-1])


def under_load(tmp: Path, set_path: Path, args):
    """Featurisation and 5-5 float64 epochs, quiet and with `busy` busy-loop
    processes on the machine's cores, measured in this run. A process that
    loses only CPU share slows down by (cores it used quiet) / (its fair
    share under load); fair share = cores x threads / (busy + threads) for
    the threads the thread policy picks under load (one here)."""
    import os

    cores = len(os.sched_getaffinity(0))
    jobs = (("featurise 1000 structures", "featurise_s",
             {"kind": "featurise", "folder": str(tmp / "dir_xsf"), "out": str(tmp / "TiO.busy")}),
            ("5-5 float64 epoch", "epoch_s", {"kind": "epochs", "set_path": str(set_path), "hidden": 5,
                                               "dtype": "float64", "n": args.epochs}))
    for name, key, job in jobs:
        quiet = _child(dict(job))
        loaded = _child(dict(job), busy=args.busy)
        fair = cores * loaded["threads_used"] / (args.busy + loaded["threads_used"])
        bound = quiet["cores"] / fair
        print(f"under load ({args.busy} busy-loop processes on {cores} cores): {name}: {quiet[key]:.3f} s quiet "
              f"({quiet['cores']:.2f} cores), {loaded[key]:.3f} s loaded ({loaded['cores']:.2f} cores, fair share "
              f"{fair:.2f}): slowdown {loaded[key] / quiet[key]:.1f}x, CPU-share bound {bound:.1f}x, "
              f"ratio {loaded[key] / quiet[key] / bound:.2f} (<= ~1 is the goal)")


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--epochs", type=int, default=15, help="epochs timed per configuration (median)")
    p.add_argument("--accuracy-minutes", type=float, default=0.0, help="length of the accuracy run (0: skip)")
    p.add_argument("--busy", type=int, default=4, help="busy-loop processes for the under-load figures (0: skip)")
    p.add_argument("--worker", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.worker:
        job = json.loads(args.worker)
        kind = job.pop("kind")
        result = {"featurise": featurise, "epochs": epochs, "accuracy": accuracy}[kind](
            *[Path(v) if k in ("folder", "out", "set_path") else v for k, v in job.items()])
        print(json.dumps(result))
        return
    if not DATA.is_file():
        raise SystemExit(f"{DATA} not found: this benchmark needs the shared TiO2 data set")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        with tarfile.open(DATA) as tar:
            tar.extractall(tmp, filter="data")
        set_path = tmp / "TiO.train"
        r = _child({"kind": "featurise", "folder": str(tmp / "dir_xsf"), "out": str(set_path)})
        print(f"featurise 1000 TiO2 structures (forces on 25%): {r['featurise_s']:.2f} s "
              f"(goal < 8 s; threads {r['threads']}; peak {r['peak_mb']:.0f} MB)")
        for hidden in (5, 25):
            for dtype in ("float64", "float32"):
                r = _child({"kind": "epochs", "set_path": str(set_path), "hidden": hidden, "dtype": dtype,
                            "n": args.epochs})
                print(f"epoch {hidden}-{hidden} tanh {dtype}: {r['epoch_s']:.3f} s median of {args.epochs} "
                      f"({AENET_PYTORCH_EPOCH_S / r['epoch_s']:.1f}x faster than aenet-PyTorch's "
                      f"{AENET_PYTORCH_EPOCH_S} s; threads {r['threads']}; peak {r['peak_mb']:.0f} MB)")
        if args.busy > 0:
            under_load(tmp, set_path, args)
        if args.accuracy_minutes > 0:
            r = _child({"kind": "accuracy", "set_path": str(set_path), "minutes": args.accuracy_minutes})
            t = r["test"]
            print(f"accuracy run {r['seconds']:.0f} s, {r['epochs']} epochs (best {r['best_epoch']}): test energy "
                  f"RMSE {t['energy_rmse_test'] * 1000:.2f} meV/atom (aenet-PyTorch 7.8), test force RMSE "
                  f"{t['force_rmse_test']:.3f} eV/A per-atom vectors (aenet-PyTorch 0.388 on its own split); "
                  f"threads {r['threads']}")
            if r["reference"]:
                ref = r["reference"]
                print(f"aenet-PyTorch's trained 5-5 potential on the same test structures: energy RMSE "
                      f"{ref['energy_rmse'] * 1000:.2f} meV/atom, force RMSE {ref['force_rmse']:.3f} eV/A "
                      f"(it was trained on a different 90 %, which holds most of these structures)")


if __name__ == "__main__":
    main()
