"""Running the mechanical-test protocol in ASE, restartably.

    run(atoms, calc, Protocol(mode="tensile", axis="y"), "RUN_DIR")

Stages: `minimize` (CG, fixed cell) -> `relax` (Nose-Hoover chain NVT) ->
`load`:
- tensile / compress: the box length along the axis follows
  L(t) = L0 (1 + rate t) exactly (like LAMMPS `fix deform ... erate`,
  positions remapped affinely, velocities unchanged) while the two lateral
  axes are held at the target pressure by an MTK barostat (`md.barostat`,
  ASE's MaskedMTKNPT algorithm, thermostat on), or kept fixed (NVT) with
  lateral="fixed";
- pull (particles, stacks; non-periodic): two grips, the atoms in the
  lowest `fixed_fraction` and the highest `pulled_fraction` of the extent
  along the axis, are rigid (held by FixAtoms, not thermostatted, not
  counted in the temperature); the low grip stays, the high one moves
  along the axis at rate x L0, L0 = the gap between the grips (the gauge
  length). The atoms between them are free (Nose-Hoover chain NVT).
  Strain = grip displacement / L0; stress (engineering, tension positive)
  = the force with which the moving grip pulls (minus the sum of the
  forces on its atoms) / the initial cross-section at the middle of the
  gap (`stress.cross_section`). Same as LAMMPS `fix move` of one group
  with another held and `compute reduce sum f<axis>` over the moving one;
- nvt: Nose-Hoover NVT for `time`.

Output in RUN_DIR: `run.json` (every setting, package version, status),
`stress_strain.csv` (one row every `record_every` steps), `trajectory.extxyz`
(frames every `frame_every` steps, per-atom stress in GPa for periodic
cells), `checkpoint.npz` (every `checkpoint_every` steps and on Ctrl-C),
`final.extxyz`. `resume=True` continues from the checkpoint; the
continuation is identical to an uninterrupted run.
"""

from __future__ import annotations

import json
import signal
import time
import warnings
from pathlib import Path

import numpy as np
from ase import units
from ase.constraints import FixAtoms

from .. import __version__
from ..errors import AenetError, InputFileError, ProtocolError, StructureError
from ..io.atomic_write import append_text, atomic_write_bytes, atomic_write_text
from ..io.records import frame_text, read_csv_rows, read_frames, rewrite_frames
from ..io.run_dirs import prepare_run_dir
from ..io.structure_files import write_structure
from .protocol import Protocol
from .stress import GPA, atomic_stress_gpa, global_stress_gpa

STAGES = ("minimize", "relax", "load")
CSV_COLUMNS = [
    "stage", "step", "time_ps", "strain",
    "sxx_GPa", "syy_GPa", "szz_GPa", "syz_GPa", "sxz_GPa", "sxy_GPa",
    "temperature_K", "pxx_bar", "pyy_bar", "pzz_bar", "lx_A", "ly_A", "lz_A", "volume_A3",
    "epot_eV", "ekin_eV", "pull_force_nN", "pull_stress_GPa",
]
EV_PER_A_IN_NN = 1.602176634  # 1 eV/A in nN


def minimize(atoms, *, fmax: float = 0.01, method: str = "cg", relax_cell: bool = False,
             steps: int = 2000, logfile=None) -> bool:
    """Energy minimisation, fmax in eV/A. method 'cg' (SciPy conjugate
    gradients, like LAMMPS min_style cg) or 'fire'. relax_cell also relaxes
    the cell (FrechetCellFilter). Warns and returns False when not converged."""
    from ase.optimize import FIRE
    from ase.optimize.sciopt import Converged, OptimizerConvergenceError, SciPyFminCG

    target = atoms
    if relax_cell:
        from ase.filters import FrechetCellFilter

        target = FrechetCellFilter(atoms)
    if method == "cg":
        opt = SciPyFminCG(target, logfile=logfile)
        try:
            opt.run(fmax=fmax, steps=steps)
        except (Converged, OptimizerConvergenceError):
            pass
    elif method == "fire":
        FIRE(target, logfile=logfile).run(fmax=fmax, steps=steps)
    else:
        raise ValueError(f"minimize: method must be 'cg' or 'fire', not {method!r}")
    f = target.get_forces()
    largest = float(np.sqrt((f**2).sum(1)).max()) if len(f) else 0.0
    if largest > fmax:
        warnings.warn(
            f"minimisation did not converge: largest force {largest:.4f} eV/A > fmax {fmax} eV/A "
            f"after at most {steps} steps; raise steps= or try method='fire'",
            stacklevel=2,
        )
        return False
    return True


def _check_loading_box(atoms, axis: int):
    cell = atoms.cell.array
    length = np.linalg.norm(cell[axis])
    off = [k for k in range(3) if k != axis]
    if np.abs(cell[axis, off]).max() > 1e-8 * length or np.abs(cell[off, axis]).max() > 1e-8 * length:
        raise ValueError(
            f"uniaxial loading along {'xyz'[axis]} needs a cell vector along that axis that is normal "
            f"to the other two (as LAMMPS fix deform on an orthogonal box); got cell {cell.tolist()}"
        )


class _Dynamics:
    """One stage's integrator, with the extra work done after every step
    (box deformation, moving grip) and its exact state for checkpoints.

    NVT stages use the package's Nose-Hoover chain (`md.thermostat`: the
    grips of a pull test are not integrated and not counted as degrees of
    freedom); the barostatted tensile load, the package's MTK integrator
    (`md.barostat`, equal to ASE's MaskedMTKNPT). Both call `_apply_load`
    after the drift, before the force evaluation, so a step costs one
    energy/force/stress call."""

    def __init__(self, atoms, protocol: Protocol, stage: str, reference: dict):
        from .barostat import MaskedMTK
        from .thermostat import NoseHooverChainNVT

        p = protocol
        self.atoms, self.p, self.stage, self.ref = atoms, p, stage, reference
        self.axis = p.axis_index
        dt = p.timestep * units.fs
        self.barostat = stage == "load" and p.mode in ("tensile", "compress") and p.lateral == "npt"
        self._step = 0
        after_drift = lambda q: self._apply_load(self._step, q)  # noqa: E731
        if self.barostat:
            mask = np.array([k != self.axis for k in range(3)])
            self.dyn = MaskedMTK(atoms, dt, p.temperature, p.pressure * 1e-4 * GPA, p.tdamp * units.fs,
                                 p.pdamp * units.fs, mask, after_drift=after_drift)
        else:
            self.dyn = NoseHooverChainNVT(atoms, dt, p.temperature, p.tdamp * units.fs, after_drift=after_drift)

    def _apply_load(self, step: int, q: np.ndarray):
        p = self.p
        if self.stage != "load":
            return
        if p.mode in ("tensile", "compress"):
            target = self.ref["L0"] * (1.0 + p.rate_per_fs * p.timestep * step)
            if self.barostat:
                h = self.dyn.h
                factor = target / h[self.axis, self.axis]
                h[:, self.axis] *= factor
            else:
                cell = self.atoms.cell.array.copy()
                factor = target / cell[self.axis, self.axis]
                cell[:, self.axis] *= factor
                self.atoms.set_cell(cell, scale_atoms=False)
            q[:, self.axis] *= factor  # affine remap of the positions
        elif p.mode == "pull":
            # the pulled grip moves rigidly: its centre of mass at com0 + speed t exactly
            pulled = self.ref["pulled"]
            m = self.atoms.get_masses()[pulled]
            com = m @ q[pulled, self.axis] / m.sum()
            q[pulled, self.axis] += self.ref["com0"] + self.ref["speed"] * p.timestep * units.fs * step - com

    def step(self, step: int):
        self._step = step
        self.dyn.step()

    # -- exact state (the keys of checkpoints written before the own NVT integrator)
    def state(self) -> dict:
        d = self.dyn
        if self.barostat:
            out = {"q": d.q, "p": d.p, "eta": d.thermostat.eta, "p_eta": d.thermostat.p_eta,
                   "h": d.h, "p_c": d.p_c, "xi": d.barostat.eta, "p_xi": d.barostat.p_eta}
        else:
            out = {"q": d.q, "p": d.p, "eta": d.eta, "p_eta": d.p_eta}
        out["cell"] = self.atoms.cell.array
        return {k: np.array(v, copy=True) for k, v in out.items()}

    def restore(self, s: dict):
        d = self.dyn
        self.atoms.set_cell(s["cell"], scale_atoms=False)
        if self.barostat:
            d.q, d.p = s["q"].copy(), s["p"].copy()
            d.thermostat.eta, d.thermostat.p_eta = s["eta"].copy(), s["p_eta"].copy()
            d.h, d.p_c = s["h"].copy(), s["p_c"].copy()
            d.barostat.eta, d.barostat.p_eta = s["xi"].copy(), s["p_xi"].copy()
            d._forces = d._stress = None
        else:
            d.q, d.p, d.eta, d.p_eta = s["q"].copy(), s["p"].copy(), s["eta"].copy(), s["p_eta"].copy()
        d._update_atoms()


def _grips(ref: dict) -> FixAtoms:
    """Both grips of a pull test held by FixAtoms: the integrator leaves them
    out; the moving one is moved by prescription (`_Dynamics._apply_load`)."""
    return FixAtoms(indices=np.concatenate([np.asarray(ref["fixed"]), np.asarray(ref["pulled"])]))


def _pull_setup(atoms, p: Protocol) -> dict:
    """The grips (atom indices), gauge length L0 (A, the gap between the
    grips), the grip speed (A per ASE time unit), the cross-section (A^2,
    `stress.cross_section`) at the middle of the gap, and the pulled grip's
    centre of mass (A)."""
    from .stress import cross_section

    axis = p.axis_index
    x = atoms.positions[:, axis]
    lo, hi = x.min(), x.max()
    fixed = np.flatnonzero(x < lo + p.fixed_fraction * (hi - lo))
    pulled = np.flatnonzero(x > hi - p.pulled_fraction * (hi - lo))
    free = len(atoms) - len(fixed) - len(pulled)
    if len(fixed) == 0 or len(pulled) == 0 or free == 0:
        raise StructureError(f"pull along {p.axis}: the grips hold {len(fixed)} and {len(pulled)} atoms and "
                             f"{free} are free; each needs atoms: check the axis, fixed_fraction and pulled_fraction")
    gauge = float(x[pulled].min() - x[fixed].max())
    area = cross_section(atoms, axis, 0.5 * (x[pulled].min() + x[fixed].max()))
    masses = atoms.get_masses()
    com0 = float(masses[pulled] @ x[pulled] / masses[pulled].sum())
    # speed: (1/fs) * A = A/fs, divided by units.fs for ASE's time unit
    return {"fixed": fixed, "pulled": pulled, "L0": gauge, "speed": p.rate_per_fs * gauge / units.fs,
            "area": area, "com0": com0}


class _Recorder:
    def __init__(self, out: Path, protocol: Protocol):
        self.out, self.p = out, protocol
        self.csv_path = out / "stress_strain.csv"
        self.traj_path = out / "trajectory.extxyz"

    def truncate_after(self, stage: str, step: int):
        """Drop rows and frames written after the checkpoint (resume), and a
        torn last row or frame (a crash or full disk while writing it)."""
        order = STAGES.index(stage)

        def keep(st, sp):
            return STAGES.index(st) < order or (st == stage and int(sp) <= step)

        if self.csv_path.exists():
            header, rows = read_csv_rows(self.csv_path)
            kept = [header] + [r for r in rows if keep(r[0], r[1])] if header else []
            atomic_write_text(str(self.csv_path), "".join(",".join(r) + "\n" for r in kept))
        if self.traj_path.exists():
            frames = [a for a in read_frames(self.traj_path) if keep(a.info["stage"], a.info["step"])]
            if frames:
                rewrite_frames(self.traj_path, frames)
            else:
                self.traj_path.unlink()

    def row(self, atoms, stage, step, strain, force_nN=float("nan"), pull_stress=float("nan")):
        new = not self.csv_path.exists()
        s = global_stress_gpa(atoms) if atoms.cell.rank == 3 else np.full((3, 3), np.nan)
        lengths = atoms.cell.lengths()
        volume = atoms.get_volume() if atoms.cell.rank == 3 else float("nan")
        values = [stage, step, step * self.p.timestep / 1000.0, strain,
                  s[0, 0], s[1, 1], s[2, 2], s[1, 2], s[0, 2], s[0, 1],
                  atoms.get_temperature(), -s[0, 0] * 1e4, -s[1, 1] * 1e4, -s[2, 2] * 1e4,
                  lengths[0], lengths[1], lengths[2], volume,
                  atoms.get_potential_energy(), atoms.get_kinetic_energy(), force_nN, pull_stress]
        text = ",".join(v if isinstance(v, str) else repr(float(v)) if isinstance(v, float) else str(v)
                        for v in values) + "\n"
        append_text(self.csv_path, (",".join(CSV_COLUMNS) + "\n" if new else "") + text)

    def frame(self, atoms, stage, step, strain):
        frame = atoms.copy()
        frame.calc = None
        frame.info.update(stage=stage, step=step, strain=strain, time_ps=step * self.p.timestep / 1000.0)
        if atoms.constraints:  # a pull test's grips: which atoms were held (1) or free (0)
            from .thermostat import held_atoms

            frame.arrays["held"] = held_atoms(atoms).astype(int)
        if atoms.pbc.all() and "stresses" in getattr(atoms.calc, "implemented_properties", ()):
            frame.arrays["stress_GPa"] = atomic_stress_gpa(atoms).reshape(len(atoms), 9)
        append_text(self.traj_path, frame_text(frame))


def _write_json(out: Path, data: dict):
    atomic_write_text(str(out / "run.json"), json.dumps(data, indent=2, default=str) + "\n")


def _read_json(out: Path) -> dict:
    try:
        meta = json.loads((out / "run.json").read_text())
        meta["protocol"]
        return meta
    except FileNotFoundError:
        raise InputFileError(f"{out}: no run.json: not a run folder of aenet-torch stretch") from None
    except (ValueError, KeyError, TypeError) as err:
        raise InputFileError(f"{out / 'run.json'} is damaged ({err}): the run cannot be resumed; "
                             f"start it again with --overwrite") from None


def _save_checkpoint(out: Path, stage: str, step: int, dyn_state: dict, ref: dict, atoms):
    import io

    buf = io.BytesIO()
    arrays = {f"dyn_{k}": v for k, v in dyn_state.items()}
    arrays.update({f"ref_{k}": np.asarray(v) for k, v in ref.items()})
    # what identifies the structure, so a resume cannot mix it up with another
    arrays.update(id_numbers=atoms.numbers, id_masses=atoms.get_masses(), id_pbc=atoms.pbc)
    arrays.update(_structure_extras(atoms))
    np.savez(buf, stage=np.array(stage), step=np.array(step), **arrays)
    atomic_write_bytes(str(out / "checkpoint.npz"), buf.getvalue())


#: per-atom arrays the checkpoint holds as the state itself
_STATE_ARRAYS = ("numbers", "positions", "momenta", "masses")


def _structure_extras(atoms) -> dict:
    """What the structure carries besides its state, for a resume without the
    structure file: per-atom arrays of numbers or text (e.g. a stack's
    'particle') as extra_<name>, and the entries of atoms.info that JSON
    can hold as one JSON text (no pickled objects in a checkpoint)."""
    extras = {f"extra_{name}": values for name, values in atoms.arrays.items()
              if name not in _STATE_ARRAYS and values.dtype.kind in "biufU"}
    info = {}
    for key, value in atoms.info.items():
        value = value.tolist() if isinstance(value, (np.ndarray, np.generic)) else value
        try:
            json.dumps(value, allow_nan=True)
        except (TypeError, ValueError):
            continue  # not data JSON can hold: left out
        info[str(key)] = value
    extras["info_json"] = np.array(json.dumps(info))
    return extras


def _restore_extras(atoms, ckpt: dict) -> None:
    """Put back what `_structure_extras` saved (checkpoints of older versions have none)."""
    for key, values in ckpt.items():
        name = key[len("extra_"):]
        if key.startswith("extra_") and name not in _STATE_ARRAYS and np.ndim(values) >= 1 \
                and len(values) == len(atoms):
            atoms.arrays[name] = values.copy()  # never the state: that comes from dyn_q, id_numbers ...
    if "info_json" in ckpt:
        try:
            info = json.loads(str(ckpt["info_json"]))
        except ValueError as err:
            raise InputFileError(f"the checkpoint's structure info is damaged ({err})") from None
        if not isinstance(info, dict):
            raise InputFileError("the checkpoint's structure info is damaged (not a JSON object)")
        atoms.info.update(info)


def _load_checkpoint(out: Path) -> dict:
    path = out / "checkpoint.npz"
    try:
        with np.load(path, allow_pickle=False) as z:
            data = {k: z[k] for k in z.files}
        data["stage"], data["step"] = str(data["stage"]), int(data["step"])
        if data["stage"] not in STAGES:
            raise ValueError(f"unknown stage {data['stage']!r}")
        return data
    except FileNotFoundError:
        raise
    except Exception as err:  # numpy/zipfile raise many kinds for a damaged archive
        raise InputFileError(f"{path} is damaged ({type(err).__name__}: {err}): the run cannot be "
                             f"resumed from it") from None


def potential_fingerprint(calc) -> str:
    """What identifies the potential of `calc`: the sha256 of its `.nn`
    records for AenetTorch, else the calculator's class name."""
    fp = getattr(calc, "fingerprint", None)
    return f"sha256:{fp}" if fp else type(calc).__name__


RUN_FILES = ("run.json", "stress_strain.csv", "trajectory.extxyz", "checkpoint.npz", "final.extxyz", "analysis")


def run(atoms, calc, protocol: Protocol, out, *, resume: bool = False, overwrite: bool = False,
        progress: bool = True, potential_info: str = "", max_steps: int | None = None):
    """Run `protocol` on `atoms` with `calc`, writing into directory `out`.

    A new run refuses a folder that holds an earlier run unless
    `overwrite=True` (its run files are removed first). resume: continue
    from `out/checkpoint.npz`; the protocol comes from `out/run.json`, the
    structure from the checkpoint (`atoms` may be None; if given, it must
    be the same atoms in the same order), and the potential must be the one
    the run started with. max_steps: stop after this many MD steps in this
    call (for tests and for splitting long runs); the run can be resumed.
    Returns the path of the run directory.
    """
    out = Path(out)
    if resume:
        prepare_run_dir(out, RUN_FILES, resume=True)
        atoms, p, meta, ckpt = _resumed_state(out, atoms, calc)
    else:
        if atoms is None:
            raise StructureError("a new run needs a structure (atoms=None is only allowed with resume=True)")
        p = protocol
        _check_structure_for(p, atoms)
        prepare_run_dir(out, RUN_FILES, overwrite=overwrite)
        meta = _new_meta(atoms, calc, p, potential_info)
        ckpt = None
    atoms = atoms.copy()
    atoms.calc = calc
    runner = _Runner(atoms, p, out, meta, progress=progress, max_steps=max_steps)
    return runner.run(ckpt)


def _check_structure_for(p: Protocol, atoms) -> None:
    if len(atoms) == 0:
        raise StructureError("the structure has no atoms")
    if p.mode in ("tensile", "compress") and not (atoms.pbc.all() and atoms.cell.rank == 3):
        raise ProtocolError(
            f"{p.mode} loading strains a periodic box, but the structure's pbc is {atoms.pbc.tolist()}: "
            f"for a particle or a stack (non-periodic) use mode 'pull' (--mode pull)")
    if p.mode == "pull":
        k = p.axis_index
        lateral = [atoms.pbc[j] for j in range(3) if j != k]
        if atoms.pbc[k] or lateral[0] != lateral[1]:
            raise ProtocolError(
                f"pull along {p.axis} needs a structure that is not periodic along {p.axis} (the grips would "
                f"bond across the boundary) and periodic along both other axes or neither (a film or a "
                f"particle); its pbc is {atoms.pbc.tolist()}: set atoms.pbc accordingly, or use mode 'tensile'")


def _new_meta(atoms, calc, p: Protocol, potential_info: str) -> dict:
    return {
        "package": "aenet-torch-ase", "version": __version__, "protocol": p.to_dict(),
        "structure": {"atoms": len(atoms), "formula": atoms.get_chemical_formula(mode="metal"),
                      "cell_A": atoms.cell.array.tolist(), "pbc": atoms.pbc.tolist()},
        "potential": potential_info or type(calc).__name__,
        "potential_fingerprint": potential_fingerprint(calc),
        "units": {"time": "ps", "stress": "GPa, tension positive", "pressure": "bar",
                  "strain": "engineering", "energy": "eV", "length": "A", "force": "nN"},
        "started": time.strftime("%Y-%m-%d %H:%M:%S"), "status": "running",
    }


def _resumed_state(out: Path, atoms, calc):
    """(atoms, protocol, meta, checkpoint) of the run in `out`, after checking
    that the structure and the potential are those the run started with."""
    from ase import Atoms

    meta = _read_json(out)
    if not (out / "checkpoint.npz").exists():
        if meta.get("status") in ("interrupted", "failed") and not meta.get("checkpoint"):
            raise InputFileError(f"{out}: nothing to resume: the run stopped before its first checkpoint "
                                 f"({meta.get('status')}); start it again with --overwrite")
        raise InputFileError(f"{out}: no checkpoint.npz to resume from")
    ckpt = _load_checkpoint(out)
    try:
        p = Protocol.from_dict(meta["protocol"])
    except (TypeError, AenetError) as err:
        raise InputFileError(f"{out / 'run.json'}: its protocol cannot be read ({err})") from None
    theirs, ours = meta.get("potential_fingerprint"), potential_fingerprint(calc)
    if theirs is not None and theirs != ours:
        raise ProtocolError(f"{out} was run with another potential ({meta.get('potential')}, {theirs}); "
                            f"resume it with the same potential (now {ours})")
    numbers = ckpt.get("id_numbers")
    if numbers is None:  # a checkpoint of an older version: the structure must be given
        if atoms is None:
            raise InputFileError(f"{out / 'checkpoint.npz'} does not record the structure: give the run's "
                                 f"structure file to resume")
    elif atoms is not None:
        if len(atoms) != len(numbers):
            raise StructureError(f"the structure given has {len(atoms)} atoms, the run in {out} has "
                                 f"{len(numbers)}: resume without a structure (it is in the checkpoint) or "
                                 f"give the run's own")
        if not np.array_equal(atoms.numbers, numbers):
            k = int(np.flatnonzero(atoms.numbers != numbers)[0])
            raise StructureError(f"the structure given is not the run's: atom {k} is element "
                                 f"{atoms.numbers[k]} there, {numbers[k]} in the run in {out} (other order?); "
                                 f"resume without a structure (it is in the checkpoint)")
    if numbers is not None:
        given = atoms
        atoms = Atoms(numbers=numbers, positions=ckpt["dyn_q"], cell=ckpt["dyn_cell"], pbc=ckpt["id_pbc"],
                      masses=ckpt["id_masses"])
        _restore_extras(atoms, ckpt)  # what the structure carried besides its state (e.g. a stack's 'particle')
        if given is not None:  # and what the structure file given now carries
            atoms.info.update(given.info)
            for name, values in given.arrays.items():
                if name not in atoms.arrays and name != "momenta":
                    atoms.arrays[name] = values.copy()
    meta["status"] = "running"
    meta.pop("error", None)
    meta["resumed"] = meta.get("resumed", 0) + 1
    return atoms, p, meta, ckpt


class _Runner:
    """The stages of one run: minimise (fresh runs), then MD stages with
    rows, frames and checkpoints; Ctrl-C and errors end with run.json saying so."""

    def __init__(self, atoms, p: Protocol, out: Path, meta: dict, *, progress: bool, max_steps):
        self.atoms, self.p, self.out, self.meta = atoms, p, out, meta
        self.progress, self.max_steps = progress, max_steps
        self.recorder = _Recorder(out, p)
        self.stop = False
        self.minimizing = False
        self.steps_done = 0

    def _on_sigint(self, signum, frame):
        if self.minimizing:  # the minimiser has no step to finish: stop now
            raise KeyboardInterrupt
        self.stop = True  # MD: finish this step, write a checkpoint, then stop

    def run(self, ckpt):
        old_handler = signal.signal(signal.SIGINT, self._on_sigint)
        try:
            return self._run(ckpt)
        except KeyboardInterrupt:
            if self.meta.get("status") == "running":
                self.meta["status"] = "interrupted"
                if not (self.out / "checkpoint.npz").exists():
                    self.meta["note"] = "interrupted before the first checkpoint: nothing to resume"
                _write_json(self.out, self.meta)
            raise
        except Exception as err:
            self.meta["status"] = "failed"
            self.meta["error"] = f"{type(err).__name__}: {err}"
            _write_json(self.out, self.meta)
            raise
        finally:
            signal.signal(signal.SIGINT, old_handler)

    def _run(self, ckpt):
        atoms, p, out = self.atoms, self.p, self.out
        if ckpt is None:
            _write_json(out, self.meta)
            ref = self._minimize_and_thermalize()
            start_stage, start_step, saved = "relax", 0, None
        else:
            start_stage, start_step = ckpt["stage"], ckpt["step"]
            saved = {k[4:]: v for k, v in ckpt.items() if k.startswith("dyn_")}
            ref = {k[4:]: (v.item() if v.ndim == 0 else v) for k, v in ckpt.items() if k.startswith("ref_")}
            self.recorder.truncate_after(start_stage, start_step)
            _write_json(out, self.meta)
            if p.mode == "pull":
                atoms.set_constraint(_grips(ref))

        stages = [("relax", p.relax_steps if p.mode != "nvt" else p.load_steps), ("load", p.load_steps)]
        if p.mode == "nvt":
            stages = stages[:1]
        for stage, n_steps in stages:
            if STAGES.index(stage) < STAGES.index(start_stage):
                continue
            first = start_step if stage == start_stage else 0
            if self._md_stage(stage, n_steps, first, ref, saved if stage == start_stage else None):
                return out  # paused or interrupted with a checkpoint
            saved = None
        self.meta["status"] = "finished"
        self.meta["finished"] = time.strftime("%Y-%m-%d %H:%M:%S")
        _write_json(out, self.meta)
        final = atoms.copy()
        final.calc = None
        final.set_constraint()
        write_structure(out / "final.extxyz", final)
        return out

    def _minimize_and_thermalize(self) -> dict:
        atoms, p, ref = self.atoms, self.p, {}
        self.minimizing = True
        try:
            # a pull test's grips are cut from the relaxed structure: minimising with the
            # grips already held would leave the free part strained (a preload)
            if p.minimize_fmax > 0:
                self.meta["minimized"] = minimize(atoms, fmax=p.minimize_fmax, steps=p.minimize_steps)
            if p.mode == "pull":
                ref.update(_pull_setup(atoms, p))
                atoms.set_constraint(_grips(ref))
                self.meta["pull"] = {"gauge_length_A": ref["L0"], "cross_section_A2": ref["area"],
                                     "fixed_grip_atoms": len(ref["fixed"]), "moving_grip_atoms": len(ref["pulled"]),
                                     "grip_speed_A_per_ps": p.rate_per_fs * ref["L0"] * 1000.0}
                _write_json(self.out, self.meta)
        finally:
            self.minimizing = False
        try:
            from ase.md.velocitydistribution import thermalize_momenta
        except ImportError:  # ASE < 3.29
            from ase.md.velocitydistribution import MaxwellBoltzmannDistribution as thermalize_momenta
        from ase.md.velocitydistribution import Stationary

        thermalize_momenta(atoms, temperature_K=p.temperature, rng=np.random.default_rng(p.seed))
        if p.mode != "pull":
            Stationary(atoms)
        else:
            atoms.set_momenta(atoms.get_momenta())  # constraint zeroes the fixed atoms' momenta
        return ref

    def _strain(self, stage: str, ref: dict) -> float:
        atoms, p = self.atoms, self.p
        if stage != "load":
            return 0.0
        if p.mode in ("tensile", "compress"):
            return atoms.cell.array[p.axis_index, p.axis_index] / ref["L0"] - 1.0
        if p.mode == "pull":
            pulled = ref["pulled"]
            m = atoms.get_masses()[pulled]
            com = m @ atoms.positions[pulled, p.axis_index] / m.sum()
            return (com - ref["com0"]) / ref["L0"]
        return 0.0

    def _pull_force(self, stage: str, ref: dict):
        """(pulling force in nN, engineering stress in GPa; tension positive).

        The force with which the moving grip pulls on the free atoms: minus
        the sum of the forces on the grip's atoms along the axis (the forces
        among the grip's atoms cancel), divided by the initial cross-section."""
        if stage == "load" and self.p.mode == "pull":
            f = -float(self.atoms.get_forces(apply_constraint=False)[ref["pulled"], self.p.axis_index].sum())
            return f * EV_PER_A_IN_NN, f / ref["area"] / GPA
        return float("nan"), float("nan")

    def _md_stage(self, stage: str, n_steps: int, first: int, ref: dict, saved) -> bool:
        """Steps first+1 .. n_steps of `stage`. True when stopped early (checkpoint written)."""
        from tqdm import tqdm

        atoms, p, out, rec = self.atoms, self.p, self.out, self.recorder
        if stage == "load" and first == 0 and p.mode in ("tensile", "compress"):
            _check_loading_box(atoms, p.axis_index)
            ref["L0"] = float(atoms.cell.array[p.axis_index, p.axis_index])
        if stage == "load" and first == 0 and p.mode == "pull":  # strain counts from here
            m = atoms.get_masses()[ref["pulled"]]
            ref["com0"] = float(m @ atoms.positions[ref["pulled"], p.axis_index] / m.sum())
        dyn = _Dynamics(atoms, p, stage, ref)
        if saved is not None:
            dyn.restore(saved)
        if first == 0:
            rec.row(atoms, stage, 0, self._strain(stage, ref), *self._pull_force(stage, ref))
            rec.frame(atoms, stage, 0, self._strain(stage, ref))
        bar = tqdm(total=n_steps, initial=first, desc=f"{p.mode} {stage}", unit="step", disable=not self.progress)
        try:
            step = first
            while step < n_steps:
                step += 1
                dyn.step(step)
                self.steps_done += 1
                if step % p.record_every == 0 or step == n_steps:
                    rec.row(atoms, stage, step, self._strain(stage, ref), *self._pull_force(stage, ref))
                if step % p.frame_every == 0 or step == n_steps:
                    rec.frame(atoms, stage, step, self._strain(stage, ref))
                pause = self.max_steps is not None and self.steps_done >= self.max_steps
                if step % p.checkpoint_every == 0 or step == n_steps or self.stop or pause:
                    _save_checkpoint(out, stage, step, dyn.state(), ref, atoms)
                bar.update(1)
                if self.stop or pause:
                    self.meta["status"] = "interrupted" if self.stop else "paused"
                    self.meta["checkpoint"] = {"stage": stage, "step": step}
                    _write_json(out, self.meta)
                    if self.stop:
                        raise KeyboardInterrupt
                    return True
        finally:
            bar.close()
        return False
