"""The seed's Figs. 10-12: a stack of nanoparticles, pulled.

    python examples/06_stacks.py [--out out/06_stacks] [--quick]

Spheres of two radii are poured into a box (discrete-element packing),
replaced by Li13Si4 nanoparticles (atoms too close to a neighbour particle
removed), relaxed at 300 K and pulled along y like the single particles.
The seed stacks 50-80 particles of R = 10 and 15 A; here 12 particles of
R = 5 and 7 A (--quick: 4). Writes the packing, the stack picture, the run
and its analysis into --out.
"""

import argparse
from pathlib import Path

from aenet_torch_ase import AenetTorch
from aenet_torch_ase.analysis.pictures import plot_packing, plot_structure
from aenet_torch_ase.analysis.report import analyze_run
from aenet_torch_ase.md.packing import pack_spheres, stack_nanoparticles
from aenet_torch_ase.md.protocol import Protocol
from aenet_torch_ase.md.run import run
from aenet_torch_ase.md.structures import crystal, nanoparticle


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default="out/06_stacks")
    p.add_argument("--quick", action="store_true")
    args = p.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    n, radii, box = (4, [4.5, 5.5], [22.0] * 3) if args.quick else (12, [5.0, 7.0], [36.0] * 3)
    packing = pack_spheres(n, radii, box, seed=3)
    plot_packing(packing, out / "packing.png", title=f"{n} spheres poured")
    unit = crystal("Li13Si4")
    stack = stack_nanoparticles(packing, lambda r: nanoparticle(unit, r), min_distance=2.0, seed=3)
    plot_structure(stack, out / "stack.png", axis=0, title=f"stack of {n} Li13Si4 particles, {len(stack)} atoms")
    rate, strain, relax = (5e10, 0.04, 0.1) if args.quick else (1e10, 0.2, 2.0)
    protocol = Protocol(mode="pull", axis="y", strain_rate=rate, relax_time=relax, time=strain / rate * 1e12,
                        record_every=20, frame_every=200 if args.quick else 1000)
    run_dir = run(stack, AenetTorch("LiSi-demo"), protocol, out / "stack-pull", overwrite=True)
    s = analyze_run(run_dir, strains=(0.02, 0.04) if args.quick else (0.05, 0.1, 0.2))
    print(f"Figs. 10-12: {out / 'packing.png'}, {out / 'stack.png'}, {run_dir}/analysis/ "
          f"(peak stress {s['ultimate_tensile_strength_GPa']['stress']:.2f} GPa)")


if __name__ == "__main__":
    main()
