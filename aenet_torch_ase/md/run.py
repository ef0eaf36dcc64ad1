"""Running the mechanical-test protocol in ASE, restartably.

    run(atoms, calc, Protocol(mode="tensile", axis="y"), "RUN_DIR")

Stages: `minimize` (CG, fixed cell) -> `relax` (Nose-Hoover chain NVT) ->
`load`:
- tensile / compress: the box length along the axis follows
  L(t) = L0 (1 + rate t) exactly (like LAMMPS `fix deform ... erate`,
  positions remapped affinely, velocities unchanged) while the two lateral
  axes are held at the target pressure by ASE's MTK barostat
  (`MaskedMTKNPT`, thermostat on), or kept fixed (NVT) with lateral="fixed";
- pull (particles, stacks; non-periodic): the atoms on the low side of the
  axis (`fixed_fraction` of the length) are held fixed; the centre of mass
  of the other atoms moves at the constant velocity rate x L0 (their
  internal motion is free and thermostatted). Stress = force transmitted
  to the pulled atoms (the sum of their forces) / cross-section at the
  boundary; strain = displacement of the pulled centre of mass / L0;
- nvt: Nose-Hoover NVT for `time`.

Output in RUN_DIR: `run.json` (every setting, package version, status),
`stress_strain.csv` (one row every `record_every` steps), `trajectory.extxyz`
(frames every `frame_every` steps, per-atom stress in GPa for periodic
cells), `checkpoint.npz` (every `checkpoint_every` steps and on Ctrl-C),
`final.extxyz`. `resume=True` continues from the checkpoint; the
continuation is identical to an uninterrupted run.
"""

from __future__ import annotations

import csv
import json
import signal
import time
import warnings
from pathlib import Path

import numpy as np
from ase import units
from ase.constraints import FixAtoms

from .. import __version__
from ..io.atomic_write import atomic_write_bytes, atomic_write_text
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
    (box deformation, pulled-group velocity) and its exact state for checkpoints."""

    def __init__(self, atoms, protocol: Protocol, stage: str, reference: dict):
        from ase.md.nose_hoover_chain import MaskedMTKNPT, NoseHooverChainNVT

        p = protocol
        self.atoms, self.p, self.stage, self.ref = atoms, p, stage, reference
        self.axis = p.axis_index
        dt = p.timestep * units.fs
        self.barostat = stage == "load" and p.mode in ("tensile", "compress") and p.lateral == "npt"
        if self.barostat:
            # a numpy mask: ASE 3.29's MaskedMTKNPT indexes with it, and a tuple of
            # booleans there silently selects nothing (the barostat would never move)
            mask = np.array([k != self.axis for k in range(3)])
            self.dyn = MaskedMTKNPT(atoms, dt, temperature_K=p.temperature, pressure_au=p.pressure * 1e-4 * GPA,
                                    tdamp=p.tdamp * units.fs, pdamp=p.pdamp * units.fs, mask=mask)
        else:
            self.dyn = NoseHooverChainNVT(atoms, dt, temperature_K=p.temperature, tdamp=p.tdamp * units.fs)

        # The box deformation (and the pulled group's displacement) is applied
        # inside the drift of each step, before the force evaluation, so that a
        # step costs one energy/force/stress call (applying it after the step
        # would invalidate the forces and double the cost).
        self._step = 0
        hook_name = "_integrate_q_cell" if self.barostat else "_integrate_q"
        drift = getattr(self.dyn, hook_name)

        def drift_then_load(delta):
            drift(delta)
            self._apply_load(self._step)

        setattr(self.dyn, hook_name, drift_then_load)

    def _apply_load(self, step: int):
        p, dyn = self.p, self.dyn
        if self.stage != "load":
            return
        if p.mode in ("tensile", "compress"):
            target = self.ref["L0"] * (1.0 + p.rate_per_fs * p.timestep * step)
            if self.barostat:
                factor = target / dyn._h[self.axis, self.axis]
                dyn._h[:, self.axis] *= factor
            else:
                cell = self.atoms.cell.array.copy()
                factor = target / cell[self.axis, self.axis]
                cell[:, self.axis] *= factor
                self.atoms.set_cell(cell, scale_atoms=False)
            dyn._q[:, self.axis] *= factor  # affine remap of the positions
        elif p.mode == "pull":
            # displacement control of the pulled group's centre of mass along the
            # axis: at com0 + speed t exactly; the atoms' motion relative to it is free
            pulled = self.ref["pulled"]
            m = dyn.masses[pulled, 0]
            com = m @ dyn._q[pulled, self.axis] / m.sum()
            dyn._q[pulled, self.axis] += self.ref["com0"] + self.ref["speed"] * p.timestep * units.fs * step - com

    def step(self, step: int):
        self._step = step
        self.dyn.step()
        if self.stage == "load" and self.p.mode == "pull":
            # and its velocity is `speed` (momenta do not change the forces)
            pulled = self.ref["pulled"]
            dyn = self.dyn
            m = dyn.masses[pulled, 0]
            v_com = dyn._p[pulled, self.axis].sum() / m.sum()
            dyn._p[pulled, self.axis] += m * (self.ref["speed"] - v_com)
            dyn._update_atoms()

    # -- exact state
    def state(self) -> dict:
        d = self.dyn
        out = {"q": d._q, "p": d._p, "eta": d._thermostat._eta, "p_eta": d._thermostat._p_eta,
               "cell": self.atoms.cell.array}
        if self.barostat:
            out.update(h=d._h, p_c=d._p_c, xi=d._barostat._xi, p_xi=d._barostat._p_xi)
        return {k: np.array(v, copy=True) for k, v in out.items()}

    def restore(self, s: dict):
        d = self.dyn
        self.atoms.set_cell(s["cell"], scale_atoms=False)
        d._q, d._p = s["q"].copy(), s["p"].copy()
        d._thermostat._eta, d._thermostat._p_eta = s["eta"].copy(), s["p_eta"].copy()
        if self.barostat:
            d._h, d._p_c = s["h"].copy(), s["p_c"].copy()
            d._barostat._xi, d._barostat._p_xi = s["xi"].copy(), s["p_xi"].copy()
        d._update_atoms()


def _pull_setup(atoms, p: Protocol) -> dict:
    """Fixed and pulled groups, gauge length L0 (A), speed (A/ASE time),
    cross-section area (A^2) at the boundary (2D convex hull of the atoms
    within 2 A of it)."""
    from scipy.spatial import ConvexHull

    axis = p.axis_index
    x = atoms.positions[:, axis]
    lo, hi = x.min(), x.max()
    boundary = lo + p.fixed_fraction * (hi - lo)
    fixed = np.flatnonzero(x < boundary)
    pulled = np.flatnonzero(x >= boundary)
    if len(fixed) == 0 or len(pulled) == 0:
        raise ValueError("pull: both halves need atoms; check axis and fixed_fraction")
    near = atoms.positions[np.abs(x - boundary) < 2.0][:, [k for k in range(3) if k != axis]]
    area = float(ConvexHull(near).volume) if len(near) >= 3 else float("nan")
    length = float(hi - lo)
    com0 = float(atoms.get_masses()[pulled] @ x[pulled] / atoms.get_masses()[pulled].sum())
    # speed: (1/fs) * A = A/fs, divided by units.fs for ASE's time unit
    return {"fixed": fixed, "pulled": pulled, "L0": length, "speed": p.rate_per_fs * length / units.fs,
            "area": area, "boundary": float(boundary), "com0": com0}


class _Recorder:
    def __init__(self, out: Path, protocol: Protocol):
        self.out, self.p = out, protocol
        self.csv_path = out / "stress_strain.csv"
        self.traj_path = out / "trajectory.extxyz"

    def truncate_after(self, stage: str, step: int):
        """Drop rows and frames written after the checkpoint (resume)."""
        order = STAGES.index(stage)

        def keep(st, sp):
            return STAGES.index(st) < order or (st == stage and int(sp) <= step)

        if self.csv_path.exists():
            with open(self.csv_path) as f:
                rows = list(csv.reader(f))
            kept = [rows[0]] + [r for r in rows[1:] if keep(r[0], r[1])]
            atomic_write_text(str(self.csv_path), "".join(",".join(r) + "\n" for r in kept))
        if self.traj_path.exists():
            import ase.io

            frames = [a for a in ase.io.read(self.traj_path, ":") if keep(a.info["stage"], a.info["step"])]
            if frames:
                write_structure(self.traj_path, frames)
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
        with open(self.csv_path, "a") as f:
            if new:
                f.write(",".join(CSV_COLUMNS) + "\n")
            f.write(",".join(v if isinstance(v, str) else repr(float(v)) if isinstance(v, float) else str(v)
                             for v in values) + "\n")
            f.flush()

    def frame(self, atoms, stage, step, strain):
        import ase.io

        frame = atoms.copy()
        frame.calc = None
        frame.info.update(stage=stage, step=step, strain=strain, time_ps=step * self.p.timestep / 1000.0)
        if atoms.pbc.all() and "stresses" in getattr(atoms.calc, "implemented_properties", ()):
            frame.arrays["stress_GPa"] = atomic_stress_gpa(atoms).reshape(len(atoms), 9)
        ase.io.write(self.traj_path, frame, append=True, format="extxyz")


def _write_json(out: Path, data: dict):
    atomic_write_text(str(out / "run.json"), json.dumps(data, indent=2, default=str) + "\n")


def _save_checkpoint(out: Path, stage: str, step: int, dyn_state: dict, ref: dict):
    import io

    buf = io.BytesIO()
    arrays = {f"dyn_{k}": v for k, v in dyn_state.items()}
    arrays.update({f"ref_{k}": np.asarray(v) for k, v in ref.items()})
    np.savez(buf, stage=np.array(stage), step=np.array(step), **arrays)
    atomic_write_bytes(str(out / "checkpoint.npz"), buf.getvalue())


def run(atoms, calc, protocol: Protocol, out, *, resume: bool = False, progress: bool = True,
        potential_info: str = "", max_steps: int | None = None):
    """Run `protocol` on `atoms` with `calc`, writing into directory `out`.

    resume: continue from `out/checkpoint.npz` (the same protocol is read
    from `out/run.json`; `atoms` is then only used for its calculator-free
    identity). max_steps: stop after this many MD steps in this call (for
    tests and for splitting long runs); the run can be resumed.
    Returns the path of the run directory.
    """
    from tqdm import tqdm

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    recorder = _Recorder(out, protocol)
    atoms = atoms.copy()
    atoms.calc = calc
    p = protocol
    start_stage, start_step, saved = "minimize", 0, None
    if resume:
        if not (out / "checkpoint.npz").exists():
            raise FileNotFoundError(f"{out}: no checkpoint.npz to resume from")
        meta = json.loads((out / "run.json").read_text())
        p = Protocol.from_dict(meta["protocol"])
        recorder.p = p
        z = np.load(out / "checkpoint.npz")
        start_stage, start_step = str(z["stage"]), int(z["step"])
        saved = {k[4:]: z[k] for k in z.files if k.startswith("dyn_")}
        ref = {k[4:]: z[k] for k in z.files if k.startswith("ref_")}
        ref = {k: (v.item() if v.ndim == 0 else v) for k, v in ref.items()}
        recorder.truncate_after(start_stage, start_step)
        meta["status"] = "running"
        meta["resumed"] = meta.get("resumed", 0) + 1
    else:
        for name in ("stress_strain.csv", "trajectory.extxyz", "checkpoint.npz"):
            if (out / name).exists():
                (out / name).unlink()
        meta = {
            "package": "aenet-torch-ase", "version": __version__, "protocol": p.to_dict(),
            "structure": {"atoms": len(atoms), "formula": atoms.get_chemical_formula(mode="metal"),
                          "cell_A": atoms.cell.array.tolist(), "pbc": atoms.pbc.tolist()},
            "potential": potential_info or type(calc).__name__,
            "units": {"time": "ps", "stress": "GPa, tension positive", "pressure": "bar",
                      "strain": "engineering", "energy": "eV", "length": "A", "force": "nN"},
            "started": time.strftime("%Y-%m-%d %H:%M:%S"), "status": "running",
        }
        ref = {}
    _write_json(out, meta)

    stop = {"flag": False}

    def handler(signum, frame):
        stop["flag"] = True

    old_handler = signal.signal(signal.SIGINT, handler)
    steps_done = 0
    try:
        # ---- minimisation
        if STAGES.index(start_stage) == 0:
            if p.minimize_fmax > 0 and p.mode != "pull":
                meta["minimized"] = minimize(atoms, fmax=p.minimize_fmax, steps=p.minimize_steps)
            if p.mode == "pull":
                ref.update(_pull_setup(atoms, p))
                atoms.set_constraint(FixAtoms(indices=ref["fixed"]))
                if p.minimize_fmax > 0:
                    meta["minimized"] = minimize(atoms, fmax=p.minimize_fmax, steps=p.minimize_steps)
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
            start_stage, start_step = "relax", 0
        elif p.mode == "pull":
            atoms.set_constraint(FixAtoms(indices=np.asarray(ref["fixed"])))

        stages = [("relax", p.relax_steps if p.mode != "nvt" else p.load_steps), ("load", p.load_steps)]
        if p.mode == "nvt":
            stages = stages[:1]
        for stage, n_steps in stages:
            if STAGES.index(stage) < STAGES.index(start_stage):
                continue
            first = start_step if stage == start_stage else 0
            if stage == "load" and first == 0 and p.mode in ("tensile", "compress"):
                _check_loading_box(atoms, p.axis_index)
                ref["L0"] = float(atoms.cell.array[p.axis_index, p.axis_index])
            if stage == "load" and first == 0 and p.mode == "pull":  # strain counts from here
                m = atoms.get_masses()[ref["pulled"]]
                ref["com0"] = float(m @ atoms.positions[ref["pulled"], p.axis_index] / m.sum())
            dyn = _Dynamics(atoms, p, stage, ref)
            if saved is not None and stage == start_stage:
                dyn.restore(saved)
            saved = None

            def strain_now(step):
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

            def pull_force():
                """(force on the pulled atoms along the axis in nN, that force / area in GPa)."""
                if stage == "load" and p.mode == "pull":
                    f = float(atoms.get_forces(apply_constraint=False)[ref["pulled"], p.axis_index].sum())
                    return f * EV_PER_A_IN_NN, f / ref["area"] / GPA
                return float("nan"), float("nan")

            if first == 0:
                recorder.row(atoms, stage, 0, strain_now(0), *pull_force())
                recorder.frame(atoms, stage, 0, strain_now(0))
            bar = tqdm(total=n_steps, initial=first, desc=f"{p.mode} {stage}", unit="step", disable=not progress)
            step = first
            while step < n_steps:
                step += 1
                dyn.step(step)
                steps_done += 1
                if step % p.record_every == 0 or step == n_steps:
                    recorder.row(atoms, stage, step, strain_now(step), *pull_force())
                if step % p.frame_every == 0 or step == n_steps:
                    recorder.frame(atoms, stage, step, strain_now(step))
                if step % p.checkpoint_every == 0 or step == n_steps or stop["flag"] or \
                        (max_steps is not None and steps_done >= max_steps):
                    _save_checkpoint(out, stage, step, dyn.state(), ref)
                bar.update(1)
                if stop["flag"] or (max_steps is not None and steps_done >= max_steps):
                    bar.close()
                    meta["status"] = "interrupted" if stop["flag"] else "paused"
                    meta["checkpoint"] = {"stage": stage, "step": step}
                    _write_json(out, meta)
                    if stop["flag"]:
                        raise KeyboardInterrupt
                    return out
            bar.close()
            start_stage, start_step = stage, n_steps
        meta["status"] = "finished"
        meta["finished"] = time.strftime("%Y-%m-%d %H:%M:%S")
        _write_json(out, meta)
        final = atoms.copy()
        final.calc = None
        final.set_constraint()
        write_structure(out / "final.extxyz", final)
        return out
    finally:
        signal.signal(signal.SIGINT, old_handler)
