"""`aenet-torch demo`: the seed's main result, out of the box.

Stretch amorphous a-Li13Si4 with the bundled LiSi-demo potential and analyse
it: minimise, NVT at 300 K, uniaxial tension along y at 1e10 1/s with the
lateral axes at 1 bar, then the stress-strain curve, Young's modulus, UTS
and von Mises shear-strain cross-sections. The starting cell is a bundled
pre-relaxed a-Li13Si4 (melt-quenched with the same potential) or, with
`atoms=`, a new one made by melt-quench.

quick=True: the bundled 256-atom cell, 0.5 ps NVT, strain 0.06 at 5e10 1/s
(about a minute on 2 cores): shows the pipeline; the modulus is noisier.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Optional

from .io.structure_files import write_structure

#: the seed's Young's modulus of a-Li13Si4: simulation and nanoindentation (GPa)
SEED_MODULUS_SIMULATION = 45.04
SEED_MODULUS_EXPERIMENT = 45.7
DATA = Path(__file__).resolve().parent / "data" / "structures"
BUNDLED_CELLS = {1024: DATA / "a-Li13Si4_1024.extxyz", 256: DATA / "a-Li13Si4_256.extxyz"}


def min_distance(atoms) -> float:
    """Closest pair distance (A), periodic images included."""
    from ase.neighborlist import neighbor_list

    d = neighbor_list("d", atoms, 3.0)
    return float(d.min()) if d.size else float("inf")


def make_cell(n_atoms: int, calc, *, seed: int = 0, progress: bool = True):
    """A new relaxed a-Li13Si4 cell: random packing at the Li-Si density,
    melt at 1000 K (2 ps), cool to 300 K over 4 ps, minimise (FIRE to
    0.05 eV/A, then CG to 0.01 eV/A). Potentials distilled from ANN teachers
    can let two atoms collapse when hot: if the closest pair ends below
    1.9 A, the melt is repeated at 700 K."""
    from .md.run import minimize
    from .md.structures import amorphous

    for t_melt in (1000.0, 700.0):
        atoms = amorphous("Li13Si4", n_atoms, calc, t_melt=t_melt, melt_time=2000.0, quench_time=4000.0,
                          seed=seed, progress=progress)
        atoms.calc = calc
        minimize(atoms, fmax=0.01)
        if min_distance(atoms) >= 1.9:
            atoms.calc = None
            return atoms, (f"new {len(atoms)}-atom cell: melt-quench from {t_melt:g} K (2 ps melt, 4 ps "
                           f"cooling), minimised")
    raise RuntimeError("the melt-quench collapsed twice: use a bundled cell (--atoms 1024 or 256)")


def starting_cell(n_atoms: Optional[int], calc, progress: bool = True, seed: int = 0):
    """The bundled pre-relaxed cell with `n_atoms` (default 1024), or a new one (`make_cell`)."""
    import ase.io

    if n_atoms is None:
        n_atoms = 1024
    if n_atoms in BUNDLED_CELLS and BUNDLED_CELLS[n_atoms].is_file():
        atoms = ase.io.read(BUNDLED_CELLS[n_atoms])
        atoms.calc = None
        return atoms, f"bundled pre-relaxed cell {BUNDLED_CELLS[n_atoms].name}"
    return make_cell(n_atoms, calc, seed=seed, progress=progress)


def run_demo(out="demo", *, n_atoms: Optional[int] = None, strain: float = 0.2, quick: bool = False,
             potential="LiSi-demo", device: str = "cpu", progress: bool = True) -> dict:
    """Run the demo into `out`; returns the summary (also out/summary.json)."""
    from .analysis.report import analyze_run
    from .calculator import AenetTorch
    from .md.protocol import Protocol
    from .md.run import run

    t0 = time.time()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    calc = AenetTorch(potential, device=device)
    if quick:
        n_atoms = n_atoms or 256
        strain = min(strain, 0.06)
        rate, relax = 5e10, 0.5
    else:
        rate, relax = 1e10, 2.0
    atoms, origin = starting_cell(n_atoms, calc, progress=progress)
    write_structure(out / "start.extxyz", atoms)
    protocol = Protocol(mode="tensile", axis="y", strain_rate=rate, temperature=300.0, timestep=1.0,
                        relax_time=relax, time=strain / rate * 1e12, pressure=1.0,
                        record_every=20 if quick else 50, frame_every=200 if quick else 1000,
                        checkpoint_every=1000)
    print(f"demo: {len(atoms)} atoms of a-Li13Si4 ({origin}); potential {potential}; "
          f"{relax:g} ps NVT at 300 K, then strain {strain:g} at {rate:.0e} 1/s along y, lateral 1 bar")
    run(atoms, calc, protocol, out / "run", progress=progress, potential_info=str(potential))
    strains = [s for s in (0.02, 0.04, 0.06) if s <= strain + 1e-9] if quick else \
        [s for s in (0.05, 0.10, 0.15, 0.20) if s <= strain + 1e-9]
    analysis = analyze_run(out / "run", strains=strains, window=(0.0, 0.02), progress=progress)
    e, uts = analysis["young_modulus_GPa"], analysis["ultimate_tensile_strength_GPa"]
    summary = {
        "atoms": len(atoms), "start": origin, "potential": str(potential), "quick": quick,
        "strain_rate_per_s": rate, "max_strain": strain, "nvt_ps": relax,
        "young_modulus_GPa": e, "ultimate_tensile_strength_GPa": uts,
        "seed_young_modulus_GPa": {"simulation": SEED_MODULUS_SIMULATION, "experiment_nanoindentation":
                                   SEED_MODULUS_EXPERIMENT},
        "files": {"stress_strain": str(out / "run" / "analysis" / "stress_strain.png"),
                  "shear_strain": [str(out / "run" / "analysis" / v) for k, v in analysis["images"].items()
                                   if k.startswith("shear_strain")],
                  "analysis": str(out / "run" / "analysis" / "summary.json"), "run": str(out / "run")},
        "wall_time_s": time.time() - t0,
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    print(f"Young's modulus {e['value']:.1f} +- {e['stderr']:.1f} GPa (fit to strain 0-2 %, R2 {e['r2']:.2f}); "
          f"seed: {SEED_MODULUS_SIMULATION} GPa (simulation), {SEED_MODULUS_EXPERIMENT} GPa (nanoindentation)")
    print(f"ultimate tensile strength {uts['stress']:.2f} GPa at strain {uts['strain']:.3f}")
    print(f"wrote {summary['files']['stress_strain']}, {len(summary['files']['shear_strain'])} shear-strain "
          f"pictures and {out / 'summary.json'} in {summary['wall_time_s']:.0f} s")
    return summary
