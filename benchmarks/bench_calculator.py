"""Speed and memory of `AenetTorch` energy + forces + stress calls.

    python benchmarks/bench_calculator.py [--atoms 8192] [--repeats 7] [--rounds 3] [--large]

System: amorphous Li-Si, the aenet reference frame (Li128Si128) repeated
4 x 4 x 2 = 8,192 atoms, with the published Li-Si potential (radial cutoff
8 A, order 16; angular 3 A; 44 descriptors; 15-15 tanh). Each configuration
runs in its own process (its own peak memory, its own threads). Every call
moves the atoms a little (0.005 A), as an MD step does. Prints one figure
per line, medians over the repeats:

- per core (1 thread): core-us/atom, float64 and float32, with the
  neighbour list rebuilt every call (skin 0) and reused (skin 1 A), the
  torch-kernel path and the plain-autograd reference path measured in the
  same run, and their ratios; the float64 / float32 ratio also from calls
  alternating in one process (robust to the VM's drift between processes);
- per machine (2 threads): us/atom on a quiet machine, its speed-up over
  1 thread (each 2-thread run against the 1-thread run just before it:
  one thread's speed drifts between processes on a shared VM), the
  machine's own ceiling (two 1-thread processes at once against one
  alone), and 2 threads with a busy-loop process on the other core
  against 1 thread under the same busy loop just before (adjacent pairs
  again), with the thread counts the adaptive policy used;
- per core (1 thread): TiO2 with the aenet example's potential (angular
  cutoff 6.5 A, ~100 angular members a centre), 1,472 atoms, compiled
  float64 and float32 and the torch kernels;
- per core (1 thread): a neighbour-list build for cutoff + skin, the
  compiled cell list against vesin's half list mirrored, alternating;
- memory: peak RSS above the imports at 8,192 atoms (`--large`: and the
  peak at 100,000 atoms).

Fortran aenet (LAMMPS pair_style aenet, 1 MPI rank) needs ~100 core-us/atom
for this potential (a quiet-machine estimate from CPU time, not measured
here); compare the per-core figures with it, never the per-machine ones.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

REFERENCE = Path(__file__).resolve().parents[2] / "shared" / "reference" / "LiSi-Artrith2018"
TIO2 = REFERENCE.parent / "TiO2"
TIO2_POTENTIAL = {"Ti": "aenet-example-10t-10t/Ti.10t-10t.nn", "O": "aenet-example-10t-10t/O.10t-10t.nn"}
FORTRAN_CORE_US_PER_ATOM = 100.0


def build(n_target):
    import ase.io

    parent = ase.io.read(REFERENCE / "reference_predictx-2.0.4.extxyz", index=0)
    reps = {8192: (4, 4, 2), 1024: (2, 2, 1), 100000: (8, 8, 6)}.get(n_target)
    if reps is None:
        k = max(1, round((n_target / len(parent)) ** (1 / 3)))
        reps = (k, k, k)
    return parent.repeat(reps)


def build_tio2(n_target):
    """The first structure of the shared TiO2 reference set, repeated k
    times along each axis to about n_target atoms (1,000: 1,472)."""
    import ase.io

    parent = ase.io.read(sorted((TIO2 / "xsf").glob("*"))[0])
    k = max(1, round((n_target / len(parent)) ** (1 / 3)))
    return parent.repeat((k, k, k))


def system(cfg, dtype, skin):
    """(atoms, calculator) of the configuration's system: the Li-Si cell with
    the published potential, or TiO2 with the aenet example's 10-10
    potential (legacy angular convention, as it was trained; angular cutoff
    6.5 A: ~100 angular members a centre, ~4,900 triplets)."""
    from aenet_torch_ase import AenetTorch

    if cfg.get("system") == "TiO2":
        files = {el: str(TIO2 / f) for el, f in TIO2_POTENTIAL.items()}
        return build_tio2(cfg["atoms"]), AenetTorch(files, dtype=dtype, skin=skin, angular="legacy")
    return build(cfg["atoms"]), AenetTorch(REFERENCE, dtype=dtype, skin=skin)


def builds(cfg):
    """Neighbour-list builds for cutoff + skin (9 A) on the benchmark's cell:
    the compiled cell list and vesin's half list mirrored (the builder it
    replaced for periodic cells), alternating, medians (ms)."""
    import numpy as np
    import torch

    from aenet_torch_ase import cell_list
    from aenet_torch_ase.neighbors import NeighborList

    atoms = build(cfg["atoms"])
    pos, cell, pbc = torch.tensor(atoms.positions), torch.tensor(atoms.cell.array), torch.tensor([True] * 3)
    serves = cell_list.serves
    times = {"cell list": [], "vesin": []}
    for k in range(cfg["repeats"] + 1):
        for name in times:
            cell_list.serves = serves if name == "cell list" else (lambda *a: False)
            t = time.perf_counter()
            NeighborList(9.0)(pos, cell, pbc)
            if k:  # the first of each compiles or warms up
                times[name].append(time.perf_counter() - t)
    return {name: float(np.median(t)) * 1e3 for name, t in times.items()}


def precisions(cfg):
    """float64 and float32 calls alternating in one process, on the same
    moves (1 thread, list reused): their ratio without the drift of a shared
    VM from one process to the next. Medians (core-us/atom) and the median
    of the per-round ratios."""
    import numpy as np
    import torch

    copies = {}
    for name, dtype in (("float64", torch.float64), ("float32", torch.float32)):
        copies[name], copies[name].calc = system(cfg, dtype, cfg["skin"])
    atoms = copies["float64"]
    rng = np.random.default_rng(0)
    base = atoms.positions.copy()
    times = {name: [] for name in copies}
    for k in range(cfg["repeats"] + 2):  # the first two rounds compile the kernels and build the lists
        moved = base + rng.normal(0, 0.005, base.shape)
        for name, a in copies.items():
            a.positions = moved
            t = time.perf_counter()
            a.get_forces()
            a.get_stress()
            if k >= 2:
                times[name].append((time.perf_counter() - t) / len(a) * 1e6)
    ratios = [a / b for a, b in zip(times["float64"], times["float32"])]
    return {"float64": float(np.median(times["float64"])), "float32": float(np.median(times["float32"])),
            "ratio": float(np.median(ratios)), "rounds": len(ratios)}


def worker(cfg):
    import numpy as np
    import torch

    torch.set_num_threads(cfg["threads"])
    if cfg["path"] == "builds":
        return builds(cfg)
    if cfg["path"] == "precisions":
        return precisions(cfg)
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    from aenet_torch_ase import threads
    from aenet_torch_ase.potential import compiled_kernels

    dtype = {"float64": torch.float64, "float32": torch.float32}[cfg["dtype"]]
    atoms, calc = system(cfg, dtype, cfg["skin"])
    if cfg["path"] != "compiled":
        compiled_kernels.enabled = False
    if cfg["path"] == "reference":
        for d in calc.model.descriptors:
            d.fast = False
    atoms.calc = calc
    rng = np.random.default_rng(0)
    base = atoms.positions.copy()
    rss_imports = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    times, cpu = [], []
    warm = time.perf_counter()
    k = 0
    while len(times) < cfg["repeats"]:
        atoms.positions = base + rng.normal(0, 0.005, base.shape)
        t, c = time.perf_counter(), time.process_time()
        atoms.get_forces()
        atoms.get_stress()
        k += 1
        # the first calls compile kernels and build the list; the thread policy's
        # load estimate averages over 0.5 s: measure from the second after start on
        if k > 2 and t - warm > 1.0:
            times.append(time.perf_counter() - t)
            cpu.append(time.process_time() - c)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {"us_per_atom": float(np.median(times)) / len(atoms) * 1e6,
            "cpu_us_per_atom": float(np.median(cpu)) / len(atoms) * 1e6,
            "atoms": len(atoms), "threads": cfg["threads"], "builds": calc._neighbors.builds,
            "picked": statistics.median(threads.picked[-len(times):]) if threads.picked else cfg["threads"],
            "peak_mb": peak / 1024, "above_imports_mb": (peak - rss_imports) / 1024, "start_mb": rss0 / 1024}


def run_together(cfg, n):
    """n workers of the same configuration started at once (the machine's
    throughput with every core busy)."""
    procs = [subprocess.Popen([sys.executable, __file__, "--worker", json.dumps(cfg)], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(n)]
    out = []
    for p in procs:
        stdout, stderr = p.communicate(timeout=3600)
        if p.returncode != 0:
            raise RuntimeError(stderr[-3000:])
        out.append(json.loads(stdout.strip().splitlines()[-1]))
    return out


class busy_core:
    """Another process keeping one core busy (a busy loop) while the block runs."""

    def __enter__(self):
        self.hog = subprocess.Popen([sys.executable, "-c", "while True: pass"])
        time.sleep(1.0)
        return self

    def __exit__(self, *exc):
        self.hog.kill()
        self.hog.wait()


def run(cfg):
    out = subprocess.run([sys.executable, __file__, "--worker", json.dumps(cfg)], capture_output=True, text=True,
                         env=dict(os.environ), timeout=3600)
    if out.returncode != 0:
        raise RuntimeError(out.stderr[-3000:])
    return json.loads(out.stdout.strip().splitlines()[-1])


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--atoms", type=int, default=8192)
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--rounds", type=int, default=3, help="adjacent 1-thread / 2-thread pairs of runs")
    ap.add_argument("--large", action="store_true", help="also 100,000 atoms (float64, 2 threads)")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        print(json.dumps(worker(json.loads(args.worker))))
        return
    if not REFERENCE.is_dir():
        sys.exit(f"needs the published Li-Si potential at {REFERENCE}")
    base = {"atoms": args.atoms, "repeats": args.repeats, "dtype": "float64", "skin": 1.0, "path": "compiled",
            "threads": 1}
    print(f"# {args.atoms} atoms of a-LiSi, published Li-Si potential; energy + forces + stress per call; medians")
    per_core = {}
    for name, change in (("compiled float64, list reused (skin 1 A)", {}),
                         ("compiled float64, list rebuilt every call", {"skin": 0.0}),
                         ("compiled float32, list reused", {"dtype": "float32"}),
                         ("torch kernels float64, list reused", {"path": "torch"}),
                         ("plain-autograd reference float64, list reused", {"path": "reference", "repeats": 3})):
        r = run(dict(base, **change))
        per_core[name] = r
        print(f"per core, 1 thread: {name}: {r['us_per_atom']:.1f} core-us/atom")
    if TIO2.is_dir():
        tio2 = dict(base, system="TiO2", atoms=1000)
        t64, t32 = run(tio2), run(dict(tio2, dtype="float32"))
        ttorch = run(dict(tio2, path="torch", repeats=3))
        print(f"per core, 1 thread: TiO2, aenet example potential (angular cutoff 6.5 A), {t64['atoms']} atoms: "
              f"compiled float64 {t64['us_per_atom']:.1f}, float32 {t32['us_per_atom']:.1f}, torch kernels float64 "
              f"{ttorch['us_per_atom']:.1f} core-us/atom (torch kernels / compiled float64: "
              f"{ttorch['us_per_atom'] / t64['us_per_atom']:.1f})")
    nl = run(dict(base, path="builds"))
    print(f"per core, 1 thread: neighbour list build (cutoff + skin 9 A): compiled cell list {nl['cell list']:.1f} ms, "
          f"vesin half list mirrored {nl['vesin']:.1f} ms, ratio {nl['vesin'] / nl['cell list']:.2f}")
    ref = per_core["compiled float64, list reused (skin 1 A)"]["us_per_atom"]
    for name in ("torch kernels float64, list reused", "plain-autograd reference float64, list reused"):
        print(f"ratio: {name} / compiled float64: {per_core[name]['us_per_atom'] / ref:.2f}")
    f32 = per_core["compiled float32, list reused"]["us_per_atom"]
    print(f"ratio: compiled float64 / float32 (separate processes): {ref / f32:.2f}")
    pr = run(dict(base, path="precisions", repeats=3 * args.repeats))
    print(f"ratio: compiled float64 / float32, alternating call by call in one process (median of {pr['rounds']}; "
          f"{pr['float64']:.2f} and {pr['float32']:.2f} core-us/atom; the goal is >= 1.5): {pr['ratio']:.2f}")
    print(f"ratio: Fortran aenet (~{FORTRAN_CORE_US_PER_ATOM:.0f} core-us/atom, not measured here) / compiled "
          f"float64: {FORTRAN_CORE_US_PER_ATOM / ref:.1f}")
    # 1 and 2 threads in alternating processes: on a shared VM one thread's speed drifts from one
    # process to the next, so each 2-thread run is compared with the 1-thread run just before it
    ratios, twos = [], []
    for _ in range(args.rounds):
        one = run(dict(base, threads=1))
        two = run(dict(base, threads=2))
        ratios.append(one["us_per_atom"] / two["us_per_atom"])
        twos.append(two["us_per_atom"])
    print(f"per machine, 2 threads, quiet: {statistics.median(twos):.1f} us/atom")
    print(f"speed-up of 2 threads over 1, quiet (median of {args.rounds} adjacent pairs "
          f"{' '.join(f'{x:.2f}' for x in ratios)}): {statistics.median(ratios):.2f}")
    # the machine's own ceiling at that moment: two 1-thread processes at once against one alone
    alone = run(dict(base, threads=1))
    pair = run_together(dict(base, threads=1), 2)
    print(f"machine ceiling: two 1-thread processes at once run at {pair[0]['us_per_atom']:.1f} and "
          f"{pair[1]['us_per_atom']:.1f} core-us/atom, one alone {alone['us_per_atom']:.1f}: throughput "
          f"{alone['us_per_atom'] * sum(1.0 / r['us_per_atom'] for r in pair):.2f}x one process")
    # the same with a busy-loop process on the other core, each pair under one busy loop
    busy_ratios, ones_busy, twos_busy, picked = [], [], [], []
    for _ in range(args.rounds):
        with busy_core():
            one_busy = run(dict(base, threads=1))
            two_busy = run(dict(base, threads=2))
        busy_ratios.append(two_busy["us_per_atom"] / one_busy["us_per_atom"])
        ones_busy.append(one_busy["us_per_atom"])
        twos_busy.append(two_busy["us_per_atom"])
        picked.append(two_busy["picked"])
    print(f"per machine, 1 thread, other core busy: {statistics.median(ones_busy):.1f} us/atom")
    print(f"per machine, 2 threads requested, other core busy: {statistics.median(twos_busy):.1f} us/atom "
          f"(threads the policy used, median per run: {' '.join(f'{p:g}' for p in picked)})")
    print(f"ratio 2 threads / 1 thread with a busy core (<= 1 is the goal; median of {args.rounds} adjacent pairs "
          f"{' '.join(f'{x:.2f}' for x in busy_ratios)}): {statistics.median(busy_ratios):.2f}")
    print(f"memory: peak RSS above the imports at {args.atoms} atoms: {two['above_imports_mb']:.0f} MB "
          f"(peak {two['peak_mb']:.0f} MB)")
    if args.large:
        big = run(dict(base, atoms=100000, threads=2, repeats=2))
        print(f"memory: peak RSS at {big['atoms']} atoms: {big['peak_mb']:.0f} MB; {big['us_per_atom']:.1f} us/atom "
              f"(2 threads)")


if __name__ == "__main__":
    main()
