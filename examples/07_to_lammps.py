"""Production in LAMMPS: export the seed's 100,000-atom tensile model.

    python examples/07_to_lammps.py [--out out/07_lammps] [--quick] [--potential Li=Li.nn Si=Si.nn]

Builds the seed's bulk Li13Si4 model (103 x 120 x 119 A, ~95,000 atoms;
--quick: ~2,000 atoms) and writes a LAMMPS deck for `pair_style aenet`:
the .nn files, data.lmp, in.lammps (CG minimisation, 20 ps NVT at 300 K,
50 ps tension at 1e10 1/s with the lateral axes at 1 bar) and README.txt.
Run it with an aenet-enabled LAMMPS: `mpirun -np N lmp -in in.lammps`, then
`aenet-torch analyze <out>` reads log.lammps and the dumps. The crystal is
the starting point here; amorphise it first (melt-quench in LAMMPS) for the
seed's a-Li13Si4.
"""

import argparse
from pathlib import Path

from aenet_torch_ase import AenetTorch
from aenet_torch_ase.analysis.pictures import plot_structure
from aenet_torch_ase.cli import potential_spec
from aenet_torch_ase.lammps.export import export_run
from aenet_torch_ase.md.protocol import Protocol
from aenet_torch_ase.md.structures import bulk


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default="out/07_lammps")
    p.add_argument("--quick", action="store_true")
    p.add_argument("--potential", nargs="+", help="default: the bundled LiSi-demo")
    args = p.parse_args()
    atoms = bulk("Li13Si4", n_atoms=2000) if args.quick else bulk("Li13Si4", size=(103.0, 120.0, 119.0))
    calc = AenetTorch(potential_spec(args.potential) if args.potential else "LiSi-demo")
    out = export_run(args.out, atoms, Protocol(), calc.current_nn_files())
    plot_structure(atoms, Path(out) / "model.png", title=f"Li13Si4, {len(atoms)} atoms")
    print(f"{len(atoms)} atoms; wrote {out}/in.lammps, data.lmp, Li.nn, Si.nn, README.txt, model.png")


if __name__ == "__main__":
    main()
