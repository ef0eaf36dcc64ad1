"""The seed's nanoparticle results (its Figs. 7-9) with the published Li-Si potential.

    python examples/08_seed_nanoparticles.py [--out out/08_seed_nanoparticles] [--radius 15] [--quick] [--overwrite]

For a-Li13Si4, a-LiSi and a-LiSi3: amorphous bulk made with the bundled
published potential (LiSi-Artrith2018) the way the demo's cells are made
(`demo.make_cell`: random packing, melted at 1200 K and quenched to 300 K
with a 1.5 A wall on hot pairs, relaxed to zero stress, box at its 300 K /
1 bar mean; a-Li13Si4 is the bundled 1,024-atom cell), a sphere of radius R
cut from it (`md.structures.nanoparticle`), minimised, 5 ps NVT at 300 K and
pulled along y at 1e10 1/s with the `pull` protocol (grips: the lowest and
highest 20 % of the particle's height; strain = grip displacement / gap
between the grips; stress = pulling force / cross-section at the middle of
the gap, `md.stress.cross_section`), 1 fs steps, until it has broken
(`md.pulling.pull_until_failure`: 5 % strain past the failure strain, at
most 60 %).

Writes into --out: one folder per particle (the run, its analysis/ with the
stress-strain curve, von Mises shear-strain sections at 5, 15 and 30 %
strain, voids and crack_origin.png), stress_strain_overlay.png (the three
curves: the seed's Fig. 7), results.md / results.json (stiffness with its
standard error (fit over 0-3 % strain), UTS, strain at UTS, 0.2 % yield,
toughness, failure strain,
and where bonds broke: mean r/R of the broken bonds at the UTS and after
failure beside that of all bonds). Runs that exist are continued, not
repeated (--overwrite starts again); the amorphous cells are kept in
--bulk-dir (default OUT/bulk) and reused. --quick: R = 7 A from small, briefly
quenched cells, pulled fast (1e11 1/s) to 10 % (a check that everything runs, not a
result).
"""

import argparse
import json
import time
from pathlib import Path

from aenet_torch_ase import AenetTorch
from aenet_torch_ase.analysis.fracture import pull_and_analyse, results_markdown
from aenet_torch_ase.analysis.pictures import plot_structure
from aenet_torch_ase.analysis.stress_strain import plot_curves
from aenet_torch_ase.demo import amorphous_cell
from aenet_torch_ase.io.atomic_write import atomic_write_text
from aenet_torch_ase.md.structures import closest_pair, nanoparticle

POTENTIAL = "LiSi-Artrith2018"
COMPOSITIONS = ("Li13Si4", "LiSi", "LiSi3")


def amorphous_bulk(comp, calc, cache: Path, quick: bool):
    """The amorphous cell a particle is cut from: bundled (a-Li13Si4), or
    made once (`demo.make_cell`) and kept in `cache`."""
    if quick:
        return amorphous_cell(comp, 64, calc, cache_dir=cache, progress=False, melt_ps=0.3, quench_ps=0.5,
                              npt_ps=0.4)
    return amorphous_cell(comp, 1024, calc, cache_dir=cache)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="out/08_seed_nanoparticles")
    ap.add_argument("--radius", type=float, default=None, help="particle radius in A (default 15; --quick 7)")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--overwrite", action="store_true", help="start the runs again")
    ap.add_argument("--bulk-dir", default=None, help="where the amorphous cells are kept (default OUT/bulk)")
    ap.add_argument("--compositions", nargs="+", choices=COMPOSITIONS, default=list(COMPOSITIONS),
                    help="run only these (the table and overlay then hold only these)")
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    calc = AenetTorch(POTENTIAL)
    radius = args.radius or (7.0 if args.quick else 15.0)
    rate, relax, max_strain, chunk = (1e11, 0.1, 0.1, 500) if args.quick else (1e10, 5.0, 0.6, 5000)
    stages = (0.02, 0.06, 0.1) if args.quick else (0.05, 0.15, 0.3)
    rows, curves = [], []
    for comp in args.compositions:
        t0 = time.time()
        bulk, origin = amorphous_bulk(comp, calc, Path(args.bulk_dir or out / "bulk"), args.quick)
        particle = nanoparticle(bulk, radius, vacuum=10.0)
        print(f"a-{comp}: bulk {len(bulk)} atoms ({origin}); particle R = {radius:g} A, {len(particle)} atoms, "
              f"closest pair {closest_pair(particle):.2f} A")
        run_dir = out / f"np-{comp}"
        plot_structure(particle, out / f"particle_{comp}.png", title=f"a-{comp} R = {radius:g} A")
        row, curve = pull_and_analyse(particle, calc, run_dir, rate=rate, relax_ps=relax, max_strain=max_strain,
                                      chunk_steps=chunk, stages=stages, frame_every=100 if args.quick else 500,
                                      label=f"a-{comp}", overwrite=args.overwrite)
        row.update(composition=comp, radius_A=radius, wall_s=round(time.time() - t0))
        rows.append(row)
        curves.append(curve)
        print(f"a-{comp}: E = {row['stiffness_GPa']:.1f} GPa, UTS {row['uts_GPa']:.2f} GPa at "
              f"{row['strain_at_uts']:.1%}, failure "
              f"{'none' if row['failure_strain'] is None else format(row['failure_strain'], '.1%')}, "
              f"{row['wall_s']} s")
    plot_curves(curves, out / "stress_strain_overlay.png", window=(0.0, 0.03),
                title=f"a-LixSi nanoparticles, R = {radius:g} A, pulled at {rate:g} 1/s, 300 K")
    atomic_write_text(str(out / "results.json"), json.dumps(rows, indent=1) + "\n")
    atomic_write_text(str(out / "results.md"), f"# Nanoparticles, R = {radius:g} A ({POTENTIAL})\n\n"
                      + results_markdown(rows))
    print(results_markdown(rows))
    print(f"figures: {out / 'stress_strain_overlay.png'}, {out}/np-*/analysis/")


if __name__ == "__main__":
    main()
