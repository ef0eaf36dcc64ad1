"""Analysis: stress-strain metrics on curves with known answers, atomic
strain, voids, rendering (looked at), LAMMPS logs, the analyze command."""

from __future__ import annotations

import json

import numpy as np
import pytest
from ase.build import bulk
from PIL import Image

from aenet_torch_ase.analysis.stress_strain import StressStrain, read_lammps_log

ovito = pytest.importorskip("ovito", reason="OVITO (pip install ovito) is needed for strain, voids, rendering")

E_TRUE = 45.0


def curve(strain, stress, label="synthetic"):
    return StressStrain(strain=np.asarray(strain, float), stress=np.asarray(stress, float), label=label)


def test_linear_then_plateau():
    e = np.linspace(0, 0.15, 301)
    s = np.where(e < 0.05, E_TRUE * e, E_TRUE * 0.05)
    c = curve(e, s)
    assert c.young_modulus()["value"] == pytest.approx(E_TRUE, rel=1e-6)
    assert c.young_modulus()["r2"] == pytest.approx(1.0, abs=1e-9)
    assert c.ultimate()["stress"] == pytest.approx(E_TRUE * 0.05, rel=0.01)
    y = c.yield_point()
    assert y["strain"] == pytest.approx(0.052, abs=0.002)
    assert c.failure_strain() is None
    assert c.toughness() == pytest.approx(0.5 * E_TRUE * 0.05**2 + E_TRUE * 0.05 * 0.10, rel=0.01)


def test_linear_then_drop():
    e = np.linspace(0, 0.12, 241)
    s = np.where(e <= 0.08, E_TRUE * e, np.maximum(E_TRUE * 0.08 * (1 - (e - 0.08) / 0.005), 0.0))
    c = curve(e, s)
    assert c.ultimate()["stress"] == pytest.approx(E_TRUE * 0.08, rel=0.05)
    assert c.ultimate()["strain"] == pytest.approx(0.08, abs=0.003)
    assert c.failure_strain()["strain"] == pytest.approx(0.08, abs=0.01)


def test_noisy_linear():
    rng = np.random.default_rng(0)
    e = np.linspace(0, 0.05, 501)
    c = curve(e, E_TRUE * e + rng.normal(0, 0.05, e.size))
    m = c.young_modulus((0.0, 0.02))
    assert abs(m["value"] - E_TRUE) < 4 * m["stderr"] and abs(m["value"] - E_TRUE) / E_TRUE < 0.05
    # smoothing does not shift a peak: symmetric bump stays where it is
    bump = curve(e, np.exp(-((e - 0.025) / 0.004) ** 2))
    assert bump.ultimate()["strain"] == pytest.approx(0.025, abs=1e-4)


def _modulus_errors(rng, phi, trials=300, n=201):
    """Fits of E over 0-2 % on E e + AR(1) noise (coefficient phi, GPa):
    (spread of the fitted E, mean reported stderr, mean independent-points
    stderr, mean statistical inefficiency)."""
    from scipy.signal import lfilter

    e = np.linspace(0.0, 0.02, n)
    fits = []
    for _ in range(trials):
        noise = lfilter([1.0], [1.0, -phi], rng.normal(0.0, 0.3, n + 200))[200:]  # stationary after 200 steps
        fits.append(curve(e, E_TRUE * e + noise).young_modulus((0.0, 0.02)))
    values = np.array([f["value"] for f in fits])
    return (values.std(ddof=1), np.mean([f["stderr"] for f in fits]),
            np.mean([f["stderr_independent"] for f in fits]), np.mean([f["inefficiency"] for f in fits]))


def test_modulus_error_allows_for_correlated_noise():
    """MD stress noise is correlated from record to record: the reported
    standard error of E must match the scatter of E over many noise
    realisations, where the independent-points error (phi = 0.6: half the
    scatter) falls short; with independent noise both agree."""
    rng = np.random.default_rng(7)
    spread, se, se_independent, g = _modulus_errors(rng, 0.6)
    assert 0.8 < se / spread < 1.2, (se, spread)
    assert se_independent / spread < 0.65  # what a plain least-squares error reports here
    assert 3.0 < g < 4.5  # (1 + phi) / (1 - phi) = 4, estimated from 201 records
    spread, se, se_independent, g = _modulus_errors(rng, 0.0)
    assert 0.85 < se / spread < 1.2 and 0.85 < se_independent / spread < 1.15 and g < 1.3, (se, spread, g)


def test_atomic_strain_affine_shear_and_rotation():
    from scipy.spatial.transform import Rotation

    from aenet_torch_ase.analysis.ovito_tools import atomic_strain

    ref = bulk("Cu", "fcc", a=3.6, cubic=True).repeat((4, 4, 4))
    gamma = 0.06
    F = np.eye(3)
    F[0, 1] = gamma
    sheared = ref.copy()
    sheared.set_cell(ref.cell.array @ F.T, scale_atoms=True)
    out = atomic_strain(sheared, ref, cutoff=3.0)
    # Green-Lagrangian E = (F^T F - I)/2; von Mises shear invariant of E
    E = 0.5 * (F.T @ F - np.eye(3))
    vm = np.sqrt(E[0, 1] ** 2 + E[1, 2] ** 2 + E[0, 2] ** 2
                 + ((E[0, 0] - E[1, 1]) ** 2 + (E[1, 1] - E[2, 2]) ** 2 + (E[0, 0] - E[2, 2]) ** 2) / 6)
    np.testing.assert_allclose(out["shear"], vm, rtol=1e-6)
    np.testing.assert_allclose(out["d2min"], 0.0, atol=1e-10)
    rot = Rotation.from_euler("xyz", [0.3, -0.5, 0.9]).as_matrix()
    rotated = ref.copy()
    rotated.set_cell(ref.cell.array @ rot.T, scale_atoms=True)
    np.testing.assert_allclose(atomic_strain(rotated, ref, cutoff=3.0)["shear"], 0.0, atol=1e-8)


def block_with_hole(radius):
    """Crystal block with a spherical cavity lined by atoms at `radius` (A)."""
    block = bulk("Cu", "fcc", a=3.6, cubic=True).repeat((9, 9, 9))
    c = block.cell.array.sum(0) / 2
    keep = np.linalg.norm(block.positions - c, axis=1) > radius + 1.0
    n = int(4 * np.pi * radius**2 / 4.5)  # lining atoms ~2.2 A apart (Fibonacci sphere)
    k = np.arange(n) + 0.5
    phi = np.arccos(1 - 2 * k / n)
    theta = np.pi * (1 + 5**0.5) * k
    shell = radius * np.stack([np.cos(theta) * np.sin(phi), np.sin(theta) * np.sin(phi), np.cos(phi)], 1) + c
    hole = block[keep]
    from ase import Atoms

    hole += Atoms(["Cu"] * n, positions=shell)
    return block, hole


def test_void_volume_of_a_spherical_hole():
    from aenet_torch_ase.analysis.ovito_tools import voids

    radius = 8.0
    block, hole = block_with_hole(radius)
    v = voids(hole, probe_radius=2.5)
    assert v["void_regions"] == 1
    assert v["void_volume_A3"] == pytest.approx(4 / 3 * np.pi * radius**3, rel=0.10)
    none = voids(block, probe_radius=2.5)
    assert none["void_regions"] == 0 and none["void_volume_A3"] == 0.0
    # a crack across the whole cross-section empties a slab; a hole does not
    from aenet_torch_ase.analysis.report import emptiest_slab_fraction

    z = block.positions[:, 2]
    cracked = block[(z < 14.0) | (z > 20.0)]
    assert emptiest_slab_fraction(cracked, 2) < 0.05
    assert emptiest_slab_fraction(hole, 2) > 0.3 and emptiest_slab_fraction(block, 2) > 0.5  # crystal planes alias


def image(path):
    return np.asarray(Image.open(path).convert("RGB"), dtype=float)


@pytest.mark.parametrize("renderer", ["auto", "matplotlib"])
def test_cross_section_picture_shows_the_field(tmp_path, renderer):
    """The rendered colours follow the strain field: with a left-to-right
    gradient the left of the picture is darker (inferno: low = dark) than
    with the reversed gradient, and the right brighter."""
    from aenet_torch_ase.analysis.ovito_tools import render_cross_section

    a = bulk("Cu", "fcc", a=3.6, cubic=True).repeat((6, 6, 6))
    gradient = a.positions[:, 0] / a.positions[:, 0].max() * 0.5
    kw = dict(axis=2, cmap="inferno", vmin=0, vmax=0.5, renderer=renderer)
    used = render_cross_section(a, tmp_path / "g.png", gradient, **kw)
    assert used in ("ovito", "matplotlib") and (renderer == "auto" or used == "matplotlib")
    render_cross_section(a, tmp_path / "r.png", 0.5 - gradient, **kw)
    g, r = image(tmp_path / "g.png").sum(2), image(tmp_path / "r.png").sum(2)
    assert g.shape == r.shape and g.std() > 20
    changed = np.abs(g - r) > 30  # pixels whose colour depends on the field
    assert changed.mean() > 0.05
    cols = np.nonzero(changed.any(0))[0]
    left, right = cols[: len(cols) // 4], cols[-len(cols) // 4:]
    assert g[:, left][changed[:, left]].mean() < r[:, left][changed[:, left]].mean() - 60
    assert g[:, right][changed[:, right]].mean() > r[:, right][changed[:, right]].mean() + 60


def write_lammps_log(path, c: StressStrain, axis="y"):
    cols = ["Step", "Time", "v_strain", "Pxx", "Pyy", "Pzz", "Temp"]
    lines = ["LAMMPS (29 Aug 2024)", "units metal", "Step Temp PotEng", "0 300 -100", "Loop time of 1 on 1 procs",
             "fix deform ...", " ".join(cols)]
    for k, (e, s) in enumerate(zip(c.strain, c.stress)):
        p = {"x": 0.0, "y": 0.0, "z": 0.0}
        p[axis] = -s * 1e4  # bar, compression positive
        lines.append(f"{k * 100} {k * 0.1:.6f} {float(e)!r} {float(p['x'])!r} {float(p['y'])!r} {float(p['z'])!r} 300.0")
    lines.append("Loop time of 10 on 2 procs for 1000 steps")
    path.write_text("\n".join(lines) + "\n")


def test_lammps_log_gives_the_same_summary(tmp_path):
    e = np.linspace(0, 0.12, 241)
    s = np.where(e <= 0.08, E_TRUE * e, np.maximum(E_TRUE * 0.08 * (1 - (e - 0.08) / 0.005), 0.0))
    c = curve(e, s)
    write_lammps_log(tmp_path / "log.lammps", c)
    blocks = read_lammps_log(tmp_path / "log.lammps")
    assert len(blocks) == 2 and len(blocks[1]["v_strain"]) == 241
    lam = StressStrain.from_lammps_log(tmp_path / "log.lammps", axis="y")
    a, b = c.summary(), lam.summary()
    for key in ("young_modulus_GPa", "ultimate_tensile_strength_GPa", "failure", "yield_0.2pct_offset"):
        for k2 in a[key] or {}:
            if isinstance(a[key][k2], float):
                assert b[key][k2] == pytest.approx(a[key][k2], rel=1e-9, abs=1e-12)
    assert b["toughness_GPa"] == pytest.approx(a["toughness_GPa"], rel=1e-9)


def test_analyze_command_end_to_end(tmp_path):
    from aenet_torch_ase.cli import main
    from aenet_torch_ase.md.protocol import Protocol
    from aenet_torch_ase.md.run import minimize, run
    from conftest import BinaryLennardJones

    calc = BinaryLennardJones()
    a = bulk("Li", "fcc", a=4.13, cubic=True).repeat((3, 3, 3))
    a.calc = calc
    minimize(a, fmax=1e-4, relax_cell=True)
    p = Protocol(mode="tensile", axis="x", temperature=20, timestep=4.0, relax_time=0.2, time=5.0,
                 strain_rate=1e10, pdamp_steps=250, record_every=10, frame_every=250, checkpoint_every=10000)
    run_a = run(a, calc, p, tmp_path / "A", progress=False)
    run_b = run(a, calc, Protocol(**{**p.to_dict(), "temperature": 40.0}), tmp_path / "B", progress=False)
    assert main(["analyze", str(run_a), str(run_b), "--strains", "0.05", "--cutoff", "4.0"]) == 0
    out = run_a / "analysis"
    summary = json.loads((out / "summary.json").read_text())
    assert 10 < summary["young_modulus_GPa"]["value"] < 60
    assert summary["series"]["strain"][0] == 0.0 and len(summary["series"]["strain"]) >= 5
    assert summary["series"]["mean_shear_strain"][-1] > summary["series"]["mean_shear_strain"][0]
    for name in ("stress_strain.png", "voids.png", "shear_strain_0.050.png", "section_x_0.050.png",
                 "report.md", "stress_strain_overlay.png"):
        assert (out / name).exists(), name
    report = (out / "report.md").read_text()
    assert "Young's modulus" in report and "shear_strain_0.050.png" in report
    # the stress-strain picture is a drawn curve, not an empty canvas
    pic = image(out / "stress_strain.png")
    assert (pic.sum(2) < 600).mean() > 0.005


def test_rendering_falls_back_to_matplotlib_and_says_so(tmp_path, monkeypatch):
    import aenet_torch_ase.analysis.ovito_tools as tools

    def broken(*args, **kwargs):
        raise RuntimeError("no Vulkan driver")

    monkeypatch.setattr(tools, "_render_ovito", broken)
    monkeypatch.setattr(tools, "_fallback_said", False)
    a = bulk("Cu", "fcc", a=3.6, cubic=True).repeat((3, 3, 3))
    with pytest.warns(UserWarning, match="OVITO rendering unavailable.*no Vulkan driver.*matplotlib"):
        assert tools.render_cross_section(a, tmp_path / "a.png", a.positions[:, 0]) == "matplotlib"
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # said once only
        assert tools.render_cross_section(a, tmp_path / "b.png", a.positions[:, 0]) == "matplotlib"
    assert image(tmp_path / "b.png").std() > 10


def test_noise_is_no_failure_and_no_yield(tmp_path):
    """A noisy linear curve (thermal noise of a small MD cell) has no failure and
    no yield point; a real sustained drop is failure, a partial drop is not."""
    rng = np.random.default_rng(3)
    e = np.linspace(0, 0.15, 1501)
    noisy = curve(e, 10.0 * e + rng.normal(0, 0.25, e.size))
    assert noisy.failure_strain() is None
    assert noisy.yield_point(window=(0.0, 0.04)) is None
    partial = curve(e, np.where(e < 0.1, 10 * e, 1.0 - 0.3 * (e > 0.1)))  # drops to 70 % of the UTS and holds
    assert partial.failure_strain() is None
    from aenet_torch_ase.analysis.stress_strain import plot_curves

    plot_curves([noisy], tmp_path / "n.png", window=(0.0, 0.04))
    assert (tmp_path / "n.png").stat().st_size > 10000
