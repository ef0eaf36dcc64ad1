"""Hand a run over to LAMMPS: `.nn` files, data file and input deck.

`export_run(out, atoms, protocol, nn_files)` writes into `out`:
- `<El>.nn` (binary aenet, bare names: aenet-LAMMPS takes the species from
  the file name up to the first '.', and copies names into short buffers);
- `data.lmp` (atom_style atomic, metal units, masses; triclinic cells in
  LAMMPS's lower-triangular form, positions rotated to match; atom types
  in the order of the `pair_style aenet` line);
- `in.lammps`, generated from the same `Protocol` the ASE runner uses
  (minimise, NVT relax, then tension/compression with `fix deform erate` +
  `fix npt` on the lateral axes, or NVT, or pull), with thermo output of
  time, strain, pxx/pyy/pzz, lx/ly/lz, temp, pe and dumps (positions and
  velocities at full precision) that OVITO and `aenet-torch analyze` read;
- `README.txt`: which LAMMPS build is needed and how to run it.

Units in the deck (LAMMPS metal): time ps, pressure bar, erate 1/ps.

What `pair_style aenet` (aenet-lammps) gives: the total energy, the forces
and the global virial are right; it computes no per-atom virial and tallies
each atom's energy on one atom, so `compute stress/atom` holds only the
kinetic term and `compute pe/atom` is meaningless. The deck therefore dumps
neither: `aenet-torch analyze DECK --potential ...` recomputes per-atom
stress and energy of each dumped frame with AenetTorch (`analysis.atomic_stress`).
The minimiser stops on the largest per-atom force (`min_modify norm max`),
the ASE runner's `fmax` criterion, and the neighbour skin is 1 A (aenet-lammps
loops over the whole list, cutoff + skin).
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Dict, Optional

import numpy as np
from ase.data import atomic_masses, atomic_numbers

from ..io.atomic_write import atomic_write_text
from ..io.nn_binary import write_nn
from ..io.nn_file import NNFile
from ..md.protocol import Protocol

AXES = "xyz"


def rmin_array_factor(nn: NNFile) -> float:
    """aenet-LAMMPS allocates per atom ~ ((Rc_max + Rc_min/2)/(Rc_min/2))^3 * 0.74 neighbour slots."""
    half = max(nn.rc_min, 1e-6) / 2
    return ((nn.rc_max + half) / half) ** 3 * 0.7405


def write_data(path, atoms, elements) -> None:
    """LAMMPS data file (atom_style atomic, metal units, masses)."""
    import io

    from ase.io.lammpsdata import write_lammps_data

    buf = io.StringIO()
    write_lammps_data(buf, atoms, specorder=list(elements), masses=True, units="metal", atom_style="atomic",
                      force_skew=bool(atoms.cell.rank == 3 and not atoms.cell.orthorhombic))
    atomic_write_text(str(path), buf.getvalue())


def pair_lines(elements, nn_names: Optional[Dict[str, str]] = None, pair_style: Optional[str] = None,
               pair_coeff: Optional[str] = None) -> str:
    """The pair_style/pair_coeff lines: aenet by default, or a stand-in."""
    if pair_style is not None:
        return f"pair_style      {pair_style}\npair_coeff      {pair_coeff or '* *'}\n"
    names = " ".join(nn_names[e] for e in elements)
    return f"pair_style      aenet {names}\npair_coeff      * *\n"


#: neighbour-list skin (A): aenet-lammps evaluates every pair of the list (cutoff + skin), so a small
#: skin saves 16-22 % of its CPU time against LAMMPS's metal default of 2 A
SKIN = 1.0
#: dumped per-atom columns: positions and velocities (per-atom stress is recomputed, see above)
DUMP_COLUMNS = "id type element x y z vx vy vz"


def _minimize_lines(p: Protocol):
    # norm max: stop when the largest per-atom force is below fmax (the ASE criterion), not
    # the 2-norm of the whole force vector, which a large cell never brings below fmax
    return ["min_style       cg", "min_modify      norm max",
            f"minimize        0.0 {p.minimize_fmax:g} {p.minimize_steps} {10 * p.minimize_steps}",
            "reset_timestep  0"]


def _dump_lines(name: str, every: int, elements) -> list:
    return [f"dump            frames all custom {every} {name} {DUMP_COLUMNS}",
            f"dump_modify     frames element {' '.join(elements)} sort id format float %.15g"]


def deck(protocol: Protocol, elements, *, periodic=True, pair: str = "", data_file: str = "data.lmp",
         pull_area: Optional[float] = None, plugin: Optional[str] = None) -> str:
    """Text of in.lammps for `protocol` (see the module docstring). pull_area:
    the cross-section (A^2) for the pull stress (`md.stress.cross_section`)."""
    p = protocol
    ax = AXES[p.axis_index]
    lateral = [a for a in AXES if a != ax]
    dt_ps = p.timestep * 1e-3
    tdamp_ps = p.tdamp * 1e-3
    pdamp_ps = p.pdamp * 1e-3
    erate_per_ps = p.signed_rate * 1e-12
    masses = "".join(f"mass            {k + 1} {atomic_masses[atomic_numbers[e]]:.6f}  # {e}\n"
                     for k, e in enumerate(elements))
    lines = [
        f"# aenet-torch-ase: {p.mode} along {ax}, generated from the same Protocol as the ASE run",
        f"# {p.to_dict()}",
        "units           metal",
        "atom_style      atomic",
        f"boundary        {'p p p' if periodic else 's s s'}",
        f"read_data       {data_file}",
        masses.rstrip("\n"),
    ]
    if plugin:
        lines += ["# pair_style aenet built as a LAMMPS plugin (or set LAMMPS_PLUGIN_PATH and drop this line)",
                  f"plugin          load {plugin}"]
    lines += [
        pair.rstrip("\n"),
        f"neighbor        {SKIN:g} bin",
        "neigh_modify    every 1 delay 0 check yes",
        f"timestep        {dt_ps:g}",
        "",
        "# pair_style aenet computes no per-atom virial and no meaningful per-atom energy: the dumps hold",
        "# positions and velocities; 'aenet-torch analyze . --potential ...' recomputes per-atom stress",
        "# (GPa, atomic volume V/N, kinetic term from the velocities) and energy for every frame.",
        "",
        "thermo_style    custom step time temp pe ke etotal press pxx pyy pzz pxy pxz pyz lx ly lz vol",
        f"thermo          {p.record_every}",
        "thermo_modify   flush yes",
    ]
    if p.minimize_fmax > 0:
        lines += ["", "# ---- minimisation (conjugate gradients, fixed box; largest per-atom force < fmax eV/A)"]
        lines += _minimize_lines(p)
    if p.mode == "pull":
        block = {"low": ["INF"] * 6, "high": ["INF"] * 6}
        block["low"][2 * p.axis_index + 1] = "${b1}"
        block["high"][2 * p.axis_index] = "${b2}"
        lines += [
            "",
            f"# ---- pull grips (rigid, not thermostatted): the lowest {p.fixed_fraction:g} and the highest "
            f"{p.pulled_fraction:g} of the extent along {ax}",
            f"variable        lo equal bound(all,{ax}min)",
            f"variable        hi equal bound(all,{ax}max)",
            f"variable        b1 equal v_lo+{p.fixed_fraction:.10g}*(v_hi-v_lo)",
            f"variable        b2 equal v_hi-{p.pulled_fraction:.10g}*(v_hi-v_lo)",
            f"region          low block {' '.join(block['low'])} units box",
            f"region          high block {' '.join(block['high'])} units box",
            "group           fixed region low",
            "group           pulled region high",
            "group           grips union fixed pulled",
            "group           free subtract all grips",
            "velocity        grips set 0.0 0.0 0.0",
            "compute         tfree free temp",
            "thermo_modify   temp tfree",
        ]
        thermo_group = "free"
    else:
        thermo_group = "all"
    lines += [
        "",
        "# ---- NVT relaxation (Nose-Hoover chain)",
        f"velocity        {thermo_group} create {p.temperature:g} {p.seed} dist gaussian mom yes rot yes",
        f"fix             nvt {thermo_group} nvt temp {p.temperature:g} {p.temperature:g} {tdamp_ps:g}",
        *_dump_lines("dump.relax.lammpstrj", p.frame_every, elements),
        f"run             {p.relax_steps if p.mode != 'nvt' else p.load_steps}",
        "undump          frames",
    ]
    if p.mode in ("tensile", "compress"):
        lines += [
            "",
            f"# ---- uniaxial {'tension' if p.signed_rate > 0 else 'compression'} along {ax}: L(t) = L0 (1 + erate t)",
            "reset_timestep  0",
            f"variable        L0 equal l{ax}",
            f"variable        L0c equal ${{L0}}",
            f"variable        strain equal (l{ax}-v_L0c)/v_L0c",
        ]
        if p.lateral == "npt":
            lines += ["unfix           nvt",
                      f"fix             npt all npt temp {p.temperature:g} {p.temperature:g} {tdamp_ps:g} "
                      + " ".join(f"{a} {p.pressure:g} {p.pressure:g} {pdamp_ps:g}" for a in lateral)]
        lines += [
            f"fix             deform all deform 1 {ax} erate {erate_per_ps:g} remap x",
            "thermo_style    custom step time v_strain temp pe ke etotal press pxx pyy pzz pxy pxz pyz lx ly lz vol",
            f"thermo          {p.record_every}",
            *_dump_lines("dump.load.lammpstrj", p.frame_every, elements),
            f"run             {p.load_steps}",
        ]
    elif p.mode == "pull":
        velocity = " ".join("${speed}" if a == ax else "0.0" for a in AXES)
        lines += [
            "",
            "# ---- pull: the high grip moves rigidly at rate x L0 (A/ps), L0 = the gap between the grips;",
            "# stress = pulling force (minus the sum of the forces on the moving grip) / cross-section",
            "reset_timestep  0",
            f"variable        L0 equal bound(pulled,{ax}min)-bound(fixed,{ax}max)",
            "variable        L0c equal ${L0}",
            f"variable        com0 equal xcm(pulled,{ax})",
            "variable        com0c equal ${com0}",
            f"variable        speed equal {p.signed_rate * 1e-12:.10g}*v_L0c",
            f"fix             move pulled move linear {velocity} units box",
            f"compute         fgrip pulled reduce sum f{ax}",
            f"variable        strain equal (xcm(pulled,{ax})-v_com0c)/v_L0c",
            "variable        fpull equal -c_fgrip*1.602176634",
            f"variable        spull equal -c_fgrip/{pull_area:.10g}*160.21766208",
            "thermo_style    custom step time v_strain v_fpull v_spull temp pe ke etotal",
            "thermo_modify   temp tfree flush yes",
            f"thermo          {p.record_every}",
            *_dump_lines("dump.load.lammpstrj", p.frame_every, elements),
            f"run             {p.load_steps}",
        ]
    lines += ["", "write_data      final.data"]
    return "\n".join(lines) + "\n"


README = """LAMMPS input generated by aenet-torch-ase {version}

Files: {nn} (aenet potentials), data.lmp (structure; atom types {types}), in.lammps (protocol).

Needs LAMMPS with the aenet pair style (aenet-lammps: `pair_style aenet`, linked with aenet's library;
building it for current LAMMPS, as a plugin or compiled in: see docs/lammps.md of aenet-torch-ase). The deck
itself uses only core LAMMPS commands (fix nvt/npt/deform/move, compute reduce, dump custom).

Loading the plugin, either way:
  - a line `plugin load /path/to/aenetplugin.so` before pair_style in in.lammps
    (`aenet-torch lammps export --plugin /path/to/aenetplugin.so` writes it{plugin_note}), or
  - no edit: `export LAMMPS_PLUGIN_PATH=/path/to/folder/of/the/plugin` before running lmp
    (LAMMPS loads every *plugin.so in that folder at start-up).

Run on N MPI ranks in this directory:

    mpirun -np N lmp -in in.lammps

Output: log.lammps (thermo: time ps, strain, pxx pyy pzz bar, lx ly lz A, temp K, pe eV), dump.*.lammpstrj
(positions and velocities at full precision) and final.data.

pair_style aenet gives the right total energy, forces and global virial (the thermo pressures), but no
per-atom virial and no meaningful per-atom energy, so the deck dumps neither. Per-atom stress (GPa, atomic
volume V/N, kinetic term from the dumped velocities) and per-atom energies are recomputed for every frame by

    aenet-torch analyze . --axis {axis} --potential {nn_spec}

(analysis/atomic_stress.extxyz). Units: LAMMPS metal (A, eV, ps, bar). Tension positive stress = -pressure.
"""


def export_run(out, atoms, protocol: Protocol, nn_files: Dict[str, NNFile], *, ascii: bool = False,
               stand_in: Optional[tuple] = None, plugin: Optional[str] = None) -> Path:
    """Write the LAMMPS hand-over of `atoms` + `protocol` into `out`.

    nn_files: {symbol: NNFile} (e.g. `AenetTorch(...).current_nn_files()`).
    stand_in: (pair_style, pair_coeff) to replace aenet, e.g. for tests with
        a LAMMPS build without aenet.
    plugin: path of a built aenet pair-style plugin; the deck loads it
        (`plugin load`) before `pair_style aenet`.
    """
    from .. import __version__
    from ..io.nn_ascii import write_nn_ascii

    from ..io.run_dirs import check_writable

    if atoms.pbc.any() and not atoms.pbc.all():
        from ..errors import StructureError

        raise StructureError(f"the structure's pbc is {atoms.pbc.tolist()}: the LAMMPS deck takes a fully periodic "
                             f"cell or a non-periodic particle or stack (a film periodic along two axes: run it "
                             f"with 'aenet-torch stretch --mode pull' in ASE)")
    out = check_writable(Path(out), "LAMMPS deck folder")
    symbols = set(atoms.get_chemical_symbols())
    missing = sorted(symbols - set(nn_files))
    if missing:
        from ..errors import SpeciesError

        raise SpeciesError(f"the structure contains {missing} but the potential covers only {sorted(nn_files)}")
    # the element order of the model's files (their env order), never dict order of the user
    ref_env = nn_files[sorted(nn_files)[0]].envtypes
    elements = sorted(nn_files, key=ref_env.index)
    names = {}
    for e in elements:
        nn = nn_files[e]
        names[e] = f"{e}.nn"
        write_nn(nn, out / names[e])
        if ascii:
            write_nn_ascii(nn, out / f"{e}.nn.ascii")
        factor = rmin_array_factor(nn)
        if factor > 5000:
            warnings.warn(
                f"{e}.nn: RMIN = {nn.rc_min:g} A with Rc = {nn.rc_max:g} A makes aenet-LAMMPS allocate "
                f"~{factor:.0f} neighbour slots per atom per step (slow); set a realistic minimal distance",
                stacklevel=2,
            )
    periodic = bool(atoms.pbc.all())
    work = atoms.copy()
    if not periodic:
        # shrink-wrapped boundaries: give LAMMPS an orthogonal box around the atoms
        lo = work.positions.min(0) - 5.0
        work.positions -= lo
        work.set_cell(np.diag(work.positions.max(0) + 5.0))
        work.pbc = False
    write_data(out / "data.lmp", work, elements)
    area = None
    if protocol.mode == "pull":  # the cross-section of the structure as handed over (the deck minimises it first)
        from ..md.run import _pull_setup

        area = _pull_setup(work, protocol)["area"]
    pair = pair_lines(elements, names, *(stand_in or (None, None)))
    if plugin is not None:
        plugin = str(Path(plugin).resolve())
    atomic_write_text(str(out / "in.lammps"), deck(protocol, elements, periodic=periodic, pair=pair,
                                                   pull_area=area, plugin=plugin))
    atomic_write_text(str(out / "README.txt"), README.format(
        version=__version__, nn=", ".join(names[e] for e in elements),
        types=" ".join(f"{k + 1}={e}" for k, e in enumerate(elements)), axis=protocol.axis,
        nn_spec=" ".join(f"{e}={names[e]}" for e in elements),
        plugin_note=f"; this deck loads {plugin}" if plugin else "; this deck has no such line"))
    return out
