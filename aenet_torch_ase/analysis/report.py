"""`aenet-torch analyze RUN_DIR [...]`: the seed's analysis of a tensile run.

Reads a run directory of `md.run` (stress_strain.csv, trajectory.extxyz,
run.json) or of the LAMMPS deck (log.lammps, dump files), and writes
RUN_DIR/analysis/: summary.json (modulus, yield, UTS, failure strain,
toughness, first-void strain; units inside), stress_strain.png,
shear_strain_<strain>.png and section_<axis>_<strain>.png cross-sections,
voids.png (void volume and broken-bond fraction vs strain) and report.md
linking them. With several runs, the stress-strain curves are overlaid in
the first run's analysis (or --out).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from ..errors import InputFileError
from ..io.atomic_write import atomic_write_text
from ..io.records import read_frames
from .stress_strain import StressStrain, plot_curves

AXES = "xyz"


def load_frames(run_dir: Path, axis: str = "y"):
    """Frames of the loading stage: from trajectory.extxyz, or the LAMMPS
    deck's dump.load.lammpstrj (strain from the box length along `axis`)."""
    import ase.io

    traj = run_dir / "trajectory.extxyz"
    if traj.exists():
        frames = [f for f in read_frames(traj) if f.info.get("stage", "load") == "load"]
        for f in frames:
            f.info.setdefault("strain", 0.0)
        return frames
    dumps = sorted(run_dir.glob("dump.load*.lammpstrj"))
    frames = []
    for d in dumps:
        frames.extend(ase.io.read(d, ":", format="lammps-dump-text"))
    if frames:
        k = AXES.index(axis)
        l0 = frames[0].cell.lengths()[k]
        for f in frames:
            f.info["strain"] = f.cell.lengths()[k] / l0 - 1.0
    return frames


def emptiest_slab_fraction(atoms, axis: int, slab: float = 2.5) -> float:
    """Atoms in the emptiest slab of thickness `slab` (A) normal to `axis`,
    relative to the mean slab. ~0 when a crack spans the whole cross-section."""
    x = atoms.positions[:, axis]
    length = float(np.linalg.norm(atoms.cell.array[axis])) if atoms.pbc[axis] else float(np.ptp(x))
    n = max(1, int(length / slab))
    lo = 0.0 if atoms.pbc[axis] else x.min()
    counts = np.bincount(np.clip(((x - lo) / length * n).astype(int) % n, 0, n - 1), minlength=n)
    return float(counts.min() / counts.mean())


def broken_bonds(reference, frame, bond_cutoff: float = 3.0, stretch: float = 1.25, pairs=None):
    """The reference's bonds (pairs closer than bond_cutoff, A; each pair
    once; or the given `pairs` (i, j)) as (i, j, broken): broken where the
    pair is now longer than stretch x bond_cutoff."""
    if pairs is None:
        from ase.neighborlist import neighbor_list

        i, j = neighbor_list("ij", reference, bond_cutoff)
        once = i < j
        i, j = i[once], j[once]
    else:
        i, j = pairs
    vec = frame.positions[j] - frame.positions[i]
    if frame.pbc.any() and len(i):
        from ase.geometry import find_mic

        vec, _ = find_mic(vec, frame.cell, frame.pbc)
    return i, j, np.linalg.norm(vec, axis=1) > stretch * bond_cutoff


def broken_bond_fraction(reference, frame, bond_cutoff: float = 3.0, stretch: float = 1.25) -> float:
    """Share of the reference's bonds (pairs closer than bond_cutoff, A) that
    are now longer than stretch x bond_cutoff."""
    _, _, broken = broken_bonds(reference, frame, bond_cutoff, stretch)
    return float(broken.mean()) if len(broken) else 0.0


def analyze_run(run_dir, *, strains: Sequence[float] = (0.05, 0.10, 0.15), window=(0.0, 0.02),
                cutoff: float = 5.0, probe_radius: float = 2.5, slab_width: float = 5.0,
                axis: Optional[str] = None, progress: bool = True, calc=None) -> dict:
    """Analyse one run directory; returns the summary written to analysis/summary.json.

    calc: a calculator of the run's potential (AenetTorch). With LAMMPS dumps,
    which carry no per-atom stress (pair_style aenet has none), the per-atom
    stress and energy of every frame are recomputed with it into
    analysis/atomic_stress.extxyz (see `analysis.atomic_stress`)."""
    from tqdm import tqdm

    from .ovito_tools import atomic_strain, render_cross_section, voids

    run_dir = Path(run_dir)
    check_window(window)
    if not run_dir.is_dir():
        raise InputFileError(f"{run_dir} is not a folder: give a run folder of 'aenet-torch stretch' "
                             f"(or of the LAMMPS deck)")
    if not (run_dir / "stress_strain.csv").exists() and not (run_dir / "log.lammps").exists():
        raise InputFileError(f"{run_dir}: neither stress_strain.csv nor log.lammps found: not a run folder")
    out = run_dir / "analysis"
    out.mkdir(exist_ok=True)
    if (run_dir / "stress_strain.csv").exists():
        curve = StressStrain.from_run(run_dir)
    elif (run_dir / "log.lammps").exists():
        curve = StressStrain.from_lammps_log(run_dir / "log.lammps", axis=axis or "y", label=run_dir.name)
    else:
        raise InputFileError(f"{run_dir}: neither stress_strain.csv nor log.lammps found")
    summary = curve.summary(window=window)
    plot_curves([curve], out / "stress_strain.png", window=window)
    images = {"stress_strain": "stress_strain.png"}

    frames = load_frames(run_dir, curve.axis)
    summary["atomic_stress"] = _atomic_stress(frames, calc, out, curve.axis, progress)
    series = {"strain": [], "void_volume_A3": [], "void_regions": [], "emptiest_slab_fraction": [],
              "broken_bond_fraction": [], "mean_shear_strain": []}
    if frames:
        reference = frames[0]
        ax = AXES.index(curve.axis)
        targets = {round(s, 6): None for s in strains}
        frame_strains = np.array([float(f.info.get("strain", 0.0)) for f in frames])
        for s in list(targets):
            k = int(np.argmin(np.abs(frame_strains - s)))
            if abs(frame_strains[k] - s) <= 0.5 * max(np.diff(frame_strains).max(initial=0.0), 1e-9) + 1e-9:
                targets[s] = k
        for k, frame in enumerate(tqdm(frames, desc=f"analysing {run_dir.name}", disable=not progress)):
            strain_k = frame_strains[k]
            shear = atomic_strain(frame, reference, cutoff=cutoff)["shear"]
            try:
                v = voids(frame, probe_radius=probe_radius) if frame.pbc.all() else None
            except RuntimeError as err:  # OVITO: cell too small for the Delaunay tessellation
                v = None
                if "too small" not in str(err):
                    raise
            series["strain"].append(float(strain_k))
            series["mean_shear_strain"].append(float(shear.mean()))
            series["void_volume_A3"].append(v["void_volume_A3"] if v else float("nan"))
            series["void_regions"].append(v["void_regions"] if v else 0)
            series["emptiest_slab_fraction"].append(emptiest_slab_fraction(frame, ax))
            series["broken_bond_fraction"].append(broken_bond_fraction(reference, frame))
            for s, idx in targets.items():
                if idx == k:
                    name = f"shear_strain_{s:.3f}.png"
                    render_cross_section(frame, out / name, shear, axis=(ax + 2) % 3, width=slab_width,
                                         cmap="inferno", vmin=0.0, vmax=0.5,
                                         title=f"{run_dir.name}: von Mises shear strain at {s:.1%}")
                    images[f"shear_strain_{s:.3f}"] = name
                    name = f"section_{AXES[ax]}_{s:.3f}.png"
                    render_cross_section(frame, out / name, frame.positions[:, ax], axis=(ax + 2) % 3,
                                         width=slab_width, cmap="coolwarm",
                                         title=f"{run_dir.name}: {AXES[ax]} coordinate at {s:.1%}")
                    images[f"section_{s:.3f}"] = name
        regions = np.array(series["void_regions"])
        first = np.flatnonzero(regions > 0)
        summary["first_void_strain"] = float(series["strain"][first[0]]) if len(first) else None
        spanning = np.flatnonzero(np.array(series["emptiest_slab_fraction"]) < 0.05)
        summary["spanning_crack_strain"] = float(series["strain"][spanning[0]]) if len(spanning) else None
        _plot_series(series, out / "voids.png", run_dir.name)
        images["voids"] = "voids.png"
    else:
        summary["first_void_strain"] = None
        summary["spanning_crack_strain"] = None
    summary["series"] = series
    summary["settings"] = {"strain_cutoff_A": cutoff, "probe_radius_A": probe_radius, "slab_width_A": slab_width,
                           "elastic_window": list(window),
                           "spanning_crack": "first strain where a 2.5 A slab normal to the axis holds "
                                             "< 5 % of the mean slab's atoms",
                           "void_volume": "volume enclosed by the surface through the centres of the atoms "
                                          "lining internal cavities (OVITO ConstructSurfaceModifier)",
                           "shear_strain": "von Mises local shear invariant (OVITO AtomicStrainModifier), "
                                           "reference = first frame of the loading stage"}
    summary["images"] = images
    atomic_write_text(str(out / "summary.json"), json.dumps(summary, indent=2) + "\n")
    atomic_write_text(str(out / "report.md"), _report(summary))
    return summary


def _atomic_stress(frames, calc, out: Path, axis: str, progress: bool):
    """Per-atom stress of frames that lack it (LAMMPS dumps), recomputed with `calc`."""
    if not frames or "stress_GPa" in frames[0].arrays:
        return {"source": "trajectory (written by the run)"} if frames else None
    if calc is None:
        return {"source": None, "note": "the frames carry no per-atom stress (LAMMPS pair_style aenet computes "
                                        "none): give the potential (--potential) to recompute it"}
    from ..io.records import rewrite_frames
    from .atomic_stress import recompute_atomic_stress

    with_stress = recompute_atomic_stress(frames, calc, progress=progress)
    path = out / "atomic_stress.extxyz"
    rewrite_frames(path, with_stress)
    k = AXES.index(axis) * 4  # the axial component in the flattened 3x3
    return {"source": "recomputed with the potential (per-atom virial + kinetic, atomic volume V/N)",
            "file": path.name, "frames": len(with_stress),
            "mean_axial_stress_GPa": [float(f.arrays["stress_GPa"][:, k].mean()) for f in with_stress]}


def _plot_series(series, path, label):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from .pictures import save_png

    fig, ax1 = plt.subplots(figsize=(6, 4))
    e = np.array(series["strain"]) * 100
    ax1.plot(e, series["void_volume_A3"], "o-", color="tab:blue", label="void volume")
    ax1.set_xlabel("strain (%)")
    ax1.set_ylabel("void volume (A^3)", color="tab:blue")
    ax2 = ax1.twinx()
    ax2.plot(e, np.array(series["broken_bond_fraction"]) * 100, "s--", color="tab:red", label="broken bonds")
    ax2.set_ylabel("broken bonds (%)", color="tab:red")
    ax1.set_title(f"{label}: voids and broken bonds")
    save_png(fig, path)
    plt.close(fig)


def _report(summary) -> str:
    e = summary["young_modulus_GPa"]
    u = summary["ultimate_tensile_strength_GPa"]
    y = summary["yield_0.2pct_offset"]
    f = summary["failure"]
    lines = [
        f"# Analysis of {summary['label']}",
        "",
        (f"- Young's modulus: {e['value']:.2f} +/- {e['stderr']:.2f} GPa (R^2 {e['r2']:.3f}, "
         f"strain window {e['window'][0]:.3f}-{e['window'][1]:.3f})" if e["value"] is not None else
         f"- Young's modulus: not measured: {e['note']}"),
        f"- ultimate tensile strength: {u['stress']:.2f} GPa at {u['strain']:.2%} strain",
        f"- yield (0.2% offset): " + (f"{y['stress']:.2f} GPa at {y['strain']:.2%}" if y else "not reached"),
        f"- failure (largest stress drop): " + (f"at {f['strain']:.2%}" if f else "none"),
        f"- toughness (area under the curve): {summary['toughness_GPa']:.3f} GPa (GJ/m^3)",
        f"- first internal void: " + (f"at {summary['first_void_strain']:.2%}" if summary["first_void_strain"]
                                     is not None else "none"),
        f"- crack across the whole cross-section: " + (f"at {summary['spanning_crack_strain']:.2%}"
                                                       if summary["spanning_crack_strain"] is not None else "none"),
        "",
    ]
    lines += [f"![{k}]({v})" for k, v in summary.get("images", {}).items()]
    return "\n".join(lines) + "\n"


def check_window(window) -> None:
    if len(window) != 2 or not window[0] < window[1] or window[0] < 0:
        raise InputFileError(f"elastic window {list(window)}: give two strains, low then high "
                             f"(e.g. 0 0.02), with 0 <= low < high")


def analyze(run_dirs, *, out=None, **kwargs) -> list:
    """Analyse several runs (keyword arguments of `analyze_run`); overlay their stress-strain curves."""
    check_window(kwargs.get("window", (0.0, 0.02)))
    summaries = [analyze_run(d, **kwargs) for d in run_dirs]
    if len(run_dirs) > 1:
        curves = []
        for d in run_dirs:
            d = Path(d)
            if (d / "stress_strain.csv").exists():
                curves.append(StressStrain.from_run(d))
            else:
                curves.append(StressStrain.from_lammps_log(d / "log.lammps", axis=kwargs.get("axis") or "y",
                                                           label=d.name))
        target = Path(out) if out else Path(run_dirs[0]) / "analysis"
        target.mkdir(parents=True, exist_ok=True)
        plot_curves(curves, target / "stress_strain_overlay.png", window=kwargs.get("window", (0.0, 0.02)))
    return summaries
