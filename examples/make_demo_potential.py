"""Rebuild the bundled "LiSi-demo" potential: a small aenet potential
distilled from the published Li-Si aenet potential (the teacher).

    python examples/make_demo_potential.py --teacher ../shared/reference/LiSi-Artrith2018 \
        --out demo-build [--quick] [--install]

1. Structures across Li_x Si, x = 0 .. 4.4: random alloys and the five
   Li-Si crystals, relaxed, then Langevin MD with the teacher up a
   temperature ladder 300-1500 K (snapshots every 100 fs; the ladder stops
   where the teacher lets two atoms collapse, which hot Li-rich alloys do),
   strained and sheared copies, slabs with surfaces, clusters cut from the
   snapshots, nanoparticle fragments and rattled crystals; and 128-atom
   amorphous cells relaxed to zero stress, run at 300 K, with uniaxially
   strained copies (+-4 %): the configurations of the mechanical tests. Each is labelled with the teacher's energy and forces
   and written as aenet XSF (eV, eV/A).
2. `generate.in`, `train.in` and the fingerprint setups, then this
   package's `generate` and `train` (the same as `aenet-torch generate` /
   `aenet-torch train`).
3. Errors against the teacher on a held-out set made with other seeds.
4. With --install: copy Li.nn, Si.nn and a model card into the package
   (`aenet_torch_ase/data/potentials/LiSi-demo/`), and make the demo's
   pre-relaxed a-Li13Si4 cells (`data/structures/a-Li13Si4_*.extxyz`,
   `aenet_torch_ase.demo.make_cell`).

The teacher is aenet-tinker's example potential `Li/Si.15t-15t.nn-02170`
(MPL-2.0, N. Artrith, A. Urban et al.). --quick makes a tiny set and trains a
few epochs (for CI): it checks the procedure, not the potential.
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from pathlib import Path

import numpy as np
from ase import Atoms, units
from ase.md.langevin import Langevin
from ase.md.velocitydistribution import MaxwellBoltzmannDistribution
from tqdm import tqdm

from aenet_torch_ase.calculator import AenetTorch
from aenet_torch_ase.io.xsf import write_xsf
from aenet_torch_ase.md.structures import closest_pair, crystal, nanoparticle, random_alloy
from aenet_torch_ase.training.commands import generate, train

COMPOSITIONS = [0.0, 0.25, 0.5, 0.75, 1.0, 1.33, 1.71, 2.0, 2.33, 2.71, 3.25, 3.75, 4.4]  # Li per Si
ELASTIC_COMPOSITIONS = [0.33, 1.0, 2.33, 3.25, 3.75]
SETUP = """DESCR
  LiSi-demo (aenet-torch-ase): Chebyshev descriptor, Artrith, Urban, Ceder, PRB 96, 014112 (2017)
END DESCR
ATOM {atom}
ENV 2
Li
Si
RMIN 0.75d0
BASIS type=Chebyshev
radial_Rc = 6.0  radial_N = 10 angular_Rc = 3.5  angular_N = 4
"""


def composition_name(x: float) -> str:
    return f"Li{x:g}Si"


#: closest approach (A) accepted in MD snapshots: the teacher, like most ANN
#: potentials, has no data at short range, and hot Li-rich liquids can
#: collapse into fused pairs (seen: 0.1 A at 1500 K); a trajectory stops there
#: (the closest Si-Si approach in hot liquid Si with the teacher is ~1.85 A)
MIN_DISTANCE = 1.7
#: highest force (eV/A) of a labelled structure kept for training
MAX_FORCE = 15.0


#: temperature ladder (K) of the MD: each stage starts from the last frame
#: of the previous one; the ladder stops where the teacher lets a pair collapse
LADDER = (300.0, 600.0, 900.0, 1200.0, 1500.0)


def md_snapshots(atoms, calc, rng, *, temperature, steps, every, timestep=1.0):
    """Langevin MD at `temperature`; snapshots every `every` steps (until a
    pair comes closer than MIN_DISTANCE)."""
    atoms = atoms.copy()
    atoms.calc = calc
    MaxwellBoltzmannDistribution(atoms, temperature_K=temperature, rng=rng)
    dyn = Langevin(atoms, timestep * units.fs, temperature_K=temperature, friction=0.02, rng=rng, fixcm=False)
    frames = []
    for _ in range(0, steps, every):
        dyn.run(every)
        if closest_pair(atoms) < MIN_DISTANCE:
            break
        snapshot = atoms.copy()
        snapshot.info["temperature_K"] = temperature
        frames.append(snapshot)
    return frames


def ladder(start, calc, rng, steps, every):
    """Relax (FIRE), then MD up the temperature LADDER; all snapshots."""
    from ase.optimize import FIRE

    atoms = start.copy()
    atoms.calc = calc
    FIRE(atoms, logfile=None).run(fmax=0.1, steps=300)
    frames = []
    for temperature in LADDER:
        stage = md_snapshots(atoms, calc, rng, temperature=temperature, steps=steps, every=every)
        frames += stage
        if len(stage) < steps // every:  # collapsed: no hotter stages
            break
        atoms = stage[-1]
    return frames


def strained(atoms, rng, max_strain=0.08):
    """Copy with a random symmetric strain (uniaxial, volumetric and shear parts)."""
    eps = rng.uniform(-max_strain, max_strain, (3, 3))
    eps = 0.5 * (eps + eps.T)
    out = atoms.copy()
    out.set_cell(atoms.cell.array @ (np.eye(3) + eps), scale_atoms=True)
    return out


def slab(atoms, vacuum=8.0):
    out = atoms.copy()
    out.wrap()
    cell = out.cell.array.copy()
    cell[2] *= (np.linalg.norm(cell[2]) + vacuum) / np.linalg.norm(cell[2])
    out.set_cell(cell)
    out.pbc = [True, True, False]
    return out


def cluster(atoms, radius, rng):
    out = atoms.copy()
    center = rng.random(3) @ out.cell.array
    pos = out.positions - center
    frac = np.linalg.solve(out.cell.array.T, pos.T).T
    frac -= np.round(frac)
    pos = frac @ out.cell.array
    keep = np.linalg.norm(pos, axis=1) < radius
    if keep.sum() < 4:
        return None
    c = Atoms(np.array(out.get_chemical_symbols())[keep], positions=pos[keep] + radius + 6.0,
              cell=[2 * radius + 12.0] * 3, pbc=False)
    return c


def make_structures(calc, seed: int, quick: bool):
    """All structure kinds, unlabelled (ASE Atoms with info['kind'])."""
    rng = np.random.default_rng(seed)
    n_atoms = 32 if quick else 64
    steps, every = (200, 100) if quick else (1000, 100)
    comps = COMPOSITIONS[::4] if quick else COMPOSITIONS
    out = []

    def add_derived(frames, label):
        for f in frames:
            f.info["kind"] = f"md {label}"
            out.append(f)
        for f in frames[::2]:
            s = strained(f, rng)
            s.info["kind"] = f"strained {label}"
            out.append(s)
        for f in frames[1::4]:
            s = slab(f)
            s.info["kind"] = f"surface {label}"
            out.append(s)
            c = cluster(f, 5.5, rng)
            if c is not None:
                c.info["kind"] = f"cluster {label}"
                out.append(c)

    for x in tqdm(comps, desc="MD (temperature ladder)", unit="composition"):
        comp = {"Li": x, "Si": 1.0} if x > 0 else "Si"
        start = random_alloy(comp, n_atoms, min_distance=2.1, seed=int(rng.integers(1 << 30)))
        add_derived(ladder(start, calc, rng, steps, every), composition_name(x))
    # near-equilibrium amorphous bulk at 300 K, relaxed to zero stress, plus
    # uniaxially strained copies: the configurations of the mechanical tests
    for x in tqdm(ELASTIC_COMPOSITIONS[:1] if quick else ELASTIC_COMPOSITIONS, desc="300 K bulk", unit="composition"):
        start = random_alloy({"Li": x, "Si": 1.0}, 64 if quick else 128, min_distance=2.1,
                             seed=int(rng.integers(1 << 30)))
        start.calc = calc
        from ase.filters import FrechetCellFilter
        from ase.optimize import FIRE

        FIRE(FrechetCellFilter(start, mask=[1, 1, 1, 0, 0, 0]), logfile=None).run(fmax=0.05, steps=500)
        frames = md_snapshots(start, calc, rng, temperature=300.0, steps=steps * 2, every=every)
        for f in frames:
            f.info["kind"] = f"bulk300 {composition_name(x)}"
            out.append(f)
            for _ in range(2):
                e = np.eye(3)
                axis = int(rng.integers(3))
                e[axis, axis] += rng.uniform(-0.04, 0.04)
                s = f.copy()
                s.set_cell(f.cell.array @ e, scale_atoms=True)
                s.info["kind"] = f"bulk300-strained {composition_name(x)}"
                out.append(s)
    for name in ("Li13Si4", "LiSi", "Li15Si4", "Li12Si7", "Li7Si3"):
        cr = crystal(name)
        if not quick:
            big = cr.repeat([max(1, int(np.ceil(10.0 / h))) for h in cr.cell.lengths()])
            add_derived(ladder(big, calc, rng, steps // 2, every)[:: 2], f"crystal-{name}")
        for k in range(1 if quick else 4):
            r = cr.copy()
            r.rattle(0.05 + 0.05 * k, seed=int(rng.integers(1 << 30)))
            r = strained(r, rng, 0.04)
            r.info["kind"] = f"crystal {name}"
            out.append(r)
        for radius in ((5.0,) if quick else (5.0, 6.5)):
            p = nanoparticle(cr, radius, center=rng.random(3) @ cr.cell.array, vacuum=6.0)
            p.rattle(0.05, seed=int(rng.integers(1 << 30)))
            p.info["kind"] = f"nanoparticle {name}"
            out.append(p)
    return out


def label_and_write(structures, calc, folder: Path, prefix: str):
    """Teacher energies and forces, as XSF files; structures with a pair
    closer than MIN_DISTANCE or a force above MAX_FORCE are left out."""
    folder.mkdir(parents=True, exist_ok=True)
    paths, kinds, dropped = [], [], 0
    for atoms in tqdm(structures, desc="labelling", unit="structure"):
        a = atoms.copy()
        a.calc = calc
        e, f = a.get_potential_energy(), a.get_forces()
        if len(a) > 1 and (closest_pair(a) < MIN_DISTANCE or np.abs(f).max() > MAX_FORCE):
            dropped += 1
            continue
        path = folder / f"{prefix}{len(paths):05d}.xsf"
        write_xsf(path, a, energy=e, forces=f)
        paths.append(path)
        kinds.append(atoms.info.get("kind", ""))
    print(f"labelled {len(paths)} structures into {folder} ({dropped} left out: pair < {MIN_DISTANCE} A "
          f"or force > {MAX_FORCE} eV/A)")
    return paths, kinds


def errors_against_teacher(paths, student):
    """Energy RMSE per atom (eV/atom) and force RMSE over per-atom vectors (eV/A)."""
    from aenet_torch_ase.training.dataset import load_structures

    de, df = [], []
    for r in load_structures(paths):
        a = r.atoms.copy()
        a.calc = student
        de.append((a.get_potential_energy() - r.energy) / len(a))
        df.append(np.linalg.norm(a.get_forces() - r.forces, axis=1))
    de, df = np.array(de), np.concatenate(df)
    return {"energy_rmse_eV_per_atom": float(np.sqrt(np.mean(de**2))), "energy_mae_eV_per_atom": float(np.abs(de).mean()),
            "force_rmse_eV_per_A": float(np.sqrt(np.mean(df**2))), "force_mae_eV_per_A": float(df.mean()),
            "structures": len(de), "atoms": int(df.size)}


def young_modulus_0k(atoms, calc, strain: float = 0.01) -> float:
    """Relaxed-ion Young's modulus along y at 0 K (GPa): +-1 % strain, positions
    and the lateral box lengths relaxed."""
    from ase.filters import FrechetCellFilter
    from ase.optimize import FIRE

    base = atoms.copy()
    base.calc = calc
    FIRE(FrechetCellFilter(base, mask=[1, 1, 1, 0, 0, 0]), logfile=None).run(fmax=0.005, steps=2000)
    stress = []
    for eps in (-strain, strain):
        a = base.copy()
        a.calc = calc
        cell = a.cell.array.copy()
        cell[1] *= 1 + eps
        a.set_cell(cell, scale_atoms=True)
        FIRE(FrechetCellFilter(a, mask=[1, 0, 1, 0, 0, 0]), logfile=None).run(fmax=0.005, steps=3000)
        stress.append(a.get_stress()[1] * 160.21766208)
    return (stress[1] - stress[0]) / (2 * strain)


def modulus_text(card: dict) -> str:
    m = card.get("young_modulus_0K_GPa")
    if not m:
        return ""
    return (f"**Elastic response.** Relaxed-ion Young's modulus at 0 K of a 256-atom a-Li13Si4 cell "
            f"(+-1 % strain): {m['student']:.0f} GPa with this potential, {m['teacher']:.0f} GPa with the "
            f"teacher on the same cell. The demo potential is about {m['teacher'] / m['student']:.1f} x too "
            f"soft: its stress-strain curves show the method, not Li-Si's stiffness (the seed: 45 GPa).\n\n")


def model_card(card: dict) -> str:
    """MODEL_CARD.md text from the numbers of this build."""
    h, t = card["held_out"], card["test_split"]
    kinds = ", ".join(f"{v} {k}" for k, v in card["kinds"].items())
    return f"""# LiSi-demo: a small Li-Si aenet potential for demonstrations

**What it is.** Li and Si networks (2 x 15 tanh) on a Chebyshev descriptor
(radial 6.0 A / order 10, angular 3.5 A / order 4), trained with
aenet-torch-ase (`examples/make_demo_potential.py`) to reproduce the
published Li-Si aenet potential `Li/Si.15t-15t.nn-02170` from aenet-tinker
(example 02; N. Artrith, A. Urban et al.; MPL-2.0), the *teacher*. It is a
demo distilled from an ANN potential, **not fitted to DFT**: use it to try
the package, not for results. Files: `Li.nn`, `Si.nn` (aenet binary format;
they work in predict.x and LAMMPS `pair_style aenet` as well).

**Data.** {card["training_structures"]} structures made by the script and
labelled by the teacher ({kinds}): Li_x Si for x = 0 .. 4.4, 64-atom random
alloys and the crystals, relaxed and run by Langevin MD up a temperature
ladder 300, 600, ..., 1500 K (1 ps each, snapshots every 100 fs, stopped
where the teacher lets two atoms collapse: Li-rich alloys reach only 300-600
K), randomly strained/sheared copies (up to 8 %), slabs with
surfaces, clusters cut from snapshots, rattled crystals and R = 5-6.5 A
nanoparticles of Li13Si4, LiSi, Li15Si4, Li12Si7 and Li7Si3, and 128-atom
amorphous Li_x Si cells (x = 0.33, 1, 2.33, 3.25, 3.75) relaxed to zero
stress and run at 300 K, with uniaxially strained copies (+-4 %). Snapshots
where two atoms came closer than 1.7 A (the hot Li-rich liquid collapses
with the teacher) and structures with forces above 15 eV/A are left out.
Atomic reference energies are the teacher's (Li -1.89539614, Si -5.4252709
eV), so "cohesive" energies are formation-like energies.

**Training.** AdamW, learning rate 5e-3 decaying to 5e-5, batch 32,
{card["epochs"]} epochs (best on test: {card["best_epoch"]}), loss
0.5 RMSE(E/atom) + 0.5 RMSE(F) in aenet's normalised units, forces from
50 % of the structures, 10 % test split, float32.

**Errors against the teacher** (energy RMSE per atom; force RMSE over
per-atom force vectors):

| set | energy RMSE (meV/atom) | force RMSE (eV/A) |
|-----|------------------------|-------------------|
| test split ({int(round(0.1 * card["training_structures"]))} structures) | {t["energy_rmse_test"] * 1000:.1f} | {t["force_rmse_test"]:.3f} |
| held-out set, other seeds ({h["structures"]} structures, {h["atoms"]} atoms) | {h["energy_rmse_eV_per_atom"] * 1000:.1f} | {h["force_rmse_eV_per_A"]:.3f} |

{modulus_text(card)}**Not good for:** anything quantitative; compositions, temperatures or
densities outside the data above: hot Li-rich alloys (above ~600 K it lets
Li atoms collapse onto each other, as its teacher does, so the demo's
a-Li13Si4 cells are annealed at 500 K, not melted), compressed states,
isolated small molecules; its short cutoff (6 A) and small networks trade
accuracy for speed. Errors add to the teacher's own errors
against DFT (the teacher was trained on ~42,000 DFT structures).

**Cite** for the teacher: N. Artrith, A. Urban, G. Ceder, J. Chem. Phys.
148, 241711 (2018); aenet: N. Artrith, A. Urban, Comput. Mater. Sci. 114,
135 (2016); the Chebyshev descriptor: N. Artrith, A. Urban, G. Ceder,
Phys. Rev. B 96, 014112 (2017).
"""


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--teacher", required=True, help="folder with Li.15t-15t.nn and Si.15t-15t.nn")
    p.add_argument("--out", default="demo-build")
    p.add_argument("--quick", action="store_true", help="tiny data set and a few epochs (for CI)")
    p.add_argument("--epochs", type=int, default=None)
    p.add_argument("--install", action="store_true", help="copy the result into the package data")
    p.add_argument("--seed", type=int, default=2026)
    args = p.parse_args()
    t0 = time.time()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    teacher_dir = Path(args.teacher)
    teacher = AenetTorch({"Li": str(teacher_dir / "Li.15t-15t.nn"), "Si": str(teacher_dir / "Si.15t-15t.nn")})
    e_atom = dict(zip(teacher.nn_files["Li"].type_names, teacher.nn_files["Li"].e_atom))

    # 1. training structures and a held-out set (other seed)
    train_paths, kinds = label_and_write(make_structures(teacher, args.seed, args.quick), teacher, out / "xsf", "s")
    held_out, _ = label_and_write(make_structures(teacher, args.seed + 1, True), teacher, out / "xsf-heldout", "h")

    # 2. input files, then generate + train
    for atom in ("Li", "Si"):
        (out / f"{atom}.fingerprint.stp").write_text(SETUP.format(atom=atom))
    (out / "generate.in").write_text(
        "OUTPUT LiSi-demo.train\n\nTYPES\n2\n" + "".join(f"{e} {v:.10f}\n" for e, v in e_atom.items())
        + "\nSETUPS\nLi Li.fingerprint.stp\nSi Si.fingerprint.stp\n\nFORCES\nFORCESPERCENT 50\n\nFILES\n"
        + f"{len(train_paths)}\n" + "".join(f"{p.relative_to(out)}\n" for p in train_paths))
    epochs = args.epochs or (5 if args.quick else 800)
    (out / "train.in").write_text(
        f"TRAININGSET LiSi-demo.train\nTESTPERCENT 10\nITERATIONS {epochs}\nITERWRITE {1 if args.quick else 10}\n"
        "BATCHSIZE 32\nNPSEED 1\nPHSEED 1\n\nFORCES\nalpha=0.5\n\nMETHOD\nmethod=adamw lr=0.005 lr_final=0.00005\n\n"
        "REGULARIZATION 0.0001\n\nNETWORKS\n  Li  Li.nn  2  15:tanh 15:tanh\n  Si  Si.nn  2  15:tanh 15:tanh\n")
    generate(out / "generate.in")
    summary = train(out / "train.in", out=out / "training", dtype="float32", checkpoint_every=100, overwrite=True)

    # 3. errors against the teacher on held-out structures
    student = AenetTorch({"Li": str(out / "Li.nn"), "Si": str(out / "Si.nn")})
    held = errors_against_teacher(held_out, student)
    counts = {}
    for k in kinds:
        counts[k.split()[0]] = counts.get(k.split()[0], 0) + 1
    card = {"training_structures": len(train_paths), "kinds": counts, "held_out": held,
            "test_split": summary["best_test"], "epochs": summary["epochs"], "best_epoch": summary["best_epoch"],
            "wall_time_s": time.time() - t0}
    from aenet_torch_ase.demo import BUNDLED_CELLS

    if BUNDLED_CELLS[256].is_file():
        import ase.io

        cell = ase.io.read(BUNDLED_CELLS[256])
        card["young_modulus_0K_GPa"] = {"student": young_modulus_0k(cell, student),
                                        "teacher": young_modulus_0k(cell, teacher)}
    (out / "model_card.json").write_text(json.dumps(card, indent=2) + "\n")
    print(json.dumps(card, indent=2))

    # 4. into the package
    if args.install:
        dest = Path(__file__).resolve().parents[1] / "aenet_torch_ase" / "data" / "potentials" / "LiSi-demo"
        dest.mkdir(parents=True, exist_ok=True)
        for e in ("Li", "Si"):
            shutil.copy(out / f"{e}.nn", dest / f"{e}.nn")
        shutil.copy(out / "model_card.json", dest / "model_card.json")
        (dest / "MODEL_CARD.md").write_text(model_card(card))
        # the demo's pre-relaxed a-Li13Si4 cells, made with the new potential
        from aenet_torch_ase.demo import BUNDLED_CELLS, make_cell
        from aenet_torch_ase.io.structure_files import write_structure

        demo_calc = AenetTorch(dest)
        for n, path in BUNDLED_CELLS.items():
            cell, how = make_cell(n, demo_calc, seed=n)
            cell.info["made_by"] = f"examples/make_demo_potential.py: {how}, LiSi-demo potential"
            write_structure(path, cell)
        print(f"installed into {dest}")


if __name__ == "__main__":
    main()
