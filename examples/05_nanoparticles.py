"""The seed's Figs. 7-9: pulling amorphous Li-Si nanoparticles apart.

    python examples/05_nanoparticles.py [--out out/05_nanoparticles] [--quick]

Spheres of radius 12 A (30 A in the seed) are cut from melt-quenched
a-Li13Si4, a-LiSi and a-LiSi3, relaxed at 300 K and pulled along y
between rigid grips (the lowest and highest 20 % of the particle; the high
grip moved at 1e10 1/s; `md.run` 'pull' mode). Writes the runs, their analyses (force/stress-strain, shear-strain sections) and the overlay
into --out. --quick: radius 6 A, short runs.
"""

import argparse
from pathlib import Path

from aenet_torch_ase import AenetTorch
from aenet_torch_ase.analysis.pictures import plot_structure
from aenet_torch_ase.analysis.report import analyze
from aenet_torch_ase.md.protocol import Protocol
from aenet_torch_ase.md.run import run
from aenet_torch_ase.md.structures import amorphous, nanoparticle

COMPOSITIONS = ("Li13Si4", "LiSi", "LiSi3")


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default="out/05_nanoparticles")
    p.add_argument("--quick", action="store_true")
    args = p.parse_args()
    out = Path(args.out)
    calc = AenetTorch("LiSi-demo")
    radius, n_bulk, melt, quench = (6.0, 96, 200.0, 300.0) if args.quick else (12.0, 512, 2000.0, 4000.0)
    rate, strain, relax = (5e10, 0.04, 0.1) if args.quick else (1e10, 0.3, 5.0)
    runs = []
    for comp in COMPOSITIONS:
        glass = amorphous(comp, n_bulk, calc, t_melt=1000.0, melt_time=melt, quench_time=quench, seed=2)
        particle = nanoparticle(glass, radius, vacuum=8.0)
        plot_structure(particle, out / f"particle_{comp}.png", title=f"a-{comp} R = {radius:g} A")
        protocol = Protocol(mode="pull", axis="y", strain_rate=rate, relax_time=relax, time=strain / rate * 1e12,
                            record_every=20, frame_every=200 if args.quick else 1000)
        runs.append(run(particle, calc, protocol, out / f"np-{comp}", overwrite=True))
    analyze(runs, out=out, strains=(0.02, 0.04) if args.quick else (0.1, 0.2, 0.3))
    print(f"Figs. 7-9: {out}/particle_*.png, {out / 'stress_strain_overlay.png'}, {out}/np-*/analysis/")


if __name__ == "__main__":
    main()
