"""aenet's angular descriptor through spherical-harmonic moments.

The angular terms of a centre (spec 1.3) are a sum over the unordered pairs
{a, b} of its angular members, G_k = sum_(a<b) f_a f_b T_k(x(u_a . u_b)),
so summed pair by pair their cost grows with the square of the members
(~4,900 pairs for the ~100 members of a 6.5 A cutoff). The addition theorem
of spherical harmonics turns it into sums over the members:

    sum_(a<b) f_a f_b P_l(u_a . u_b) = (sum_m M_lm^2 - sum_a f_a^2) / 2,
    M_lm = sum_a f_a Y_lm(u_a),

and T_k(x(c)) = sum_l q_kl P_l(c) is a polynomial identity (x = c, or the
legacy x = slope c - 1). The typespin-weighted terms are the same with
w_a f_a. Work and memory grow with members x (order + 1)^2.

Real harmonics: Y_lm = sk_lm Q_l^|m|(z) (c_m or s_|m|)(x, y) with c_m + i
s_m = (x + i y)^m and Q_l^m the associated Legendre function without its
(1 - z^2)^(m/2), by the three-term recursion at r = 1; sk makes
sum_m Y_lm(a) Y_lm(b) = P_l(a . b) for unit vectors. A function of the
direction only needs its values on the sphere: derivatives by v follow
from Y(v / |v|) (autograd here, the tangential gradient in the compiled
kernels).

Used by the compiled kernels (`compiled_kernels`, centres with many angular
members) and by the torch path (`angular_sums`, whole tensors).
"""

from __future__ import annotations

import functools
import math

import numpy as np
import torch
from torch import Tensor


@functools.lru_cache(maxsize=64)
def harmonic_tables(na: int, slope: float, legacy: bool):
    """(q, sk), float64 (na, na), read-only (cached: every calculator call
    asks): T_k(x(c)) = sum_l q[k, l] P_l(c) (x(c) = slope c - 1 with legacy,
    else c), and sk[l, m] = sqrt((2 - delta_m0) (l - m)! / (l + m)!), the
    harmonics' factors (module docstring)."""
    tx = np.zeros((na, na))  # T_k in powers of x
    tx[0, 0] = 1.0
    if na > 1:
        tx[1, 1] = 1.0
    for k in range(2, na):
        tx[k, 1:] = 2.0 * tx[k - 1, :-1]
        tx[k] -= tx[k - 2]
    a1, a0 = (slope, -1.0) if legacy else (1.0, 0.0)
    xc = np.zeros((na, na))  # x(c)^j in powers of c
    xc[0, 0] = 1.0
    for j in range(1, na):
        xc[j] = a0 * xc[j - 1]
        xc[j, 1:] += a1 * xc[j - 1, :-1]
    cl = np.zeros((na, na))  # c^i in Legendre P_l: c P_l = ((l + 1) P_(l+1) + l P_(l-1)) / (2 l + 1)
    cl[0, 0] = 1.0
    for i in range(1, na):
        for l in range(na):
            p = cl[i - 1, l]
            if l + 1 < na:
                cl[i, l + 1] += p * (l + 1) / (2 * l + 1)
            if l > 0:
                cl[i, l - 1] += p * l / (2 * l + 1)
    q = (tx @ xc) @ cl
    sk = np.zeros((na, na))
    for l in range(na):
        for m in range(l + 1):
            sk[l, m] = math.sqrt((1.0 if m == 0 else 2.0) * math.factorial(l - m) / math.factorial(l + m))
    q.flags.writeable = sk.flags.writeable = False
    return q, sk


def real_harmonics(u: Tensor, na: int, sk: Tensor) -> Tensor:
    """Y_lm(u) of unit vectors u (P, 3) for l < na: (P, na^2), column
    l^2 + l + m (m = -l..l, negative m the sine parts)."""
    x, y, z = u.unbind(1)
    c, s = [torch.ones_like(x)], [torch.zeros_like(x)]
    for _ in range(1, na):
        c, s = c + [x * c[-1] - y * s[-1]], s + [x * s[-1] + y * c[-1]]
    Q = {(0, 0): torch.ones_like(z)}
    qll = 1.0
    for l in range(1, na):
        qll = -(2 * l - 1) * qll
        Q[(l, l)] = torch.full_like(z, qll)
        Q[(l, l - 1)] = -qll * z
        for m in range(l - 1):
            Q[(l, m)] = ((2 * l - 1) * z * Q[(l - 1, m)] - (l + m - 1) * Q[(l - 2, m)]) / (l - m)
    cols = [z] * (na * na)
    for l in range(na):
        for m in range(l + 1):
            cols[l * l + l + m] = sk[l, m] * Q[(l, m)] * c[m]
            if m:
                cols[l * l + l - m] = sk[l, m] * Q[(l, m)] * s[m]
    return torch.stack(cols, dim=1)


def pay(members: Tensor, na: int) -> bool:
    """Whether centres with these counts of angular members cost less
    through the moments (work and memory ~ members x na^2) than through
    their triplets (~ members^2 / 2 x na): from ~2 na members a centre on
    (the ~100 members of a 6.5 A cutoff, not the ~7 of a 3 A one)."""
    return int((members * (members - 1)).sum()) > 2 * na * int(members.sum())


def angular_sums(n_centers: int, center: Tensor, vectors: Tensor, fc: Tensor, weights, na: int, slope: float,
                 legacy: bool) -> Tensor:
    """Angular terms of every centre through the moments, differentiable
    (autograd, higher derivatives too): (n_centers, na), or with per-member
    `weights` (typespin w_a) (n_centers, 2 na) = [plain, weighted].

    center (P,): centre of each angular member; vectors (P, 3) its pair
    vector (nonzero); fc (P,) its angular cutoff function."""
    q, sk = (torch.tensor(t, dtype=vectors.dtype, device=vectors.device) for t in harmonic_tables(na, slope, legacy))
    u = vectors / torch.linalg.vector_norm(vectors, dim=1, keepdim=True)
    Y = real_harmonics(u, na, sk)
    degree = torch.repeat_interleave(torch.arange(na, device=vectors.device),
                                     torch.arange(1, 2 * na, 2, device=vectors.device))
    out = []
    for f in (fc,) if weights is None else (fc, fc * weights):
        M = torch.zeros(n_centers, na * na, dtype=Y.dtype, device=Y.device).index_add(0, center, f.unsqueeze(1) * Y)
        self_terms = torch.zeros(n_centers, dtype=Y.dtype, device=Y.device).index_add(0, center, f * f)
        squares = torch.zeros(n_centers, na, dtype=Y.dtype, device=Y.device).index_add(1, degree, M * M)
        out.append((0.5 * (squares - self_terms.unsqueeze(1))) @ q.T)
    return torch.cat(out, dim=1)
