"""MD speed with the published Li-Si potential: steps per second and ns/day.

    python benchmarks/bench_md.py [--sizes 1024 8192] [--steps 100]

Amorphous Li-Si (the 256-atom aenet-tinker cell, replicated), the seed's
tensile stage (MTK lateral barostat + box deformation, 1 fs, float64), run
through `aenet_torch_ase.md.run` with recording as in production (a CSV row
every 100 steps). Each size runs in its own process. Prints one figure per
line, with the torch thread count: the cost per step from two runs of n and
3n steps (their difference, so the run's fixed costs of set-up and final
files are not spread over the steps; those are printed apart), and its
ratio to the calculator-only cost (median of 10 calls, neighbour list
reused) measured in the same process; the calculator's own time inside the
MD steps over that (MD also rebuilds the neighbour list when atoms have
moved half the skin); and what the runner (integrator, ASE, records) adds
on top of the calculator's time in the MD steps.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REFERENCE = Path(__file__).resolve().parents[2] / "shared" / "reference" / "LiSi-Artrith2018"


def worker(n_target, steps):
    import ase.io
    import numpy as np
    import torch

    from aenet_torch_ase import AenetTorch
    from aenet_torch_ase.md.protocol import Protocol
    from aenet_torch_ase.md.run import run

    parent = ase.io.read(REFERENCE / "reference_predictx-2.0.4.extxyz", index=0)
    reps = {1024: (2, 2, 1), 8192: (4, 4, 2)}.get(n_target, (1, 1, 1))
    atoms = parent.repeat(reps)
    # an orthogonal box for uniaxial loading: the same density, atoms wrapped in
    lengths = atoms.cell.lengths()
    atoms.set_cell(np.diag(lengths * (atoms.get_volume() / np.prod(lengths)) ** (1 / 3)), scale_atoms=True)
    calc = AenetTorch(REFERENCE)
    atoms.calc = calc
    # calculator alone
    t_calc = []
    for k in range(10):
        atoms.positions += 0.001
        t = time.perf_counter()
        atoms.get_forces()
        atoms.get_stress()
        t_calc.append(time.perf_counter() - t)
    # two runs of n and 3n steps: their difference is the cost per step without the run's fixed
    # costs (set-up, first forces, final files), which a short benchmark would otherwise spread over it
    totals, inside = {}, {}
    calculate = calc.calculate

    def timed(*args, **kwargs):  # time spent in the calculator during the runs (list rebuilds included)
        t = time.perf_counter()
        try:
            return calculate(*args, **kwargs)
        finally:
            inside[current] = inside.get(current, 0.0) + time.perf_counter() - t

    calc.calculate = timed
    for n in (steps, 3 * steps):
        current = n
        p = Protocol(mode="tensile", axis="y", temperature=300, relax_time=0.0, time=n * 1e-3,
                     minimize_fmax=0.0, record_every=100, frame_every=10**9, checkpoint_every=10**9)
        with tempfile.TemporaryDirectory() as tmp:
            t = time.perf_counter()
            run(atoms.copy(), calc, p, Path(tmp) / "run", progress=False)
            totals[n] = time.perf_counter() - t
    per_step = (totals[3 * steps] - totals[steps]) / (2 * steps)
    calc_in_md = (inside[3 * steps] - inside[steps]) / (2 * steps)
    print(json.dumps({"atoms": len(atoms), "s_per_step": per_step, "calc_s": float(np.median(t_calc)),
                      "calc_in_md_s": calc_in_md,
                      "fixed_s": totals[steps] - steps * per_step, "threads": torch.get_num_threads()}))


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sizes", type=int, nargs="+", default=[1024, 8192])
    p.add_argument("--steps", type=int, default=100)
    p.add_argument("--worker", nargs=2, type=int, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.worker:
        worker(*args.worker)
        return
    if not REFERENCE.is_dir():
        sys.exit(f"reference potential not found at {REFERENCE}")
    for n in args.sizes:
        res = subprocess.run([sys.executable, __file__, "--worker", str(n), str(args.steps)],
                             capture_output=True, text=True, check=True)
        r = json.loads(res.stdout.strip().splitlines()[-1])
        sps = 1.0 / r["s_per_step"]
        print(f"atoms={r['atoms']} threads={r['threads']} md_steps_per_s={sps:.2f}")
        print(f"atoms={r['atoms']} threads={r['threads']} ns_per_day={sps * 86400 * 1e-6:.3f}")
        print(f"atoms={r['atoms']} threads={r['threads']} md_step_over_calculator_call={r['s_per_step'] / r['calc_s']:.2f}")
        print(f"atoms={r['atoms']} threads={r['threads']} calculator_in_md_over_calculator_call="
              f"{r['calc_in_md_s'] / r['calc_s']:.2f}")
        print(f"atoms={r['atoms']} threads={r['threads']} runner_added_over_calculator_in_md="
              f"{r['s_per_step'] / r['calc_in_md_s'] - 1:.1%}")
        print(f"atoms={r['atoms']} threads={r['threads']} run_fixed_cost_s={r['fixed_s']:.2f}")


if __name__ == "__main__":
    main()
