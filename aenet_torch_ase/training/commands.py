"""The training jobs behind `aenet-torch generate`, `train` and `dataset-info`."""

from __future__ import annotations

from pathlib import Path
from typing import Dict, Sequence

from ..errors import InputFileError
from ..io.training_inputs import read_generate_in, read_train_in
from .dataset import TrainingSet, load_structures, setups_from_files
from .dataset_info import dataset_info
from .trainer import TrainConfig, Trainer


def generate(generate_in, *, angular: str = "2.0.4", progress: bool = True) -> Path:
    """Featurise the structures of `generate.in` and write its OUTPUT file."""
    from ..io.run_dirs import check_writable

    gin = read_generate_in(generate_in)
    check_writable(Path(gin.output).parent, "folder of the OUTPUT file")
    setups = setups_from_files(gin.setups)
    refs = load_structures(gin.files, progress=progress)
    ts = TrainingSet.featurize(refs, setups, gin.types, forces=gin.forces, forces_percent=gin.forces_percent,
                               seed=gin.seed, angular=angular, progress=progress)
    ts.save(gin.output)
    s = ts.summary()
    e = s["cohesive_energy_per_atom_eV"]
    print(f"wrote {gin.output}: {s['structures']} structures, {s['atoms']} atoms ({', '.join(s['elements'])}), "
          f"{s['structures_with_force_training']} with forces for training; cohesive energy "
          f"{e['min']:.4f} .. {e['max']:.4f} eV/atom")
    return Path(gin.output)


def resolve_trainingset(path: Path) -> Path:
    """TRAININGSET as given, or without aenet-PyTorch's '.ascii' suffix (its
    train.in names the ASCII conversion of generate.x's OUTPUT)."""
    path = Path(path)
    if path.is_file():
        return path
    if path.suffix == ".ascii" and path.with_suffix("").is_file():
        return path.with_suffix("")
    raise InputFileError(f"training set {path} does not exist: run 'aenet-torch generate generate.in' "
                         f"(its OUTPUT is the TRAININGSET of train.in)")


def train(train_in, *, out=None, resume: bool = False, overwrite: bool = False, progress: bool = True,
          **overrides) -> Dict[str, object]:
    """Train the networks of `train.in`; run files and the networks (relative
    NETWORKS names) go to `out` (default: the folder of train.in). An earlier
    training there is refused unless `overwrite` or `resume`.
    `overrides`: TrainConfig fields (device, dtype, epochs ...)."""
    tin = read_train_in(train_in)
    ts = TrainingSet.load(resolve_trainingset(tin.trainingset))
    overrides = {k: v for k, v in overrides.items() if v is not None}
    config = TrainConfig.from_train_in(tin, **overrides)
    out = Path(out) if out else Path(train_in).resolve().parent
    trainer = Trainer(ts, config, out)
    summary = trainer.train(resume=resume, overwrite=overwrite, progress=progress)
    test = summary["best_test"] or summary["best_train"]
    split = "test" if summary["best_test"] else "train"
    print(f"best epoch {summary['best_epoch']} of {summary['epochs']}: {split} energy RMSE "
          f"{test[f'energy_rmse_{split}'] * 1000:.2f} meV/atom, force RMSE {test[f'force_rmse_{split}']:.4f} eV/A "
          f"(per-atom vectors); wrote {', '.join(summary['files'].values())} (+ .ascii), "
          f"{out / 'train_log.csv'}, {out / 'rmse.png'}")
    return summary


def info(inputs: Sequence[str], out, progress: bool = True) -> Dict[str, object]:
    """`dataset-info`: inputs are one generate.in, one training-set file, or structure files."""
    e_atom, elements, files = None, None, list(inputs)
    if len(inputs) == 1 and Path(inputs[0]).suffix.lower() not in (".xsf", ".extxyz", ".xyz", ".db", ".traj"):
        try:
            gin = read_generate_in(inputs[0])
        except InputFileError as err:
            raise InputFileError(f"{inputs[0]} is neither a structure file nor a readable generate.in: {err}") from None
        e_atom, elements, files = gin.types, list(gin.types), gin.files
    refs = load_structures(files, progress=progress)
    result = dataset_info(refs, out, e_atom=e_atom, elements=elements)
    print(f"{result['structures']} structures, {result['atoms']} atoms, elements {result['elements']}; "
          f"wrote {', '.join(result['files'])}")
    return result
