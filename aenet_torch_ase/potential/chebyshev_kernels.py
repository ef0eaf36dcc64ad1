"""Fast Chebyshev sums with analytic derivatives (custom autograd functions).

The descriptor's cost is the Chebyshev expansion over ~100 neighbours per
atom. A plain autograd chain of elementwise ops over (pairs x orders)
tensors stores every intermediate and is memory-bound. Here each sum is
one autograd node: the forward builds T_k and dT_k/dx by a one-op-per-order
recursion in an (orders, pairs) layout and scatters into "channels"; the
backward is one gather and one contraction.

Channels: every pair (or triplet) is summed into row `channel[p]` of an
(n_rows, K) output, with channel = centre * C + neighbour type (or type
pair). The plain and the typespin-weighted sums are then cheap linear
combinations of the channel rows (done by the caller, under autograd).

Derivatives are exact first derivatives (forces, stress, and gradients with
respect to network weights through them, as force training needs). Second
derivatives with respect to positions are not provided: the saved basis
derivatives are treated as constants. Use the reference descriptor
(`ChebyshevDescriptor(..., fast=False)`) for Hessians.
"""

from __future__ import annotations

import torch
from torch import Tensor

PI_AENET = 3.14159265358979


def _signs(n: int):
    """[+1, +1, -1, -1, +1, +1, ...] of length n (see `chebyshev_tables`)."""
    return [1.0 if (k // 2) % 2 == 0 else -1.0 for k in range(n)]


def chebyshev_tables(x: Tensor, order: int, derivative: bool = True):
    """T_k(x) and dT_k/dx for k = 0..order, each (order + 1, n) (rows contiguous);
    dT is None when `derivative` is False.

    Uses one fused op per order: with V_k = s_k T_k and s = (+,+,-,-,...),
    the recursion T_k = 2x T_{k-1} - T_{k-2} becomes
    V_k = V_{k-2} + (2 s_k s_{k-1}) x V_{k-1}, a single addcmul. Same for the
    second-kind U_k (dT_k/dx = k U_{k-1}).
    """
    n = x.shape[0]
    K = order + 1
    T = torch.empty(K, n, dtype=x.dtype, device=x.device)
    s = _signs(K + 1)
    T[0] = 1.0
    if K > 1:
        T[1] = x
    for k in range(2, K):
        torch.addcmul(T[k - 2], x, T[k - 1], value=2.0 * s[k] * s[k - 1], out=T[k])
    T.mul_(torch.tensor(s[:K], dtype=x.dtype, device=x.device).unsqueeze(1))
    if not derivative:
        return T, None
    dT = torch.empty(K, n, dtype=x.dtype, device=x.device)
    dT[0] = 0.0
    if K > 1:
        dT[1] = 1.0  # U_0
    if K > 2:
        torch.mul(x, 2.0, out=dT[2])  # U_1 = 2x
    # U_j stored in dT[j + 1]; U_j = 2x U_{j-1} - U_{j-2}
    for j in range(2, K - 1):
        torch.addcmul(dT[j - 1], x, dT[j], value=2.0 * s[j] * s[j - 1], out=dT[j + 1])
    # dT_k = k U_{k-1}, with the sign of U_{k-1}
    scale = [0.0] + [k * s[k - 1] for k in range(1, K)]
    dT.mul_(torch.tensor(scale, dtype=x.dtype, device=x.device).unsqueeze(1))
    return T, dT


def _cutoff(r: Tensor, rc: float):
    """fc and dfc/dr (spec 1.3) for r < rc (callers pass only such r)."""
    arg = r * (PI_AENET / rc)
    fc = 0.5 * (torch.cos(arg) + 1.0)
    dfc = (-0.5 * PI_AENET / rc) * torch.sin(arg)
    return fc, dfc


def radial_basis(r: Tensor, rc: float, order: int, derivative: bool = True):
    """fc(r) T_k(2r/Rc - 1) and its r-derivative (None unless `derivative`),
    each (order + 1, P); r < Rc."""
    x = r * (2.0 / rc) - 1.0
    T, dT = chebyshev_tables(x, order, derivative)
    fc, dfc = _cutoff(r, rc)
    if not derivative:
        return T * fc, None
    # d basis / dr = dfc T + fc dT/dx * 2/Rc
    return T * fc, torch.addcmul(T * dfc, dT, fc * (2.0 / rc))


class TripletTerms:
    """Angular basis of triplets and the pieces of its derivatives.

    For triplet t made of pairs p = first[t], q = second[t]:
        basis[m, t] = f_t T_m(x_t),  f_t = fc(r_p) fc(r_q)
        d basis[m, t] / d v_p = dT[m, t] a_p[t] + T[m, t] b_p[t]   (same for q)
    with a = f dx/dv (through cos theta) and b = d f / dv.
    """

    def __init__(self, v: Tensor, first: Tensor, second: Tensor, rc: float, order: int, legacy: bool,
                 derivative: bool = True):
        r = torch.linalg.vector_norm(v, dim=1)
        self.fc, self.dfc = _cutoff(r, rc)
        self.v, self.r, self.first, self.second = v, r, first, second
        self.cos = (v[first] * v[second]).sum(1) / (r[first] * r[second])
        self.slope = 2.0 / PI_AENET if legacy else 1.0
        x = self.cos * self.slope - 1.0 if legacy else self.cos
        self.T, self.dT = chebyshev_tables(x, order, derivative)
        self.f = self.fc[first] * self.fc[second]

    def derivative_vectors(self):
        """(a_p, b_p, a_q, b_q), each (T, 3); computed on demand (backward only)."""
        first, second = self.first, self.second
        vp, vq = self.v[first], self.v[second]
        rp, rq = self.r[first].unsqueeze(1), self.r[second].unsqueeze(1)
        c = self.cos.unsqueeze(1)
        fs = (self.f * self.slope).unsqueeze(1)
        # d cos/d vp = vq/(rp rq) - cos vp/rp^2 ; d f/d vp = dfc_p fc_q vp/rp
        a_p = fs * (vq / (rp * rq) - c * vp / rp**2)
        a_q = fs * (vp / (rp * rq) - c * vq / rq**2)
        b_p = (self.dfc[first] * self.fc[second]).unsqueeze(1) * vp / rp
        b_q = (self.fc[first] * self.dfc[second]).unsqueeze(1) * vq / rq
        return a_p, b_p, a_q, b_q


class RadialSums(torch.autograd.Function):
    """out[channel[p], k] += fc(r_p) T_k(2 r_p/Rc - 1); r_p < Rc for all p."""

    @staticmethod
    def forward(ctx, r: Tensor, channel: Tensor, n_rows: int, rc: float, order: int):
        # no derivative tables when nothing will be differentiated (featurisation)
        basis, dbasis = radial_basis(r, rc, order, ctx.needs_input_grad[0])
        out = torch.zeros(n_rows, order + 1, dtype=r.dtype, device=r.device)
        out.index_add_(0, channel, basis.T)
        ctx.save_for_backward(channel, dbasis)
        return out

    @staticmethod
    def backward(ctx, grad_out: Tensor):
        channel, dbasis = ctx.saved_tensors
        g = grad_out.contiguous().index_select(0, channel)  # (P, K)
        grad_r = torch.einsum("pk,kp->p", g, dbasis)
        return grad_r, None, None, None, None


class AngularSums(torch.autograd.Function):
    """out[channel[t], m] += fc(r_p) fc(r_q) T_m(x(cos theta_pq)) over triplets.

    v: (Pa, 3) pair vectors inside the angular cutoff; first, second: (T,)
    pair indices of each triplet; x = cos (aenet >= 2.0.4) or
    2 cos/pi - 1 (legacy).
    """

    @staticmethod
    def forward(ctx, v: Tensor, first: Tensor, second: Tensor, channel: Tensor,
                n_rows: int, rc: float, order: int, legacy: bool):
        terms = TripletTerms(v, first, second, rc, order, legacy, ctx.needs_input_grad[0])
        out = torch.zeros(n_rows, order + 1, dtype=v.dtype, device=v.device)
        out.index_add_(0, channel, (terms.T * terms.f).T)
        ctx.save_for_backward(first, second, channel)
        # v is not saved by save_for_backward: forces need no double backward
        # through positions (see module docstring)
        ctx.terms = terms
        ctx.n_pairs = v.shape[0]
        return out

    @staticmethod
    def backward(ctx, grad_out: Tensor):
        first, second, channel = ctx.saved_tensors
        t = ctx.terms
        g = grad_out.contiguous().index_select(0, channel)  # (T, M)
        s_t = torch.einsum("tm,mt->t", g, t.T).unsqueeze(1)  # dE/d(T_m) weights
        s_u = torch.einsum("tm,mt->t", g, t.dT).unsqueeze(1)
        a_p, b_p, a_q, b_q = t.derivative_vectors()
        grad_v = torch.zeros(ctx.n_pairs, 3, dtype=g.dtype, device=g.device)
        grad_v.index_add_(0, first, s_u * a_p + s_t * b_p)
        grad_v.index_add_(0, second, s_u * a_q + s_t * b_q)
        return grad_v, None, None, None, None, None, None, None
