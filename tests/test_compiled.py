"""The compiled CPU kernels (numba) against the torch kernels they replace,
and the reused (skin) neighbour list against a fresh one at every step."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch
from ase import units
from ase.build import bulk

from aenet_torch_ase import AenetTorch
from aenet_torch_ase.neighbors import NeighborList
from aenet_torch_ase.potential import compiled_kernels
from aenet_torch_ase.potential import angular_moments
from aenet_torch_ase.potential.angular_moments import harmonic_tables
from aenet_torch_ase.potential.evaluate import evaluate

from conftest import random_structure, tiny_nn_files

pytestmark = pytest.mark.skipif(not compiled_kernels.AVAILABLE, reason="numba not installed: no compiled path")

PROPERTIES = ("energy", "energies", "forces", "stress", "stresses")


def results(calc, atoms, compiled):
    compiled_kernels.enabled = compiled
    try:
        calc.reset()
        return {k: np.array(calc.get_property(k, atoms)) for k in PROPERTIES}
    finally:
        compiled_kernels.enabled = True


@pytest.mark.filterwarnings("ignore:.*angular convention")
@pytest.mark.parametrize("angular", ["2.0.4", "legacy"])
@pytest.mark.parametrize("kind", ["triclinic", "cluster", "small cell"])
def test_compiled_equals_torch_kernels(angular, kind, triclinic_cell):
    if kind == "triclinic":
        atoms = triclinic_cell.repeat((2, 2, 1))
    elif kind == "cluster":
        atoms = random_structure(20, np.diag([9.0, 9.0, 9.0]), False, seed=11)
        atoms.set_cell([12, 12, 12])  # a cell (for stress) but no periodicity
    else:
        atoms = bulk("Si", "diamond", a=5.43)  # 2 atoms, heights below the cutoff: many self-images
        atoms.numbers[0] = 3
    calc = AenetTorch(tiny_nn_files(legacy_stats=angular == "legacy"), angular=angular)
    a, b = results(calc, atoms, True), results(calc, atoms, False)
    assert a["energy"] == pytest.approx(b["energy"], abs=1e-11)
    for key in ("energies", "forces", "stress", "stresses"):
        np.testing.assert_allclose(a[key], b[key], rtol=0, atol=1e-11)


def potential_files(setups, seed=4):
    """Li and Si .nn files with descriptor setups {symbol: (radial cutoff,
    radial order, angular cutoff, angular order)} and random weights."""
    from aenet_torch_ase.io.input_files import FingerprintSetup
    from aenet_torch_ase.potential.new import new_nn_file

    rng = np.random.default_rng(seed)
    files = {}
    for k, (sym, (rc, n, arc, an)) in enumerate(setups.items()):
        setup = FingerprintSetup(atom=sym, env=["Li", "Si"], rmin=1.0, basis="chebyshev",
                                 radial_rc=rc, radial_n=n, angular_rc=arc, angular_n=an)
        avg = rng.normal(0.0, 0.5, setup.n_features)
        avg[n + 1] = 1.0  # angular T_0: 2.0.4-like statistics
        cov = avg**2 + rng.uniform(0.5, 2.0, setup.n_features)
        files[sym] = new_nn_file(setup, [(6, "tanh"), (4, "tanh")], {"Li": -1.9, "Si": -5.4}, scale=0.7,
                                 shift=-0.3, feature_avg=avg, feature_cov=cov, seed=3 + k, weight_scale=1.5)
    return files


def two_setup_potential():
    """Li and Si with different descriptor setups (cutoffs, orders): each
    element's centres go through their own setup."""
    return potential_files({"Li": (4.0, 6, 3.2, 3), "Si": (3.6, 4, 3.0, 5)})


def assert_compiled_equals_torch(calc, atoms, dtype):
    """Every property through the compiled kernels and the torch kernels,
    to float64 or float32 round-off, and not between zeros."""
    a, b = results(calc, atoms, True), results(calc, atoms, False)
    tol = 1e-11 if dtype == torch.float64 else 2e-4
    assert a["energy"] == pytest.approx(b["energy"], abs=tol * 10)
    for key in ("energies", "forces", "stress", "stresses"):
        np.testing.assert_allclose(a[key], b[key], rtol=0, atol=tol)
    assert np.abs(a["forces"]).max() > 0.1


def assert_compiled_as_accurate_as_torch(calc, files, angular, atoms, dtype):
    """float64: `assert_compiled_equals_torch`. float32: hundreds of angular
    terms a centre, and the legacy argument (|x| up to 3) makes large T_k
    that cancel, so the float32 paths are held to the float64 result: the
    compiled kernels and the torch path within 5e-5 of the largest force or
    stress, the compiled ones no less accurate than the torch path summing
    triplet by triplet (`angular_moments.pay` off: the plain float32 sum)."""
    if dtype == torch.float64:
        assert_compiled_equals_torch(calc, atoms, dtype)
        return
    reference = results(AenetTorch(files, dtype=torch.float64, angular=angular), atoms, True)
    a, b = results(calc, atoms, True), results(calc, atoms, False)
    pay = angular_moments.pay
    angular_moments.pay = lambda *args: False
    try:
        c = results(calc, atoms, False)
    finally:
        angular_moments.pay = pay
    for key in ("forces", "stress"):
        scale = np.abs(reference[key]).max()
        err_compiled, err_torch, err_triplets = (np.abs(r[key] - reference[key]).max() for r in (a, b, c))
        assert err_compiled < 5e-5 * scale and err_torch < 5e-5 * scale, key
        assert err_compiled < 2.0 * err_triplets + 1e-6 * scale, key
    assert abs(a["energy"] - reference["energy"]) < 1e-5 * len(atoms)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_compiled_path_with_one_setup_per_element(dtype):
    """The calculator's compiled path (descriptors of each setup's centres,
    forces summed in the kernel) equals the torch kernels, also in float32."""
    calc = AenetTorch(two_setup_potential(), dtype=dtype)
    assert len(calc.model.descriptors) == 2
    atoms = random_structure(30, [[8.0, 0.0, 0.0], [1.5, 8.5, 0.0], [0.5, -1.0, 9.0]], True, seed=9)
    assert_compiled_equals_torch(calc, atoms, dtype)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("radial_n, angular_n", [(0, 0), (1, 1), (2, 6), (5, 2), (9, 4), (12, 7)])
def test_compiled_equals_torch_for_any_descriptor_order(radial_n, angular_n, dtype):
    """The compiled Chebyshev sums run four orders per sweep (orders past the
    last one computed and dropped) and over whole vector steps of pairs and
    triplets (padding slots with zero weights): every remainder of the order
    count, orders 0 and 1, and centres with ~40 pairs and up to ~60 triplets
    (a dense cell, so the member and triplet counts cross the padding steps)
    give the torch kernels' results."""
    calc = AenetTorch(potential_files({sym: (5.5, radial_n, 3.5, angular_n) for sym in ("Li", "Si")},
                                      seed=radial_n + 10 * angular_n), dtype=dtype)
    atoms = random_structure(40, [[9.0, 0.0, 0.0], [1.0, 8.5, 0.0], [0.5, -1.0, 8.8]], True, seed=radial_n,
                             min_dist=1.6)
    assert_compiled_equals_torch(calc, atoms, dtype)


@pytest.mark.filterwarnings("ignore:.*angular convention")
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("angular_n, angular", [(2, "2.0.4"), (7, "2.0.4"), (4, "legacy")])
def test_compiled_equals_torch_with_many_angular_members(angular_n, angular, dtype):
    """With an angular cutoff as long as the radial one (TiO2's potentials:
    6.5 A, ~100 angular members), the compiled kernels sum the angular terms
    through the members' spherical-harmonic moments instead of triplet by
    triplet: they give the torch kernels' results."""
    from ase.neighborlist import neighbor_list

    files = potential_files({sym: (6.0, 4, 6.0, angular_n) for sym in ("Li", "Si")}, seed=angular_n)
    calc = AenetTorch(files, dtype=dtype, angular=angular)
    atoms = random_structure(40, [[9.0, 0.0, 0.0], [1.0, 8.5, 0.0], [0.5, -1.0, 8.8]], True, seed=angular_n,
                             min_dist=1.6)
    members = np.bincount(neighbor_list("i", atoms, 6.0), minlength=len(atoms))
    assert members.min() > 2 * compiled_kernels.MOMENTS_FROM  # every centre through the moments, well past the switch
    assert_compiled_as_accurate_as_torch(calc, files, angular, atoms, dtype)


@pytest.mark.filterwarnings("ignore:.*angular convention")
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("angular", ["2.0.4", "legacy"])
def test_compiled_equals_torch_on_both_sides_of_the_moments_switch(angular, dtype):
    """Centres with fewer angular members than MOMENTS_FROM go triplet by
    triplet, the others through the moments: one structure with both kinds
    gives the torch kernels' results (energies, forces, stress, per-atom
    virials), in both angular conventions and with the typespin weights."""
    from ase.neighborlist import neighbor_list

    files = potential_files({sym: (5.0, 5, 4.0, 6) for sym in ("Li", "Si")}, seed=11)
    calc = AenetTorch(files, dtype=dtype, angular=angular)
    atoms = random_structure(40, [[9.0, 0.0, 0.0], [1.0, 8.5, 0.0], [0.5, -1.0, 8.8]], True, seed=3, min_dist=1.6)
    members = np.bincount(neighbor_list("i", atoms, 4.0), minlength=len(atoms))
    assert members.min() < compiled_kernels.MOMENTS_FROM <= members.max()
    assert_compiled_as_accurate_as_torch(calc, files, angular, atoms, dtype)


def test_harmonic_tables_give_the_angular_terms():
    """The moments' identities, checked directly: sum_m Y_lm(a) Y_lm(b) =
    P_l(a . b) for unit vectors (addition theorem), T_k(x(c)) = sum_l
    q[k, l] P_l(c) in both angular conventions (x = c, x = 2c - 1), and
    dQ_l^m/dz from the rows equal to finite differences."""
    from numpy.polynomial import chebyshev, legendre

    na = 8
    rng = np.random.default_rng(0)
    u = rng.normal(size=(16, 3))
    u /= np.linalg.norm(u, axis=1)[:, None]
    ang = np.zeros((6, 16))
    ang[:3] = u.T
    q, sk, rows, _ = compiled_kernels._harmonic_scratch(16, *harmonic_tables(na, 2.0, False))

    def harmonics(a):
        compiled_kernels._harmonic_rows(16, na, a, rows, True)
        y = np.zeros((na * na, 16))
        for l in range(na):
            for m in range(l + 1):
                qr = rows[2 * na + l * (l + 1) // 2 + m]
                y[l * l + l + m] = sk[l, m] * qr * rows[m]
                if m:
                    y[l * l + l - m] = sk[l, m] * qr * rows[na + m]
        return y

    y = harmonics(ang)
    for l in range(na):
        p = legendre.legval(u @ u.T, [0] * l + [1])
        np.testing.assert_allclose(y[l * l:(l + 1) ** 2].T @ y[l * l:(l + 1) ** 2], p, rtol=0, atol=1e-13)
    c = np.linspace(-1.0, 1.0, 21)
    for legacy, x in ((False, c), (True, 2.0 * c - 1.0)):
        qk = harmonic_tables(na, 2.0, legacy)[0]
        for k in range(na):
            t = chebyshev.chebval(x, [0] * k + [1])
            expanded = sum(qk[k, l] * legendre.legval(c, [0] * l + [1]) for l in range(na))
            np.testing.assert_allclose(expanded, t, rtol=0, atol=1e-13 * max(1.0, np.abs(t).max()))
    nq = na * (na + 1) // 2
    dq = rows[2 * na + nq:2 * na + 2 * nq].copy()
    h = 1e-6
    shifted = []
    for sign in (1, -1):
        a = ang.copy()
        a[2] += sign * h
        compiled_kernels._harmonic_rows(16, na, a, rows, False)
        shifted.append(rows[2 * na:2 * na + nq].copy())
    np.testing.assert_allclose((shifted[0] - shifted[1]) / (2 * h), dq, rtol=0, atol=1e-6 * np.abs(dq).max())


def test_compiled_float32_computes_in_float32_to_its_round_off():
    """A float32 model's compiled kernels run in float32 arithmetic: the same
    float32 weights through float64 arithmetic give results that differ
    (they would be equal after the cast if the kernels computed in float64)
    by float32 round-off only; the float32 calculator stays within that of
    the float64 model."""
    atoms = random_structure(30, [[8.0, 0.0, 0.0], [1.5, 8.5, 0.0], [0.5, -1.0, 9.0]], True, seed=9)
    calc = AenetTorch(two_setup_potential(), dtype=torch.float32)
    species, pos, cell, pbc = calc._validated_tensors(atoms)
    i, j, _, v = calc._neighbors.pairs(pos, cell, pbc, species)
    out = {dt: compiled_kernels.evaluate_model(calc.model, species, i, j, v, gradients=True, atomic_virials=False,
                                               dtype=dt) for dt in (torch.float32, torch.float64)}
    assert out[torch.float32][1].dtype == torch.float32
    forces32, forces64 = out[torch.float32][1].double(), out[torch.float64][1]
    scale = float(forces64.abs().max())
    diff = float((forces32 - forces64.float().double()).abs().max())
    assert scale > 0.1 and 0.0 < diff < 1e-5 * scale
    r32 = results(calc, atoms, True)
    r64 = results(AenetTorch(two_setup_potential(), dtype=torch.float64), atoms, True)
    np.testing.assert_allclose(r32["forces"], r64["forces"], rtol=0, atol=1e-5 * scale)
    assert abs(r32["energy"] - r64["energy"]) < 1e-5 * len(atoms)
    np.testing.assert_allclose(r32["stress"], r64["stress"], rtol=0, atol=1e-5 * np.abs(r64["stress"]).max())


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_compiled_tanh_within_three_ulp(dtype):
    """The kernels' own tanh (no libm call, so it runs in SIMD lanes) against
    numpy's float64 tanh, in units in the last place of the dtype: tiny, small,
    moderate, saturated and huge arguments of both signs; odd; NaN stays NaN."""
    tanh = compiled_kernels._tanh
    mags = np.concatenate([np.geomspace(1e-30, 30.0, 20001), np.linspace(0.0, 25.0, 5001), [1e6, np.inf]])
    x = np.concatenate([mags, -mags]).astype(dtype)
    got = np.array([tanh(v) for v in x], dtype=np.float64)
    assert np.array_equal(got.astype(dtype).astype(np.float64), got)  # computed in the argument's type
    ref = np.tanh(x.astype(np.float64))
    ulp = np.spacing(np.abs(ref).astype(dtype)).astype(np.float64)
    err = np.abs(got.astype(np.float64) - ref) / ulp
    assert err.max() <= 3.0, (x[err.argmax()], err.max())
    assert np.array_equal(got[: len(mags)], -got[len(mags):])
    assert np.isnan(tanh(dtype(np.nan)))


def test_compiled_gradients_unsorted_pairs_and_double_backward(tiny_potential):
    """Pairs in any order (counting sort), dE/dv equal to the torch kernels; a
    backward with create_graph (force training through the model) is exact too."""
    calc = AenetTorch(tiny_potential)
    atoms = random_structure(24, np.diag([7.5, 8.0, 8.5]), True, seed=5)
    species, pos, cell, pbc = calc._validated_tensors(atoms)
    i, j, s, v = calc._neighbors.pairs(pos, cell, pbc, species)
    perm = torch.randperm(i.numel(), generator=torch.Generator().manual_seed(0))
    i, j, v = i[perm], j[perm], v[perm]
    out = {}
    for compiled in (True, False):
        compiled_kernels.enabled = compiled
        try:
            vv = v.clone().requires_grad_(True)
            e = calc.model(species, i, species[j], vv).sum()
            (g,) = torch.autograd.grad(e, vv, create_graph=True)
            loss = (g * g).sum()  # a force-like loss: needs the derivative of dE/dv
            params = [p for p in calc.model.parameters() if p.requires_grad]
            grads = torch.autograd.grad(loss, params, allow_unused=True)  # output biases do not move forces
            out[compiled] = (e.detach(), g.detach(), [None if x is None else x.detach() for x in grads])
        finally:
            compiled_kernels.enabled = True
    assert float(out[True][0]) == pytest.approx(float(out[False][0]), abs=1e-11)
    torch.testing.assert_close(out[True][1], out[False][1], rtol=0, atol=1e-11)
    assert sum(x is not None for x in out[True][2]) > 0
    for x, y in zip(out[True][2], out[False][2]):
        assert (x is None) == (y is None)
        if x is not None:
            torch.testing.assert_close(x, y, rtol=1e-9, atol=1e-11)


def test_energy_only_evaluation_equals_full(tiny_potential):
    """Without gradients the compiled path skips the backward; the energies
    are those of the full evaluation, and equal the torch kernels'."""
    calc = AenetTorch(tiny_potential)
    atoms = random_structure(30, np.diag([8.0, 8.5, 9.0]), True, seed=3)
    species, pos, cell, pbc = calc._validated_tensors(atoms)
    i, j, s, v = calc._neighbors.pairs(pos, cell, pbc, species)
    full = evaluate(calc.model, species, i, j, v, atomic_virials=True)
    only = evaluate(calc.model, species, i, j, v, forces=False, virial=False)
    assert only.forces is None and only.virial is None and only.atomic_virials is None
    torch.testing.assert_close(only.energies, full.energies, rtol=0, atol=1e-12)
    compiled_kernels.enabled = False
    try:
        torch_path = evaluate(calc.model, species, i, j, v, forces=False, virial=False)
    finally:
        compiled_kernels.enabled = True
    torch.testing.assert_close(only.energies, torch_path.energies, rtol=0, atol=1e-11)


@pytest.mark.parametrize("compiled", [True, False])
def test_evaluation_from_positions_and_shifts_equals_from_vectors(tiny_potential, compiled):
    """geometry = (positions, cell, shifts) instead of pair vectors (the
    calculator's compiled path makes them on the fly): the same results,
    through either path."""
    calc = AenetTorch(tiny_potential)
    atoms = random_structure(24, [[7.5, 0.0, 0.0], [2.0, 8.0, 0.0], [-1.0, 1.5, 8.5]], True, seed=12)
    species, pos, cell, pbc = calc._validated_tensors(atoms)
    i, j, s, v = calc._neighbors.pairs(pos, cell, pbc, species, within_cutoff=False)
    assert bool((s != 0).any())  # lattice translations are exercised
    compiled_kernels.enabled = compiled
    try:
        a = evaluate(calc.model, species, i, j, v, atomic_virials=True)
        b = evaluate(calc.model, species, i, j, None, atomic_virials=True, geometry=(pos, cell, s),
                     dtype=torch.float64)
    finally:
        compiled_kernels.enabled = True
    for name in ("energies", "forces", "virial", "atomic_virials"):
        torch.testing.assert_close(getattr(b, name), getattr(a, name), rtol=0, atol=1e-12)


def test_evaluation_of_a_shuffled_pair_list(tiny_potential):
    """The compiled path sorts the pairs by centre itself: a shuffled list gives
    the same energies, forces and virials."""
    calc = AenetTorch(tiny_potential)
    atoms = random_structure(30, np.diag([8.0, 8.5, 9.0]), True, seed=21)
    species, pos, cell, pbc = calc._validated_tensors(atoms)
    i, j, s, v = calc._neighbors.pairs(pos, cell, pbc, species)
    perm = torch.randperm(i.numel(), generator=torch.Generator().manual_seed(3))
    a = evaluate(calc.model, species, i, j, v, atomic_virials=True)
    b = evaluate(calc.model, species, i[perm], j[perm], v[perm], atomic_virials=True)
    for name in ("energies", "forces", "virial", "atomic_virials"):
        torch.testing.assert_close(getattr(b, name), getattr(a, name), rtol=0, atol=1e-12)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_forces_do_not_depend_on_the_thread_count(monkeypatch, dtype):
    """The compiled kernel sums forces and virials in a fixed partition of
    the centres (slices dealt to threads whole): 1 and 2 threads, run
    after run, give the same bits, so an MD run is reproducible whatever
    the thread policy picks."""
    monkeypatch.setenv("AENET_TORCH_ADAPTIVE_THREADS", "0")  # 2 threads even on a busy machine
    atoms = bulk("Si", "diamond", a=5.43).repeat((4, 4, 4))  # 512 centres: 32 chunks over the slices
    atoms.numbers[::3] = 3
    atoms.rattle(0.1, seed=3)
    calc = AenetTorch(tiny_nn_files(), dtype=dtype)
    threads = torch.get_num_threads()
    runs = []
    try:
        for n in (1, 2, 2, 1, 2):
            torch.set_num_threads(n)
            calc.reset()
            runs.append({k: np.array(calc.get_property(k, atoms)) for k in ("forces", "stress", "stresses")})
    finally:
        torch.set_num_threads(threads)
    for other in runs[1:]:
        for key in runs[0]:
            assert np.array_equal(other[key], runs[0][key]), key
    assert np.abs(runs[0]["forces"]).max() > 0.1


def test_chunked_evaluation_equals_one_chunk(tiny_potential):
    calc = AenetTorch(tiny_potential)
    atoms = random_structure(40, np.diag([9.0, 9.0, 9.0]), True, seed=8)
    species, pos, cell, pbc = calc._validated_tensors(atoms)
    i, j, s, v = calc._neighbors.pairs(pos, cell, pbc, species)
    one = evaluate(calc.model, species, i, j, v, atomic_virials=True, chunk_pairs=10**9)
    many = evaluate(calc.model, species, i, j, v, atomic_virials=True, chunk_pairs=200)
    for name in ("energies", "forces", "virial", "atomic_virials"):
        torch.testing.assert_close(getattr(one, name), getattr(many, name), rtol=0, atol=1e-11)


# ---------------------------------------------------------------- neighbour-list reuse

def test_reused_neighbour_list_is_exact_through_md(tiny_potential):
    """Velocity Verlet with large steps, then a cell deformation, an atom moved
    far, a species swap and a pbc change: the skin list (1 A) gives at every step
    the energies and forces of a calculator that builds a new list each call,
    and is rebuilt only when needed."""
    from ase.md.verlet import VelocityVerlet
    from ase.md.velocitydistribution import MaxwellBoltzmannDistribution

    atoms = random_structure(30, np.diag([8.5, 9.0, 9.5]), True, seed=21, min_dist=2.0)
    reused = AenetTorch(tiny_potential, skin=1.0)
    fresh = AenetTorch(tiny_potential, skin=0.0)
    atoms.calc = reused
    MaxwellBoltzmannDistribution(atoms, temperature_K=3000, rng=np.random.default_rng(2))
    dyn = VelocityVerlet(atoms, 2.0 * units.fs)
    steps = 0

    def compare():
        probe = atoms.copy()
        probe.calc = fresh
        assert atoms.get_potential_energy() == pytest.approx(probe.get_potential_energy(), abs=1e-10)
        np.testing.assert_allclose(atoms.get_forces(), probe.get_forces(), rtol=0, atol=1e-10)
        np.testing.assert_allclose(atoms.get_stress(), probe.get_stress(), rtol=0, atol=1e-12)

    for _ in range(40):
        dyn.run(1)
        steps += 1
        compare()
    builds_md = reused._neighbors.builds
    assert 1 <= builds_md < steps  # reused, and rebuilt when atoms had moved half the skin
    # a homogeneous strain of the cell (atoms scaled with it), small then large
    for strain in (0.002, 0.004, 0.05):
        cell = atoms.cell.array.copy()
        cell[1] *= 1 + strain
        atoms.set_cell(cell, scale_atoms=True)
        compare()
    # one atom jumps 3 A (far beyond half the skin)
    atoms.positions[4] += [3.0, 0.0, 0.0]
    compare()
    # a species change, then a pbc change
    atoms.numbers[0] = 14 if atoms.numbers[0] == 3 else 3
    compare()
    atoms.pbc = [True, True, False]
    compare()
    assert reused._neighbors.builds > builds_md


def test_skin_criterion_rebuilds_exactly_when_needed():
    """The list is reused for a displacement just under skin/2 and rebuilt just above."""
    nl = NeighborList(3.0, skin=1.0)
    pos = torch.tensor([[0.0, 0.0, 0.0], [3.4, 0.0, 0.0]], dtype=torch.float64)  # outside the cutoff
    cell = torch.eye(3, dtype=torch.float64) * 20
    pbc = torch.tensor([True, True, True])
    assert nl(pos, cell, pbc)[0].numel() == 0 and nl.builds == 1
    moved = pos.clone()
    moved[1, 0] -= 0.45  # 2 x 0.45 <= 1: reused; the pair (2.95 A) is inside now and found
    i, j, s = nl(moved, cell, pbc)
    assert nl.builds == 1 and i.numel() == 2
    moved[1, 0] = 3.4 - 0.55
    nl(moved, cell, pbc)
    assert nl.builds == 2


def test_thread_count_gives_way_to_busy_cores(monkeypatch):
    """The adaptive policy: the requested threads less the cores other processes keep busy, at least 1."""
    import os

    from aenet_torch_ase import threads

    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1}, raising=False)
    for busy, expected in ((0.0, 2), (0.3, 2), (0.8, 1), (1.9, 1)):
        monkeypatch.setattr(threads._load, "busy_elsewhere", lambda b=busy: b)
        assert threads.threads_for_call(2) == expected
    assert threads.threads_for_call(1) == 1
    monkeypatch.setenv("AENET_TORCH_ADAPTIVE_THREADS", "0")
    assert threads.threads_for_call(2) == 2
    monkeypatch.delenv("AENET_TORCH_ADAPTIVE_THREADS")
    assert threads._LoadMonitor().busy_elsewhere() >= 0.0  # reads /proc/stat (0 where it cannot)


def test_load_monitor_first_estimate_comes_early():
    """The first load estimate needs only `first_interval` (so the first calls of a run on a
    busy machine do not all use the busy core); later ones average over `interval`."""
    import time

    from aenet_torch_ase import threads

    if not os.path.exists("/proc/stat"):
        pytest.skip("no /proc/stat: the load monitor reports 0 here")
    m = threads._LoadMonitor(interval=30.0, first_interval=0.05)
    m.busy_elsewhere()
    assert not m.estimated
    time.sleep(0.08)
    m.busy_elsewhere()
    assert m.estimated  # after 80 ms, not 30 s
    last = m.last
    time.sleep(0.08)
    m.busy_elsewhere()
    assert m.last is last  # the next one waits for the full interval


FORK_SCRIPT = r"""
import multiprocessing as mp
import torch
from ase.build import bulk
from aenet_torch_ase import AenetTorch

torch.set_num_threads(2)
atoms = bulk("Si", "diamond", 5.43, cubic=True).repeat(3)
atoms.rattle(0.05, seed=1)
atoms.calc = AenetTorch("LiSi-Artrith2018")
parent = atoms.get_potential_energy()  # the parallel kernels have run here

def child(queue):
    probe = atoms.copy()
    probe.calc = AenetTorch("LiSi-Artrith2018")
    queue.put(probe.get_potential_energy())

ctx = mp.get_context("fork")
queue = ctx.Queue()
proc = ctx.Process(target=child, args=(queue,))
proc.start()
proc.join(120)
print("exitcode", proc.exitcode)
print("energies", parent, queue.get(timeout=5) if proc.exitcode == 0 else "nan")
"""


def test_forked_child_after_parallel_kernels_gets_the_same_energy(tmp_path):
    """GNU OpenMP's pool does not survive fork(): a child forked after the
    parent ran the kernels (multiprocessing's default on Linux) must not be
    aborted, and computes the parent's energy (through the torch kernels)."""
    import os
    import subprocess
    import sys

    env = dict(os.environ, AENET_TORCH_ADAPTIVE_THREADS="0")
    out = subprocess.run([sys.executable, "-c", FORK_SCRIPT], capture_output=True, text=True,
                         timeout=300, cwd=tmp_path, env=env)
    assert out.returncode == 0, out.stderr[-2000:]
    lines = dict(line.split(" ", 1) for line in out.stdout.splitlines() if " " in line)
    assert lines["exitcode"] == "0", out.stderr[-2000:]
    parent, child = (float(x) for x in lines["energies"].split())
    assert child == pytest.approx(parent, rel=0, abs=1e-9)


@pytest.mark.parametrize("case", ["self-images", "mixed pbc", "cluster"])
def test_full_list_mirrored_from_half_equals_vesins_full_list(case):
    """On the CPU the list is vesin's half list mirrored by a compiled kernel
    (less memory): the same pairs and shifts as vesin's full list, sorted by centre."""
    import vesin_torch

    atoms = bulk("Si", "diamond", a=5.43)
    pbc = [True, True, True]
    if case == "mixed pbc":
        atoms, pbc = atoms.repeat((3, 2, 1)), [True, False, True]
    elif case == "cluster":
        atoms, pbc = atoms.repeat((2, 2, 2)), [False, False, False]
    atoms.rattle(0.1, seed=1)
    pos, cell, pb = torch.tensor(atoms.positions), torch.tensor(atoms.cell.array), torch.tensor(pbc)
    i, j, s = NeighborList(6.0)(pos, cell, pb)
    box = cell if any(pbc) else torch.zeros_like(cell)
    ref = vesin_torch.NeighborList(cutoff=6.0, full_list=True).compute(points=pos, box=box, periodic=pb,
                                                                       quantities="ijS")
    mine = sorted(zip(i.tolist(), j.tolist(), map(tuple, s.tolist())))
    theirs = sorted(zip(ref[0].tolist(), ref[1].tolist(), map(tuple, ref[2].tolist())))
    assert len(mine) > 2 * len(atoms) and mine == theirs
    assert bool((i[1:] >= i[:-1]).all())


def test_center_view_is_remembered_only_for_the_same_unmodified_list():
    """The per-centre view of a reused neighbour list is computed once; a
    list modified in place or a new list gets its own."""
    a = torch.tensor([0, 0, 1, 2, 2, 2])
    first = compiled_kernels.center_view(a, 3)
    assert compiled_kernels.center_view(a, 3)[1] is first[1]
    a[3] = 1
    np.testing.assert_array_equal(compiled_kernels.center_view(a, 3)[1], [0, 2, 4, 6])
    b = torch.tensor([2, 0, 1, 1, 1, 2])  # unsorted: a counting sort
    order, starts = compiled_kernels.center_view(b, 3)
    np.testing.assert_array_equal(starts, [0, 1, 4, 6])
    np.testing.assert_array_equal(b.numpy()[order], [0, 1, 1, 1, 2, 2])


def test_packed_networks_follow_changed_weights(tiny_potential, triclinic_cell):
    """The networks packed for the compiled kernels are remembered between
    calls, and redone when a weight changes in place or is replaced."""
    calc = AenetTorch(tiny_potential)
    atoms = triclinic_cell.copy()
    atoms.calc = calc
    e0 = atoms.get_potential_energy()
    layer = calc.model.networks[0].layers[0]
    with torch.no_grad():
        layer.bias += 0.1  # in place
    calc.reset()
    e1 = atoms.get_potential_energy()
    layer.bias = torch.nn.Parameter(layer.bias.detach() - 0.1)  # a new tensor with the old values
    calc.reset()
    e2 = atoms.get_potential_energy()
    compiled_kernels.enabled = False
    try:
        calc.reset()
        e2_torch = atoms.get_potential_energy()
    finally:
        compiled_kernels.enabled = True
    assert abs(e1 - e0) > 1e-3 and e2 == pytest.approx(e0, abs=1e-10) and e2 == pytest.approx(e2_torch, abs=1e-10)
