"""Derivatives of the Chebyshev descriptor with respect to pair vectors,
stored once so that force training needs no descriptor work per epoch.

For a centre i and one of its pairs p (vector v_p = r_j - r_i):

* radial block: dR_k/dv_p = R'_k(r_p) v_p/r_p, one scalar per order
  (the typespin-weighted block is the same times the neighbour's weight);
* angular block: dA_m/dv_p = sum over the triplets {p, q} of centre i,
  a (orders x 3) array per pair (plain and typespin-weighted).

`DescriptorJacobian.pair_gradients(u)` contracts these with u = dE/dG (the
network's input gradient) and returns dE/dv per pair, from which forces
follow as in `potential.evaluate`. This is the sparse form of aenet's
"dG/dr" arrays: about nsf/1.5 numbers per pair instead of nsf x 3 per
neighbour pair and atom.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Tuple

import torch
from torch import Tensor

from . import compiled_kernels
from .chebyshev_kernels import TripletTerms, radial_basis
from .descriptor import ChebyshevDescriptor, angular_triplets

#: triplets per work chunk (bounds the (triplets x orders x 3) temporaries)
TRIPLET_CHUNK = 400_000


@dataclass
class DescriptorJacobian:
    """Stored descriptor derivatives of a set of centres (shapes: Pr radial
    pairs, Pa angular pairs, nr/na radial/angular orders + 1, S elements)."""

    radial_pairs: Tensor  # (Pr,) index of the pair in the caller's pair list
    radial_center: Tensor  # (Pr,) centre index
    radial_species: Tensor  # (Pr,) element index of the neighbour
    radial_unit: Tensor  # (Pr, 3) v/r
    radial_dbasis: Tensor  # (Pr, nr) d(fc T_k)/dr, 1/Angstrom
    type_weights: Optional[Tensor]  # (S,) typespin weights (weighted setups), else None
    angular_pairs: Tensor  # (Pa,)
    angular_center: Tensor  # (Pa,)
    angular: Tensor  # (Pa, na or 2 na, 3): dA/dv, then d(Aw)/dv for weighted setups

    def pair_gradients(self, u: Tensor) -> Tuple[Tensor, Tensor]:
        """dE/dv of the radial and the angular pairs, (Pr, 3) and (Pa, 3).

        u: (n_centres, n_features) dE/dG with G in the descriptor's feature
        order [R, A, Rw, Aw]. Differentiable with respect to u.
        """
        nr = self.radial_dbasis.shape[1]
        if self.type_weights is None:
            coef = u[:, :nr].index_select(0, self.radial_center)
            ua = u[:, nr:]
        else:
            na = self.angular.shape[1] // 2
            S = self.type_weights.numel()
            # per centre and neighbour element: dE/dR + w_e dE/dRw (one gather per pair)
            per_element = u[:, :nr].unsqueeze(1) + self.type_weights.view(1, S, 1) * \
                u[:, nr + na : 2 * nr + na].unsqueeze(1)
            coef = per_element.reshape(-1, nr).index_select(0, self.radial_center * S + self.radial_species)
            ua = torch.cat([u[:, nr : nr + na], u[:, 2 * nr + na :]], dim=1)
        # (einsum would use batched 1x1 matmuls here, slower than mul + sum)
        g_radial = (coef * self.radial_dbasis).sum(1, keepdim=True) * self.radial_unit
        g_angular = torch.einsum("pm,pmc->pc", ua.index_select(0, self.angular_center), self.angular)
        return g_radial, g_angular

    def vector_gradient(self, u: Tensor, n_pairs: int) -> Tensor:
        """dE/dv of all `n_pairs` input pairs, (P, 3)."""
        g_radial, g_angular = self.pair_gradients(u)
        out = torch.zeros(n_pairs, 3, dtype=g_radial.dtype, device=g_radial.device)
        return out.index_add(0, self.radial_pairs, g_radial).index_add(0, self.angular_pairs, g_angular)


def _angular_jacobian_torch(d, va, a_center, a_species, n_centers: int, S: int, na: int) -> Tensor:
    """(Pa * S, na, 3) angular rows (see `compiled_kernels.angular_jacobian`) in torch, chunked over triplets."""
    first, second = angular_triplets(a_center, n_centers)
    jac = torch.zeros(va.shape[0] * S, na, 3, dtype=va.dtype, device=va.device)
    for t0 in range(0, first.numel(), TRIPLET_CHUNK):
        f, s = first[t0 : t0 + TRIPLET_CHUNK], second[t0 : t0 + TRIPLET_CHUNK]
        terms = TripletTerms(va, f, s, d.angular_cutoff, d.angular_order, d.legacy_angular)
        a_p, b_p, a_q, b_q = terms.derivative_vectors()
        dT, T = terms.dT.T.unsqueeze(2), terms.T.T.unsqueeze(2)  # (T, na, 1)
        row_p, row_q = f * S, s * S
        if S > 1:
            row_p, row_q = row_p + a_species[s], row_q + a_species[f]
        jac.index_add_(0, row_p, torch.addcmul(T * b_p.unsqueeze(1), dT, a_p.unsqueeze(1)))
        jac.index_add_(0, row_q, torch.addcmul(T * b_q.unsqueeze(1), dT, a_q.unsqueeze(1)))
    return jac


def descriptor_jacobian(
    descriptor: ChebyshevDescriptor,
    n_centers: int,
    pair_center: Tensor,
    neighbor_species: Tensor,
    vectors: Tensor,
) -> DescriptorJacobian:
    """Analytic derivatives of `descriptor(n_centers, pair_center, ...)`
    with respect to `vectors` (same arguments as the descriptor's forward)."""
    d = descriptor
    dtype, device = vectors.dtype, vectors.device
    weights = d.type_weights.to(dtype=dtype, device=device)
    with torch.no_grad():
        r_all = torch.linalg.vector_norm(vectors, dim=1)
        keep = ((r_all > d.r_min_pair) & (r_all < d.radial_cutoff)).nonzero().squeeze(1)
        r = r_all[keep]
        _, dbasis = radial_basis(r, d.radial_cutoff, d.radial_order)

        na = d.angular_order + 1
        akeep = ((r_all > d.r_min_pair) & (r_all < d.angular_cutoff)).nonzero().squeeze(1)
        a_center = pair_center[akeep]
        va = vectors[akeep]
        a_species = neighbor_species[akeep]
        # accumulate per (pair, element of the triplet partner): the weighted
        # block is then w_p * sum_e w_e J_e, with no per-triplet weight products
        S = weights.numel() if d.weighted else 1
        jac = None
        if compiled_kernels.usable(vectors):  # one pass per centre, no (triplets x orders) arrays
            jac = compiled_kernels.angular_jacobian(va, a_center, a_species, n_centers, S, d.angular_cutoff, na,
                                                    d.legacy_angular, d.legacy_slope)
        if jac is None:
            jac = _angular_jacobian_torch(d, va, a_center, a_species, n_centers, S, na)
        jac = jac.view(akeep.numel(), S, na, 3)
        if d.weighted:
            jac_w = (jac * weights.view(1, S, 1, 1)).sum(1) * weights[a_species].view(-1, 1, 1)
            jac = torch.cat([jac.sum(1), jac_w], dim=1)
        else:
            jac = jac.sum(1)
    return DescriptorJacobian(
        radial_pairs=keep, radial_center=pair_center[keep], radial_species=neighbor_species[keep],
        radial_unit=vectors[keep] / r.unsqueeze(1), radial_dbasis=dbasis.T.contiguous(),
        type_weights=weights if d.weighted else None,
        angular_pairs=akeep, angular_center=a_center, angular=jac,
    )
