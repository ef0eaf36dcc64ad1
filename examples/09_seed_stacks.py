"""The seed's stack results (its Figs. 10-12) with the published Li-Si potential, at reduced size.

    python examples/09_seed_stacks.py [--out out/09_seed_stacks] [--bulk-dir DIR] [--quick] [--overwrite]

For a-Li13Si4, a-LiSi and a-LiSi3: 8 spheres of R = 6 and 8 A (the seed:
50-80 of R = 10 and 15 A) poured into a 34 x 34 A box (discrete-element
packing, `md.packing.pack_spheres`), each replaced by a particle cut from
the composition's amorphous cell (the cells of examples/08, made with the
published potential by `demo.make_cell`, kept in --bulk-dir; atoms closer
than 2 A to an earlier particle removed), minimised, 5 ps NVT at 300 K and
pulled along y at 1e10 1/s with the `pull` protocol (rigid grips of 20 %
of the height at each end; stress = pulling force / cross-section at the
middle of the gap), 1 fs steps, until broken (5 % strain past the failure
strain, at most 60 %).

Writes into --out: one folder per stack (the run and its analysis/),
packing_<comp>.png, stack_<comp>.png, stress_strain_overlay.png,
results.md / results.json (stiffness with its standard error, UTS, strain
at UTS, yield, toughness, failure strain; the share of broken bonds in the
necks between particles and inside them at the UTS). Runs that exist are
continued. --quick: 3 particles of R = 4.5 and 5.5 A from small cells,
pulled fast (1e11 1/s) to 10 % (a check that everything runs, not a result).
"""

import argparse
import json
import time
from pathlib import Path

from aenet_torch_ase import AenetTorch
from aenet_torch_ase.analysis.fracture import pull_and_analyse, results_markdown
from aenet_torch_ase.analysis.pictures import plot_packing, plot_structure
from aenet_torch_ase.analysis.stress_strain import plot_curves
from aenet_torch_ase.demo import amorphous_cell
from aenet_torch_ase.io.atomic_write import atomic_write_text
from aenet_torch_ase.md.packing import pack_spheres, stack_nanoparticles
from aenet_torch_ase.md.structures import nanoparticle

POTENTIAL = "LiSi-Artrith2018"
COMPOSITIONS = ("Li13Si4", "LiSi", "LiSi3")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="out/09_seed_stacks")
    ap.add_argument("--bulk-dir", default=None, help="where the amorphous cells are kept (default OUT/bulk)")
    ap.add_argument("--compositions", nargs="+", choices=COMPOSITIONS, default=list(COMPOSITIONS),
                    help="run only these (the table and overlay then hold only these)")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--overwrite", action="store_true", help="start the runs again")
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    cache = Path(args.bulk_dir or out / "bulk")
    calc = AenetTorch(POTENTIAL)
    if args.quick:
        n, radii, box, rate, relax, max_strain, chunk = 3, [4.5, 5.5], [20.0, 20.0, 30.0], 1e11, 0.1, 0.1, 500
    else:
        n, radii, box, rate, relax, max_strain, chunk = 8, [6.0, 8.0], [34.0, 34.0, 60.0], 1e10, 5.0, 0.6, 5000
    stages = (0.02, 0.06, 0.1) if args.quick else (0.05, 0.15, 0.3)
    packing = pack_spheres(n, radii, box, seed=3, progress=False)
    rows, curves = [], []
    for comp in args.compositions:
        t0 = time.time()
        if args.quick:
            bulk, origin = amorphous_cell(comp, 64, calc, cache_dir=cache, progress=False, melt_ps=0.3,
                                          quench_ps=0.5, npt_ps=0.4)
        else:
            bulk, origin = amorphous_cell(comp, 1024, calc, cache_dir=cache)
        stack = stack_nanoparticles(packing, lambda r: nanoparticle(bulk, r), min_distance=2.0, seed=3, progress=False)
        print(f"a-{comp}: bulk {len(bulk)} atoms ({origin}); stack of {n} particles (R = {radii} A), "
              f"{len(stack)} atoms ({stack.info['removed_atoms']} removed at contacts)")
        plot_packing(packing, out / f"packing_{comp}.png", title=f"{n} spheres poured")
        plot_structure(stack, out / f"stack_{comp}.png", axis=0, title=f"stack of {n} a-{comp} particles")
        run_dir = out / f"stack-{comp}"
        row, curve = pull_and_analyse(stack, calc, run_dir, rate=rate, relax_ps=relax, max_strain=max_strain,
                                      chunk_steps=chunk, stages=stages, frame_every=100 if args.quick else 500,
                                      label=f"a-{comp} stack", overwrite=args.overwrite)
        row.update(composition=comp, particles=n, wall_s=round(time.time() - t0))
        rows.append(row)
        curves.append(curve)
        print(f"a-{comp} stack: E = {row['stiffness_GPa']:.1f} GPa, UTS {row['uts_GPa']:.2f} GPa at "
              f"{row['strain_at_uts']:.1%}, {row['wall_s']} s")
    plot_curves(curves, out / "stress_strain_overlay.png", window=(0.0, 0.03),
                title=f"stacks of {n} a-LixSi particles, pulled at {rate:g} 1/s, 300 K")
    atomic_write_text(str(out / "results.json"), json.dumps(rows, indent=1) + "\n")
    table = results_markdown(rows)
    necks = "\n".join(f"- {r['run']}: broken bonds at the UTS: {r.get('neck_broken_at_uts', float('nan')):.1%} of "
                      f"the necks' bonds, {r.get('inner_broken_at_uts', float('nan')):.1%} inside particles"
                      for r in rows)
    atomic_write_text(str(out / "results.md"), f"# Stacks of {n} particles ({POTENTIAL})\n\n{table}\n{necks}\n")
    print(table + necks)
    print(f"figures: {out / 'stress_strain_overlay.png'}, {out}/stack-*/analysis/")


if __name__ == "__main__":
    main()
