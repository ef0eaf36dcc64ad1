"""Why is the 300 K MD modulus of a-Li13Si4 below the 0 K one? The runs behind docs/modulus.md.

    python benchmarks/modulus_study.py --cells DIR [--only NAME ...] [--out study.json]

With the bundled published Li-Si potential (LiSi-Artrith2018) on a-Li13Si4 cells made by
`examples/make_demo_cells.py` (DIR holds a-Li13Si4_<N>.extxyz; other preparations as
a-Li13Si4_<N>_<tag>.extxyz). Each case prints one line and is appended to the JSON file
(cases already there are skipped, so the study can be resumed):

- 0K: relaxed-ion elastic constants (matscipy, +-0.5 % strains): Hill E and the uniaxial
  Young's modulus along y (lateral faces free), the quantity the tensile test measures;
- T<temp>/rate<r>/<lateral>[/relax20ps][/seed<k>]: uniaxial tension along y (box first set to
  its mean at that temperature and 1 bar unless 300 K, where the cells already are; 1 fs, CG
  minimisation, 2 ps NVT (the shortened demo) or 20 ps (the seed's protocol), then L_y(t) = L0 (1 + rate t), lateral axes at 1 bar with the
  MTK barostat or held fixed), to 4 % strain (2 % at 1e9 1/s); E fitted over 0-2 %, 0-3 %
  and 0-4 % (slope with standard error), the mean lateral pressures and the temperature
  over the ramp as checks;
- nve<dt>: energy drift of NVE at 300 K with time step dt (fs), eV/atom/ps.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def tension(atoms, calc, temperature, rate, lateral, max_strain=0.04, relax_ps=2.0, seed=12345):
    from aenet_torch_ase.analysis.stress_strain import StressStrain
    from aenet_torch_ase.md.protocol import Protocol
    from aenet_torch_ase.md.run import run

    if temperature != 300.0:
        # the cells' boxes are their 300 K / 1 bar means; at another temperature the lateral
        # barostat would first shrink or grow the box during the ramp (at 10 K: ~0.8 GPa of
        # thermal tension relaxing), biasing the slope: set the box to this temperature's mean first
        from aenet_torch_ase.demo import equilibrate_volume

        atoms = atoms.copy()
        equilibrate_volume(atoms, calc, temperature=temperature)
        atoms.calc = None
    p = Protocol(mode="tensile", axis="y", strain_rate=rate, temperature=temperature, timestep=1.0,
                 relax_time=relax_ps, time=max_strain / rate * 1e12, pressure=1.0, lateral=lateral,
                 record_every=10, frame_every=10**9, checkpoint_every=10**9, seed=seed)
    with tempfile.TemporaryDirectory() as tmp:
        out = run(atoms, calc, p, Path(tmp) / "run", progress=False)
        curve = StressStrain.from_run(out)
    fits = {}
    for hi in (0.02, 0.03, 0.04):
        if curve.strain.max() >= hi * 0.999:
            e = curve.young_modulus((0.0, hi))
            fits[f"0-{hi:.0%}"] = {"E_GPa": e["value"], "stderr_GPa": e["stderr"]}
    x = curve.extra
    return {"fits": fits, "lateral_pressure_bar": [float(np.mean(x["pxx_bar"])), float(np.mean(x["pzz_bar"]))],
            "temperature_K": float(np.mean(x["temperature_K"])), "max_strain": float(curve.strain.max())}


def nve_drift(atoms, calc, dt_fs, ps=5.0):
    from ase import units
    from ase.md.velocitydistribution import MaxwellBoltzmannDistribution, Stationary
    from ase.md.verlet import VelocityVerlet

    a = atoms.copy()
    a.calc = calc
    MaxwellBoltzmannDistribution(a, temperature_K=600, rng=np.random.default_rng(1))  # equipartition -> ~300 K
    Stationary(a)
    dyn = VelocityVerlet(a, dt_fs * units.fs)
    e, t = [], []
    every = max(1, int(50 / dt_fs))
    for k in range(int(ps * 1000 / dt_fs / every)):
        dyn.run(every)
        e.append(a.get_total_energy() / len(a))
        t.append((k + 1) * every * dt_fs / 1000)
    half = len(e) // 5  # after the first picosecond
    slope = np.polyfit(t[half:], e[half:], 1)[0]
    return {"drift_eV_per_atom_per_ps": float(slope), "spread_eV_per_atom": float(np.ptp(e[half:]))}


def main():
    import ase.io
    import torch

    from aenet_torch_ase import AenetTorch
    from aenet_torch_ase.analysis.elastic import elastic_constants

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cells", required=True)
    ap.add_argument("--out", default="modulus_study.json")
    ap.add_argument("--only", nargs="+", metavar="NAME",
                    help="run only these cases: a case's whole name, or the part before one of its '/' "
                         "(256mq runs every case of that cell, 256mq/T300 its 300 K ones)")
    args = ap.parse_args()
    calc = AenetTorch("LiSi-Artrith2018")
    cells = {p.stem.replace("a-Li13Si4_", ""): p for p in Path(args.cells).glob("a-Li13Si4_*.extxyz")}
    out = Path(args.out)
    done = json.loads(out.read_text()) if out.exists() else {}
    cases = []
    for cell in sorted(cells, key=lambda c: (len(c), c)):
        cases.append((f"{cell}/0K", cell, ("elastic",)))
        cases.append((f"{cell}/T300/rate1e10/npt", cell, ("tension", 300.0, 1e10, "npt")))
    cases += [("256/T10/rate1e10/npt", "256", ("tension", 10.0, 1e10, "npt")),
              ("256/T100/rate1e10/npt", "256", ("tension", 100.0, 1e10, "npt")),
              ("256/T300/rate1e10/fixed", "256", ("tension", 300.0, 1e10, "fixed")),
              ("256/T300/rate1e9/npt", "256", ("tension", 300.0, 1e9, "npt")),
              ("1024/T10/rate1e10/npt", "1024", ("tension", 10.0, 1e10, "npt")),
              ("256/nve1fs", "256", ("nve", 1.0)), ("256/nve2fs", "256", ("nve", 2.0)),
              ("256/T300/rate1e10/npt/relax20ps", "256", ("tension", 300.0, 1e10, "npt", 20.0)),
              ("256/T300/rate1e10/fixed/relax20ps", "256", ("tension", 300.0, 1e10, "fixed", 20.0)),
              ("1024/T300/rate1e10/npt/relax20ps", "1024", ("tension", 300.0, 1e10, "npt", 20.0)),
              ("256long/T300/rate1e10/npt/relax20ps", "256long", ("tension", 300.0, 1e10, "npt", 20.0)),
              # melt-quenched cells (the demo's cells since session 4: examples/make_demo_cells.py)
              ("256mq/T10/rate1e10/npt", "256mq", ("tension", 10.0, 1e10, "npt")),
              ("256mq/T100/rate1e10/npt", "256mq", ("tension", 100.0, 1e10, "npt")),
              ("256mq/T300/rate1e10/fixed", "256mq", ("tension", 300.0, 1e10, "fixed")),
              ("256mq/T300/rate1e11/npt", "256mq", ("tension", 300.0, 1e11, "npt")),
              ("256mq/T300/rate1e9/npt", "256mq", ("tension", 300.0, 1e9, "npt")),
              ("256mq/nve1fs", "256mq", ("nve", 1.0)), ("256mq/nve2fs", "256mq", ("nve", 2.0)),
              # other noise realisations (thermostat seed) of the demo's protocol
              ("256mq/T300/rate1e10/npt/seed2", "256mq", ("tension", 300.0, 1e10, "npt", 2.0, 2)),
              ("1024mq/T300/rate1e10/npt/seed2", "1024mq", ("tension", 300.0, 1e10, "npt", 2.0, 2)),
              ("1024mq/T10/rate1e10/npt", "1024mq", ("tension", 10.0, 1e10, "npt"))]
    def matches(name, wanted):  # the whole name or the part before one of its '/'
        wanted = wanted.rstrip("/")
        return name == wanted or name.startswith(wanted + "/")

    def selected(name):
        return not args.only or any(matches(name, o) for o in args.only)

    unknown = [o for o in args.only or [] if not any(matches(name, o) for name, _, _ in cases)]
    if unknown:
        sys.exit(f"--only {' '.join(unknown)}: no such case; the cases are: {', '.join(n for n, _, _ in cases)}")
    print(f"# published Li-Si potential, {torch.get_num_threads()} threads; cells: {sorted(cells)}", flush=True)
    for name, cell, what in cases:
        if name in done or cell not in cells or not selected(name):
            continue
        atoms = ase.io.read(cells[cell])
        atoms.calc = None
        t0 = time.time()
        if what[0] == "elastic":
            r = elastic_constants(atoms, calc, delta=0.005, steps=3, fmax=2e-3)
            res = {"hill_E_GPa": r["hill"]["young_GPa"], "E_uniaxial_GPa": r["young_uniaxial_GPa"],
                   "energy_eV_per_atom": calc.get_potential_energy(atoms) / len(atoms),
                   "C22_GPa": r["C_GPa"][1][1], "G_hill_GPa": r["hill"]["shear_GPa"], "K_hill_GPa": r["hill"]["bulk_GPa"]}
        elif what[0] == "tension":
            res = tension(atoms, calc, *what[1:4], max_strain=0.02 if what[2] < 5e9 else 0.04,
                          relax_ps=what[4] if len(what) > 4 else 2.0, seed=what[5] if len(what) > 5 else 12345)
        else:
            res = nve_drift(atoms, calc, what[1])
        res["seconds"] = time.time() - t0
        done[name] = res
        out.write_text(json.dumps(done, indent=1) + "\n")
        print(name, json.dumps(res), flush=True)


if __name__ == "__main__":
    main()
