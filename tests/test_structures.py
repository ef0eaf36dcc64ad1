"""Structure models: bulk supercells, amorphous alloys, nanoparticles, packings, stacks."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial import cKDTree

from aenet_torch_ase import StructureError
from aenet_torch_ase.analysis.order import radial_distribution, structure_factor
from aenet_torch_ase.md.packing import pack_spheres, stack_nanoparticles
from aenet_torch_ase.md.structures import (
    CRYSTALS, amorphous, bulk, closest_pair, crystal, density_of, lisi_volume_per_atom, nanoparticle,
    parse_composition, random_alloy,
)
from aenet_torch_ase.md.guard import PairTerm
from conftest import BinaryLennardJones


def test_packaged_crystals():
    formulas = {"Li13Si4": "Li26Si8", "LiSi": "Li16Si16", "Li15Si4": "Li60Si16", "Li12Si7": "Li96Si56",
                "Li7Si3": "Li42Si18"}
    for name in CRYSTALS:
        a = crystal(name)
        assert a.get_chemical_formula(mode="metal") == formulas[name]
        assert closest_pair(a) > 2.2
    with pytest.raises(StructureError, match="LiSi3"):
        crystal("LiSi3")


def test_bulk_by_size_and_count():
    # the seed's ~100,000-atom Li13Si4 tensile model, 106 x 126 x 120 A
    big = bulk("Li13Si4", size=(106, 126, 120))
    lengths = big.cell.lengths()
    assert np.all(np.abs(lengths - [106, 126, 120]) <= crystal("Li13Si4").cell.lengths() / 2 + 1e-9)
    assert 90_000 < len(big) < 110_000
    assert big.get_chemical_formula(mode="metal", empirical=True) == "Li13Si4"
    for n in (500, 2000, 8000):
        a = bulk("LiSi", n_atoms=n)
        assert abs(len(a) - n) / n < 0.35
        assert max(a.cell.lengths()) / min(a.cell.lengths()) < 2.0
    with pytest.raises(StructureError, match="exactly one"):
        bulk("LiSi")


def test_composition_and_density():
    assert parse_composition("Li13Si4") == {"Li": 13.0, "Si": 4.0}
    assert parse_composition("LiSi3") == {"Li": 1.0, "Si": 3.0}
    with pytest.raises(StructureError):
        parse_composition("Li13Xx4")
    # a-Si at 2.28 g/cm^3 and Li15Si4 at its crystal density are the end points
    si = random_alloy("Si", 64, seed=0)
    assert density_of(si) == pytest.approx(2.28, rel=1e-6)
    li15 = random_alloy("Li15Si4", 190, seed=0)
    assert density_of(li15) == pytest.approx(density_of(crystal("Li15Si4")), rel=0.01)
    # lithiation swells silicon: the volume per Si grows, the mass density falls
    per_si = [lisi_volume_per_atom(c) * (1 + x) for c, x in (("Si", 0), ("LiSi3", 1 / 3), ("LiSi", 1), ("Li13Si4", 3.25))]
    assert np.all(np.diff(per_si) > 0)
    dens = [density_of(random_alloy(c, 120, seed=0)) for c in ("Si", "LiSi3", "LiSi", "Li13Si4", "Li15Si4")]
    assert np.all(np.diff(dens) < 0)


@pytest.mark.parametrize("composition", ["LiSi3", "LiSi", "Li13Si4"])
def test_random_alloy_composition_and_distances(composition):
    a = random_alloy(composition, 300, seed=3, min_distance=2.1)
    comp = parse_composition(composition)
    frac_li = comp.get("Li", 0) / sum(comp.values())
    assert abs(a.get_chemical_symbols().count("Li") / len(a) - frac_li) < 1 / len(a) + 1e-9
    assert closest_pair(a) >= 2.1 - 1e-9
    b = random_alloy(composition, 300, seed=3, min_distance=2.1)
    np.testing.assert_array_equal(a.positions, b.positions)  # reproducible


def test_amorphous_melt_quench_has_no_long_range_order():
    calc = BinaryLennardJones()
    a = amorphous("Li4Si", 128, calc, melt_time=300, quench_time=600, seed=2, progress=False)
    assert np.abs(a.get_forces()).max() < 0.05  # relaxed
    _, s = structure_factor(a, q_max=5.0)
    # Bragg peaks of a crystal reach S ~ N; a glass stays at O(1) (max of many q ~ 10)
    assert s.max() < len(a) / 6
    reference = bulk("Li13Si4", n_atoms=128)
    assert structure_factor(reference, q_max=5.0)[1].max() > len(reference) / 2  # the metric sees order
    r, g = radial_distribution(a, 7.0, bins=70)
    assert g[r < 1.8].max() == 0.0  # no overlapping atoms
    assert np.abs(g[r > 5.5] - 1).mean() < 0.25  # flat beyond the first shells


def test_nanoparticle_from_small_cell_counts_and_centre():
    # R = 30 A spheres at the crystal densities: the seed has 7,344 (Li13Si4) and 6,625 (LiSi) atoms
    for name, seed_count in (("Li13Si4", 7344), ("LiSi", 6625)):
        p = nanoparticle(crystal(name), 30.0)  # cut from one unit cell with periodic images
        assert abs(len(p) - seed_count) / seed_count < 0.10
        center = p.cell.array.sum(0) / 2
        dist = np.linalg.norm(p.positions - center, axis=1)
        assert dist.max() <= 30.0 + 1e-9 and dist.max() > 29.0
        assert abs(np.mean(p.positions - center, axis=0)).max() < 0.5  # centred
        assert closest_pair(p) > 2.2  # no duplicated images
        frac = p.info["composition"]["Li"]
        assert abs(frac - p.info["bulk_composition"]["Li"]) < 0.02
        assert not p.pbc.any()


def test_nanoparticle_same_from_small_and_large_cell():
    small = nanoparticle(crystal("Li13Si4"), 8.0, center=[1.0, 2.0, 0.5])
    large = nanoparticle(crystal("Li13Si4").repeat((3, 2, 4)), 8.0, center=[1.0, 2.0, 0.5])
    assert len(small) == len(large)
    d, _ = cKDTree(small.positions).query(large.positions)
    assert d.max() < 1e-8


def small_packing(seed=0):
    return pack_spheres(14, [4.0, 6.0], [40.0, 40.0, 40.0], seed=seed, progress=False)


def test_pack_spheres_settles_without_overlap():
    p = small_packing()
    assert p.info["settled"]
    i, j, gaps = p.gaps()
    smaller = np.minimum(p.radii[i], p.radii[j])
    assert (gaps > -0.01 * smaller).all()  # overlap below 1 % of a radius
    touching = np.zeros(len(p.radii), dtype=bool)
    close = gaps < 0.01 * smaller
    touching[i[close]] = True
    touching[j[close]] = True
    on_floor = p.centers[:, 2] - p.radii < 0.01 * p.radii
    assert (touching | on_floor).all()  # every sphere rests on another or on the floor
    assert (p.centers[:, :2] - p.radii[:, None] > -0.05).all()  # inside the walls
    assert (p.centers[:, :2] + p.radii[:, None] < 40.05).all()
    assert sorted(np.unique(p.radii)) == [4.0, 6.0] and (p.radii == 4.0).sum() == 7
    q = small_packing()
    np.testing.assert_array_equal(p.centers, q.centers)  # reproducible with the seed
    assert not np.allclose(small_packing(seed=1).centers, p.centers)


def test_stack_nanoparticles_minimum_distance():
    packing = small_packing()
    unit = crystal("Li13Si4")
    stack = stack_nanoparticles(packing, lambda r: nanoparticle(unit, r), min_distance=2.0, seed=1, progress=False)
    assert closest_pair(stack) >= 2.0 - 1e-9
    assert len(np.unique(stack.arrays["particle"])) == len(packing.radii)
    one = len(nanoparticle(unit, 4.0))
    assert len(stack) + stack.info["removed_atoms"] == 7 * one + 7 * len(nanoparticle(unit, 6.0))
    # each particle's atoms stay within a sphere of its radius, at the packing's relative places
    centroids = np.array([stack.positions[stack.arrays["particle"] == k].mean(0) for k in range(len(packing.radii))])
    shift = (centroids - packing.centers).mean(0)
    assert np.abs(centroids - packing.centers - shift).max() < 1.5
    for k in range(len(packing.radii)):
        mine = stack.positions[stack.arrays["particle"] == k] - packing.centers[k] - shift
        assert np.linalg.norm(mine, axis=1).max() <= packing.radii[k] + 1e-6


def test_build_cli_and_example(tmp_path):

    import ase.io
    from PIL import Image

    from aenet_torch_ase.cli import main

    assert main(["build", "bulk", "LiSi", "--atoms", "600", "-o", str(tmp_path / "b.extxyz")]) == 0
    b = ase.io.read(tmp_path / "b.extxyz")
    assert len(b) == len(bulk("LiSi", n_atoms=600))
    assert main(["build", "nanoparticle", "Li13Si4", "--radius", "7", "-o", str(tmp_path / "p.extxyz")]) == 0
    assert len(ase.io.read(tmp_path / "p.extxyz")) == len(nanoparticle(crystal("Li13Si4"), 7.0))
    picture = np.asarray(Image.open(tmp_path / "p.png").convert("RGB"), dtype=float)
    assert picture.std() > 10  # not a blank image: atoms drawn

    # examples/03_build_models.py runs in tests/test_examples.py


def test_seed_sized_stack_of_50_particles():
    """The seed's stack: 50 particles of R = 10 and 15 A poured into a 100 A box."""
    heap = pack_spheres(50, [10.0, 15.0], [100.0, 100.0, 100.0], seed=0, progress=False)
    assert heap.info["settled"] and heap.info["max_relative_overlap"] < 0.01
    unit = crystal("Li13Si4")
    stack = stack_nanoparticles(heap, lambda r: nanoparticle(unit, r), progress=False)
    assert 20_000 < len(stack) < 40_000
    assert closest_pair(stack) >= 2.0 - 1e-9
    assert stack.get_chemical_symbols().count("Li") / len(stack) == pytest.approx(13 / 17, abs=0.02)


def _close_pair_cell():
    """A triclinic periodic cell of 12 atoms with several pairs closer than 1.5 A."""
    from ase import Atoms

    rng = np.random.default_rng(7)
    cell = np.array([[5.0, 0.0, 0.0], [0.7, 4.6, 0.0], [-0.4, 0.5, 4.8]])
    pos = rng.uniform(0, 1, (6, 3)) @ cell
    pos = np.vstack([pos, pos + rng.normal(0, 0.6, (6, 3))])  # partners 0.3-1.4 A away
    return Atoms("Li12", positions=pos, cell=cell, pbc=True)


def test_short_range_wall_forces_and_stress_are_derivatives_of_its_energy():
    from ase.calculators.fd import calculate_numerical_forces, calculate_numerical_stress

    from aenet_torch_ase.md.guard import ShortRangeWall

    a = _close_pair_cell()
    a.calc = ShortRangeWall(r0=1.5, k=50.0)
    assert a.get_potential_energy() > 0.1
    np.testing.assert_allclose(a.get_forces(), calculate_numerical_forces(a, eps=1e-6), atol=1e-6)
    np.testing.assert_allclose(a.get_stress(), calculate_numerical_stress(a, eps=1e-7), atol=1e-6)
    assert np.abs(a.get_forces().sum(0)).max() < 1e-10  # Newton's third law


def test_short_range_wall_dimer_energy_and_range():
    from ase import Atoms

    from aenet_torch_ase.md.guard import ShortRangeWall

    for r, expected in ((1.2, 0.5 * 50.0 * 0.3 ** 2), (1.49, 0.5 * 50.0 * 0.01 ** 2), (1.5, 0.0), (2.0, 0.0)):
        d = Atoms("Li2", positions=[[0, 0, 0], [r, 0, 0]])
        d.calc = ShortRangeWall(r0=1.5, k=50.0)
        assert d.get_potential_energy() == pytest.approx(expected, abs=1e-12)
        f = d.get_forces()
        assert f[0, 0] == pytest.approx(-50.0 * max(0.0, 1.5 - r), abs=1e-12)  # pushes them apart
    with pytest.raises(ValueError, match="r0 > 0"):
        ShortRangeWall(r0=0.0)


class _AllAttractive(PairTerm):
    """A potential that is all hole: phi(r) = -D exp(-r^2/w^2) (atoms fall onto each other)."""

    def __init__(self, D=10.0, w=1.0):
        super().__init__()
        self.D, self.w, self.cutoff = D, w, 4.0 * w

    def phi(self, r):
        e = -self.D * np.exp(-(r / self.w) ** 2)
        return e, -2.0 * r / self.w ** 2 * e


def test_guarded_melt_quench_takes_the_wall_off_and_refuses_a_hole():
    from aenet_torch_ase.md.structures import melt_quench

    lj = BinaryLennardJones()
    start = random_alloy("Li4Si", 64, min_distance=2.1, seed=4)
    out = melt_quench(start, lj, t_melt=1500, melt_time=100, quench_time=100, seed=1, progress=False, guard=1.5)
    assert out.calc is lj  # the returned structure is a minimum of the potential alone
    assert closest_pair(out) >= 1.5
    # a potential that is all hole: the wall holds the atoms apart while hot, but
    # without it the final minimisation lets them fall together: refused, not returned
    with pytest.raises(StructureError, match="hole"):
        melt_quench(start, _AllAttractive(), t_melt=300, melt_time=50, quench_time=50, seed=1,
                    progress=False, guard=1.5, relax_steps=200)
