"""Build the demo's a-Li13Si4 cells with a potential (default: the bundled
published one), the way the bundled cells were made.

    python examples/make_demo_cells.py --atoms 256 1024 [--potential LiSi-Artrith2018]
        [--anneal-ps 2] [--out DIR] [--install]

Random packing at the Li-Si density estimate, minimised, annealed at 500 K,
cooled to 300 K, relaxed to zero stress, the box set to its 300 K / 1 bar
NPT mean and minimised (`aenet_torch_ase.demo.make_cell`). No melt: the
published potential lets Li atoms collapse onto each other in Li-rich melts
above ~500-600 K. Writes a-Li13Si4_<N>.extxyz (and, with --install, into the
package's data/structures/ under the potential's name).
"""

from __future__ import annotations

import argparse
import shutil
import time
from pathlib import Path

from aenet_torch_ase import AenetTorch
from aenet_torch_ase.demo import make_cell, min_distance
from aenet_torch_ase.io.structure_files import write_structure

DATA = Path(__file__).resolve().parents[1] / "aenet_torch_ase" / "data" / "structures"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--atoms", type=int, nargs="+", default=[256, 1024])
    ap.add_argument("--potential", default="LiSi-Artrith2018")
    ap.add_argument("--anneal-ps", type=float, default=2.0)
    ap.add_argument("--anneal-k", type=float, default=500.0, help="anneal temperature (K)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default="demo_cells")
    ap.add_argument("--install", action="store_true", help="copy into the package's data/structures/")
    args = ap.parse_args()
    calc = AenetTorch(args.potential)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for n in args.atoms:
        t0 = time.time()
        atoms, how = make_cell(n, calc, seed=args.seed, anneal_ps=args.anneal_ps, t_anneal=args.anneal_k)
        atoms.info.update(recipe=how, potential=args.potential)
        path = out / f"a-Li13Si4_{n}.extxyz"
        write_structure(path, atoms)
        print(f"{path}: {how}; closest pair {min_distance(atoms):.2f} A; box "
              f"{' x '.join(f'{x:.2f}' for x in atoms.cell.lengths())} A; {time.time() - t0:.0f} s")
        if args.install:
            shutil.copy(path, DATA / f"a-Li13Si4_{n}_{args.potential}.extxyz")


if __name__ == "__main__":
    main()
