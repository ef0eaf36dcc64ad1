"""Command line: `aenet-torch <command> ...`. Parses arguments and calls the
package's functions; no logic of its own."""

from __future__ import annotations

import argparse
import sys

from .errors import AenetError


def _predict(args):
    from .predict import run_predict

    run_predict(args.predict_in, args.structures or None, angular=args.angular, device=args.device)


def _info(args):
    from .io.nn_info import describe_nn
    from .io.potential_files import read_potential_file

    for k, path in enumerate(args.files):
        if k:
            print()
        print(describe_nn(read_potential_file(path)))


def _convert(args):
    from .io.conversion import convert_potential

    kind = convert_potential(args.input, args.output)
    print(f"wrote {args.output} ({kind})")


def _generate(args):
    from .training.commands import generate

    generate(args.generate_in, angular=args.angular)


def _train(args):
    from .training.commands import train

    train(args.train_in, out=args.out, resume=args.resume, overwrite=args.overwrite, device=args.device,
          dtype=args.dtype, epochs=args.epochs, checkpoint_every=args.checkpoint_every)


def _dataset_info(args):
    from .training.commands import info

    info(args.inputs, args.out)


def _demo(args):
    from .demo import DEFAULT_POTENTIAL, DEFAULT_STRAIN, run_demo

    potential = potential_spec(args.potential) if args.potential else ("LiSi-demo" if args.fast else DEFAULT_POTENTIAL)
    run_demo(args.out, n_atoms=args.atoms, strain=DEFAULT_STRAIN if args.strain is None else args.strain,
             quick=args.quick, potential=potential, device=args.device, axes=args.axes, overwrite=args.overwrite,
             trust_code=args.trust_model_code)


def _calculator(args, **kwargs):
    """AenetTorch of --potential (and --trust-model-code for a model.pt)."""
    from .calculator import AenetTorch

    return AenetTorch(potential_spec(args.potential), trust_code=getattr(args, "trust_model_code", False),
                      **kwargs)


def _duration(text, option):
    from .errors import ProtocolError
    from .md.protocol import parse_duration

    try:
        return parse_duration(text)
    except ValueError:
        raise ProtocolError(f"{option} {text!r}: give a duration such as 20ps, 500fs or 2ns") from None


def potential_spec(values):
    """['Li=Li.nn', 'Si=Si.nn'] -> dict; [path] -> path (directory or model.pt)."""
    if len(values) == 1 and "=" not in values[0]:
        return values[0]
    spec = {}
    for v in values:
        if "=" not in v:
            from .errors import InputFileError

            raise InputFileError(f"--potential: give 'Li=Li.nn Si=Si.nn', a directory or a model.pt, not {v!r}")
        sym, path = v.split("=", 1)
        spec[sym] = path
    return spec


def _build(args):
    from pathlib import Path

    from .analysis.pictures import plot_packing, plot_structure
    from .io.structure_files import write_structure
    from .md import packing, structures

    if args.kind == "bulk":
        atoms = structures.bulk(args.source, n_atoms=args.atoms, size=args.size)
    elif args.kind == "nanoparticle":
        atoms = structures.nanoparticle(structures.crystal(args.source), args.radius, vacuum=args.vacuum)
    elif args.kind == "amorphous":
        if not args.potential:
            from .errors import InputFileError

            raise InputFileError("build amorphous needs --potential (Li=Li.nn Si=Si.nn, a directory or model.pt)")
        calc = _calculator(args, device=args.device)
        atoms = structures.amorphous(args.source, args.atoms, calc, density=args.density, seed=args.seed,
                                     t_melt=args.t_melt, melt_time=args.melt_time, quench_time=args.quench_time)
        atoms.calc = None
    else:  # stack
        pk = packing.pack_spheres(args.particles, args.radii, args.box, fractions=args.fractions, seed=args.seed)
        plot_packing(pk, Path(args.out).with_suffix(".packing.png"))
        unit = structures.crystal(args.source)
        atoms = packing.stack_nanoparticles(pk, lambda r: structures.nanoparticle(unit, r),
                                            min_distance=args.min_distance, seed=args.seed)
    write_structure(args.out, atoms)
    plot_structure(atoms, Path(args.out).with_suffix(".png"))
    print(f"wrote {args.out}: {atoms.get_chemical_formula(mode='metal')}, {len(atoms)} atoms, "
          f"cell {' x '.join(f'{x:.1f}' for x in atoms.cell.lengths())} A (picture: {Path(args.out).with_suffix('.png')})")


def _stretch(args):
    from pathlib import Path

    from .errors import InputFileError
    from .io.xsf import read_structure
    from .md.protocol import Protocol
    from .md.run import run

    import torch

    out = Path(args.out)
    if args.resume and args.overwrite:
        raise InputFileError("--resume continues the run in --out, --overwrite replaces it: give one of them")
    if not args.resume and not args.structure:
        raise InputFileError("give the structure file (only --resume can do without it)")
    calc = _calculator(args, device=args.device, dtype=getattr(torch, args.dtype))
    if args.resume:  # the protocol, the structure and the state come from the run directory
        atoms = read_structure(args.structure) if args.structure else None
        run(atoms, calc, Protocol(), out, resume=True, potential_info=" ".join(args.potential))
        print(f"resumed and finished {out}")
        return
    mode = args.mode
    if mode == "tensile" and args.rate < 0:
        mode = "compress"
    protocol = Protocol(
        mode=mode, axis=args.axis, strain_rate=abs(args.rate) if mode == "compress" else args.rate,
        temperature=args.temperature, timestep=args.timestep, relax_time=_duration(args.relax, "--relax"),
        time=_duration(args.time, "--time"), pressure=args.pressure, lateral=args.lateral,
        minimize_fmax=args.fmax, record_every=args.record_every, frame_every=args.frame_every,
        checkpoint_every=args.checkpoint_every, seed=args.seed, fixed_fraction=args.fixed_fraction,
        pulled_fraction=args.pulled_fraction,
    )
    run(read_structure(args.structure), calc, protocol, out, overwrite=args.overwrite,
        potential_info=" ".join(args.potential))
    print(f"finished: {out}/stress_strain.csv, trajectory.extxyz, run.json")


def _analyze(args):
    from .analysis.report import analyze

    calc = _calculator(args, device=args.device) if args.potential else None
    summaries = analyze(args.runs, out=args.out, strains=args.strains, window=tuple(args.window),
                        cutoff=args.cutoff, probe_radius=args.probe, slab_width=args.slab_width, axis=args.axis,
                        calc=calc)
    for s in summaries:
        e, u = s["young_modulus_GPa"], s["ultimate_tensile_strength_GPa"]
        modulus = f"E = {e['value']:.2f} +/- {e['stderr']:.2f} GPa" if e["value"] is not None else \
            f"E not measured ({e['note']})"
        print(f"{s['label']}: {modulus}, UTS = {u['stress']:.2f} GPa "
              f"at {u['strain']:.2%} strain -> {s['label']}/analysis/report.md")


def _elastic(args):
    from pathlib import Path

    from .analysis.elastic import elastic_constants, format_report, write_report
    from .io.xsf import read_structure

    calc = _calculator(args, device=args.device)
    result = elastic_constants(read_structure(args.structure), calc, delta=args.delta, steps=args.steps,
                               relax_ions=not args.clamped, fmax=args.fmax)
    out = Path(args.out) if args.out else Path(args.structure).with_suffix(".elastic.json")
    write_report(result, out)
    print(format_report(result))
    print(f"wrote {out}")


def _lammps_export(args):
    from .io.xsf import read_structure
    from .lammps.export import export_run
    from .md.protocol import Protocol

    calc = _calculator(args)
    mode = {"tensile": "tensile", "compress": "compress", "pull": "pull", "nvt": "nvt"}[args.protocol]
    protocol = Protocol(mode=mode, axis=args.axis, strain_rate=abs(args.rate), temperature=args.temperature,
                        timestep=args.timestep, relax_time=_duration(args.relax, "--relax"),
                        time=_duration(args.time, "--time"),
                        pressure=args.pressure, lateral=args.lateral, record_every=args.record_every,
                        frame_every=args.frame_every, seed=args.seed, fixed_fraction=args.fixed_fraction,
                        pulled_fraction=args.pulled_fraction)
    out = export_run(args.out, read_structure(args.structure), protocol, calc.current_nn_files(), ascii=args.ascii,
                     plugin=args.plugin)
    print(f"wrote {out}/in.lammps, data.lmp, {', '.join(e + '.nn' for e in calc.elements)}, README.txt; "
          f"run: cd {out} && mpirun -np N lmp -in in.lammps")


def _trust_option(q):
    q.add_argument("--trust-model-code", action="store_true",
                   help="run the TorchScript code inside a model.pt (default: rebuild the model from the .nn "
                        "records it carries, running no code from the file); only for archives you trust")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="aenet-torch",
        description="aenet neural-network potentials in PyTorch and ASE.",
    )
    sub = p.add_subparsers(dest="command", required=True)

    q = sub.add_parser("predict", help="energies/forces like aenet's predict.x, from a predict.in")
    q.add_argument("predict_in", help="aenet predict.in (TYPES, NETWORKS, FILES, FORCES, ...)")
    q.add_argument("structures", nargs="*", help="structure files overriding FILES (XSF or any ASE format)")
    q.add_argument("--angular", choices=["2.0.4", "legacy"], default="2.0.4",
                   help="angular descriptor convention (legacy: potentials from aenet < 2.0.4)")
    q.add_argument("--device", default="cpu", help="torch device, e.g. cpu or cuda")
    q.set_defaults(func=_predict)

    q = sub.add_parser("info", help="describe .nn / .nn.ascii potential files")
    q.add_argument("files", nargs="+")
    q.set_defaults(func=_info)

    q = sub.add_parser("build", help="structure models: bulk, nanoparticle, amorphous, stack")
    q.add_argument("kind", choices=["bulk", "nanoparticle", "amorphous", "stack"])
    q.add_argument("source", help="crystal phase (Li13Si4, LiSi, Li15Si4, Li12Si7, Li7Si3) or structure file; "
                                  "for amorphous a composition such as LiSi3")
    q.add_argument("-o", "--out", required=True, help="output structure (extxyz or any ASE format); a PNG goes beside it")
    q.add_argument("--atoms", type=int, help="bulk: target atom count; amorphous: atom count")
    q.add_argument("--size", type=float, nargs=3, help="bulk: target box lengths (A)")
    q.add_argument("--radius", type=float, default=30.0, help="nanoparticle radius (A)")
    q.add_argument("--vacuum", type=float, default=10.0, help="nanoparticle: vacuum around it (A)")
    q.add_argument("--potential", nargs="+", help="amorphous: Li=Li.nn Si=Si.nn, a directory or model.pt")
    _trust_option(q)
    q.add_argument("--device", default="cpu")
    q.add_argument("--density", type=float, help="amorphous: g/cm^3 (default: Li-Si estimate)")
    q.add_argument("--t-melt", type=float, default=2000.0, help="amorphous: melt temperature (K)")
    q.add_argument("--melt-time", type=float, default=2000.0, help="amorphous: fs at t_melt")
    q.add_argument("--quench-time", type=float, default=5000.0, help="amorphous: fs of linear cooling to 300 K")
    q.add_argument("--particles", type=int, default=50, help="stack: number of nanoparticles")
    q.add_argument("--radii", type=float, nargs="+", default=[10.0, 15.0], help="stack: particle radii (A)")
    q.add_argument("--fractions", type=float, nargs="+", help="stack: share of each radius")
    q.add_argument("--box", type=float, nargs=3, default=[100.0, 100.0, 100.0], help="stack: pour box (A)")
    q.add_argument("--min-distance", type=float, default=2.0, help="stack: closest allowed atoms of two particles (A)")
    q.add_argument("--seed", type=int, default=0)
    q.set_defaults(func=_build)

    q = sub.add_parser("stretch", help="minimise, NVT, then uniaxial tension/compression (or pull) in ASE")
    q.add_argument("structure", nargs="?", help="structure file (extxyz, aenet XSF, CIF, LAMMPS data, ...); "
                                                "optional with --resume (the run's checkpoint holds it)")
    q.add_argument("--potential", nargs="+", required=True, help="Li=Li.nn Si=Si.nn, a directory, or model.pt")
    _trust_option(q)
    q.add_argument("--out", required=True, help="run directory (stress_strain.csv, trajectory.extxyz, run.json)")
    q.add_argument("--overwrite", action="store_true", help="replace an earlier run in --out (its files are removed)")
    q.add_argument("--mode", choices=["tensile", "compress", "pull", "nvt"], default="tensile",
                   help="pull: non-periodic particles/stacks between two rigid grips, one moving")
    q.add_argument("--axis", choices=["x", "y", "z"], default="y")
    q.add_argument("--rate", type=float, default=1e10, help="engineering strain rate, 1/s (negative compresses)")
    q.add_argument("--temperature", type=float, default=300.0, help="K")
    q.add_argument("--timestep", type=float, default=1.0, help="fs")
    q.add_argument("--relax", default="20ps", help="NVT relaxation before loading (e.g. 20ps, 500fs)")
    q.add_argument("--time", default="50ps", help="duration of the loading")
    q.add_argument("--pressure", type=float, default=1.0, help="lateral pressure, bar")
    q.add_argument("--lateral", choices=["npt", "fixed"], default="npt")
    q.add_argument("--fmax", type=float, default=0.01, help="minimisation force tolerance, eV/A (0 skips)")
    q.add_argument("--fixed-fraction", type=float, default=0.2,
                   help="pull: share of the length in the fixed grip (low side along the axis)")
    q.add_argument("--pulled-fraction", type=float, default=0.2,
                   help="pull: share of the length in the moving grip (high side)")
    q.add_argument("--record-every", type=int, default=100, help="steps between CSV rows")
    q.add_argument("--frame-every", type=int, default=1000, help="steps between trajectory frames")
    q.add_argument("--checkpoint-every", type=int, default=1000)
    q.add_argument("--seed", type=int, default=12345, help="initial velocities")
    q.add_argument("--resume", action="store_true", help="continue the run in --out from its checkpoint (same "
                                                          "potential; the structure is checked against it)")
    q.add_argument("--device", default="cpu")
    q.add_argument("--dtype", choices=["float64", "float32"], default="float64")
    q.set_defaults(func=_stretch)

    q = sub.add_parser("analyze", help="stress-strain metrics, shear strain, cross-sections, voids of run(s)")
    q.add_argument("runs", nargs="+", help="run directories (from stretch, or LAMMPS with log.lammps)")
    q.add_argument("--strains", type=float, nargs="+", default=[0.05, 0.10, 0.15],
                   help="strains for shear-strain pictures and cross-sections")
    q.add_argument("--window", type=float, nargs=2, default=[0.0, 0.02], help="elastic window for the modulus")
    q.add_argument("--cutoff", type=float, default=5.0, help="atomic-strain cutoff (A)")
    q.add_argument("--probe", type=float, default=2.5, help="probe radius for voids (A)")
    q.add_argument("--slab-width", type=float, default=5.0, help="cross-section thickness (A)")
    q.add_argument("--axis", choices=["x", "y", "z"], help="loading axis for LAMMPS logs (default y)")
    q.add_argument("--out", help="where the overlay of several runs goes")
    q.add_argument("--potential", nargs="+", help="the run's potential (Li=Li.nn Si=Si.nn, a directory or model.pt): "
                                                  "recomputes per-atom stress and energy of LAMMPS dump frames")
    _trust_option(q)
    q.add_argument("--device", default="cpu")
    q.set_defaults(func=_analyze)

    q = sub.add_parser("elastic", help="0 K elastic constants (relaxed ions, matscipy) and the moduli, as JSON")
    q.add_argument("structure", help="a relaxed periodic structure")
    q.add_argument("--potential", nargs="+", required=True, help="Li=Li.nn Si=Si.nn, a directory, model.pt or a "
                                                                  "bundled name (LiSi-Artrith2018)")
    _trust_option(q)
    q.add_argument("--delta", type=float, default=0.005, help="largest strain of each component (default 0.005)")
    q.add_argument("--steps", type=int, default=5, help="strains per component (default 5)")
    q.add_argument("--fmax", type=float, default=1e-3, help="ion relaxation tolerance, eV/A")
    q.add_argument("--clamped", action="store_true", help="do not relax the ions (clamped-ion constants)")
    q.add_argument("--out", help="JSON file (default: beside the structure, .elastic.json)")
    q.add_argument("--device", default="cpu")
    q.set_defaults(func=_elastic)

    q = sub.add_parser("lammps", help="hand a run over to LAMMPS (pair_style aenet)")
    lsub = q.add_subparsers(dest="lammps_command", required=True)
    q = lsub.add_parser("export", help="write .nn files, data.lmp and in.lammps for a protocol")
    q.add_argument("--potential", nargs="+", required=True, help="Li=Li.nn Si=Si.nn, a directory, or model.pt")
    _trust_option(q)
    q.add_argument("--structure", required=True)
    q.add_argument("--protocol", choices=["tensile", "compress", "pull", "nvt"], default="tensile")
    q.add_argument("--out", required=True)
    q.add_argument("--axis", choices=["x", "y", "z"], default="y")
    q.add_argument("--rate", type=float, default=1e10, help="strain rate, 1/s")
    q.add_argument("--temperature", type=float, default=300.0)
    q.add_argument("--timestep", type=float, default=1.0, help="fs")
    q.add_argument("--relax", default="20ps")
    q.add_argument("--time", default="50ps")
    q.add_argument("--pressure", type=float, default=1.0, help="bar")
    q.add_argument("--lateral", choices=["npt", "fixed"], default="npt")
    q.add_argument("--fixed-fraction", type=float, default=0.2, help="pull: share of the length in the fixed grip")
    q.add_argument("--pulled-fraction", type=float, default=0.2, help="pull: share of the length in the moving grip")
    q.add_argument("--record-every", type=int, default=100)
    q.add_argument("--frame-every", type=int, default=1000)
    q.add_argument("--seed", type=int, default=12345)
    q.add_argument("--ascii", action="store_true", help="also write .nn.ascii files")
    q.add_argument("--plugin", help="path of the built pair_style aenet plugin (aenetplugin.so): the deck loads it "
                                    "with 'plugin load' (or set LAMMPS_PLUGIN_PATH instead; see README.txt)")
    q.set_defaults(func=_lammps_export)

    q = sub.add_parser("demo", help="stretch a-Li13Si4 with the published Li-Si potential (bundled) and analyse it")
    q.add_argument("--out", default="demo", help="output folder (default ./demo)")
    q.add_argument("--atoms", type=int, help="cell size (bundled pre-relaxed cells: 1024, 256; other sizes "
                                            "are made first: melt-quenched from 1200 K with a short-range wall, ~0.5 h for 1,024 atoms)")
    q.add_argument("--strain", type=float,
                   help="final engineering strain (default 0.15: the demo's ten-minute budget; --quick: 0.03)")
    q.add_argument("--quick", action="store_true", help="about two minutes: the same cell (1,024 atoms), 0.5 ps NVT, "
                                                        "then strain along y to 3 %% at 1e10 1/s (the elastic part only)")
    q.add_argument("--potential", nargs="+", help="instead of the bundled LiSi-Artrith2018: a bundled name (LiSi-demo), "
                                                  "Li=Li.nn Si=Si.nn, a directory or model.pt")
    q.add_argument("--axes", choices=["y", "xyz"], help="xyz (default; --quick: y): after the ramp along y, elastic "
                                                        "ramps along x and z to the end of the fit window, and the "
                                                        "mean modulus of the three; y: the ramp along y only")
    q.add_argument("--fast", action="store_true", help="the small distilled LiSi-demo potential (2 fs steps; about "
                                                       "2x too soft: for trying the pipeline, not for numbers)")
    _trust_option(q)
    q.add_argument("--overwrite", action="store_true", help="replace an earlier demo in --out")
    q.add_argument("--device", default="cpu")
    q.set_defaults(func=_demo)

    q = sub.add_parser("generate", help="featurise the structures of an aenet generate.in (cached training set)")
    q.add_argument("generate_in", help="aenet generate.in (OUTPUT, TYPES, SETUPS, FILES, FORCES, FORCESPERCENT)")
    q.add_argument("--angular", choices=["2.0.4", "legacy"], default="2.0.4",
                   help="angular descriptor convention (default: aenet >= 2.0.4)")
    q.set_defaults(func=_generate)

    q = sub.add_parser("train", help="train networks from an aenet-PyTorch train.in; writes .nn and .nn.ascii")
    q.add_argument("train_in", help="train.in (TRAININGSET, NETWORKS, METHOD, FORCES, ...)")
    q.add_argument("--out", help="folder for the log, plots and checkpoint (default: beside train.in)")
    q.add_argument("--resume", action="store_true", help="continue from the checkpoint in --out")
    q.add_argument("--overwrite", action="store_true", help="replace an earlier training in --out (its files "
                                                             "and networks are removed first)")
    q.add_argument("--device", help="torch device (default cpu; MEMORY_MODE gpu picks cuda)")
    q.add_argument("--dtype", choices=["float64", "float32"], help="default float64")
    q.add_argument("--epochs", type=int, help="override ITERATIONS")
    q.add_argument("--checkpoint-every", type=int, help="epochs between checkpoints (default 50)")
    q.set_defaults(func=_train)

    q = sub.add_parser("dataset-info", help="counts, composition and energy ranges of a data set, with a figure")
    q.add_argument("inputs", nargs="+", help="a generate.in, or structure files (XSF, extxyz, ...)")
    q.add_argument("--out", default=".", help="folder for dataset_info.json and composition.png")
    q.set_defaults(func=_dataset_info)

    q = sub.add_parser("convert", help="convert .nn <-> .nn.ascii (direction from the input's content)")
    q.add_argument("input")
    q.add_argument("output")
    q.set_defaults(func=_convert)
    return p


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        args.func(args)
    except AenetError as err:
        print(f"aenet-torch {args.command}: error: {err}", file=sys.stderr)
        return 2
    except OSError as err:  # files and folders: missing, unreadable, read-only, disk full
        what = f"{err.strerror}: {err.filename}" if err.strerror and err.filename else str(err)
        print(f"aenet-torch {args.command}: error: {what}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as err:
        print(f"interrupted{': ' + str(err) if str(err) else ''}", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
