"""Where a pulled particle breaks first: voids and broken bonds against the
distance from its centre.

Voids (`void_profile`, the primary measure): grid points inside the
material's envelope with no atom within a probe radius (2.5 A); their
volume and the void fraction of the material per radial shell, frame by
frame; `first_voids` says at which strain the void volume first grows by
50 A^3 over the start of loading and how far from the centre the new void
volume lies, beside the material's mean distance (smaller: voids open
nearer the centre). Broken bonds (below) count every rearrangement, and
Li atoms of a Li-rich glass rearrange everywhere at 300 K, so they locate
cracks less sharply.

A bond is a pair of atoms closer than `bond_cutoff` (A) in the reference
frame (the start of loading); it is broken in a later frame when the pair
is longer than `stretch` x bond_cutoff (`report.broken_bonds`). Only bonds
between free atoms count (the grips of a pull test are rigid: the frames'
`held` array). Each bond is placed by the distance of its midpoint in the
reference frame from the particle's centre (centroid of the reference),
in units of the particle's radius R (`info['radius']`, else the largest
distance of an atom from the centre).

`crack_origin` summarises a frame: the mean r/R of the bonds broken then,
beside the mean r/R of all bonds; a smaller value means breaking started
nearer the centre than uniform breaking would put it (the seed: fracture
starts in the middle of the particle and spreads outward).
"""

from __future__ import annotations

import json
from typing import Sequence

import numpy as np

from .report import broken_bonds


def bond_radii(reference, bond_cutoff: float = 3.0):
    """(i, j, r/R) of the reference's bonds between free atoms."""
    from ase.neighborlist import neighbor_list

    free = np.asarray(reference.arrays.get("held", np.zeros(len(reference), int))) == 0
    centre = reference.positions[free].mean(0)
    radius = float(reference.info.get("radius") or np.linalg.norm(reference.positions - centre, axis=1).max())
    i, j = neighbor_list("ij", reference, bond_cutoff)
    keep = (i < j) & free[i] & free[j]
    i, j = i[keep], j[keep]
    mid = 0.5 * (reference.positions[i] + reference.positions[j])
    return i, j, np.linalg.norm(mid - centre, axis=1) / radius


def radial_profile(frames, *, bond_cutoff: float = 3.0, stretch: float = 1.25, bins: int = 6) -> dict:
    """Broken-bond fraction per radial shell (equal widths in r/R from 0 to
    the outermost bond) for each frame after the first (the reference).
    Returns edges (r/R), strains, fractions (frames x bins), bonds per shell,
    and per frame the mean r/R of the broken bonds and of all bonds."""
    reference = frames[0]
    i, j, r = bond_radii(reference, bond_cutoff)
    edges = np.linspace(0.0, max(float(r.max()), 1e-9) * (1 + 1e-9), bins + 1)
    shell = np.clip(np.searchsorted(edges, r, side="right") - 1, 0, bins - 1)
    per_shell = np.bincount(shell, minlength=bins)
    fractions, mean_broken, strains = [], [], []
    for frame in frames[1:]:
        _, _, broken = broken_bonds(reference, frame, bond_cutoff, stretch, pairs=(i, j))
        counts = np.bincount(shell[broken], minlength=bins)
        with np.errstate(invalid="ignore", divide="ignore"):
            fractions.append(counts / per_shell)
        mean_broken.append(float(r[broken].mean()) if broken.any() else float("nan"))
        strains.append(float(frame.info.get("strain", np.nan)))
    return {"edges_r_over_R": edges.tolist(), "strain": strains, "fraction": np.array(fractions).tolist(),
            "bonds_per_shell": per_shell.tolist(), "mean_r_broken": mean_broken, "mean_r_all": float(r.mean())}


def neck_breaking(frames, strain: float, *, bond_cutoff: float = 3.0, stretch: float = 1.25) -> dict:
    """For a stack (frames with a 'particle' array): the share of the bonds
    between free atoms of different particles (the necks) and within
    particles that are broken in the frame nearest `strain`."""
    reference = frames[0]
    k = int(np.argmin([abs(f.info.get("strain", 0.0) - strain) for f in frames]))
    i, j, _ = bond_radii(reference, bond_cutoff)
    _, _, broken = broken_bonds(reference, frames[k], bond_cutoff, stretch, pairs=(i, j))
    owner = np.asarray(reference.arrays["particle"])
    neck = owner[i] != owner[j]
    return {"strain": float(frames[k].info.get("strain", np.nan)),
            "neck_bonds": int(neck.sum()), "inner_bonds": int((~neck).sum()),
            "neck_broken": float(broken[neck].mean()) if neck.any() else float("nan"),
            "inner_broken": float(broken[~neck].mean()) if (~neck).any() else float("nan")}


def void_points(atoms, *, probe: float = 2.5, spacing: float = 1.0, env_radius: float = 10.0,
                embedded: float = 0.6, free=None):
    """Grid points (spacing A) of the material's envelope and of the empty
    space in it. A point is in the material when at least `embedded` x the
    interior's count of atoms lies within `env_radius` (A) of it (so the
    space outside the particle's surface does not count, a cavity inside
    does), and a void point when it is also farther than `probe` (A) from
    every atom (an atom of radius ~probe would fit there). `free`: mask of
    the atoms whose neighbourhood sets the interior count (default all).
    Returns (material points (n, 3), void mask (n,), volume per point A^3)."""
    from scipy.spatial import cKDTree

    pos = atoms.positions if free is None else atoms.positions[free]
    tree = cKDTree(atoms.positions)
    full = np.percentile(tree.query_ball_point(pos, env_radius, return_length=True), 90)
    lo, hi = pos.min(0), pos.max(0)
    axes = [np.arange(a, b + spacing, spacing) for a, b in zip(lo, hi)]
    grid = np.stack(np.meshgrid(*axes, indexing="ij"), -1).reshape(-1, 3)
    material = grid[tree.query_ball_point(grid, env_radius, return_length=True) >= embedded * full]
    nearest, _ = tree.query(material, distance_upper_bound=probe)
    return material, ~np.isfinite(nearest), spacing**3


def void_profile(frames, *, probe: float = 2.5, bins: int = 6) -> dict:
    """Void volume (A^3, `void_points`) and void fraction of the material in
    radial shells of the distance from the centre of the free atoms (in
    units of the particle's radius R, as `bond_radii`) for every frame, and
    per frame the volume-weighted mean r/R of the voids beside that of the
    material (where uniform voiding would put it)."""
    reference = frames[0]
    free = np.asarray(reference.arrays.get("held", np.zeros(len(reference), int))) == 0
    centre0 = reference.positions[free].mean(0)
    radius = float(reference.info.get("radius") or np.linalg.norm(reference.positions - centre0, axis=1).max())
    edges = np.linspace(0.0, 1.5, bins + 1)
    out = {"edges_r_over_R": edges.tolist(), "strain": [], "void_volume_A3": [], "void_fraction": [],
           "material_volume_A3": [], "mean_r_voids": [], "mean_r_material": [], "probe_A": probe}
    for frame in frames:
        material, void, dv = void_points(frame, probe=probe, free=free)
        r = np.minimum(np.linalg.norm(material - frame.positions[free].mean(0), axis=1) / radius, 1.5 - 1e-9)
        voids, material_count = np.histogram(r[void], edges)[0], np.histogram(r, edges)[0]
        with np.errstate(invalid="ignore", divide="ignore"):
            fraction = voids / material_count
        out["material_volume_A3"].append((material_count * dv).tolist())
        out["void_volume_A3"].append((voids * dv).tolist())
        out["void_fraction"].append(fraction.tolist())
        out["mean_r_voids"].append(float(r[void].mean()) if void.any() else float("nan"))
        out["mean_r_material"].append(float(r.mean()))
        out["strain"].append(float(frame.info.get("strain", np.nan)))
    return out


def first_voids(profile: dict, threshold: float = 50.0) -> dict:
    """The first frame whose void volume exceeds the first frame's by
    `threshold` A^3 (the volume of ~3 atoms), and where the new void volume
    lies: its volume-weighted mean r/R (shell by shell growth over the
    first frame) beside the material's. None values when no frame does."""
    volumes = np.array(profile["void_volume_A3"])
    growth = volumes - volumes[0]
    above = np.flatnonzero(growth.sum(1) > threshold)
    if len(above) == 0:
        return {"strain": None, "mean_r_new_voids": None, "mean_r_material": profile["mean_r_material"][0]}
    k = int(above[0])
    edges = np.array(profile["edges_r_over_R"])
    mids = 0.5 * (edges[1:] + edges[:-1])
    weights = np.clip(growth[k], 0, None)
    return {"strain": profile["strain"][k], "mean_r_new_voids": float((weights * mids).sum() / weights.sum()),
            "mean_r_material": profile["mean_r_material"][k], "new_void_volume_A3": float(growth[k].sum())}


def void_growth_inside_out(profile: dict, frame: int = -1) -> dict:
    """Growth of the void fraction (percentage points) from the first frame
    to `frame` in the inner half of the particle (r < R/2) and outside it."""
    edges = np.array(profile["edges_r_over_R"])
    inner = edges[1:] <= 0.5 + 1e-9
    out = {}
    for name, sel in (("inner", inner), ("outer", ~inner)):
        v = np.array(profile["void_volume_A3"])[:, sel].sum(1)
        m = np.array(profile["material_volume_A3"])[:, sel].sum(1)
        out[f"{name}_growth_pct"] = float(100 * (v[frame] / m[frame] - v[0] / m[0]))
    out["strain"] = profile["strain"][frame]
    return out


def crack_origin(profile: dict, strain: float) -> dict:
    """The frame nearest `strain`: mean r/R of its broken bonds and of all bonds."""
    k = int(np.nanargmin(np.abs(np.array(profile["strain"]) - strain)))
    return {"strain": profile["strain"][k], "mean_r_broken": profile["mean_r_broken"][k],
            "mean_r_all": profile["mean_r_all"]}


def plot_profile(profile: dict, path, strains: Sequence[float], title: str = "") -> None:
    """Void fraction of the material (`void_profile`) against r/R at the
    frames nearest `strains`."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from .pictures import save_png

    edges = np.array(profile["edges_r_over_R"])
    mids = 0.5 * (edges[1:] + edges[:-1])
    fig, ax = plt.subplots(figsize=(5.5, 4))
    for s in strains:
        k = int(np.nanargmin(np.abs(np.array(profile["strain"]) - s)))
        ax.plot(mids, np.array(profile["void_fraction"][k]) * 100, "o-", label=f"strain {profile['strain'][k]:.1%}")
    ax.set_xlabel("distance from the centre, r/R")
    ax.set_ylabel(f"void fraction of the material (%), probe {profile['probe_A']:g} A")
    ax.set_title(title or "where voids open")
    ax.legend(fontsize=8)
    save_png(fig, path)
    plt.close(fig)


def pull_results(run_dir, *, stages: Sequence[float], window=(0.0, 0.02), progress: bool = True) -> dict:
    """Analyse a pull run (`report.analyze_run`: curve, shear-strain
    sections at the strains `stages`, voids) and where its bonds broke;
    returns one row of the results table (units in the keys)."""
    from pathlib import Path

    from ..io.atomic_write import atomic_write_text
    from ..io.records import read_frames
    from .report import analyze_run, load_frames

    run_dir = Path(run_dir)
    s = analyze_run(run_dir, strains=stages, window=window, progress=progress)
    frames = load_frames(run_dir)
    if frames:  # frames written after a resume without the structure lack its extras: take them from the first
        first = read_frames(run_dir / "trajectory.extxyz")[0]
        for name in ("particle",):
            if name in first.arrays and name not in frames[0].arrays and len(first) == len(frames[0]):
                frames[0].arrays[name] = first.arrays[name]
        if "radius" in first.info:
            frames[0].info.setdefault("radius", first.info["radius"])
    e, u, f, y = s["young_modulus_GPa"], s["ultimate_tensile_strength_GPa"], s["failure"], s["yield_0.2pct_offset"]
    row = {"run": run_dir.name, "atoms": len(frames[0]) if frames else None,
           "stiffness_GPa": e["value"], "stiffness_se_GPa": e["stderr"],
           "uts_GPa": u["stress"], "strain_at_uts": u["strain"],
           "yield_GPa": y["stress"] if y else None, "yield_strain": y["strain"] if y else None,
           "toughness_GPa": s["toughness_GPa"], "failure_strain": f["strain"] if f else None,
           "max_strain": s["max_strain"]}
    if len(frames) > 2:
        # at most ~30 frames for the voids (a grid query per frame; 2 % strain apart over a 60 % run)
        voids = void_profile(frames[:: max(1, len(frames) // 30)])
        first = first_voids(voids)
        bonds = radial_profile(frames)
        growth = void_growth_inside_out(voids)
        row.update(void_growth_inner_pct=growth["inner_growth_pct"], void_growth_outer_pct=growth["outer_growth_pct"])
        row.update(first_voids_strain=first["strain"], new_voids_mean_r=first["mean_r_new_voids"],
                   material_mean_r=first["mean_r_material"],
                   broken_bonds_mean_r_at_uts=crack_origin(bonds, u["strain"])["mean_r_broken"],
                   bonds_mean_r=bonds["mean_r_all"])
        shown = [0.0] + [x for x in (first["strain"], u["strain"], s["max_strain"]) if x is not None]
        plot_profile(voids, run_dir / "analysis" / "crack_origin.png", sorted(set(shown)),
                     title=f"{run_dir.name}: where voids open")
        atomic_write_text(str(run_dir / "analysis" / "crack_origin.json"),
                          json.dumps({"voids": voids, "first_voids": first, "broken_bonds": bonds}, indent=1) + "\n")
        if "particle" in frames[0].arrays:  # a stack: do the necks between particles break first?
            necks = neck_breaking(frames, u["strain"])
            row.update(neck_broken_at_uts=necks["neck_broken"], inner_broken_at_uts=necks["inner_broken"])
    return row


def results_markdown(rows: Sequence[dict]) -> str:
    """The results table (GPa; strains as fractions of the gauge length)."""
    def num(v, fmt):
        return "-" if v is None or (isinstance(v, float) and np.isnan(v)) else format(v, fmt)

    lines = ["| run | atoms | stiffness (GPa) | UTS (GPa) | strain at UTS | 0.2 % yield (GPa) | toughness (GPa) "
             "| failure strain | first voids at strain | new voids' mean r/R (material's) "
             "| void fraction growth to the end, r < R/2 / r > R/2 (points) |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(
            f"| {r['run']} | {r['atoms']} | {num(r['stiffness_GPa'], '.1f')} +- {num(r['stiffness_se_GPa'], '.1f')} "
            f"| {num(r['uts_GPa'], '.2f')} | {num(r['strain_at_uts'], '.1%')} | {num(r['yield_GPa'], '.2f')} "
            f"| {num(r['toughness_GPa'], '.3f')} | {num(r['failure_strain'], '.1%')} "
            f"| {num(r.get('first_voids_strain'), '.1%')} | {num(r.get('new_voids_mean_r'), '.2f')} "
            f"({num(r.get('material_mean_r'), '.2f')}) | {num(r.get('void_growth_inner_pct'), '.1f')} / "
            f"{num(r.get('void_growth_outer_pct'), '.1f')} |")
    return "\n".join(lines) + "\n"


def pull_and_analyse(atoms, calc, run_dir, *, rate: float, relax_ps: float, max_strain: float, chunk_steps: int,
                     stages: Sequence[float], frame_every: int, label: str, overwrite: bool = False,
                     window=(0.0, 0.03)):
    """The seed's pull of a particle or stack: 1 fs steps, relax_ps of NVT
    at 300 K, pulled along y at `rate` (1/s) until broken
    (`md.pulling.pull_until_failure`, at most `max_strain`), then
    `pull_results` with the stiffness fitted over `window` (0-3 %: the
    force on a particle is noisier than the stress of a bulk cell, and its
    curve stays straight that far). Returns (results row, StressStrain curve
    labelled `label`)."""
    from ..md.protocol import Protocol
    from ..md.pulling import pull_until_failure
    from .stress_strain import StressStrain

    protocol = Protocol(mode="pull", axis="y", strain_rate=rate, relax_time=relax_ps, time=max_strain / rate * 1e12,
                        timestep=1.0, record_every=20, frame_every=frame_every, checkpoint_every=chunk_steps)
    pull_until_failure(atoms, calc, protocol, run_dir, chunk_steps=chunk_steps, overwrite=overwrite)
    return pull_results(run_dir, stages=stages, window=window), StressStrain.from_run(run_dir, label=label)
