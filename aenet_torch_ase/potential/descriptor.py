"""aenet's Chebyshev descriptor (Artrith, Urban, Ceder, PRB 96, 014112 (2017)).

Implements spec section 1.3-1.4 on a pair list: for every central atom i the
radial sums over neighbours j and the angular sums over unordered neighbour
pairs {j, k}, plain and weighted by the neighbours' "typespin" weights.
Works on whole tensors (no loop over atoms, pairs or triplets); TorchScript-able.

Inputs are pair vectors r_ij = r_j - r_i (Angstrom), so energies depend on
positions only through them: forces, stress and per-atom virials all follow
from one gradient with respect to the pair vectors.
"""

from __future__ import annotations

from typing import List

import torch
from torch import Tensor, nn

# aenet's descriptor module uses this truncated literal, not full double pi
PI_AENET = 3.14159265358979

# aenet ignores neighbours closer than this (Angstrom)
R_MIN_PAIR = 1e-12


def cutoff_function(r: Tensor, rc: float) -> Tensor:
    """fc(r) = 0.5 (cos(pi r/Rc) + 1) for r < Rc, else 0."""
    fc = 0.5 * (torch.cos(r * (3.14159265358979 / rc)) + 1.0)  # PI_AENET (TorchScript needs the literal)
    return torch.where(r < rc, fc, torch.zeros_like(fc))


def chebyshev_series(x: Tensor, order: int) -> Tensor:
    """T_0(x) .. T_order(x) stacked on the last dimension: (..., order + 1)."""
    terms: List[Tensor] = [torch.ones_like(x)]
    if order >= 1:
        terms.append(x)
    two_x = 2.0 * x
    for _ in range(2, order + 1):
        terms.append(two_x * terms[-1] - terms[-2])
    return torch.stack(terms, dim=-1)


def angular_triplets(pair_center: Tensor, n_centers: int):
    """All unordered pairs {p, q} of pairs that share a central atom.

    pair_center: (P,) central-atom index of each (angular) pair.
    Returns (first, second): (T,) indices into the P pairs, each pair of
    neighbours once, with `first` before `second` in the centre-sorted order.
    Integer work only (no gradient flows through it).
    """
    order = torch.argsort(pair_center, stable=True)
    centers = pair_center[order]
    counts = torch.bincount(centers, minlength=n_centers)
    starts = torch.cumsum(counts, 0) - counts
    local = torch.arange(centers.numel(), device=centers.device) - starts[centers]
    n_partners = counts[centers] - 1 - local  # pairs after this one in its group
    first_sorted = torch.repeat_interleave(
        torch.arange(centers.numel(), device=centers.device), n_partners
    )
    offsets = torch.cumsum(n_partners, 0) - n_partners
    step = torch.arange(first_sorted.numel(), device=centers.device) - offsets[first_sorted]
    second_sorted = first_sorted + 1 + step
    return order[first_sorted], order[second_sorted]


class ChebyshevDescriptor(nn.Module):
    """One aenet Chebyshev setup: radial and angular expansions, with
    typespin-weighted copies when the environment has more than one species.

    Feature order (spec 1.4): [R_0..R_rN, A_0..A_aN, Rw_0..Rw_rN, Aw_0..Aw_aN].

    Args:
        radial_cutoff, angular_cutoff: Rc in Angstrom.
        radial_order, angular_order: Chebyshev orders N (N + 1 functions).
        type_weights: (n_elements,) weight of each element of the model, as a
            neighbour (0 for elements outside this setup's environment; the
            model refuses such structures before they get here).
        weighted: add the typespin-weighted blocks (environment of >= 2 species).
        legacy_angular: aenet < 2.0.4 angular argument x = 2 cos/pi - 1
            instead of x = cos (spec 1.9).
        fast: in eager mode use the compiled CPU kernels or the
            analytic-derivative kernels of `chebyshev_kernels` (first
            derivatives only), with the angular terms through
            `angular_moments` when centres have many angular members; False,
            or a TorchScript-compiled model, uses the plain autograd reference.
    """

    def __init__(
        self,
        radial_cutoff: float,
        radial_order: int,
        angular_cutoff: float,
        angular_order: int,
        type_weights: List[float],
        weighted: bool,
        legacy_angular: bool = False,
        fast: bool = True,
    ):
        super().__init__()
        if angular_cutoff > radial_cutoff:
            # aenet reuses a stale typespin weight in that case (spec 1.4 quirk)
            raise ValueError(
                f"angular cutoff {angular_cutoff} A > radial cutoff {radial_cutoff} A: "
                "aenet evaluates such setups with a stale type weight; not supported"
            )
        self.radial_cutoff = float(radial_cutoff)
        self.radial_order = int(radial_order)
        self.angular_cutoff = float(angular_cutoff)
        self.angular_order = int(angular_order)
        self.weighted = bool(weighted)
        self.legacy_angular = bool(legacy_angular)
        self.fast = bool(fast)
        self.r_min_pair = R_MIN_PAIR
        self.legacy_slope = 2.0 / PI_AENET
        self.register_buffer("type_weights", torch.tensor(type_weights, dtype=torch.float64))
        n_basis = (self.radial_order + 1) + (self.angular_order + 1)
        self.n_features = n_basis * (2 if self.weighted else 1)

    def forward(
        self, n_centers: int, pair_center: Tensor, neighbor_species: Tensor, vectors: Tensor
    ) -> Tensor:
        """Descriptor of `n_centers` atoms.

        pair_center: (P,) int64 index of the central atom of each pair (0..n_centers-1)
        neighbor_species: (P,) int64 element index of the neighbour
        vectors: (P, 3) r_j - r_i in Angstrom
        Returns (n_centers, n_features), dtype of `vectors`.
        """
        if torch.jit.is_scripting() or not self.fast:
            return self.reference(n_centers, pair_center, neighbor_species, vectors)
        return self._fast(n_centers, pair_center, neighbor_species, vectors)

    @torch.jit.unused
    def _fast(
        self, n_centers: int, pair_center: Tensor, neighbor_species: Tensor, vectors: Tensor
    ) -> Tensor:
        """Same result as `reference`, through the compiled CPU kernels
        (`compiled_kernels`, numba) or the custom torch autograd kernels."""
        from . import compiled_kernels
        from . import angular_moments
        from .chebyshev_kernels import AngularSums, RadialSums

        if compiled_kernels.usable(vectors):
            return compiled_kernels.CompiledChebyshev.apply(vectors, pair_center, neighbor_species, n_centers,
                                                               self)

        dtype = vectors.dtype
        nr = self.radial_order + 1
        na = self.angular_order + 1
        # channels: one per neighbour element (weighted setups), else one
        S = self.type_weights.numel() if self.weighted else 1
        weights = self.type_weights.to(dtype)

        r_all = torch.linalg.vector_norm(vectors, dim=1)
        keep = ((r_all > self.r_min_pair) & (r_all < self.radial_cutoff)).nonzero().squeeze(1)
        channel = pair_center[keep] * S
        if self.weighted:
            channel = channel + neighbor_species[keep]
        R = RadialSums.apply(r_all[keep], channel, n_centers * S, self.radial_cutoff, self.radial_order)
        R = R.view(n_centers, S, nr)

        akeep = ((r_all > self.r_min_pair) & (r_all < self.angular_cutoff)).nonzero().squeeze(1)
        a_center = pair_center[akeep]
        if angular_moments.pay(torch.bincount(a_center, minlength=n_centers), na):
            w_a = weights[neighbor_species[akeep]] if self.weighted else None
            A = angular_moments.angular_sums(n_centers, a_center, vectors[akeep],
                                             cutoff_function(r_all[akeep], self.angular_cutoff), w_a, na,
                                             self.legacy_slope, self.legacy_angular)
            if not self.weighted:
                return torch.cat([R[:, 0], A], dim=1)
            return torch.cat([R.sum(1), A[:, :na], (R * weights.view(1, S, 1)).sum(1), A[:, na:]], dim=1)
        first, second = angular_triplets(a_center, n_centers)
        achannel = a_center[first] * (S * S)
        if self.weighted:
            a_species = neighbor_species[akeep]
            achannel = achannel + a_species[first] * S + a_species[second]
        A = AngularSums.apply(
            vectors[akeep], first, second, achannel, n_centers * S * S,
            self.angular_cutoff, self.angular_order, self.legacy_angular,
        )
        A = A.view(n_centers, S * S, na)
        if not self.weighted:
            return torch.cat([R[:, 0], A[:, 0]], dim=1)
        ww = (weights.unsqueeze(1) * weights.unsqueeze(0)).reshape(S * S)
        return torch.cat(
            [R.sum(1), A.sum(1), (R * weights.view(1, S, 1)).sum(1), (A * ww.view(1, S * S, 1)).sum(1)],
            dim=1,
        )

    def reference(
        self, n_centers: int, pair_center: Tensor, neighbor_species: Tensor, vectors: Tensor
    ) -> Tensor:
        """Plain autograd implementation of the spec's equations (TorchScript path)."""
        dtype = vectors.dtype
        device = vectors.device
        nr = self.radial_order + 1
        na = self.angular_order + 1
        copies = 2 if self.weighted else 1
        weights = self.type_weights.to(dtype)

        # ---- radial sums over neighbours inside the radial cutoff
        r_all = torch.linalg.vector_norm(vectors, dim=1)
        keep = ((r_all > self.r_min_pair) & (r_all < self.radial_cutoff)).nonzero().squeeze(1)
        r = r_all[keep]
        basis = chebyshev_series(r * (2.0 / self.radial_cutoff) - 1.0, self.radial_order)
        basis = basis * cutoff_function(r, self.radial_cutoff).unsqueeze(1)
        if self.weighted:
            w = weights[neighbor_species[keep]]
            basis = torch.cat([basis, basis * w.unsqueeze(1)], dim=1)
        radial = torch.zeros(n_centers, copies * nr, dtype=dtype, device=device)
        radial = radial.index_add(0, pair_center[keep], basis)

        # ---- angular sums over unordered neighbour pairs {j, k} inside the angular cutoff
        angular = torch.zeros(n_centers, copies * na, dtype=dtype, device=device)
        akeep = ((r_all > self.r_min_pair) & (r_all < self.angular_cutoff)).nonzero().squeeze(1)
        if akeep.numel() > 1:
            a_center = pair_center[akeep]
            first, second = angular_triplets(a_center, n_centers)
            v = vectors[akeep]
            ra = r_all[akeep]
            fca = cutoff_function(ra, self.angular_cutoff)
            cos = (v[first] * v[second]).sum(1) / (ra[first] * ra[second])
            if self.legacy_angular:
                x = cos * self.legacy_slope - 1.0
            else:
                x = cos
            abasis = chebyshev_series(x, self.angular_order)
            abasis = abasis * (fca[first] * fca[second]).unsqueeze(1)
            if self.weighted:
                wa = weights[neighbor_species[akeep]]
                abasis = torch.cat([abasis, abasis * (wa[first] * wa[second]).unsqueeze(1)], dim=1)
            angular = angular.index_add(0, a_center[first], abasis)

        if self.weighted:
            return torch.cat([radial[:, :nr], angular[:, :na], radial[:, nr:], angular[:, na:]], dim=1)
        return torch.cat([radial, angular], dim=1)
