"""The seed's Fig. 1: what is in a reference data set.

    python examples/01_dataset.py [--data generate.in | files...] [--out out/01_dataset] [--quick]

Counts, composition and energy ranges, and the figure: distribution of the
A/B ratio and histograms of A and B atoms per structure (Li and Si in the
seed). Without --data it describes the TiO2 data set of aenet-PyTorch's
example when ../shared/reference is present, else a Li-Si set made here:
random Li_xSi alloys (x = 0 .. 4.4) labelled by the bundled LiSi-demo
potential (a stand-in for the seed's 45,000 DFT structures).
"""

import argparse
import tarfile
from pathlib import Path

import numpy as np

from aenet_torch_ase import AenetTorch
from aenet_torch_ase.io.xsf import write_xsf
from aenet_torch_ase.md.structures import random_alloy
from aenet_torch_ase.training.commands import info

TIO2 = Path(__file__).resolve().parents[2] / "shared" / "reference" / "TiO2-dataset" / "dir_xsf.tar.gz"


def lisi_set(folder: Path, n_structures: int, seed: int = 0):
    """Random Li-Si alloys across compositions, labelled by LiSi-demo (XSF files)."""
    folder.mkdir(parents=True, exist_ok=True)
    calc = AenetTorch("LiSi-demo")
    rng = np.random.default_rng(seed)
    paths = []
    for k in range(n_structures):
        x = rng.uniform(0.0, 4.4)
        n = int(rng.integers(16, 64))
        atoms = random_alloy({"Li": x, "Si": 1.0} if x > 0.05 else "Si", n, min_distance=1.9, seed=seed + k)
        atoms.rattle(0.05, seed=k)
        atoms.calc = calc
        path = folder / f"LiSi_{k:04d}.xsf"
        write_xsf(path, atoms, energy=atoms.get_potential_energy(), forces=atoms.get_forces())
        paths.append(str(path))
    return paths


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", nargs="+", help="a generate.in or structure files")
    p.add_argument("--out", default="out/01_dataset")
    p.add_argument("--quick", action="store_true", help="a small generated set (for CI)")
    args = p.parse_args()
    out = Path(args.out)
    if args.data:
        inputs = args.data
    elif TIO2.is_file() and not args.quick:
        with tarfile.open(TIO2) as tar:
            tar.extractall(out / "TiO2", filter="data")
        inputs = sorted(str(f) for f in (out / "TiO2" / "dir_xsf").glob("*.xsf"))
    else:
        inputs = lisi_set(out / "xsf", 30 if args.quick else 400)
    result = info(inputs, out)
    print(f"Fig. 1: {out / 'composition.png'}")
    return result


if __name__ == "__main__":
    main()
