"""The pull test of particles and stacks: grips, thermostat, force and
stress definitions (checked against the periodic crystal's modulus), the
cross-section, where bonds break, and pulling until failure."""

from __future__ import annotations

import csv
import json

import ase.io
import numpy as np
import pytest
from ase import units
from ase.build import bulk

from aenet_torch_ase import ProtocolError
from aenet_torch_ase.analysis.fracture import crack_origin, radial_profile
from aenet_torch_ase.analysis.stress_strain import StressStrain
from aenet_torch_ase.md.protocol import Protocol
from aenet_torch_ase.md.pulling import pull_until_failure
from aenet_torch_ase.md.run import _pull_setup, minimize, run
from aenet_torch_ase.md.stress import GPA, atomic_volume, cross_section
from aenet_torch_ase.md.structures import nanoparticle
from aenet_torch_ase.md.thermostat import NoseHooverChainNVT
from conftest import BinaryLennardJones


def rows(run_dir, stage):
    with open(run_dir / "stress_strain.csv") as f:
        return [r for r in csv.DictReader(f) if r["stage"] == stage]


def column(rs, name):
    return np.array([float(r[name]) for r in rs])


@pytest.fixture(scope="module")
def lj_unit():
    """Relaxed 4-atom fcc cell of the Lennard-Jones stand-in (Li), 0 K."""
    unit = bulk("Li", "fcc", a=4.11, cubic=True)
    unit.calc = BinaryLennardJones()
    assert minimize(unit, fmax=1e-7, relax_cell=True)
    unit.set_cell(np.diag(np.diag(unit.cell.array)), scale_atoms=True)
    return unit


def test_own_nose_hoover_chain_equals_ases():
    """With no atom held, the package's NVT integrator is ASE's NoseHooverChainNVT."""
    from ase.md.nose_hoover_chain import NoseHooverChainNVT as AseNHC

    a = bulk("Li", "fcc", a=4.11, cubic=True).repeat(2)
    a.rattle(0.05, seed=1)
    a.set_momenta(np.random.default_rng(0).normal(0, 0.3, (len(a), 3)))
    b = a.copy()
    a.calc, b.calc = BinaryLennardJones(), BinaryLennardJones()
    ours = NoseHooverChainNVT(a, 2 * units.fs, 300.0, 100 * units.fs)
    theirs = AseNHC(b, 2 * units.fs, temperature_K=300.0, tdamp=100 * units.fs)
    ours.run(100)
    theirs.run(100)
    np.testing.assert_allclose(a.positions, b.positions, atol=1e-10)
    np.testing.assert_allclose(a.get_momenta(), b.get_momenta(), atol=1e-10)
    np.testing.assert_allclose(ours.eta, theirs._thermostat._eta, rtol=1e-9)
    # and the conserved quantity is conserved
    e0 = None
    for _ in range(5):
        ours.run(20)
        e = a.get_potential_energy() + a.get_kinetic_energy() + ours.thermostat_energy()
        e0 = e if e0 is None else e0
        assert abs(e - e0) < 2e-4 * len(a)


@pytest.mark.parametrize("sheared", [False, True])
def test_own_mtk_barostat_equals_ases(sheared):
    """The package's masked MTK integrator (the tensile test's lateral
    barostat) is ASE's MaskedMTKNPT, with one calculator call per step, and
    conserves its energy: in a box along the axes (its per-axis shortcut)
    and in a sheared cell (the general eigenbasis)."""
    from ase.md.nose_hoover_chain import MaskedMTKNPT

    from aenet_torch_ase.md.barostat import MaskedMTK

    a = bulk("Li", "fcc", a=4.11, cubic=True).repeat(2)
    if sheared:
        a.set_cell(a.cell.array + [[0.0, 0.4, 0.2], [0.3, 0.0, 0.0], [0.0, -0.5, 0.0]], scale_atoms=True)
    a.rattle(0.05, seed=1)
    a.set_momenta(np.random.default_rng(0).normal(0, 0.3, (len(a), 3)))
    b = a.copy()
    a.calc, b.calc = BinaryLennardJones(), BinaryLennardJones()
    mask = np.array([True, False, True])
    start = a.cell.array.copy()
    ours = MaskedMTK(a, 2 * units.fs, 300.0, 1e-3, 100 * units.fs, 200 * units.fs, mask)
    theirs = MaskedMTKNPT(b, 2 * units.fs, temperature_K=300.0, pressure_au=1e-3, tdamp=100 * units.fs,
                          pdamp=200 * units.fs, mask=mask)
    calls = [0]
    calculate = a.calc.calculate

    def counted(*args, **kwargs):
        calls[0] += 1
        return calculate(*args, **kwargs)

    a.calc.calculate = counted
    ours.run(100)
    theirs.run(100)
    assert calls[0] == 101  # one per step, and the first step's start
    assert ours._aligned is not sheared
    if not sheared:
        assert abs(a.cell[0, 0] - 4.11 * 2) > 1e-3 and a.cell[1, 1] == pytest.approx(4.11 * 2, abs=1e-12)
    assert np.abs(a.cell.array - start).max() > 1e-3  # the barostat moved the cell
    np.testing.assert_allclose(a.cell.array, b.cell.array, atol=1e-10)
    np.testing.assert_allclose(a.positions, b.positions, atol=1e-10)
    np.testing.assert_allclose(a.get_momenta(), b.get_momenta(), atol=1e-10)
    np.testing.assert_allclose(ours.p_c, theirs._p_c, atol=1e-10)
    e0 = ours.conserved_energy()
    assert e0 == pytest.approx(theirs.get_conserved_energy(), abs=1e-8)
    ours.run(200)
    assert abs(ours.conserved_energy() - e0) < 2e-4 * len(a)


def test_cross_section_of_a_rod_a_sphere_and_a_film(lj_unit):
    """A crystal rod's cross-section is its width x depth; a sphere cut at R
    from a bulk, ~pi R^2; a film periodic across the axis, the cell's face."""
    a0 = lj_unit.cell[0, 0]
    rod = lj_unit.repeat((5, 5, 8))
    rod.pbc = False
    area = cross_section(rod, 2, rod.positions[:, 2].mean())
    assert area == pytest.approx(25 * a0**2, rel=0.08)  # corners and the a/2 margin: within 8 %
    assert atomic_volume(rod) == pytest.approx(a0**3 / 4, rel=0.1)  # estimated from neighbour counts
    glass = lj_unit.repeat(6)
    ball = nanoparticle(glass, 10.0)
    assert ball.info["atomic_volume"] == pytest.approx(a0**3 / 4)
    assert cross_section(ball, 1, ball.positions[:, 1].mean()) == pytest.approx(np.pi * 10.0**2, rel=0.1)
    film = rod.copy()
    film.pbc = [True, True, False]
    film.cell = np.diag([5 * a0, 5 * a0, 100.0])
    assert cross_section(film, 2, 0.0) == pytest.approx(25 * a0**2, rel=1e-12)


def test_pull_grips_thermostat_and_force(tmp_path):
    """Grips are rigid (the fixed one stays, the moving one translates by
    rate x L0 x t along the axis only), the free atoms are at the set
    temperature (the grips are no degrees of freedom), strain and force
    follow their definitions, and a pulled particle pulls back."""
    calc = BinaryLennardJones()
    particle = nanoparticle(bulk("Li", "fcc", a=4.11, cubic=True), 7.0, vacuum=6.0)
    p = Protocol(mode="pull", axis="z", temperature=40.0, timestep=4.0, relax_time=2.0, time=1.2, fixed_fraction=0.35,
                 pulled_fraction=0.35,
                 strain_rate=5e10, minimize_fmax=1e-3, record_every=10, frame_every=50, checkpoint_every=1000)
    out = run(particle, calc, p, tmp_path / "pull", progress=False)
    assert json.loads((out / "run.json").read_text())["status"] == "finished"
    relax = rows(out, "relax")
    # free atoms at 40 K (counting the held atoms as degrees of freedom, ASE-style, heats them by N / N_free)
    assert column(relax, "temperature_K")[len(relax) // 2:].mean() == pytest.approx(40.0, rel=0.15)
    load = rows(out, "load")
    frames = [f for f in ase.io.read(out / "trajectory.extxyz", ":") if f.info["stage"] == "load"]
    held = frames[0].arrays["held"].astype(bool)
    minimised = particle.copy()
    minimised.positions = frames[0].positions  # held atoms did not move since the minimisation
    ref = _pull_setup(minimised, p)
    assert set(np.flatnonzero(held)) == set(ref["fixed"]) | set(ref["pulled"])
    shift = frames[-1].positions - frames[0].positions
    np.testing.assert_allclose(shift[ref["fixed"]], 0.0, atol=1e-12)
    expected = 5e10 * ref["L0"] * frames[-1].info["time_ps"] * 1e-12
    np.testing.assert_allclose(shift[ref["pulled"]], [[0.0, 0.0, expected]] * len(ref["pulled"]), atol=1e-9)
    strain, t = column(load, "strain"), column(load, "time_ps")
    np.testing.assert_allclose(strain, 5e10 * t * 1e-12, rtol=1e-9, atol=1e-12)
    # the recorded force is minus the sum of the forces on the moving grip, the stress that over the area
    last = frames[-1].copy()
    last.calc = calc
    f = -last.get_forces(apply_constraint=False)[ref["pulled"], 2].sum()
    assert float(load[-1]["pull_force_nN"]) == pytest.approx(f * 1.602176634, rel=1e-6)
    pull = json.loads((out / "run.json").read_text())["pull"]  # the geometry, as cut after the minimisation
    assert pull["gauge_length_A"] == pytest.approx(ref["L0"], rel=1e-8)  # frames hold 8 decimals
    assert float(load[-1]["pull_stress_GPa"]) == pytest.approx(f / pull["cross_section_A2"] / GPA, rel=1e-6)
    assert column(load, "pull_force_nN")[-10:].mean() > 0.2  # stretched by 6 %: it pulls back


def test_pull_stress_of_a_film_gives_the_crystals_modulus(tmp_path, lj_unit):
    """The known answer: a crystal film periodic across the axis, pulled the
    pull protocol's way at 1 K, has as initial slope of stress (force / area)
    against strain (grip displacement / gap) the crystal's C11 along the
    axis (lateral box fixed: uniaxial strain), from finite differences of
    the periodic cell's stress. Within 10 %: the slope is fitted to 200
    noisy points, and waves from the grip's start ring through the film."""
    calc = BinaryLennardJones()
    a0 = lj_unit.cell[0, 0]

    def szz(e):
        c = lj_unit.copy()
        c.calc = calc
        c.set_cell(np.diag([a0, a0, a0 * (1 + e)]), scale_atoms=True)
        return c.get_stress(voigt=False)[2, 2] / GPA

    c11 = (szz(1e-3) - szz(-1e-3)) / 2e-3
    film = lj_unit.repeat((3, 3, 6))
    film.pbc = [True, True, False]
    film.cell[2, 2] = 60.0
    p = Protocol(mode="pull", axis="z", temperature=1.0, timestep=4.0, relax_time=0.4, time=2.5,
                 strain_rate=4e9, minimize_fmax=1e-4, record_every=5, frame_every=10000, checkpoint_every=10000)
    out = run(film, calc, p, tmp_path / "film", progress=False)
    e = StressStrain.from_run(out).young_modulus((0.0, 0.01))
    assert e["value"] == pytest.approx(c11, rel=0.10), (e, c11)
    assert e["stderr_independent"] < 0.05 * c11
    # the waves make the residuals correlated: the error that allows for it is larger, within the 10 %
    assert e["stderr_independent"] < e["stderr"] < 0.10 * c11


def test_pull_needs_a_free_part_and_no_pbc_along_the_axis(tmp_path):
    with pytest.raises(ProtocolError, match="no free part"):
        Protocol(mode="pull", fixed_fraction=0.5, pulled_fraction=0.5)
    rod = bulk("Li", "fcc", a=4.11, cubic=True).repeat((2, 2, 4))
    with pytest.raises(ProtocolError, match="not periodic along z"):
        run(rod, BinaryLennardJones(), Protocol(mode="pull", axis="z"), tmp_path / "r", progress=False)


def test_radial_profile_finds_breaking_at_the_centre(lj_unit):
    """Bonds stretched only near the centre: the broken bonds' mean r/R is
    below that of all bonds; stretched only at the surface: above."""
    ball = nanoparticle(lj_unit.repeat(5), 9.0)
    centre = ball.positions.mean(0)
    r = np.linalg.norm(ball.positions - centre, axis=1)

    def swollen(where):
        f = ball.copy()
        f.positions = centre + (ball.positions - centre) * np.where(where, 1.6, 1.0)[:, None]
        f.info["strain"] = 0.1
        return f

    inner = radial_profile([ball, swollen(r < 4.0)])
    outer = radial_profile([ball, swollen(r > 7.0)])
    assert crack_origin(inner, 0.1)["mean_r_broken"] < inner["mean_r_all"] - 0.2
    assert crack_origin(outer, 0.1)["mean_r_broken"] > outer["mean_r_all"] + 0.1
    assert np.nansum(inner["fraction"][0][3:]) == 0  # no broken bond in the outer shells


def test_pull_until_failure_stops_after_the_break(tmp_path):
    """A small particle pulled fast breaks; the run stops 5 % strain later,
    paused with a checkpoint and the reason in run.json; a second call
    returns the stopped run without running again."""
    calc = BinaryLennardJones()
    particle = nanoparticle(bulk("Li", "fcc", a=4.11, cubic=True), 6.0, vacuum=6.0)
    p = Protocol(mode="pull", axis="z", temperature=20.0, timestep=4.0, relax_time=0.2, time=12.0,
                 strain_rate=5e10, minimize_fmax=1e-3, record_every=10, frame_every=500, checkpoint_every=250)
    out = pull_until_failure(particle, calc, p, tmp_path / "p", chunk_steps=250, progress=False)
    meta = json.loads((out / "run.json").read_text())
    assert meta["status"] == "paused" and "failed" in meta["stopped"]
    curve = StressStrain.from_run(out)
    fail = curve.failure_strain()
    assert fail is not None and curve.strain[-1] < 0.5  # stopped well before the protocol's 60 %
    assert curve.strain[-1] >= fail["strain"] + 0.05
    # and it did not stop later than it had to: one chunk (250 steps) earlier it had not broken yet
    chunk = 250 * 4e-15 * 5e10
    sel = curve.strain <= curve.strain[-1] - chunk + 1e-9
    earlier = StressStrain(curve.strain[sel], curve.stress[sel])
    f_earlier = earlier.failure_strain()
    assert f_earlier is None or earlier.strain[-1] < f_earlier["strain"] + 0.05
    # frames written after a resume keep what the structure carries (a particle's radius, a stack's 'particle')
    last = ase.io.read(out / "trajectory.extxyz", -1)
    assert last.info["radius"] == 6.0 and last.info["step"] > 250
    mtime = (out / "stress_strain.csv").stat().st_mtime_ns
    pull_until_failure(particle, calc, p, out, chunk_steps=250, progress=False)
    assert (out / "stress_strain.csv").stat().st_mtime_ns == mtime


@pytest.mark.parametrize("where, low, high", [(0.0, 0.0, 0.3), (0.5, 0.35, 0.65)])
def test_void_profile_locates_a_cavity(lj_unit, where, low, high):
    """A cavity opened at the centre (or at R/2) of a particle: the first
    void growth is found in that frame, at its distance from the centre."""
    from aenet_torch_ase.analysis.fracture import first_voids, void_growth_inside_out, void_profile

    ball = nanoparticle(lj_unit.repeat(8), 14.0)
    centre = ball.positions.mean(0)
    spot = centre + np.array([where * 14.0, 0.0, 0.0])
    gone = np.linalg.norm(ball.positions - spot, axis=1) < 5.5
    ball.arrays["held"] = gone.astype(int)  # atoms taken out: not part of the material's centre
    holed = ball.copy()
    holed.positions[gone] += [100.0, 0.0, 0.0]  # moved far away: a cavity of radius ~5.5 A
    ball.info["strain"], holed.info["strain"] = 0.0, 0.1
    profile = void_profile([ball, ball, holed])
    first = first_voids(profile)
    assert first["strain"] == 0.1
    assert sum(profile["void_volume_A3"][0]) < 20  # the crystal has no voids
    assert low <= first["mean_r_new_voids"] <= high  # shell-weighted (6 shells of 0.25 R)
    growth = void_growth_inside_out(profile)
    inside, outside = growth["inner_growth_pct"], growth["outer_growth_pct"]
    assert (inside > 5 * max(outside, 0.1)) if where == 0.0 else (inside > 0.5 and outside > 0.5)
