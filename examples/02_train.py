"""The seed's Fig. 2: training error versus epoch.

    python examples/02_train.py [--out out/02_train] [--quick]

Featurises a data set and trains Li and Si networks (2 x 25 tanh, the
seed's architecture; AdamW, batch 128 as the seed; 10 % test), writing the
exported Li.nn/Si.nn, train_log.csv and rmse.png (RMSE vs epoch). The data:
the TiO2 example of aenet-PyTorch when ../shared/reference is present and
not --quick (networks Ti/O instead), else Li-Si alloys labelled by the
bundled LiSi-demo potential (examples/01_dataset.py makes them).
"""

import argparse
import importlib.util
import tarfile
from pathlib import Path

from aenet_torch_ase.io.input_files import FingerprintSetup
from aenet_torch_ase.training.dataset import TrainingSet, load_structures
from aenet_torch_ase.training.trainer import TrainConfig, Trainer

HERE = Path(__file__).resolve().parent
TIO2 = HERE.parents[1] / "shared" / "reference" / "TiO2-dataset" / "dir_xsf.tar.gz"


def setups(elements, rc=6.0, n=10, arc=3.5, an=4):
    return {e: FingerprintSetup(atom=e, env=list(elements), rmin=0.75, basis="chebyshev", radial_rc=rc,
                                radial_n=n, angular_rc=arc, angular_n=an) for e in elements}


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default="out/02_train")
    p.add_argument("--epochs", type=int)
    p.add_argument("--quick", action="store_true", help="small Li-Si set, a few epochs (for CI)")
    args = p.parse_args()
    out = Path(args.out)
    if TIO2.is_file() and not args.quick:
        with tarfile.open(TIO2) as tar:
            tar.extractall(out / "data", filter="data")
        files = sorted((out / "data" / "dir_xsf").glob("*.xsf"))
        e_atom = {"Ti": -1604.604515075, "O": -432.503149303}
        ts = TrainingSet.featurize(load_structures(files, progress=True), setups(["Ti", "O"], 6.5, 20, 5.0, 6),
                                   e_atom, forces_percent=25, progress=True)
    else:
        spec = importlib.util.spec_from_file_location("dataset01", HERE / "01_dataset.py")
        dataset01 = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(dataset01)
        files = dataset01.lisi_set(out / "data", 40 if args.quick else 400)
        from aenet_torch_ase import AenetTorch

        e_atom = dict(zip(*[getattr(AenetTorch("LiSi-demo").nn_files["Li"], k) for k in ("type_names", "e_atom")]))
        ts = TrainingSet.featurize(load_structures(files), setups(["Li", "Si"]), e_atom, forces_percent=50,
                                   progress=True)
    epochs = args.epochs or (10 if args.quick else 500)
    config = TrainConfig(networks={e: [(25, "tanh")] * 2 for e in ts.elements}, epochs=epochs, batch_size=128,
                         forces=True, alpha=0.1, method="adamw", lr=3e-3, lr_final=3e-5, iter_write=1 if args.quick else 5,
                         dtype="float32")
    summary = Trainer(ts, config, out).train(overwrite=True)  # the example owns its output folder
    print(f"Fig. 2: {out / 'rmse.png'}; best test energy RMSE {summary['best_test']['energy_rmse_test'] * 1000:.1f} "
          f"meV/atom, force RMSE {summary['best_test']['force_rmse_test']:.3f} eV/A")


if __name__ == "__main__":
    main()
