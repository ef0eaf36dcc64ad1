"""Energy + force training of aenet networks on a featurised `TrainingSet`.

Conventions follow aenet-PyTorch, so that numbers can be compared:

* normalisation (aenet): per-atom cohesive energies E (reference energies
  E_atom removed) are mapped to [-1, 1] with scale = 2/(Emax - Emin) and
  shift = (Emax + Emin)/2 over the structures kept (MAXENERGY cap);
  descriptor shift/scale from the mean and mean of squares over all atoms.
  Both are stored in the exported `.nn` files where aenet stores them.
* loss per batch, in normalised units: (1 - alpha) RMSE(E/N) + alpha RMSE(F),
  with RMSE(F) over per-atom force vectors (sqrt(3) x the per-component
  RMSE), forces only from the structures picked for force training.
* REGULARIZATION is the optimiser's weight decay (decoupled for adamw).
* reported errors: energy RMSE/MAE per atom (eV/atom); force RMSE over
  per-atom vectors and MAE of |F_ann - F_ref| per atom (eV/A).

One epoch = one pass over the training structures in shuffled batches
(seeded by PHSEED; the train/test split by NPSEED). The data live on the
training device as compact tensors; a batch is a set of index gathers.
"""

from __future__ import annotations

import io
import json
import math
import signal
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
from torch import Tensor

from .._allocator import keep_freed_memory
from ..errors import AenetError, InputFileError
from ..io.atomic_write import atomic_write_bytes, atomic_write_text
from ..io.nn_ascii import write_nn_ascii
from ..io.nn_binary import write_nn
from ..io.nn_file import NNFile
from ..io.run_dirs import check_writable, prepare_run_dir
from ..threads import adaptive_threads
from ..potential.build import build_model, model_to_nn_files
from ..potential.descriptor_jacobian import DescriptorJacobian
from ..potential.new import new_nn_file
from .dataset import TrainingSet

LOG_COLUMNS = ("epoch", "time_s", "lr", "loss_train", "loss_test",
               "energy_rmse_train", "energy_mae_train", "force_rmse_train", "force_mae_train",
               "energy_rmse_test", "energy_mae_test", "force_rmse_test", "force_mae_test")
CHECKPOINT = "checkpoint.pt"


@dataclass
class TrainConfig:
    """Training settings (train.in keywords in brackets). Energies eV, forces eV/A."""

    networks: Dict[str, List[Tuple[int, str]]]  # [NETWORKS] hidden layers per element
    files: Dict[str, str] = field(default_factory=dict)  # [NETWORKS] output .nn path per element
    epochs: int = 100  # [ITERATIONS]
    iter_write: int = 1  # [ITERWRITE] log every this many epochs
    test_percent: float = 10.0  # [TESTPERCENT]
    batch_size: int = 128  # [BATCHSIZE] structures per batch
    np_seed: int = 1  # [NPSEED] train/test split
    ph_seed: int = 1  # [PHSEED] initial weights and batch order
    forces: bool = True  # [FORCES]
    alpha: float = 0.1  # [FORCES alpha=] weight of the force RMSE in the loss
    max_energy: Optional[float] = None  # [MAXENERGY] eV/atom (cohesive); higher structures left out
    max_forces: Optional[float] = None  # [MAXFORCES] eV/A; larger force components leave force training
    method: str = "adamw"  # [METHOD method=]
    lr: float = 1e-4  # [METHOD lr=]
    lr_final: Optional[float] = None  # [METHOD lr_final=] exponential decay to this at the last epoch
    betas: Tuple[float, float] = (0.9, 0.999)  # [METHOD b1= b2=]
    eps: float = 1e-8
    momentum: float = 0.0  # sgd only
    regularization: float = 0.0  # [REGULARIZATION] weight decay
    device: str = "cpu"
    dtype: str = "float64"  # or float32
    checkpoint_every: int = 50  # epochs
    reshuffle_every: int = 10  # epochs between new random batch compositions (order shuffles every epoch)
    save_energies: bool = False  # [SAVE_ENERGIES]
    save_forces: bool = False  # [SAVE_FORCES]

    def __post_init__(self):
        def bad(msg):
            return InputFileError(f"training settings: {msg}")

        if self.method not in ("adam", "adamw", "sgd"):
            raise bad(f"method must be adam, adamw or sgd, got {self.method!r}")
        if self.dtype not in ("float64", "float32"):
            raise bad(f"dtype must be float64 or float32, got {self.dtype!r}")
        if self.batch_size < 1 or self.epochs < 0 or self.iter_write < 1 or self.reshuffle_every < 1 \
                or self.checkpoint_every < 1:
            raise bad("batch_size, iter_write, reshuffle_every and checkpoint_every must be >= 1 and epochs >= 0")
        if not 0.0 <= self.alpha <= 1.0:
            raise bad(f"alpha must be in [0, 1], got {self.alpha}")
        if not self.lr > 0 or (self.lr_final is not None and not self.lr_final > 0):
            raise bad(f"the learning rate must be positive, got lr={self.lr}, lr_final={self.lr_final}")
        if self.regularization < 0:
            raise bad(f"regularization (weight decay) must not be negative, got {self.regularization}")

    @classmethod
    def from_train_in(cls, tin, **overrides) -> "TrainConfig":
        """Settings of a parsed `train.in` (`io.training_inputs.TrainInput`)."""
        p = tin.method_params
        kw = dict(
            networks={e: list(n.hidden) for e, n in tin.networks.items()},
            files={e: str(n.file) for e, n in tin.networks.items()},
            epochs=tin.iterations, iter_write=tin.iter_write, test_percent=tin.test_percent,
            batch_size=tin.batch_size, np_seed=tin.np_seed, ph_seed=tin.ph_seed, forces=tin.forces,
            alpha=tin.alpha if tin.forces else 0.0, max_energy=tin.max_energy, max_forces=tin.max_forces,
            method=tin.method, lr=p.get("lr", 1e-3), lr_final=p.get("lr_final"),
            betas=(p.get("b1", 0.9), p.get("b2", 0.999)), eps=p.get("eps", 1e-8),
            momentum=p.get("momentum", 0.0), regularization=tin.regularization,
            save_energies=tin.save_energies, save_forces=tin.save_forces,
            device="cuda" if tin.memory_mode == "gpu" and torch.cuda.is_available() else "cpu",
        )
        kw.update(overrides)
        return cls(**kw)


def _ranges(starts: Tensor, counts: Tensor) -> Tensor:
    """Concatenation of arange(s, s + c) for each (s, c), without a Python loop."""
    total = int(counts.sum())
    if total == 0:
        return torch.zeros(0, dtype=torch.int64, device=starts.device)
    offsets = torch.cumsum(counts, 0) - counts
    owner = torch.repeat_interleave(torch.arange(counts.numel(), device=starts.device), counts, output_size=total)
    return starts[owner] + torch.arange(total, device=starts.device) - offsets[owner]


@dataclass
class _Batch:
    structures: Tensor  # (B,) indices into the training set
    n_structures: int
    n_atoms: Tensor  # (B,)
    atom_structure: Tensor  # (n,) local structure index
    target_energy: Tensor  # (B,) normalised cohesive energy
    element_atoms: List[Tensor]  # per element: local atom positions
    element_features: List[Tensor]
    jacobians: List[Optional[DescriptorJacobian]]  # per setup (centres = rows of the setup's table)
    pair_atoms: List[Optional[Tuple[Tensor, Tensor]]]  # per setup: (centre, neighbour) batch atoms
    force_atoms: Tensor  # local atoms whose forces are trained
    target_forces: Tensor  # (n_f, 3) normalised


class Trainer:
    """Train aenet networks on `training_set` with `config`, writing into `out`.

    >>> ts = TrainingSet.load("TiO.train")
    >>> trainer = Trainer(ts, TrainConfig(networks={"Ti": [(5, "tanh")] * 2, "O": [(5, "tanh")] * 2}), "run")
    >>> summary = trainer.train()          # writes run/Ti.nn, run/O.nn, train_log.csv, rmse.png ...
    >>> calc = trainer.calculator()        # AenetTorch of the best model
    """

    def __init__(self, training_set: TrainingSet, config: TrainConfig, out="training"):
        keep_freed_memory()  # per-batch tensors of ~10 MB: avoid fresh-page faults
        self.ts = training_set
        self.config = config
        self.out = Path(out)
        missing = [e for e in self.ts.elements if e not in config.networks]
        if missing:
            raise InputFileError(f"no network given for {missing}: every element of the training set "
                                 f"({self.ts.elements}) needs a NETWORKS line")
        extra = [e for e in config.networks if e not in self.ts.elements]
        if extra:
            raise InputFileError(f"networks given for {extra}, which the training set does not contain "
                                 f"(it has {self.ts.elements})")
        self.device = torch.device(config.device)
        self.dtype = torch.float64 if config.dtype == "float64" else torch.float32
        self._select_and_split()
        self._normalisation()
        self._build_model()
        self._to_device()
        self.optimizer = self._make_optimizer()
        self.generator = torch.Generator().manual_seed(config.ph_seed)
        self.epoch = 0
        self.log: List[Dict[str, float]] = []
        self.best = {"metric": math.inf, "epoch": -1, "state": self._network_state()}
        self.elapsed = 0.0
        self._batches: Optional[List[_Batch]] = None
        self._batch_order: Optional[Tensor] = None
        self._owns_output = False

    # ------------------------------------------------------------ set-up
    def _select_and_split(self):
        c, ts = self.config, self.ts
        per_atom = (ts.cohesive / ts.n_atoms).numpy()
        keep = np.ones(ts.n_structures, dtype=bool)
        if c.max_energy is not None:
            keep &= per_atom <= c.max_energy
        kept = np.flatnonzero(keep)
        if kept.size == 0:
            raise AenetError(f"MAXENERGY {c.max_energy} eV/atom leaves no structure (lowest: "
                             f"{per_atom.min():.4f} eV/atom)")
        perm = np.random.default_rng(c.np_seed).permutation(kept)
        n_test = int(round(kept.size * c.test_percent / 100.0))
        self.test_idx = np.sort(perm[:n_test])
        self.train_idx = np.sort(perm[n_test:])
        if self.train_idx.size == 0:
            raise AenetError("TESTPERCENT leaves no training structure")
        force = ts.force_train.numpy().copy() if c.forces else np.zeros(ts.n_structures, dtype=bool)
        if c.max_forces is not None and force.any():
            fmax = torch.zeros(ts.n_structures, dtype=torch.float64).index_reduce_(
                0, ts.structure, torch.nan_to_num(ts.forces.abs().amax(1)), "amax").numpy()
            force &= fmax <= c.max_forces
        self.force_structures = force
        self.excluded = np.flatnonzero(~keep)

    def _normalisation(self):
        ts = self.ts
        idx = np.concatenate([self.train_idx, self.test_idx])
        per_atom = (ts.cohesive / ts.n_atoms).numpy()[idx]
        e_min, e_max = float(per_atom.min()), float(per_atom.max())
        if e_max - e_min < 1e-8:
            self.scale, self.shift = 1.0, e_min
        else:
            self.scale, self.shift = 2.0 / (e_max - e_min), 0.5 * (e_max + e_min)
        self.energy_range = (e_min, e_max, float(per_atom.mean()))

    def _build_model(self):
        c, ts = self.config, self.ts
        templates = {}
        kept_atoms = int(ts.n_atoms[np.concatenate([self.train_idx, self.test_idx])].sum())
        for k, e in enumerate(ts.elements):
            st = ts.stats[e]
            nn = new_nn_file(ts.setups[e], c.networks[e], ts.e_atom, scale=self.scale, shift=self.shift,
                             feature_avg=st["avg"], feature_cov=st["cov"], seed=c.ph_seed * 1000 + k)
            templates[e] = replace(
                nn, neval=st["neval"], sfval_min=st["min"], sfval_max=st["max"],
                trainset_file="aenet-torch-trainingset", natoms_tot=kept_atoms,
                nstrucs=int(self.train_idx.size + self.test_idx.size),
                e_min=self.energy_range[0], e_max=self.energy_range[1], e_av=self.energy_range[2],
            )
        self.templates = templates
        self.model = build_model(templates, angular=ts.angular, warn=False)
        self.networks = list(self.model.networks)

    def _to_device(self):
        ts, dev, dt = self.ts, self.device, self.dtype
        self.model.to(device=dev, dtype=dt)
        self.features = [f.to(device=dev, dtype=dt) for f in ts.features]
        self.species = ts.species.to(dev)
        self.atom_row = ts.atom_row.to(dev)
        self.atom_start = ts.atom_start.to(dev)
        self.n_atoms = ts.n_atoms.to(dev)
        self.target = ((ts.cohesive - ts.n_atoms * self.shift) * self.scale).to(device=dev, dtype=dt)
        self.forces_norm = (ts.forces * self.scale).to(device=dev, dtype=dt)
        self.force_mask = torch.from_numpy(self.force_structures).to(dev)
        self.force_data = []
        for d in ts.force_data:
            self.force_data.append({k: (v.to(device=dev, dtype=dt if v.is_floating_point() else None)
                                        if v is not None else None) for k, v in d.items()})
        n = int(ts.species.numel())
        self._local = torch.zeros(n, dtype=torch.int64, device=dev)  # global -> batch atom
        self._row = torch.zeros(n, dtype=torch.int64, device=dev)  # global -> row in the batch's setup table

    def _make_optimizer(self):
        c = self.config
        params = [p for net in self.networks for p in net.parameters()]
        if c.method == "adamw":
            return torch.optim.AdamW(params, lr=c.lr, betas=c.betas, eps=c.eps, weight_decay=c.regularization)
        if c.method == "adam":
            return torch.optim.Adam(params, lr=c.lr, betas=c.betas, eps=c.eps, weight_decay=c.regularization)
        return torch.optim.SGD(params, lr=c.lr, momentum=c.momentum, weight_decay=c.regularization)

    def _network_state(self):
        return {k: v.detach().clone() for k, v in self.model.networks.state_dict().items()}

    # ------------------------------------------------------------ batches
    def _batch(self, structures: Tensor, with_forces: bool) -> _Batch:
        dev = self.device
        counts = self.n_atoms[structures]
        atoms = _ranges(self.atom_start[structures], counts)
        n = atoms.numel()
        self._local[atoms] = torch.arange(n, device=dev)
        species = self.species[atoms]
        element_atoms, element_features = [], []
        for s in range(len(self.networks)):
            local = (species == s).nonzero().squeeze(1)
            element_atoms.append(local)
            element_features.append(self.features[s][self.atom_row[atoms[local]]])
        # rows of the atoms in their setup's table (the setup's elements' rows stacked)
        for group in self.ts.setup_elements:
            offset = 0
            for s in group:
                glob = atoms[element_atoms[s]]
                self._row[glob] = torch.arange(offset, offset + glob.numel(), device=dev)
                offset += glob.numel()
        atom_structure = torch.repeat_interleave(torch.arange(structures.numel(), device=dev), counts,
                                                 output_size=n)
        jacobians, pair_atoms = [], []
        fstruct = structures[self.force_mask[structures]] if with_forces else structures[:0]
        force_atoms = self._local[_ranges(self.atom_start[fstruct], self.n_atoms[fstruct])]
        for d in self.force_data:
            if fstruct.numel() == 0:
                jacobians.append(None)
                pair_atoms.append(None)
                continue
            rp = _ranges(d["rad_offsets"][fstruct], d["rad_offsets"][fstruct + 1] - d["rad_offsets"][fstruct])
            ap = _ranges(d["ang_offsets"][fstruct], d["ang_offsets"][fstruct + 1] - d["ang_offsets"][fstruct])
            rc, ac = d["rad_center"][rp], d["ang_center"][ap]
            jacobians.append(DescriptorJacobian(
                radial_pairs=rp, radial_center=self._row[rc], radial_species=d["rad_species"][rp],
                radial_unit=d["rad_unit"][rp], radial_dbasis=d["rad_dbasis"][rp], type_weights=d["type_weights"],
                angular_pairs=ap, angular_center=self._row[ac], angular=d["ang"][ap],
            ))
            # batch atoms of the centres and neighbours: radial pairs, then angular pairs
            pair_atoms.append((self._local[torch.cat([rc, ac])],
                               self._local[torch.cat([d["rad_neighbor"][rp], d["ang_neighbor"][ap]])]))
        return _Batch(
            structures=structures, n_structures=structures.numel(), n_atoms=counts, atom_structure=atom_structure,
            target_energy=self.target[structures], element_atoms=element_atoms,
            element_features=element_features, jacobians=jacobians, pair_atoms=pair_atoms,
            force_atoms=force_atoms, target_forces=self.forces_norm[atoms[force_atoms]],
        )

    def _predict(self, b: _Batch, create_graph: bool):
        """Normalised structure energies (B,) and forces of b.force_atoms (n_f, 3)."""
        need_forces = b.force_atoms.numel() > 0
        n = b.atom_structure.numel()
        y = torch.zeros(n, dtype=self.dtype, device=self.device)
        feats, outs = [], []
        for s, net in enumerate(self.networks):
            f = b.element_features[s]
            if need_forces:
                f = f.detach().requires_grad_(True)
            out = net.normalized(f)
            y = y.index_copy(0, b.element_atoms[s], out)
            feats.append(f)
            outs.append(out)
        energy = torch.zeros(b.n_structures, dtype=self.dtype, device=self.device).index_add(0, b.atom_structure, y)
        if not need_forces:
            return energy, None
        with torch.enable_grad():
            total = sum(o.sum() for o in outs)
            grads = torch.autograd.grad(total, feats, create_graph=create_graph, allow_unused=True)
        grads = [torch.zeros_like(f) if u is None else u for f, u in zip(feats, grads)]
        forces = torch.zeros(n, 3, dtype=self.dtype, device=self.device)
        for g, group in enumerate(self.ts.setup_elements):
            jac = b.jacobians[g]
            if jac is None:
                continue
            u = grads[group[0]] if len(group) == 1 else torch.cat([grads[s] for s in group])
            dv = torch.cat(jac.pair_gradients(u))
            centers, neighbors = b.pair_atoms[g]
            # F_i = sum_{pairs centred on i} dE/dv - sum_{pairs with neighbour i} dE/dv
            forces = forces.index_add(0, centers, dv).index_add(0, neighbors, -dv)  # (alpha=-1 is a slow path)
        return energy, forces[b.force_atoms]

    def _errors(self, b: _Batch, energy: Tensor, forces: Optional[Tensor]):
        de = (energy - b.target_energy) / b.n_atoms
        df = None if forces is None else forces - b.target_forces
        return de, df

    def _loss(self, de: Tensor, df: Optional[Tensor]) -> Tensor:
        a = self.config.alpha
        loss = (1.0 - a) * torch.sqrt(torch.mean(de * de))
        if df is not None and df.numel() > 0 and a > 0:
            loss = loss + a * torch.sqrt((df * df).sum() / df.shape[0])
        return loss

    # ------------------------------------------------------------ epochs
    def _lr(self, epoch: int) -> float:
        c = self.config
        if c.lr_final is None or c.epochs <= 1:
            return c.lr
        return c.lr * (c.lr_final / c.lr) ** (min(epoch, c.epochs - 1) / (c.epochs - 1))

    def _compose_batches(self, order: Tensor):
        """Batches of the training structures in `order` (gathers done once)."""
        self._batch_order = order
        structures = torch.from_numpy(self.train_idx)[order].to(self.device)
        bs = self.config.batch_size
        self._batches = [self._batch(structures[k : k + bs], self.config.forces)
                         for k in range(0, structures.numel(), bs)]

    def _train_epoch(self) -> Dict[str, float]:
        lr = self._lr(self.epoch)
        for g in self.optimizer.param_groups:
            g["lr"] = lr
        # new batch compositions every `reshuffle_every` epochs (composing them
        # costs about as much as an epoch's arithmetic); new order every epoch
        if self.epoch % self.config.reshuffle_every == 0 or self._batches is None:
            self._compose_batches(torch.randperm(self.train_idx.size, generator=self.generator))
        acc = _Accumulator(self.scale)
        for k in torch.randperm(len(self._batches), generator=self.generator).tolist():
            b = self._batches[k]
            energy, forces = self._predict(b, create_graph=True)
            de, df = self._errors(b, energy, forces)
            loss = self._loss(de, df)
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()
            acc.add(de.detach(), None if df is None else df.detach())
        return {"lr": lr, **acc.result("train", self.config.alpha)}

    def evaluate(self, indices: Sequence[int], chunk: int = 512, details: bool = False):
        """Errors of the current networks on structures `indices` (eV/atom, eV/A).

        details: also return per-structure energies and per-atom forces."""
        acc = _Accumulator(self.scale)
        rows, force_rows = [], []
        idx = torch.as_tensor(np.asarray(indices, dtype=np.int64), device=self.device)
        for start in range(0, idx.numel(), chunk):
            b = self._batch(idx[start : start + chunk], self.config.forces)
            energy, forces = self._predict(b, create_graph=False)
            de, df = self._errors(b, energy.detach(), None if forces is None else forces.detach())
            acc.add(de, df)
            if details:
                rows.append((idx[start : start + chunk].cpu(), energy.detach().cpu()))
                if forces is not None:
                    force_rows.append((b, forces.detach().cpu()))
        if details:
            return acc, rows, force_rows
        return acc

    # ------------------------------------------------------------ run
    def train(self, *, resume: bool = False, overwrite: bool = False, progress: bool = True,
              max_epochs: Optional[int] = None):
        """Train to `config.epochs` (or `max_epochs` more in this call).

        Writes the `.nn` files of the best-on-test networks, train_log.csv,
        rmse.png, split.json, summary.json and a checkpoint into `out`;
        Ctrl-C finishes the current epoch, writes the checkpoint and the
        `.nn` files, then raises KeyboardInterrupt. Returns the summary dict.
        A folder holding an earlier training is refused unless `overwrite`
        (its files are removed first) or `resume`.
        """
        from tqdm import tqdm

        self._prepare_output(resume, overwrite)
        if resume:
            self.load_checkpoint(self.out / CHECKPOINT)
        else:
            self._write_split()
        stop = {"flag": False}

        def handler(signum, frame):
            stop["flag"] = True

        try:
            old = signal.signal(signal.SIGINT, handler)
        except ValueError:  # not the main thread: no Ctrl-C handling
            old = None
        c = self.config
        last = c.epochs if max_epochs is None else min(c.epochs, self.epoch + max_epochs)
        bar = tqdm(total=c.epochs, initial=self.epoch, desc="training", unit="epoch", disable=not progress)
        try:
            if self.epoch == 0 and not self.log:
                self._log_row(self.evaluate(self.train_idx).result("train", c.alpha), 0.0)
            while self.epoch < last:
                t0 = time.perf_counter()
                with adaptive_threads():  # fewer threads while other processes hold cores
                    train_metrics = self._train_epoch()
                self.epoch += 1
                self.elapsed += time.perf_counter() - t0
                if self.epoch % c.iter_write == 0 or self.epoch == c.epochs:
                    row = self._log_row(train_metrics, train_metrics["lr"])
                    bar.set_postfix(E_test=f"{row['energy_rmse_test'] * 1000:.2f} meV/atom",
                                    F_test=f"{row['force_rmse_test']:.3f} eV/A")
                bar.update(1)
                if self.epoch % c.checkpoint_every == 0:
                    self.save_checkpoint()
                if stop["flag"]:
                    self.save_checkpoint()
                    self.write_outputs(final=False)
                    raise KeyboardInterrupt
            bar.close()
            self.save_checkpoint()
            return self.write_outputs(final=self.epoch >= c.epochs)
        finally:
            bar.close()
            if old is not None:
                signal.signal(signal.SIGINT, old)

    def _log_row(self, train_metrics: Dict[str, float], lr: float) -> Dict[str, float]:
        c = self.config
        test = self.evaluate(self.test_idx).result("test", c.alpha) if self.test_idx.size else {
            k: float("nan") for k in ("loss_test", "energy_rmse_test", "energy_mae_test",
                                      "force_rmse_test", "force_mae_test")}
        row = {"epoch": self.epoch, "time_s": self.elapsed, "lr": lr}
        row.update({k: v for k, v in train_metrics.items() if k != "lr"})
        row.update(test)
        self.log.append(row)
        metric = test["loss_test"] if self.test_idx.size else train_metrics["loss_train"]
        if metric < self.best["metric"]:
            self.best = {"metric": metric, "epoch": self.epoch, "state": self._network_state()}
        self._write_log()
        return row

    # ------------------------------------------------------------ files
    def _write_split(self):
        names = self.ts.names
        data = {"np_seed": self.config.np_seed, "test_percent": self.config.test_percent,
                "train": [int(i) for i in self.train_idx], "test": [int(i) for i in self.test_idx],
                "excluded_by_max_energy": [int(i) for i in self.excluded],
                "force_training": [int(i) for i in np.flatnonzero(self.force_structures)],
                "train_names": [names[i] for i in self.train_idx], "test_names": [names[i] for i in self.test_idx]}
        atomic_write_text(str(self.out / "split.json"), json.dumps(data, indent=1) + "\n")

    def _write_log(self):
        lines = [",".join(LOG_COLUMNS)]
        for row in self.log:
            lines.append(",".join(f"{row.get(k, float('nan')):.10g}" for k in LOG_COLUMNS))
        atomic_write_text(str(self.out / "train_log.csv"), "\n".join(lines) + "\n")

    def nn_files(self, best: bool = True) -> Dict[str, NNFile]:
        """`.nn` contents of the best-on-test (or the current) networks."""
        if not best:
            return model_to_nn_files(self.model, self.templates)
        current = self._network_state()
        self.model.networks.load_state_dict(self.best["state"])
        try:
            return model_to_nn_files(self.model, self.templates)
        finally:
            self.model.networks.load_state_dict(current)

    def nn_paths(self) -> Dict[str, Path]:
        """Where the networks go: NETWORKS file names resolved in the output
        folder (absolute names as given), default `<out>/<element>.nn`."""
        return {e: self.out / self.config.files.get(e, f"{e}.nn") for e in self.ts.elements}

    def run_files(self) -> List[str]:
        """Names (relative to `out`) of the files a training writes, and the
        network files wherever they go."""
        names = [CHECKPOINT, "train_log.csv", "rmse.png", "split.json", "summary.json",
                 "energies.train", "energies.test", "forces.train", "forces.test"]
        for p in self.nn_paths().values():
            names += [str(p), str(p) + ".ascii"]
        return names

    def _prepare_output(self, resume: bool, overwrite: bool) -> None:
        """Refuse to overwrite an earlier training, and check every output
        location is writable before the first epoch."""
        if self._owns_output and not resume:
            return  # a further train() call of this trainer continues its own run
        prepare_run_dir(self.out, self.run_files(), overwrite=overwrite, resume=resume, what="training")
        for p in self.nn_paths().values():
            check_writable(p.parent, "folder of the network files (NETWORKS)")
        self._owns_output = True

    def export(self, best: bool = True) -> Dict[str, Path]:
        """Write `<file>.nn` (binary, for predict.x/LAMMPS) and `<file>.nn.ascii`
        (aenet-PyTorch layout) per element. Returns the binary paths."""
        paths = self.nn_paths()
        for e, nn in self.nn_files(best).items():
            write_nn(nn, paths[e])
            write_nn_ascii(nn, str(paths[e]) + ".ascii")
        return paths

    def calculator(self, best: bool = True, **kwargs):
        """An `AenetTorch` calculator of the best (or current) networks."""
        from ..calculator import AenetTorch

        return AenetTorch(self.nn_files(best), angular=self.ts.angular, **kwargs)

    def write_outputs(self, final: bool = True) -> Dict[str, object]:
        paths = self.export(best=True)
        self.plot()
        c = self.config
        current = self._network_state()
        self.model.networks.load_state_dict(self.best["state"])
        try:
            train = self.evaluate(self.train_idx, details=c.save_energies or c.save_forces)
            test = self.evaluate(self.test_idx, details=c.save_energies or c.save_forces) \
                if self.test_idx.size else None
            if c.save_energies or c.save_forces:
                for name, res in (("train", train), ("test", test)):
                    if res is None:
                        continue
                    if c.save_energies:
                        self._write_energies(self.out / f"energies.{name}", res[1])
                    if c.save_forces:
                        self._write_forces(self.out / f"forces.{name}", res[2])
                train, test = train[0], (test[0] if test is not None else None)
        finally:
            self.model.networks.load_state_dict(current)
        summary = {
            "status": "finished" if final else "interrupted",
            "epochs": self.epoch, "best_epoch": self.best["epoch"], "training_time_s": self.elapsed,
            "structures": {"train": int(self.train_idx.size), "test": int(self.test_idx.size),
                           "force_training": int(self.force_structures.sum()),
                           "excluded_by_max_energy": int(self.excluded.size)},
            "normalisation": {"scale_per_eV": self.scale, "shift_eV_per_atom": self.shift},
            "best_train": train.result("train", c.alpha),
            "best_test": test.result("test", c.alpha) if test is not None else None,
            "error_definitions": "energy: per-atom RMSE/MAE in eV/atom; force RMSE over per-atom "
                                 "force vectors (aenet-PyTorch's, = sqrt(3) x per-component RMSE) "
                                 "and MAE of |dF| per atom, eV/A",
            "files": {e: str(p) for e, p in paths.items()},
            "config": {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(c).items()},
        }
        atomic_write_text(str(self.out / "summary.json"), json.dumps(summary, indent=2, default=str) + "\n")
        return summary

    def _write_energies(self, path: Path, rows):
        """aenet-PyTorch's energies.train/test columns (cohesive energies, eV)."""
        lines = ["# N_atoms  E_ref(eV)  E_ann(eV)  E_ref/N  E_ann/N  structure   (cohesive: E_atom removed)"]
        for idx, energy in rows:
            for i, e in zip(idx.tolist(), energy.tolist()):
                n = int(self.ts.n_atoms[i])
                e_ref = float(self.ts.cohesive[i])
                e_ann = e / self.scale + self.shift * n
                lines.append(f"{n:12d}    {e_ref: 14.6f}  {e_ann: 14.6f}  {e_ref / n: 12.6f}  {e_ann / n: 12.6f}"
                             f"      {self.ts.names[i]}")
        atomic_write_text(str(path), "\n".join(lines) + "\n")

    def _write_forces(self, path: Path, force_rows):
        """aenet-PyTorch's forces.train/test: per structure '# N |dF|/N name', then
        per atom: index, |dF|, F_ref (3), F_ann (3) in eV/A."""
        lines = []
        for b, forces in force_rows:
            ref = (b.target_forces / self.scale).cpu()
            ann = forces / self.scale
            owner = b.atom_structure[b.force_atoms].cpu()
            for s in torch.unique_consecutive(owner).tolist():
                sel = (owner == s).nonzero().squeeze(1)
                diff = ann[sel] - ref[sel]
                name = self.ts.names[int(b.structures[s])]
                lines.append(f"# {sel.numel():12d}  {float(diff.norm() / sel.numel()): 12.6f}   {name}")
                for k, i in enumerate(sel.tolist()):
                    d = float((ann[i] - ref[i]).norm())
                    lines.append(f"{k:4d}   {d: 12.6f}   " + " ".join(f"{x: 12.6f}" for x in ref[i].tolist())
                                 + "   " + " ".join(f"{x: 12.6f}" for x in ann[i].tolist()))
        atomic_write_text(str(path), "\n".join(lines) + "\n")

    def plot(self, path=None):
        """RMSE vs epoch (energy and force panels, train and test), as the seed's Fig. 2."""
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        from ..analysis.pictures import save_png

        if not self.log:
            return None
        ep = np.array([r["epoch"] for r in self.log])
        panels = [("energy_rmse", "energy RMSE (meV/atom)", 1000.0)]
        if self.config.forces:
            panels.append(("force_rmse", "force RMSE (eV/Å)", 1.0))
        fig, axes = plt.subplots(1, len(panels), figsize=(5.2 * len(panels), 3.8), squeeze=False)
        for ax, (key, label, factor) in zip(axes[0], panels):
            for split, style in (("train", "-"), ("test", "--")):
                y = np.array([r.get(f"{key}_{split}", np.nan) for r in self.log]) * factor
                if np.isfinite(y).any():
                    ax.plot(ep, y, style, label=split)
            ax.set_yscale("log")
            ax.set_xlabel("epoch")
            ax.set_ylabel(label)
            if self.best["epoch"] >= 0:
                ax.axvline(self.best["epoch"], color="0.6", lw=0.8, ls=":", label="best (test)")
            ax.legend()
        fig.tight_layout()
        return save_png(fig, path or self.out / "rmse.png")

    # ------------------------------------------------------------ checkpoints
    def save_checkpoint(self, path=None):
        state = {
            "epoch": self.epoch, "elapsed": self.elapsed, "log": self.log,
            "networks": self._network_state(), "optimizer": self.optimizer.state_dict(),
            "generator": self.generator.get_state(), "best": self.best, "batch_order": self._batch_order,
            "config": {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(self.config).items()},
            "train_idx": torch.from_numpy(self.train_idx), "test_idx": torch.from_numpy(self.test_idx),
            "training_set": self.ts.fingerprint(),
        }
        buf = io.BytesIO()
        torch.save(state, buf)
        atomic_write_bytes(str(path or self.out / CHECKPOINT), buf.getvalue())

    def load_checkpoint(self, path):
        path = Path(path)
        if not path.is_file():
            raise InputFileError(f"no checkpoint {path} to resume from: start without --resume")
        try:
            # data, never code: weights_only refuses anything but tensors and plain containers
            state = torch.load(path, map_location=self.device, weights_only=True)
        except Exception as err:  # UnpicklingError for foreign objects, others for damaged files
            first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            raise InputFileError(
                f"{path} is not a checkpoint of this package, or it is damaged: it was refused without "
                f"running anything ({type(err).__name__}: {first[:200]}). Start without --resume "
                f"(with --overwrite) or restore the checkpoint") from None
        if not isinstance(state, dict) or "config" not in state or "networks" not in state:
            raise InputFileError(f"{path} is not a checkpoint written by aenet-torch train")
        theirs_ts, ours_ts = state.get("training_set"), self.ts.fingerprint()
        if theirs_ts is not None and theirs_ts != ours_ts:
            raise InputFileError(f"{path}: the checkpoint was trained on another training set (fingerprint "
                                 f"{theirs_ts[:12]}..., now {ours_ts[:12]}...): resume with the same TRAININGSET "
                                 f"or start a new training")
        same = ("networks", "batch_size", "np_seed", "ph_seed", "test_percent", "forces", "method", "dtype")
        mine = asdict(self.config)
        for k in same:
            theirs, ours = state["config"][k], mine[k]
            if k == "networks":
                theirs = {e: [tuple(x) for x in v] for e, v in theirs.items()}
                ours = {e: [tuple(x) for x in v] for e, v in ours.items()}
            if theirs != ours:
                raise InputFileError(f"{path}: the checkpoint was made with {k} = {theirs}, now {ours}; "
                                     f"resume with the same settings (or start a new run)")
        if not (np.array_equal(state["train_idx"].numpy(), self.train_idx)
                and np.array_equal(state["test_idx"].numpy(), self.test_idx)):
            raise InputFileError(f"{path}: the train/test split differs (another training set?)")
        self.model.networks.load_state_dict(state["networks"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.generator.set_state(state["generator"])
        if state["batch_order"] is not None:
            self._compose_batches(state["batch_order"].cpu())
        self.best = state["best"]
        self.epoch, self.elapsed, self.log = state["epoch"], state["elapsed"], state["log"]


class _Accumulator:
    """Running sums for energy (per atom) and force (per-atom vector) errors."""

    def __init__(self, scale: float):
        self.scale = scale
        self.se = self.ae = 0.0
        self.n_e = 0
        self.sf = self.af = 0.0
        self.n_f = 0

    def add(self, de: Tensor, df: Optional[Tensor]):
        self.se += float((de * de).sum())
        self.ae += float(de.abs().sum())
        self.n_e += de.numel()
        if df is not None and df.numel():
            self.sf += float((df * df).sum())
            self.af += float(df.norm(dim=1).sum())
            self.n_f += df.shape[0]

    def result(self, split: str, alpha: float) -> Dict[str, float]:
        s = self.scale
        e_rmse = math.sqrt(self.se / max(self.n_e, 1)) / s
        f_rmse = math.sqrt(self.sf / self.n_f) / s if self.n_f else float("nan")
        loss = (1 - alpha) * e_rmse * s + (alpha * f_rmse * s if self.n_f else 0.0)
        return {f"loss_{split}": loss, f"energy_rmse_{split}": e_rmse,
                f"energy_mae_{split}": self.ae / max(self.n_e, 1) / s,
                f"force_rmse_{split}": f_rmse, f"force_mae_{split}": self.af / self.n_f / s if self.n_f else float("nan")}
