"""Speed and memory of one energy + forces + stress call of `AenetTorch`.

    python benchmarks/bench_calculator.py [--sizes 1000 8000 32000] [--repeats 5] [--large]

System: amorphous Li-Si (Li128Si128 parent from the aenet reference data,
replicated) with the reference Li-Si potential (radial Rc 8 A, ~125
neighbours per atom), float64 and float32. Each size and dtype runs in its
own process so that its peak memory (max RSS) is its own. Prints one figure
per line: median wall time per call, microseconds per atom, peak memory,
torch threads, and the ratio against the plain-autograd reference
descriptor measured in the same run. `--large` adds a 100,000-atom float64
call (memory must stay bounded by chunking).

For comparison (not measured here): aenet's Fortran library in LAMMPS costs
~100 core-us per atom per step with this potential, ~50 us/atom on 2 cores.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

REFERENCE = Path(__file__).resolve().parents[2] / "shared" / "reference" / "LiSi-Artrith2018"
FORTRAN_US_PER_ATOM_2_CORES = 50.0  # quoted in the project issue, measured with LAMMPS pair_style aenet


def build(n_target):
    import ase.io

    parent = ase.io.read(REFERENCE / "reference_predictx-2.0.4.extxyz", index=0)
    reps = {1000: (2, 2, 1), 8000: (4, 4, 2), 32000: (8, 4, 4), 100000: (8, 8, 6)}.get(n_target)
    if reps is None:
        k = max(1, round((n_target / len(parent)) ** (1 / 3)))
        reps = (k, k, k)
    return parent.repeat(reps)


def worker(n, dtype_name, repeats, fast):
    import numpy as np
    import torch

    from aenet_torch_ase import AenetTorch

    dtype = {"float64": torch.float64, "float32": torch.float32}[dtype_name]
    calc = AenetTorch(REFERENCE, dtype=dtype)
    for d in calc.model.descriptors:
        d.fast = fast
    atoms = build(n)
    atoms.calc = calc
    rng = np.random.default_rng(0)
    base = atoms.positions.copy()
    times = []
    for k in range(repeats + 1):
        atoms.positions = base + rng.normal(0, 0.005, base.shape)
        t = time.perf_counter()
        atoms.get_forces()
        atoms.get_stress()
        if k:  # first call warms up
            times.append(time.perf_counter() - t)
    median = float(np.median(times))
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"atoms": len(atoms), "dtype": dtype_name, "fast": fast, "median_s": median,
                      "peak_mb": peak_mb, "threads": torch.get_num_threads()}))


def run(n, dtype, repeats, fast=True):
    out = subprocess.run(
        [sys.executable, __file__, "--worker", str(n), dtype, str(repeats), str(int(fast))],
        capture_output=True, text=True, check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sizes", type=int, nargs="+", default=[1000, 8000, 32000])
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--large", action="store_true", help="also a 100,000-atom float64 call")
    p.add_argument("--worker", nargs=4, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.worker:
        n, dtype, repeats, fast = args.worker
        worker(int(n), dtype, int(repeats), bool(int(fast)))
        return
    if not REFERENCE.is_dir():
        sys.exit(f"reference potential not found at {REFERENCE}")
    import torch

    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, cores {os.cpu_count()}, "
          f"median of {args.repeats} calls (energy+forces+stress)")
    ref = run(args.sizes[0], "float64", args.repeats, fast=False)
    us_ref = ref["median_s"] / ref["atoms"] * 1e6
    print(f"reference autograd descriptor, {ref['atoms']} atoms float64: {us_ref:.1f} us/atom")
    sizes = list(args.sizes) + ([100000] if args.large else [])
    for n in sizes:
        for dtype in (("float64",) if n >= 100000 else ("float64", "float32")):
            r = run(n, dtype, args.repeats if n < 100000 else 1)
            us = r["median_s"] / r["atoms"] * 1e6
            print(f"atoms={r['atoms']} dtype={dtype} ms_per_call={r['median_s'] * 1e3:.1f}")
            print(f"atoms={r['atoms']} dtype={dtype} us_per_atom={us:.1f}")
            print(f"atoms={r['atoms']} dtype={dtype} peak_memory_MB={r['peak_mb']:.0f}")
            print(f"atoms={r['atoms']} dtype={dtype} speedup_vs_reference_descriptor={us_ref / us:.2f}")
            print(f"atoms={r['atoms']} dtype={dtype} speedup_vs_fortran_aenet_quoted={FORTRAN_US_PER_ATOM_2_CORES / us:.2f}")


if __name__ == "__main__":
    main()
