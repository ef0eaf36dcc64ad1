"""Build the demo's a-Li13Si4 cells with a potential (default: the bundled
published one), the way the bundled cells were made.

    python examples/make_demo_cells.py --atoms 256 1024 [--potential LiSi-Artrith2018]
        [--melt-ps 5] [--quench-ps 20] [--t-melt 1200] [--out DIR] [--install]

Random packing at the Li-Si density estimate, minimised, melted at 1200 K
and quenched to 300 K with a repulsive wall on pairs closer than 1.5 A (the
published potential lets hot Li atoms collapse onto each other without it),
relaxed to zero stress without the wall, the box set to its 300 K / 1 bar
NPT mean and minimised (`aenet_torch_ase.demo.make_cell`). Writes
a-Li13Si4_<N>.extxyz (and, with --install, into the package's
data/structures/ under the potential's name), with the 0 K relaxed-ion
Young's moduli along x, y, z and the Hill average (matscipy) in its info.
"""

from __future__ import annotations

import argparse
import shutil
import time
from pathlib import Path

from aenet_torch_ase import AenetTorch
from aenet_torch_ase.analysis.elastic import elastic_constants
from aenet_torch_ase.demo import MELT_PS, QUENCH_PS, T_MELT, make_cell
from aenet_torch_ase.io.structure_files import write_structure
from aenet_torch_ase.md.structures import closest_pair

DATA = Path(__file__).resolve().parents[1] / "aenet_torch_ase" / "data" / "structures"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--atoms", type=int, nargs="+", default=[256, 1024])
    ap.add_argument("--potential", default="LiSi-Artrith2018")
    ap.add_argument("--melt-ps", type=float, default=MELT_PS)
    ap.add_argument("--quench-ps", type=float, default=QUENCH_PS)
    ap.add_argument("--t-melt", type=float, default=T_MELT, help="melt temperature (K)")
    ap.add_argument("--no-elastic", action="store_true", help="skip the 0 K elastic constants")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default="demo_cells")
    ap.add_argument("--install", action="store_true", help="copy into the package's data/structures/")
    args = ap.parse_args()
    calc = AenetTorch(args.potential)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for n in args.atoms:
        t0 = time.time()
        atoms, how = make_cell(n, calc, seed=args.seed, melt_ps=args.melt_ps, quench_ps=args.quench_ps,
                               t_melt=args.t_melt)
        atoms.info.update(recipe=how, potential=args.potential)
        path = out / f"a-Li13Si4_{n}.extxyz"
        write_structure(path, atoms)  # before the elastic constants: a failure there keeps the cell
        if not args.no_elastic:
            r = elastic_constants(atoms, calc, delta=0.005, steps=3, fmax=2e-3)
            atoms.info.update({f"young_0K_uniaxial_{ax}_GPa": round(r["young_uniaxial_GPa"][ax], 2) for ax in "xyz"})
            atoms.info.update(young_0K_hill_GPa=round(r["hill"]["young_GPa"], 2))
            atoms.calc = None
            write_structure(path, atoms)
        print(f"{path}: {how}; closest pair {closest_pair(atoms):.2f} A; box "
              f"{' x '.join(f'{x:.2f}' for x in atoms.cell.lengths())} A; {time.time() - t0:.0f} s")
        if args.install:
            shutil.copy(path, DATA / f"a-Li13Si4_{n}_{args.potential}.extxyz")


if __name__ == "__main__":
    main()
