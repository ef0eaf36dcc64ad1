"""Small versions of the three kinds of structure model, with pictures.

    python examples/03_build_models.py [--out out/03_models] [--quick]

The seed's Figs. 3-4 (structure models) at reduced size.

1. bulk: a Li13Si4 crystal supercell (the seed's tensile model is
   `bulk("Li13Si4", size=(106, 126, 120))`, ~95,000 atoms);
2. nanoparticles: R = 12 A spheres of Li13Si4 and LiSi cut from the crystals
   (the seed's are R = 30 A: `nanoparticle(crystal("Li13Si4"), 30.0)`);
3. a stack of nanoparticles poured into a box (the seed's: 50 or 80
   particles of R = 10 and 15 A in a 100 A box);
4. an amorphous LiSi3 cell by melt-quench with the bundled LiSi-demo
   potential (or --potential Li=Li.nn Si=Si.nn).
Writes extxyz files and PNG pictures into --out.
"""

import argparse
import time
from pathlib import Path

from aenet_torch_ase.analysis.pictures import plot_packing, plot_structure
from aenet_torch_ase.io.structure_files import write_structure
from aenet_torch_ase.md.packing import pack_spheres, stack_nanoparticles
from aenet_torch_ase.md.structures import amorphous, bulk, crystal, nanoparticle


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default="out/03_models")
    p.add_argument("--quick", action="store_true", help="smaller still (for CI)")
    p.add_argument("--potential", nargs="+", help="Li=Li.nn Si=Si.nn (or a directory); default LiSi-demo")
    args = p.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.time()

    cell = bulk("Li13Si4", n_atoms=2000 if args.quick else 10000)
    write_structure(out / "bulk_Li13Si4.extxyz", cell)
    plot_structure(cell, out / "bulk_Li13Si4.png")

    radius = 8.0 if args.quick else 12.0
    for phase in ("Li13Si4", "LiSi"):
        particle = nanoparticle(crystal(phase), radius)
        write_structure(out / f"nanoparticle_{phase}.extxyz", particle)
        plot_structure(particle, out / f"nanoparticle_{phase}.png")
        print(f"{phase} R={radius} A: {len(particle)} atoms, Li fraction "
              f"{particle.info['composition']['Li']:.3f} (bulk {particle.info['bulk_composition']['Li']:.3f})")

    n, radii, box = (8, [5.0, 7.0], [40.0] * 3) if args.quick else (20, [6.0, 9.0], [60.0] * 3)
    packing = pack_spheres(n, radii, box, seed=1)
    plot_packing(packing, out / "packing.png")
    unit = crystal("Li13Si4")
    stack = stack_nanoparticles(packing, lambda r: nanoparticle(unit, r), min_distance=2.0, seed=1)
    write_structure(out / "stack_Li13Si4.extxyz", stack)
    plot_structure(stack, out / "stack_Li13Si4.png", axis=1)

    from aenet_torch_ase import AenetTorch
    from aenet_torch_ase.cli import potential_spec

    calc = AenetTorch(potential_spec(args.potential) if args.potential else "LiSi-demo")
    glass = amorphous("LiSi3", 64 if args.quick else 216, calc, t_melt=1200.0,
                      melt_time=200 if args.quick else 1000, quench_time=400 if args.quick else 3000, seed=1)
    glass.calc = None
    write_structure(out / "amorphous_LiSi3.extxyz", glass)
    plot_structure(glass, out / "amorphous_LiSi3.png")
    print(f"wrote models and pictures to {out}/ in {time.time() - t0:.0f} s")


if __name__ == "__main__":
    main()
