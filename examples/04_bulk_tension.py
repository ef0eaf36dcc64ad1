"""The seed's Figs. 5-6: uniaxial tension of bulk amorphous Li-Si alloys.

    python examples/04_bulk_tension.py [--out out/04_bulk] [--quick] [--potential Li=Li.nn Si=Si.nn]

a-Li13Si4, a-LiSi and a-LiSi3 cells are melt-quenched, relaxed at 300 K and
stretched along y at 1e10 1/s with 1 bar on the lateral axes (the seed's
protocol at reduced size: 512 atoms per cell and strain 0.2 here, 100,000
atoms in the seed). Writes each run's analysis (stress_strain.png,
shear_strain_*.png, summary.json) and the overlay of the three curves
(Fig. 5) into --out. --quick: 96 atoms, short melt-quench, strain 0.04 at
5e10 1/s (shows the pipeline, not converged numbers); small cells get no void analysis
(OVITO needs a larger cell).
"""

import argparse
from pathlib import Path

from aenet_torch_ase import AenetTorch
from aenet_torch_ase.analysis.report import analyze
from aenet_torch_ase.cli import potential_spec
from aenet_torch_ase.md.protocol import Protocol
from aenet_torch_ase.md.run import run
from aenet_torch_ase.md.structures import amorphous

COMPOSITIONS = ("Li13Si4", "LiSi", "LiSi3")


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default="out/04_bulk")
    p.add_argument("--quick", action="store_true")
    p.add_argument("--potential", nargs="+", help="default: the bundled LiSi-demo")
    args = p.parse_args()
    out = Path(args.out)
    calc = AenetTorch(potential_spec(args.potential) if args.potential else "LiSi-demo")
    n, melt, quench = (96, 200.0, 300.0) if args.quick else (512, 2000.0, 4000.0)
    rate, strain, relax = (5e10, 0.04, 0.1) if args.quick else (1e10, 0.2, 5.0)
    runs = []
    for comp in COMPOSITIONS:
        atoms = amorphous(comp, n, calc, t_melt=1000.0, melt_time=melt, quench_time=quench, seed=1)
        atoms.calc = None
        protocol = Protocol(mode="tensile", axis="y", strain_rate=rate, relax_time=relax, time=strain / rate * 1e12,
                            record_every=20, frame_every=200 if args.quick else 1000)
        runs.append(run(atoms, calc, protocol, out / f"a-{comp}", overwrite=True))
    strains = (0.02, 0.04) if args.quick else (0.05, 0.10, 0.15, 0.20)
    summaries = analyze(runs, out=out, strains=strains)
    for comp, s in zip(COMPOSITIONS, summaries):
        print(f"a-{comp}: Young's modulus {s['young_modulus_GPa']['value']:.1f} GPa, "
              f"UTS {s['ultimate_tensile_strength_GPa']['stress']:.2f} GPa")
    print(f"Fig. 5: {out / 'stress_strain_overlay.png'}; Fig. 6: {out}/a-*/analysis/shear_strain_*.png")


if __name__ == "__main__":
    main()
