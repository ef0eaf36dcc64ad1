"""The compiled cell list that builds neighbour lists of fully periodic cells
and clusters on the CPU: the same pairs and shifts as vesin's full list."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from aenet_torch_ase import cell_list
from aenet_torch_ase.neighbors import NeighborList
from aenet_torch_ase.potential import compiled_kernels

pytestmark = pytest.mark.skipif(not compiled_kernels.AVAILABLE, reason="numba is not installed")


def vesin_pairs(pos, cell, cutoff, periodic=True):
    import vesin_torch

    i, j, s = vesin_torch.NeighborList(cutoff=cutoff, full_list=True).compute(
        points=pos, box=cell if periodic else torch.zeros_like(cell), periodic=torch.tensor([periodic] * 3),
        quantities="ijS")
    return sorted(zip(i.tolist(), j.tolist(), map(tuple, s.tolist())))


def random_case(seed):
    """A cell (orthorhombic for even seeds, triclinic for odd ones), 1-60 atoms
    partly outside it, and a cutoff of 2-9 A: often longer than the cell is
    high, so that atoms see several images of themselves and of each other."""
    rng = np.random.default_rng(seed)
    while True:
        cell = np.diag(rng.uniform(2.0, 12.0, 3)) + rng.uniform(-3.0, 3.0, (3, 3)) * (seed % 2)
        if abs(np.linalg.det(cell)) > 5.0:
            break
    n = int(rng.integers(1, 61))
    pos = rng.uniform(-0.7, 1.7, (n, 3)) @ cell
    return torch.tensor(pos), torch.tensor(cell), float(rng.uniform(2.0, 9.0))


@pytest.mark.parametrize("periodic", [True, False], ids=["periodic", "cluster"])
@pytest.mark.parametrize("seed", range(12))
def test_cell_list_equals_vesins_full_list(seed, periodic):
    pos, cell, cutoff = random_case(seed)
    i, j, s = cell_list.neighbor_list(pos, cell, cutoff, periodic=periodic)
    assert (i.dtype, j.dtype, s.dtype) == (torch.int64, torch.int64, torch.int32)
    assert bool((i[1:] >= i[:-1]).all())  # sorted by centre
    mine = sorted(zip(i.tolist(), j.tolist(), map(tuple, s.tolist())))
    assert len(set(mine)) == len(mine)  # each image of each neighbour once
    assert mine == vesin_pairs(pos, cell, cutoff, periodic)
    assert periodic or not s.any()


def test_cell_list_order_does_not_depend_on_the_thread_count():
    pos, cell, cutoff = random_case(3)
    pos = pos.repeat(20, 1) + torch.randn(20 * pos.shape[0], 3, generator=torch.Generator().manual_seed(0))
    n = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one = cell_list.neighbor_list(pos, cell, cutoff)
        torch.set_num_threads(2)
        two = cell_list.neighbor_list(pos, cell, cutoff)
    finally:
        torch.set_num_threads(n)
    assert one[0].numel() > 1000 and all(torch.equal(a, b) for a, b in zip(one, two))


def test_neighbor_list_uses_the_cell_list_for_periodic_cells_and_clusters_and_vesin_otherwise(monkeypatch):
    """Fully periodic cells and clusters of MIN_ATOMS atoms or more go to the
    cell list; a cell so thin that an atom would scan more than MOST_IMAGES
    bin images, partly periodic ones and small ones, to vesin: the same
    pairs either way."""
    calls = []
    build = cell_list.neighbor_list
    monkeypatch.setattr(cell_list, "neighbor_list", lambda *a, **k: calls.append(1) or build(*a, **k))
    pos, cell, cutoff = random_case(4)
    assert pos.shape[0] < cell_list.MIN_ATOMS
    NeighborList(cutoff)(pos, cell, torch.tensor([True] * 3))
    assert not calls
    pos = torch.cat([pos + k * 0.1 for k in range(-(-cell_list.MIN_ATOMS // pos.shape[0]))])
    i, j, s = NeighborList(cutoff)(pos, cell, torch.tensor([True] * 3))
    assert len(calls) == 1
    assert sorted(zip(i.tolist(), j.tolist(), map(tuple, s.tolist()))) == vesin_pairs(pos, cell, cutoff)

    thin = torch.diag(torch.tensor([0.3, 0.3, 60.0], dtype=torch.float64))  # 31 x 31 x 5 bin images
    flat = torch.rand(cell_list.MIN_ATOMS, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(0)) @ thin
    assert not cell_list.serves(flat, thin, torch.tensor([True] * 3), 4.5)
    i, j, s = NeighborList(4.5)(flat, thin, torch.tensor([True] * 3))
    assert len(calls) == 1 and i.numel() > 10_000
    assert sorted(zip(i.tolist(), j.tolist(), map(tuple, s.tolist()))) == vesin_pairs(flat, thin, 4.5)
    NeighborList(cutoff)(pos, cell, torch.tensor([True, True, False]))
    assert len(calls) == 1
    i, j, s = NeighborList(cutoff)(pos, cell, torch.tensor([False] * 3))
    assert len(calls) == 2
    assert sorted(zip(i.tolist(), j.tolist(), map(tuple, s.tolist()))) == vesin_pairs(pos, cell, cutoff, False)
