"""Compiled CPU kernels (numba): Chebyshev descriptor and its gradient, pair
vectors, and forces/virials from pair gradients.

The eager torch kernels (`chebyshev_kernels`) stream (orders x pairs) arrays
through memory several times per call. Here one pass per central atom
computes everything in registers and small per-atom arrays:

- `descriptor_kernel`: for each centre i (in parallel), the radial sums over
  its pairs and the angular sums over its pairs of pairs, written to row i
  of the descriptor (plain and typespin-weighted blocks, spec 1.3-1.4). A
  centre with many angular members (`MOMENTS_FROM`) gets its angular sums
  from the members' spherical-harmonic moments instead of pair by pair:
  sum_(a<b) f_a f_b P_l(u_a . u_b) = (sum_m M_lm^2 - sum_a f_a^2) / 2 with
  M_lm = sum_a f_a Y_lm(u_a) (the addition theorem), and T_k = sum_l q_kl P_l,
  so the work grows with the members, not with their pairs;
- `gradient_kernel`: given dE/dG (the networks' backward), for each centre
  the derivative of E with respect to each of its pair vectors; every pair
  belongs to one centre, so threads never write the same row (the autograd
  function `CompiledChebyshev` uses these two, e.g. in training);
- `model_kernel`: the whole model per centre as Fortran aenet does it
  (descriptor row, its element's network forward and backward, the
  derivatives of E_i by its pair vectors), summed straight into energies,
  forces, the virial and per-atom virials (in fixed slices of the
  centres, added up after): `evaluate_model`, the calculator's path, finds a centre's
  members once and keeps no per-pair or per-feature arrays;
- `pair_vectors_kernel`: r_j - r_i + S.C of a pair list.

The descriptor kernels work on a centre-sorted view of the pair list (`center_order`, a
counting sort). The math is the one of `descriptor.ChebyshevDescriptor.reference`
and agrees with it to round-off (tests). numba compiles on first use
(cached on disk); without numba, or on GPU, the torch kernels are used.
`AENET_TORCH_COMPILED=0` switches this path off.

Threads: numba's pool (GNU OpenMP where available, else numba's workqueue),
set per call to the thread policy's count; work is handed out in small
chunks of centres (model_kernel: in 16-64 slices of interleaved chunks,
each summed in a fixed order: the same bits for any thread count) so that a
thread on a busy core does not hold the others up. A process forked after kernels ran on OpenMP uses the torch kernels.
"""

from __future__ import annotations

import math
import os
import threading
from typing import Optional

import numpy as np
import torch
from torch import Tensor

from ..threads import threads_for_call
from .angular_moments import harmonic_tables

PI_AENET = 3.14159265358979

try:  # numba is optional: the torch kernels are the tested fallback
    if os.environ.get("AENET_TORCH_COMPILED", "1") == "0":
        raise ImportError("disabled by AENET_TORCH_COMPILED=0")
    import numba
    from numba import njit, prange

    if "NUMBA_THREADING_LAYER" not in os.environ:
        # GNU OpenMP first, numba's own workqueue where it cannot be loaded.
        # Measured on a 2-core VM, 1,024 atoms, published Li-Si potential:
        # 2 threads 16-18 ms per call with OpenMP vs 21-25 ms with the
        # workqueue (1 thread: 27 ms); the workqueue's sleeping workers wake
        # too slowly for kernels of a few ms. OpenMP's idle workers sleep too
        # (OMP_WAIT_POLICY=PASSIVE, set by the package), so a busy core costs
        # nothing once the thread policy drops to one thread.
        numba.config.THREADING_LAYER_PRIORITY = ["omp", "workqueue", "tbb"]
        numba.config.THREADING_LAYER = "default"
    AVAILABLE = True
except ImportError:  # pragma: no cover - depends on the environment
    numba = None
    AVAILABLE = False

    def njit(*args, **kwargs):
        def wrap(f):
            return f
        return wrap

    prange = range

#: switched off by tests that compare both paths
enabled = True
#: set in a child forked after the parent ran GNU OpenMP kernels
_forked_from_openmp = False


def _after_fork_in_child():
    # GNU OpenMP's thread pool does not survive fork(): numba aborts the child
    # at its first parallel kernel. A forked child (multiprocessing's default
    # start method on Linux) uses the torch kernels instead, as torch itself
    # drops to one thread after a fork.
    global _forked_from_openmp
    try:
        layer = numba.threading_layer()
    except ValueError:  # no kernel launched yet: the child starts its own pool
        return
    if layer == "omp":
        _forked_from_openmp = True


if AVAILABLE and hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
#: centres per work item handed to a thread (dynamic load balance)
CHUNK = 16


def slice_count(n_atoms: int) -> int:
    """How many slices model_kernel partitions the chunks of centres into
    (chunk c in slice c % slices), each slice summed on its own and dealt to
    a thread whole, so that its order of summation is that of one thread
    whatever the thread count (reproducible forces). A function of the
    atom count only: up to 64 slices (a thread that loses its core mid-call
    holds up the others by at most a 64th of the call) while the slices'
    force arrays, zeroed and added up every call, stay small (slices x N <=
    2^18: 32 slices at 8,192 atoms) and each slice has two chunks or more
    (32 slices at 1,024 atoms: 64 slices of one chunk each cost ~3 % of a
    call in zeroing and summing), at least 16."""
    n_chunks = (max(1, n_atoms) + CHUNK - 1) // CHUNK
    return int(min(64, max(16, min((1 << 18) // max(1, n_atoms), n_chunks // 2))))


@njit(error_model="numpy", parallel=True, cache=True)
def sum_slices(parts, out):
    """out[m] = sum_s parts[s, m], the slices added in their order (the
    same bits for any thread count), in parallel over m."""
    n_slices, size = parts.shape
    block = 2048  # a block of out stays in L1 while the slices stream through it (SIMD, contiguous)
    for b in prange((size + block - 1) // block):
        lo, hi = b * block, min(size, b * block + block)
        for m in range(lo, hi):
            out[m] = parts[0, m] if n_slices > 0 else 0.0
        for sl in range(1, n_slices):
            for m in range(lo, hi):
                out[m] += parts[sl, m]


#: an empty index array: "all centres" / "the neighbour's species is given per pair"
NONE = np.empty(0, dtype=np.int64)
#: no (positions, cell, shifts): the kernels read the pair vectors
NO_GEOMETRY = (np.zeros((0, 3)), np.zeros((3, 3)), np.zeros((0, 3), dtype=np.int32))
NO_VECTORS = np.zeros((0, 3))


def usable(vectors: Tensor) -> bool:
    """True when the compiled path can serve this call (CPU tensors, numba present)."""
    return AVAILABLE and enabled and not _forked_from_openmp and vectors.device.type == "cpu"


@njit(error_model="numpy", parallel=True, cache=True)
def _unsorted_count(pair_center):
    """Places where the centre index decreases (0: sorted), in parallel blocks."""
    n = pair_center.shape[0]
    n_blocks = 64
    size = (n + n_blocks - 1) // n_blocks
    bad = 0
    for b in prange(n_blocks):
        for p in range(max(1, b * size), min(n, b * size + size)):
            if pair_center[p] < pair_center[p - 1]:
                bad += 1
    return bad


@njit(error_model="numpy", parallel=True, cache=True)
def _sorted_starts(pair_center, n_centers):
    starts = np.empty(n_centers + 1, dtype=np.int64)
    for c in prange(n_centers + 1):
        starts[c] = np.searchsorted(pair_center, c)
    return starts


@njit(error_model="numpy", cache=True)
def center_order(pair_center, n_centers):
    """Counting sort of the pairs by centre: (order, starts) with the pairs of
    centre i at order[starts[i]:starts[i+1]] (original order kept). For a
    list already sorted by centre (neighbour lists are) order is empty,
    meaning the identity."""
    if _unsorted_count(pair_center) == 0:
        return np.empty(0, dtype=np.int64), _sorted_starts(pair_center, n_centers)
    counts = np.zeros(n_centers + 1, dtype=np.int64)
    for p in range(pair_center.shape[0]):
        counts[pair_center[p] + 1] += 1
    for i in range(n_centers):
        counts[i + 1] += counts[i]
    starts = counts.copy()
    fill = counts[:-1].copy()
    order = np.empty(pair_center.shape[0], dtype=np.int64)
    for p in range(pair_center.shape[0]):
        c = pair_center[p]
        order[fill[c]] = p
        fill[c] += 1
    return order, starts


@njit(error_model="numpy", cache=True, fastmath=False)
def _chebyshev_d(x, K, T, dT):
    """T_k(x) and dT_k/dx = k U_{k-1}(x), k < K."""
    F = T.dtype.type
    T[0] = F(1.0)
    dT[0] = F(0.0)
    if K > 1:
        T[1] = x
        dT[1] = F(1.0)
    u_prev2 = F(1.0)  # U_0
    u_prev = F(2.0) * x  # U_1
    for k in range(2, K):
        T[k] = F(2.0) * x * T[k - 1] - T[k - 2]
        dT[k] = F(k) * u_prev
        u_new = F(2.0) * x * u_prev - u_prev2
        u_prev2 = u_prev
        u_prev = u_new


#: floating-point freedoms for the compiled loops: reassociation lets the sums
#: over pairs use SIMD lanes (results change at round-off level only). Every
#: kernel also takes error_model="numpy": with Python's, each float division
#: checks for a zero divisor and may raise, an exit that keeps LLVM from
#: vectorising the loop around it (no divisor here can be zero: pairs closer
#: than r_min are dropped; the calculator checks the results are finite)
FASTMATH = {"reassoc", "contract"}


# cos and sin of the cutoff argument a = pi_aenet r / Rc in [0, pi) by series in
# y = a - pi_aenet/2 (|y| <= pi/2; 12 terms reach round-off, 2e-16 absolute) and
# the exact angle-sum identity with cos/sin(pi_aenet/2): no libm call, so the
# loop over a centre's pairs runs in SIMD lanes
_SIN_SERIES = tuple((-1.0) ** k / math.factorial(2 * k + 1) for k in range(11, -1, -1))
_COS_SERIES = tuple((-1.0) ** k / math.factorial(2 * k) for k in range(11, -1, -1))
_S, _C = _SIN_SERIES, _COS_SERIES
_COS_HALF_PI = math.cos(PI_AENET / 2.0)
_SIN_HALF_PI = math.sin(PI_AENET / 2.0)


@njit(error_model="numpy", cache=True, fastmath=FASTMATH)
def _radial_members(vectors, geometry, center, spec, jidx, order, p0, p1, weights, rc_r, rc_a, rmin,
                    idx, ux, uy, uz, r, x, fc, dfc, w, a_idx, fca, dfca):
    """Pairs of one centre inside the radial cutoff into the scratch arrays
    (unit vector, r, Chebyshev argument, fc, dfc/dr, typespin weight);
    returns (n radial, n angular) with the angular members' slots in a_idx
    and their angular fc, dfc/dr in fca, dfca. The neighbour's species is
    spec[p] (jidx empty) or spec[jidx[p]] (jidx = the pairs' neighbours).
    The pair vector is vectors[p], or, when geometry = (positions, cell,
    shifts) has shifts, r_j - r_center + shifts[p] . cell (no (P, 3) array).
    Vectors and distances are made in float64; the scratch arrays' dtype
    (float32 for a float32 model) is that of the arithmetic after."""
    n = 0
    rc2 = rc_r * rc_r
    rmin2 = rmin * rmin
    identity = order.shape[0] == 0
    per_pair = jidx.shape[0] == 0
    positions, cell, shifts = geometry
    geometric = shifts.shape[0] > 0
    cx = cy = cz = 0.0
    if geometric:
        cx, cy, cz = positions[center, 0], positions[center, 1], positions[center, 2]
    c00, c01, c02 = cell[0, 0], cell[0, 1], cell[0, 2]
    c10, c11, c12 = cell[1, 0], cell[1, 1], cell[1, 2]
    c20, c21, c22 = cell[2, 0], cell[2, 1], cell[2, 2]
    U = np.uint64  # unsigned indices: no wraparound select for a negative index
    if geometric and identity and not per_pair:
        # the calculator's case in a loop of its own: no per-pair branch, fewer live arrays (3-6 % faster a call)
        pos = positions.reshape(-1)
        sh = shifts.reshape(-1)
        for s in range(p0, p1):
            p = U(s)
            jj = U(jidx[p])
            p3, j3 = U(3) * p, U(3) * jj
            s0, s1, s2 = sh[p3], sh[p3 + U(1)], sh[p3 + U(2)]
            n = _keep(n, p, pos[j3] - cx + s0 * c00 + s1 * c10 + s2 * c20,
                      pos[j3 + U(1)] - cy + s0 * c01 + s1 * c11 + s2 * c21,
                      pos[j3 + U(2)] - cz + s0 * c02 + s1 * c12 + s2 * c22,
                      weights[U(spec[jj])], rmin2, rc2, idx, ux, uy, uz, w)
    else:
        for s in range(p0, p1):
            p = U(s) if identity else U(order[U(s)])
            if geometric:
                jj = U(jidx[p])
                s0, s1, s2 = shifts[p, U(0)], shifts[p, U(1)], shifts[p, U(2)]
                vx = positions[jj, U(0)] - cx + s0 * c00 + s1 * c10 + s2 * c20
                vy = positions[jj, U(1)] - cy + s0 * c01 + s1 * c11 + s2 * c21
                vz = positions[jj, U(2)] - cz + s0 * c02 + s1 * c12 + s2 * c22
            else:
                vx, vy, vz = vectors[p, U(0)], vectors[p, U(1)], vectors[p, U(2)]
            n = _keep(n, p, vx, vy, vz, weights[U(spec[p]) if per_pair else U(spec[U(jidx[p])])], rmin2, rc2,
                      idx, ux, uy, uz, w)
    return _member_geometry(n, rc_r, rc_a, ux, uy, uz, r, x, fc, dfc, w, a_idx, fca, dfca)


@njit(error_model="numpy", cache=True, inline="always")
def _keep(n, p, vx, vy, vz, weight, rmin2, rc2, idx, ux, uy, uz, w):
    """Writes pair p (vector, weight) to slot n; returns n + 1 if it lies
    inside the radial cutoff, else n (the slot is overwritten next):
    compaction without branches, a third of the skin list being outside."""
    un = np.uint64(n)
    idx[un] = p
    ux[un] = vx
    uy[un] = vy
    uz[un] = vz
    w[un] = weight
    d2 = vx * vx + vy * vy + vz * vz
    return n + ((d2 > rmin2) & (d2 < rc2))


@njit(error_model="numpy", cache=True, fastmath=FASTMATH)
def _member_geometry(n, rc_r, rc_a, ux, uy, uz, r, x, fc, dfc, w, a_idx, fca, dfca):
    """For the n members (pair vectors in ux, uy, uz): unit vectors, r, the
    Chebyshev argument, fc and dfc/dr; the members inside the angular cutoff
    (slots in a_idx) with their angular fc, dfc/dr. Returns (n, m). Slots
    n to _padded(n) become padding members (r = 1, fc = dfc = w = 0) that
    add nothing to any sum."""
    F = ux.dtype.type
    one, zero = F(1.0), F(0.0)
    x_scale = F(2.0 / rc_r)
    n_pad = _padded(n, ux)
    for q in range(n, n_pad):
        ux[q], uy[q], uz[q] = one, zero, zero
    for q in range(n_pad):  # straight-line arithmetic over the members (SIMD)
        rr = math.sqrt(ux[q] * ux[q] + uy[q] * uy[q] + uz[q] * uz[q])
        inv = one / rr
        ux[q] *= inv
        uy[q] *= inv
        uz[q] *= inv
        r[q] = rr
        x[q] = rr * x_scale - one
        fc[q], dfc[q] = _cutoff(rr, rc_r)
    for q in range(n, n_pad):
        fc[q], dfc[q], w[q] = zero, zero, zero
    m = 0
    for q in range(n):  # the members inside the angular cutoff, compacted without branches
        a_idx[m] = q
        m += r[q] < rc_a
    U = np.uint64
    for t in range(m):
        fca[t], dfca[t] = _cutoff(r[U(a_idx[t])], rc_a)
    return n, m


@njit(error_model="numpy", cache=True, fastmath=FASTMATH, inline="always")
def _cutoff(rr, rc):
    """fc(r) = (cos(pi r / Rc) + 1) / 2 and dfc/dr, 0 <= r < Rc, in rr's
    type, without libm (see _SIN_SERIES): straight-line arithmetic that
    runs in SIMD lanes."""
    F = type(rr)
    # every constant in F: a float64 literal would turn float32 arithmetic into float64
    S0, S1, S2, S3, S4, S5 = F(_S[0]), F(_S[1]), F(_S[2]), F(_S[3]), F(_S[4]), F(_S[5])
    S6, S7, S8, S9, S10, S11 = F(_S[6]), F(_S[7]), F(_S[8]), F(_S[9]), F(_S[10]), F(_S[11])
    C0, C1, C2, C3, C4, C5 = F(_C[0]), F(_C[1]), F(_C[2]), F(_C[3]), F(_C[4]), F(_C[5])
    C6, C7, C8, C9, C10, C11 = F(_C[6]), F(_C[7]), F(_C[8]), F(_C[9]), F(_C[10]), F(_C[11])
    y = rr * F(PI_AENET / rc) - F(0.5 * PI_AENET)
    y2 = y * y
    # Horner written out (a loop over the coefficient tuple kept the loop over q scalar)
    sy = (((((((((((S0 * y2 + S1) * y2 + S2) * y2 + S3) * y2 + S4) * y2 + S5) * y2 + S6)
               * y2 + S7) * y2 + S8) * y2 + S9) * y2 + S10) * y2 + S11) * y
    cy = ((((((((((C0 * y2 + C1) * y2 + C2) * y2 + C3) * y2 + C4) * y2 + C5) * y2 + C6)
              * y2 + C7) * y2 + C8) * y2 + C9) * y2 + C10) * y2 + C11
    cos_a = cy * F(_COS_HALF_PI) - sy * F(_SIN_HALF_PI)
    sin_a = sy * F(_COS_HALF_PI) + cy * F(_SIN_HALF_PI)
    return F(0.5) * (cos_a + F(1.0)), F(-0.5 * (PI_AENET / rc)) * sin_a


@njit(error_model="numpy", cache=True)
def _widest(starts):
    """The size of the per-thread scratch arrays: most pairs of any centre,
    and room for the padding of `_padded`."""
    width = 1
    for i in range(starts.shape[0] - 1):
        width = max(width, starts[i + 1] - starts[i])
    return width + PADDING


#: most padding slots `_padded` adds (float32: 8 SIMD lanes x 4 interleaved)
PADDING = 32


@njit(error_model="numpy", cache=True, inline="always")
def _padded(n, like):
    """n rounded up to a whole number of LLVM's vectorised loop steps for
    arrays like `like` (4 AVX2 vectors: 16 float64, 32 float32). Loops over
    member or triplet arrays run over this many slots, the extra ones
    holding zero weights: a loop of a count LLVM cannot see would otherwise
    end in a scalar remainder of up to 31 float32 slots, a quarter of a
    centre's ~125 members."""
    step = 128 // like.itemsize
    return (n + step - 1) // step * step


@njit(error_model="numpy", cache=True, fastmath=FASTMATH)
def _chebyshev_sums(row, off, off_w, K, n, x, f, fw, t_prev, t_cur, weighted):
    """row[off + k] += sum_q f[q] T_k(x[q]) and, weighted, row[off_w + k] +=
    sum_q fw[q] T_k(x[q]), for k < K: the recursion over the q (SIMD),
    four orders per sweep (the recursion's state stays in registers for
    four steps: a sweep per order was bound by its loads and stores),
    t_prev and t_cur its scratch."""
    F = row.dtype.type
    two = F(2.0)
    s0 = F(0.0)
    s0w = F(0.0)
    s1 = F(0.0)
    s1w = F(0.0)
    for q in range(n):
        t_prev[q] = F(1.0)
        t_cur[q] = x[q]
        s0 += f[q]
        s0w += fw[q]
        s1 += f[q] * x[q]
        s1w += fw[q] * x[q]
    row[off] += s0
    if K > 1:
        row[off + 1] += s1
    if weighted:
        row[off_w] += s0w
        if K > 1:
            row[off_w + 1] += s1w
    for k in range(2, K, 4):  # orders k .. k + 3; those >= K are computed and dropped
        a0 = a1 = a2 = a3 = F(0.0)
        b0 = b1 = b2 = b3 = F(0.0)
        for q in range(n):
            xq2 = two * x[q]
            t0 = xq2 * t_cur[q] - t_prev[q]
            t1 = xq2 * t0 - t_cur[q]
            t2 = xq2 * t1 - t0
            t3 = xq2 * t2 - t1
            t_prev[q] = t2
            t_cur[q] = t3
            fq, fwq = f[q], fw[q]
            a0 += fq * t0
            a1 += fq * t1
            a2 += fq * t2
            a3 += fq * t3
            b0 += fwq * t0
            b1 += fwq * t1
            b2 += fwq * t2
            b3 += fwq * t3
        a, b = (a0, a1, a2, a3), (b0, b1, b2, b3)
        for j in range(min(4, K - k)):
            row[off + k + j] += a[j]
            if weighted:
                row[off_w + k + j] += b[j]


#: angular members from which a centre's angular terms go through the
#: members' spherical-harmonic moments (`_angular_terms_moments`: work ~ m
#: na^2 plus a fixed cost) rather than one triplet at a time (~ m^2 na / 2):
#: the two cost the same at 13-16 members (na = 5-7, float64 and float32;
#: the published Li-Si potential has ~7, TiO2's 6.5 A cutoff ~100)
MOMENTS_FROM = 16


@njit(error_model="numpy", cache=True, fastmath=FASTMATH)
def _center_descriptor(row, n, m, nr, na, weighted, slope, legacy, ux, uy, uz, x, fc, w, a_idx, fca,
                       t_prev, t_cur, wfc, ang, hs, for_gradient):
    """row = [R (nr), A (na), Rw (nr), Aw (na)] of one centre from its members.
    for_gradient: leave in ang and hs all that `_center_gradient(...,
    reuse=True)` of the same centre needs (the moments' dQ/dz rows too)."""
    for k in range(row.shape[0]):
        row[k] = 0.0
    # radial: T_k over all pairs at once, order by order (SIMD over pairs)
    n_pad = _padded(n, x)  # the padding members have fc = w = 0
    for q in range(n_pad):
        wfc[q] = w[q] * fc[q]
    _chebyshev_sums(row, 0, nr + na, nr, n_pad, x, fc, wfc, t_prev, t_cur, weighted)
    # angular: unordered pairs of the members inside the angular cutoff
    _angular_members(m, a_idx, ux, uy, uz, w, ang)
    if m >= MOMENTS_FROM:
        _angular_terms_moments(row, m, nr, na, weighted, ang, fca, hs, for_gradient)
    else:
        _angular_terms(row, m, nr, na, weighted, slope, legacy, ang, fca)


@njit(error_model="numpy", cache=True)
def _angular_scratch(width, na, like):
    """One thread's rows for a centre's angular members, in the dtype of
    `like`: unit vector (3) and w (slots up to `_padded` of the members:
    the moments' padding), then the per-member sums of `_angular_terms`
    (plain, weighted; na long)."""
    return np.empty((6, max(width, na)), dtype=like.dtype)


@njit(error_model="numpy", cache=True)
def _angular_members(m, a_idx, ux, uy, uz, w, ang):
    """The m angular members' unit vectors and weights (slots a_idx) into
    contiguous rows of ang."""
    U = np.uint64
    for t in range(m):
        q = U(a_idx[t])
        ang[0, t], ang[1, t], ang[2, t], ang[3, t] = ux[q], uy[q], uz[q], w[q]


@njit(error_model="numpy", cache=True, fastmath=FASTMATH)
def _angular_terms(row, m, nr, na, weighted, slope, legacy, ang, fca):
    """Adds to row the angular terms of the unordered pairs (triplets) a < b
    of the m angular members: fc_a fc_b T_k(cos) and, weighted, w_a w_b
    times that, k < na, one triplet at a time with the recursion in
    registers (for the few members of a short angular cutoff; many go
    through `_angular_terms_moments`)."""
    F = row.dtype.type
    two = F(2.0)
    off, off_w = nr, 2 * nr + na
    aux, auy, auz, aw = ang[0], ang[1], ang[2], ang[3]
    s_a, s_w = ang[4, :], ang[5, :]  # a's sums over its partners, added to row per a: fewer round-offs in float32
    for a in range(m - 1):
        xa, ya, za, fa, wa = aux[a], auy[a], auz[a], fca[a], aw[a]
        for k in range(na):
            s_a[k], s_w[k] = F(0.0), F(0.0)
        for b in range(a + 1, m):
            cos = xa * aux[b] + ya * auy[b] + za * auz[b]
            xq = cos * F(slope) - F(1.0) if legacy else cos
            f = fa * fca[b]
            fw = f * wa * aw[b]
            s_a[0] += f
            s_w[0] += fw
            if na > 1:
                s_a[1] += f * xq
                s_w[1] += fw * xq
            tp, tc = F(1.0), xq
            for k in range(2, na):
                t = two * xq * tc - tp
                s_a[k] += f * t
                s_w[k] += fw * t
                tp, tc = tc, t
        for k in range(na):
            row[off + k] += s_a[k]
            if weighted:
                row[off_w + k] += s_w[k]


@njit(error_model="numpy", cache=True, fastmath=FASTMATH)
def _chebyshev_gradient_sums(n, x, wq, g, off, off_w, K, weighted, t_prev, t_cur, u_prev, u_cur, st, su):
    """For each q < n, with c_k = g[off + k] + wq[q] g[off_w + k] (the
    second term only if weighted): st[q] = sum_k c_k T_k(x[q]) and su[q] =
    sum_k c_k dT_k/dx (dT_k/dx = k U_{k-1}, U by its own recursion), k < K,
    order by order, SIMD over the q."""
    F = g.dtype.type
    two = F(2.0)
    g0 = g[off]
    gw0 = g[off_w] if weighted else F(0.0)
    for q in range(n):
        st[q] = g0 + wq[q] * gw0  # T_0 = 1, dT_0 = 0
        su[q] = F(0.0)
        t_prev[q] = F(1.0)
        t_cur[q] = x[q]
        u_prev[q] = F(1.0)  # U_0
        u_cur[q] = two * x[q]  # U_1
    if K > 1:
        g1 = g[off + 1]
        gw1 = g[off_w + 1] if weighted else F(0.0)
        for q in range(n):
            c = g1 + wq[q] * gw1
            st[q] += c * x[q]  # T_1 = x, dT_1 = 1
            su[q] += c
    zero = F(0.0)
    for k in range(2, K, 4):  # orders k .. k + 3 per sweep, as in _chebyshev_sums (beyond K: zero coefficients)
        g0 = g[off + k]
        g1 = g[off + k + 1] if k + 1 < K else zero
        g2 = g[off + k + 2] if k + 2 < K else zero
        g3 = g[off + k + 3] if k + 3 < K else zero
        gw0 = g[off_w + k] if weighted else zero
        gw1 = g[off_w + k + 1] if weighted and k + 1 < K else zero
        gw2 = g[off_w + k + 2] if weighted and k + 2 < K else zero
        gw3 = g[off_w + k + 3] if weighted and k + 3 < K else zero
        f0, f1, f2, f3 = F(k), F(k + 1), F(k + 2), F(k + 3)
        for q in range(n):
            xq2 = two * x[q]
            wqq = wq[q]
            tp, tc, up, uc = t_prev[q], t_cur[q], u_prev[q], u_cur[q]
            t0 = xq2 * tc - tp  # T_k
            d0 = f0 * uc  # dT_k = k U_{k-1}
            u0 = xq2 * uc - up  # U_k
            t1 = xq2 * t0 - tc
            d1 = f1 * u0
            u1 = xq2 * u0 - uc
            t2 = xq2 * t1 - t0
            d2 = f2 * u1
            u2 = xq2 * u1 - u0
            t3 = xq2 * t2 - t1
            d3 = f3 * u2
            u3 = xq2 * u2 - u1
            t_prev[q], t_cur[q], u_prev[q], u_cur[q] = t2, t3, u2, u3
            c0, c1, c2, c3 = g0 + wqq * gw0, g1 + wqq * gw1, g2 + wqq * gw2, g3 + wqq * gw3
            st[q] += c0 * t0 + c1 * t1 + c2 * t2 + c3 * t3
            su[q] += c0 * d0 + c1 * d1 + c2 * d2 + c3 * d3


@njit(error_model="numpy", cache=True, fastmath=FASTMATH)
def _center_gradient(g, n, m, nr, na, rc_r, weighted, slope, legacy, ux, uy, uz, r, x, fc, dfc, w, a_idx,
                     fca, dfca, t_prev, t_cur, u_prev, u_cur, sa, sc, gx, gy, gz, ang, hs, reuse):
    """(gx, gy, gz)[q] = dE/dv of member q of one centre, from g = dE/dG (its
    row). reuse: the angular members' rows and moments are still those that
    `_center_descriptor(..., for_gradient=True)` of this centre left
    (model_kernel); else they are made again."""
    F = g.dtype.type
    # per pair: sa = sum_k (g_k + w gw_k) T_k, sc = the same with dT_k/dx
    n_pad = _padded(n, x)  # the padding members' fc, dfc are 0: their gx, gy, gz too
    _chebyshev_gradient_sums(n_pad, x, w, g, 0, nr + na, nr, weighted, t_prev, t_cur, u_prev, u_cur, sa, sc)
    x_scale = F(2.0 / rc_r)
    for q in range(n_pad):
        # dE/dr = sum_k (g_k + w gw_k) (dfc T_k + fc (2/Rc) dT_k)
        d = dfc[q] * sa[q] + fc[q] * x_scale * sc[q]
        gx[q] = d * ux[q]
        gy[q] = d * uy[q]
        gz[q] = d * uz[q]
    if not reuse:
        _angular_members(m, a_idx, ux, uy, uz, w, ang)  # angular: as in _center_descriptor
    if m >= MOMENTS_FROM:
        _angular_gradient_moments(g, m, nr, na, weighted, ang, r, a_idx, fca, dfca, gx, gy, gz, hs, reuse)
    else:
        _angular_gradient(g, m, nr, na, weighted, slope, legacy, ang, r, a_idx, fca, dfca, gx, gy, gz)


@njit(error_model="numpy", cache=True, fastmath=FASTMATH, inline="always")
def _triplet_share(st, su, cos, slope, legacy, fa, dfa, ira, xa, ya, za, fb, dfb, irb, xb, yb, zb):
    """A triplet's derivative shares for its two members a and b (unit
    vectors, fc, dfc/dr, 1/r), from st = sum_k gk T_k and su = sum_k gk
    dT_k/dx: d cos / d v_a = (u_b - cos u_a) / r_a and d fc_a fc_b / d v_a
    = dfc_a fc_b u_a (and a <-> b). Returns (a's 3, b's 3)."""
    F = type(st)
    f = fa * fb
    sf = su * (f * F(slope) if legacy else f)
    sa = st * dfa * fb
    sb = st * fa * dfb
    sfa, sfb = sf * ira, sf * irb
    return (sfa * (xb - cos * xa) + sa * xa, sfa * (yb - cos * ya) + sa * ya, sfa * (zb - cos * za) + sa * za,
            sfb * (xa - cos * xb) + sb * xb, sfb * (ya - cos * yb) + sb * yb, sfb * (za - cos * zb) + sb * zb)


@njit(error_model="numpy", cache=True, fastmath=FASTMATH)
def _angular_gradient(g, m, nr, na, weighted, slope, legacy, ang, r, a_idx, fca, dfca, gx, gy, gz):
    """Adds to (gx, gy, gz) of the members the derivatives of the angular
    terms (see `_angular_terms`), from g = dE/dG, one triplet at a time with
    the recursions in registers: st = sum_k gk T_k and su = sum_k gk
    dT_k/dx (gk = g_k + w_a w_b gw_k, dT_k/dx = k U_{k-1}), then the
    triplet's share to its two members (`_triplet_share`)."""
    F = g.dtype.type
    zero, one, two = F(0.0), F(1.0), F(2.0)
    off, off_w = nr, 2 * nr + na
    aux, auy, auz, aw = ang[0], ang[1], ang[2], ang[3]
    U = np.uint64
    for a in range(m - 1):
        qa = U(a_idx[a])
        xa, ya, za, wa, fa, dfa, ira = aux[a], auy[a], auz[a], aw[a], fca[a], dfca[a], one / r[qa]
        ga0 = ga1 = ga2 = zero
        for b in range(a + 1, m):
            xb, yb, zb = aux[b], auy[b], auz[b]
            cos = xa * xb + ya * yb + za * zb
            xq = cos * F(slope) - F(1.0) if legacy else cos
            wab = wa * aw[b]
            sum_t = g[off] + (wab * g[off_w] if weighted else zero)  # T_0 = 1, dT_0 = 0
            sum_d = zero
            if na > 1:
                c = g[off + 1] + (wab * g[off_w + 1] if weighted else zero)
                sum_t += c * xq  # T_1 = x, dT_1 = 1
                sum_d += c
            tp, tc, up, uc = one, xq, one, two * xq  # T_0, T_1, U_0, U_1
            for k in range(2, na):
                c = g[off + k] + (wab * g[off_w + k] if weighted else zero)
                t = two * xq * tc - tp
                sum_t += c * t
                sum_d += c * F(k) * uc  # dT_k = k U_{k-1}
                tp, tc = tc, t
                up, uc = uc, two * xq * uc - up
            fb, dfb = fca[b], dfca[b]
            qb = U(a_idx[b])
            da0, da1, da2, db0, db1, db2 = _triplet_share(sum_t, sum_d, cos, slope, legacy, fa, dfa, ira, xa, ya, za,
                                                          fb, dfb, one / r[qb], xb, yb, zb)
            ga0 += da0
            ga1 += da1
            ga2 += da2
            gx[qb] += db0
            gy[qb] += db1
            gz[qb] += db2
        gx[qa] += ga0
        gy[qa] += ga1
        gz[qa] += ga2


@njit(error_model="numpy", cache=True)
def _harmonic_scratch(width, q, sk):
    """One thread's arrays for `_angular_moments` beside the shared tables
    q, sk (`angular_moments.harmonic_tables`, in the kernel's dtype): (q,
    sk, rows (c_m, s_m, Q_l^m, dQ_l^m/dz of the members, the gradient's 4),
    the moments (plain, weighted) and the gradient's coefficients (4,
    na^2))."""
    na = q.shape[0]
    nq = na * (na + 1) // 2
    return q, sk, np.empty((2 * na + 2 * nq + 4, width), q.dtype), np.empty((4, na * na), q.dtype)


@njit(error_model="numpy", cache=True, fastmath=FASTMATH)
def _harmonic_rows(n, na, ang, H, derivative):
    """For the members 0..n (unit vectors in ang's rows 0-2), SIMD over the
    members: c_m + i s_m = (x + i y)^m into H rows m, na + m, and Q_l^m(z)
    (the associated Legendre function without its (1 - z^2)^(m/2), r = 1)
    into row 2 na + l (l + 1) / 2 + m, with dQ/dz na (na + 1) / 2 rows
    further when `derivative`."""
    F = H.dtype.type
    x, y, z = ang[0], ang[1], ang[2]
    nq = na * (na + 1) // 2
    q0, d0 = 2 * na, 2 * na + nq
    for t in range(n):
        H[0, t], H[na, t], H[q0, t], H[d0, t] = F(1.0), F(0.0), F(1.0), F(0.0)
    for m in range(1, na):
        cp, sp, cm, sm = H[m - 1], H[na + m - 1], H[m], H[na + m]
        for t in range(n):
            cm[t] = x[t] * cp[t] - y[t] * sp[t]
            sm[t] = x[t] * sp[t] + y[t] * cp[t]
    qll = F(1.0)
    for l in range(1, na):
        row = l * (l + 1) // 2
        prev = (l - 1) * l // 2
        qll = -F(2 * l - 1) * qll  # Q_l^l: a constant
        ql, dl = H[q0 + row + l], H[d0 + row + l]
        qm, dm = H[q0 + row + l - 1], H[d0 + row + l - 1]  # Q_l^(l-1) = -z Q_l^l
        for t in range(n):
            ql[t], dl[t] = qll, F(0.0)
            qm[t] = -z[t] * qll
            dm[t] = -qll
        for m in range(l - 1):  # (l - m) Q_l^m = (2l - 1) z Q_(l-1)^m - (l + m - 1) Q_(l-2)^m
            a, b, inv = F(2 * l - 1), F(l + m - 1), F(1.0 / (l - m))
            q1, q2, qo = H[q0 + prev + m], H[q0 + (l - 2) * (l - 1) // 2 + m], H[q0 + row + m]
            for t in range(n):
                qo[t] = (a * z[t] * q1[t] - b * q2[t]) * inv
            if derivative:
                d1, d2, do = H[d0 + prev + m], H[d0 + (l - 2) * (l - 1) // 2 + m], H[d0 + row + m]
                for t in range(n):
                    do[t] = (a * (q1[t] + z[t] * d1[t]) - b * d2[t]) * inv


@njit(error_model="numpy", cache=True, fastmath=FASTMATH)
def _angular_moments(m, na, ang, fca, hs, derivative):
    """The moments M_lm = sum_a f_a Y_lm(u_a) and Mw_lm = sum_a w_a f_a
    Y_lm(u_a) of the m angular members into hs[3] rows 0, 1 (index l^2 + l
    + m, m = -l..l, negative m the sine parts), the members' rows
    (`_harmonic_rows`) left in hs[2]; returns (n_pad, sum f_a^2, sum (w_a
    f_a)^2). Slots m to n_pad become members of f = 0."""
    F = fca.dtype.type
    q, sk, H, Mv = hs
    zero = F(0.0)
    n = _padded(m, fca)
    for t in range(m, n):
        ang[0, t], ang[1, t], ang[2, t], ang[3, t], fca[t] = zero, zero, F(1.0), zero, zero
    _harmonic_rows(n, na, ang, H, derivative)
    f, w = fca, ang[3]
    ff = ffw = zero
    for t in range(n):
        ff += f[t] * f[t]
        ffw += f[t] * w[t] * f[t] * w[t]
    q0 = 2 * na
    for l in range(na):
        for mm in range(l + 1):
            s = sk[l, mm]
            qr, cr, sr = H[q0 + l * (l + 1) // 2 + mm], H[mm], H[na + mm]
            a = aw = b = bw = zero
            for t in range(n):
                y = qr[t] * cr[t]
                a += f[t] * y
                aw += f[t] * w[t] * y
                y2 = qr[t] * sr[t]
                b += f[t] * y2
                bw += f[t] * w[t] * y2
            Mv[0, l * l + l + mm], Mv[1, l * l + l + mm] = s * a, s * aw
            if mm > 0:
                Mv[0, l * l + l - mm], Mv[1, l * l + l - mm] = s * b, s * bw
    return n, ff, ffw


@njit(error_model="numpy", cache=True, fastmath=FASTMATH)
def _angular_terms_moments(row, m, nr, na, weighted, ang, fca, hs, derivative):
    """Adds to row the angular terms sum_(a<b) f_a f_b T_k(x(cos)) (and,
    weighted, times w_a w_b) through the members' moments: the pair sum of
    P_l(u_a . u_b) is (sum_m M_lm^2 - sum_a f_a^2) / 2 (addition theorem), and
    T_k(x(c)) = sum_l q[k, l] P_l(c): work linear in the members."""
    F = row.dtype.type
    q, Mv = hs[0], hs[3]
    n, ff, ffw = _angular_moments(m, na, ang, fca, hs, derivative)
    off, off_w = nr, 2 * nr + na
    for l in range(na):
        s = sw = F(0.0)
        for c in range(l * l, (l + 1) * (l + 1)):
            s += Mv[0, c] * Mv[0, c]
            sw += Mv[1, c] * Mv[1, c]
        s = F(0.5) * (s - ff)
        sw = F(0.5) * (sw - ffw)
        for k in range(na):
            row[off + k] += q[k, l] * s
            if weighted:
                row[off_w + k] += q[k, l] * sw


@njit(error_model="numpy", cache=True, fastmath=FASTMATH)
def _angular_gradient_moments(g, m, nr, na, weighted, ang, r, a_idx, fca, dfca, gx, gy, gz, hs, reuse):
    """Adds to (gx, gy, gz) of the members the derivatives of the angular
    terms (`_angular_terms_moments`) from g = dE/dG: with h_l = sum_k g_k q[k, l],
    dE/dM_lm = h_l M_lm; through Y_lm(u_a) = Y_lm(v_a / r_a) (the tangential
    part of its gradient, (1 - u u^T) / r) and f_a = fc(r_a). reuse: the
    rows (with dQ/dz) and moments of `_angular_terms_moments` are current."""
    F = g.dtype.type
    zero = F(0.0)
    q, sk, H, Mv = hs
    n = _padded(m, fca) if reuse else _angular_moments(m, na, ang, fca, hs, True)[0]
    off, off_w = nr, 2 * nr + na
    hsum = hwsum = zero
    for l in range(na):  # Mv rows 2, 3: alpha_c = h_l M_c, beta_c = hw_l Mw_c
        h = hw = zero
        for k in range(na):
            h += g[off + k] * q[k, l]
            if weighted:
                hw += g[off_w + k] * q[k, l]
        hsum += h
        hwsum += hw
        for c in range(l * l, (l + 1) * (l + 1)):
            Mv[2, c] = h * Mv[0, c]
            Mv[3, c] = hw * Mv[1, c]
    nq = na * (na + 1) // 2
    q0, d0, g0 = 2 * na, 2 * na + nq, 2 * na + 2 * nq
    gf, gux, guy, guz = H[g0], H[g0 + 1], H[g0 + 2], H[g0 + 3]
    w = ang[3]
    for t in range(n):
        gf[t], gux[t], guy[t], guz[t] = zero, zero, zero, zero
    for l in range(na):
        for mm in range(l + 1):
            s = sk[l, mm]
            qr, dr, cr, sr = H[q0 + l * (l + 1) // 2 + mm], H[d0 + l * (l + 1) // 2 + mm], H[mm], H[na + mm]
            c = l * l + l + mm
            al, be = Mv[2, c] * s, Mv[3, c] * s
            if mm == 0:
                for t in range(n):
                    a = al + w[t] * be
                    gf[t] += a * qr[t]
                    guz[t] += a * dr[t]
            else:
                cq, sq = H[mm - 1], H[na + mm - 1]
                fm = F(mm)
                cn = l * l + l - mm
                al2, be2 = Mv[2, cn] * s, Mv[3, cn] * s
                for t in range(n):
                    a = al + w[t] * be
                    a2 = al2 + w[t] * be2
                    ys = a * cr[t] + a2 * sr[t]
                    gf[t] += qr[t] * ys
                    guz[t] += dr[t] * ys
                    gux[t] += fm * qr[t] * (a * cq[t] + a2 * sq[t])
                    guy[t] += fm * qr[t] * (a2 * cq[t] - a * sq[t])
    U = np.uint64
    for a in range(m):
        f, wa = fca[a], w[a]
        x, y, z = ang[0, a], ang[1, a], ang[2, a]
        df = gf[a] - f * (hsum + wa * wa * hwsum)
        qa = U(a_idx[a])
        ir = F(1.0) / r[qa]
        ux, uy, uz = f * gux[a], f * guy[a], f * guz[a]
        ud = x * ux + y * uy + z * uz
        sf = dfca[a] * df
        gx[qa] += (ux - x * ud) * ir + sf * x
        gy[qa] += (uy - y * ud) * ir + sf * y
        gz[qa] += (uz - z * ud) * ir + sf * z


@njit(error_model="numpy", cache=True)
def _n_items(centers, n_centers):
    return centers.shape[0] if centers.shape[0] > 0 else n_centers


@njit(error_model="numpy", cache=True)
def _center_of(centers, c):
    return centers[c] if centers.shape[0] > 0 else c


@njit(error_model="numpy", cache=True)
def _scratch(width, like):
    """One thread's arrays for a centre's members (width: most pairs of a
    centre): idx, a_idx, then the float rows ux, uy, uz, r, x, fc, dfc, w,
    fca, dfca, t_prev, t_cur, u_prev, u_cur, sa, sc, gx, gy, gz, in
    the dtype of `like`."""
    e = np.empty
    t = like.dtype
    return (e(width, dtype=np.int64), e(width, dtype=np.int64), e(width, t), e(width, t),
            e(width, t), e(width, t), e(width, t), e(width, t), e(width, t), e(width, t), e(width, t), e(width, t),
            e(width, t), e(width, t), e(width, t), e(width, t), e(width, t), e(width, t), e(width, t), e(width, t),
            e(width, t))


@njit(error_model="numpy", parallel=True, cache=True, fastmath=FASTMATH)
def descriptor_kernel(vectors, geometry, spec, jidx, order, starts, centers, weights, rc_r, nr, rc_a, na,
                      weighted, slope, legacy, rmin, legendre, norms, out):
    """out[i] = [R (nr), A (na), Rw (nr), Aw (na)] for each centre i in
    `centers` (empty: all); rows of other centres are not touched."""
    n_items = _n_items(centers, starts.shape[0] - 1)
    n_chunks = (n_items + CHUNK - 1) // CHUNK
    width = _widest(starts)
    for chunk in prange(n_chunks):
        (idx, a_idx, ux, uy, uz, r, x, fc, dfc, w, fca, dfca, t_prev, t_cur, u_prev, u_cur,
         sa, sc, gx, gy, gz) = _scratch(width, out)
        ang = _angular_scratch(width, na, out)
        hs = _harmonic_scratch(width, legendre, norms)
        for c in range(chunk * CHUNK, min(n_items, chunk * CHUNK + CHUNK)):
            i = _center_of(centers, c)
            n, m = _radial_members(vectors, geometry, i, spec, jidx, order, starts[i], starts[i + 1], weights, rc_r,
                                   rc_a, rmin, idx, ux, uy, uz, r, x, fc, dfc, w, a_idx, fca, dfca)
            _center_descriptor(out[i], n, m, nr, na, weighted, slope, legacy, ux, uy, uz, x, fc, w, a_idx, fca,
                               t_prev, t_cur, sa, ang, hs, False)


@njit(error_model="numpy", parallel=True, cache=True, fastmath=FASTMATH)
def gradient_kernel(vectors, geometry, spec, jidx, order, starts, centers, weights, rc_r, nr, rc_a, na,
                    weighted, slope, legacy, rmin, legendre, norms, grad_features, grad_vectors):
    """grad_vectors[p] = dE/dv_p from grad_features = dE/dG (rows of the
    centres), for the pairs of `centers` (empty: all)."""
    n_items = _n_items(centers, starts.shape[0] - 1)
    n_chunks = (n_items + CHUNK - 1) // CHUNK
    width = _widest(starts)
    for chunk in prange(n_chunks):
        (idx, a_idx, ux, uy, uz, r, x, fc, dfc, w, fca, dfca, t_prev, t_cur, u_prev, u_cur,
         sa, sc, gx, gy, gz) = _scratch(width, grad_features)
        ang = _angular_scratch(width, na, grad_features)
        hs = _harmonic_scratch(width, legendre, norms)
        for c in range(chunk * CHUNK, min(n_items, chunk * CHUNK + CHUNK)):
            i = _center_of(centers, c)
            p0, p1 = starts[i], starts[i + 1]
            for s in range(p0, p1):  # pairs outside the cutoffs have no gradient
                p = s if order.shape[0] == 0 else order[s]
                grad_vectors[p, 0] = 0.0
                grad_vectors[p, 1] = 0.0
                grad_vectors[p, 2] = 0.0
            n, m = _radial_members(vectors, geometry, i, spec, jidx, order, p0, p1, weights, rc_r, rc_a, rmin,
                                   idx, ux, uy, uz, r, x, fc, dfc, w, a_idx, fca, dfca)
            _center_gradient(grad_features[i], n, m, nr, na, rc_r, weighted, slope, legacy, ux, uy, uz, r, x, fc,
                             dfc, w, a_idx, fca, dfca, t_prev, t_cur, u_prev, u_cur, sa, sc,
                             gx, gy, gz, ang, hs, False)
            for q in range(n):
                p = idx[q]
                grad_vectors[p, 0] = gx[q]
                grad_vectors[p, 1] = gy[q]
                grad_vectors[p, 2] = gz[q]


# tanh without libm: exp by ln 2 range reduction, a series and a power of two
# made by selects, so that a layer's activations run in SIMD lanes (libm's tanh,
# called once per unit, was half the time of a network's forward pass)
_INV_LN2 = 1.0 / math.log(2.0)
_LN2_HI = 0.693145751953125  # 15 significant bits: k * _LN2_HI is exact (k <= 58) in float32 and float64
_LN2_LO = math.log(2.0) - _LN2_HI
_E = tuple(1.0 / math.factorial(k) for k in range(14, 1, -1))  # 1/14! .. 1/2!


@njit(error_model="numpy", cache=True, fastmath={"contract"})  # no reassociation: the reduction's order matters
def _tanh(z):
    """tanh(z) in z's type, within 3 ulp of the correctly rounded value
    (tested): expm1(2|z|) / (expm1(2|z|) + 2) with the sign of z, |z|
    capped at 20 (tanh(20) is 1 in float64; NaN stays NaN). expm1(y) = 2^k (expm1(r) + 1)
    - 1 with y = k ln 2 + r, |r| <= ln(2)/2, expm1(r) by its series to r^14
    (error < 1e-17)."""
    F = type(z)
    one, two, zero = F(1.0), F(2.0), F(0.0)
    a = abs(z)
    y = two * (F(20.0) if a > F(20.0) else a)  # a NaN stays NaN
    k = np.floor(y * F(_INV_LN2) + F(0.5))
    r = (y - k * F(_LN2_HI)) - k * F(_LN2_LO)
    # Horner written out, as for the cutoff's series
    q = (((((((((((F(_E[0]) * r + F(_E[1])) * r + F(_E[2])) * r + F(_E[3])) * r + F(_E[4])) * r + F(_E[5]))
                * r + F(_E[6])) * r + F(_E[7])) * r + F(_E[8])) * r + F(_E[9])) * r + F(_E[10])) * r
         + F(_E[11])) * r + F(_E[12])
    q = (q * r + one) * r  # expm1(r)
    # 2^k for k = 0..58 from its binary digits, by selects (no integer conversion: AVX2 has none for 64 bits)
    b = k >= F(32.0)
    p2 = F(4294967296.0) if b else one
    k = k - (F(32.0) if b else zero)
    b = k >= F(16.0)
    p2 = p2 * (F(65536.0) if b else one)
    k = k - (F(16.0) if b else zero)
    b = k >= F(8.0)
    p2 = p2 * (F(256.0) if b else one)
    k = k - (F(8.0) if b else zero)
    b = k >= F(4.0)
    p2 = p2 * (F(16.0) if b else one)
    k = k - (F(4.0) if b else zero)
    b = k >= two
    p2 = p2 * (F(4.0) if b else one)
    k = k - (two if b else zero)
    p2 = p2 * (two if k >= one else one)
    em1 = p2 * q + (p2 - one)  # expm1(y), no cancellation for small y
    return math.copysign(em1 / (em1 + two), z)


@njit(error_model="numpy", cache=True)
def _activate_layer(z, n, code, h, dh):
    """h[:n], dh[:n] = the aenet activation (0 linear, 1 tanh, 2 sigmoid,
    3 mtanh, 4 twist) of z[:n] and its derivative, in z's type: one loop per
    activation, so that each runs in SIMD lanes where its function allows
    (the kernels' own tanh does)."""
    F = z.dtype.type
    one = F(1.0)
    if code == 1:
        for o in range(n):
            t = _tanh(z[o])
            h[o] = t
            dh[o] = one - t * t
    elif code == 2:
        for o in range(n):
            s = one / (one + math.exp(-z[o]))
            h[o] = s
            dh[o] = s * (one - s)
    elif code == 3:
        for o in range(n):
            t = _tanh(F(0.666666666666667) * z[o])
            h[o] = F(1.7159) * t
            dh[o] = F(1.7159 * 0.666666666666667) * (one - t * t)
    elif code == 4:
        for o in range(n):
            t = _tanh(F(0.666666666666667) * z[o])
            h[o] = F(1.7159) * t + F(0.1) * z[o]
            dh[o] = F(1.7159 * 0.666666666666667) * (one - t * t) + F(0.1)
    else:
        for o in range(n):
            h[o] = z[o]
            dh[o] = one


@njit(error_model="numpy", cache=True, fastmath=FASTMATH)
def _network(s, row, grad, want_grad, n_layers, sizes, pads, acts, W, w_off, bias, b_off, shift, scale, e_scale,
             e_shift, h, dh, z):
    """Atomic energy of one centre of species s from its descriptor row
    (spec 1.5-1.7, as `network.AtomicNetwork`) and, with want_grad, dE/dG
    into grad[:sizes[s, 0]]. W holds each layer's weights as (out, in)
    rows padded to pads[s, l] inputs (see `pack_networks`): the forward
    pass is one dot product per unit and the backward pass one axpy per
    unit, each a loop over whole SIMD steps of a padded width. (Loops over a
    layer's 15 or 16 units ran scalar in float32: LLVM steps them 32 at a
    time.) h[l], dh[l]: activations of layer l and their derivatives, zero
    beyond the layer's width up to its padded width; z: scratch."""
    F = W.dtype.type
    zero = F(0.0)
    nf, nf_pad = sizes[s, 0], pads[s, 0]
    h0, sh, sc = h[0], shift[s], scale[s]
    for k in range(nf):
        h0[k] = (row[k] - sh[k]) * sc[k]
    for k in range(nf, nf_pad):
        h0[k] = zero
    L = n_layers[s]
    for l in range(L):
        n_out, n_in_pad, n_out_pad = sizes[s, l + 1], pads[s, l], pads[s, l + 1]
        w0, b0 = w_off[s, l], b_off[s, l]
        hl = h[l][:n_in_pad]
        for o in range(n_out):
            wo = W[w0 + o * n_in_pad:w0 + (o + 1) * n_in_pad]
            acc = zero
            for k in range(n_in_pad):
                acc += wo[k] * hl[k]
            z[o] = acc + bias[b0 + o]
        for o in range(n_out, n_out_pad):  # padding units: their outgoing weights are 0, so their output goes nowhere
            z[o] = zero
        _activate_layer(z, n_out_pad, acts[s, l], h[l + 1], dh[l + 1])
    energy = h[L, 0] * e_scale[s] + e_shift[s]
    if want_grad:
        # backward: z holds dE/d(pre-activation) of layer l + 1, grad dE/dh of layer l
        z[0] = e_scale[s] * dh[L, 0]
        for l in range(L - 1, -1, -1):
            n_out, n_in_pad = sizes[s, l + 1], pads[s, l]
            w0 = w_off[s, l]
            g = grad[:n_in_pad]
            for k in range(n_in_pad):
                g[k] = zero
            for o in range(n_out):
                wo = W[w0 + o * n_in_pad:w0 + (o + 1) * n_in_pad]
                zo = z[o]
                for k in range(n_in_pad):
                    g[k] += wo[k] * zo
            if l > 0:
                dhl = dh[l]
                for k in range(n_in_pad):
                    z[k] = g[k] * dhl[k]
        for k in range(nf):
            grad[k] *= sc[k]
    return energy


@njit(error_model="numpy", parallel=True, cache=True, fastmath=FASTMATH)
def model_kernel(vectors, geometry, spec, jidx, order, starts, centers, weights, rc_r, nr, rc_a, na,
                 weighted, slope, legacy, rmin, legendre, norms, n_layers, sizes, pads, acts, net_w, w_off, bias, b_off, shift, scale,
                 e_scale, e_shift, energies, want_forces, n_slices, f_parts, w_parts, wa_parts, want_atomic, zero):
    """The whole model in one pass per centre, as Fortran aenet does: for
    each centre i in `centers` (empty: all), its descriptor row, its
    element's network forward (energies[i]) and, with want_forces, backward
    (dE/dG), and the derivative of E_i with respect to each of its pair
    vectors v_p (neighbour j = jidx[p]), summed straight into
    F_i += g_p, F_j -= g_p, W += v_p (x) g_p, W_i, W_j += 1/2 v_p (x) g_p
    in n_slices slices of f_parts (n_slices, N, 3), w_parts (n_slices, 3, 3)
    and wa_parts (n_slices, N, 3, 3) (neighbour rows are shared between
    centres: a scatter; with `zero`, the slices are zeroed first, else
    added to); the caller adds the slices up (`sum_slices`). Slice s holds the
    chunks s, s + n_slices, ... in that order, whichever thread runs it, so the
    sums, and with them forces and stress to the last bit, do not depend on
    the thread count or on which thread ran what. No per-pair array
    is made, and the members of a centre are found once. The arithmetic
    runs in the dtype of the networks' arrays (net_w, ...), as do the outputs
    and the type weights (float32 for a float32 model: twice the SIMD lanes);
    pair vectors and distances are made in float64 either way."""
    F = net_w.dtype.type
    U = np.uint64  # unsigned gather/scatter indices: no wraparound select
    n_items = _n_items(centers, starts.shape[0] - 1)
    n_chunks = (n_items + CHUNK - 1) // CHUNK
    width = _widest(starts)
    n_features = 2 * (nr + na) if weighted else nr + na
    widest_layer = max(n_features, pads.max())
    for sl in prange(n_slices):
        f = f_parts[sl]
        wv = w_parts[sl]
        if want_forces and zero:  # each slice zeroed by the thread that fills it (allocated empty)
            f[:] = 0.0
            wv[:] = 0.0
            if want_atomic:
                wa_parts[sl] = 0.0
        dt = net_w.dtype
        row, grad, z = np.empty(n_features, dt), np.empty(widest_layer, dt), np.empty(widest_layer, dt)
        h, dh = np.empty((pads.shape[1], widest_layer), dt), np.empty((pads.shape[1], widest_layer), dt)
        (idx, a_idx, ux, uy, uz, r, x, fc, dfc, w, fca, dfca, t_prev, t_cur, u_prev, u_cur,
         sa, sc, gx, gy, gz) = _scratch(width, net_w)
        ang = _angular_scratch(width, na, net_w)
        hs = _harmonic_scratch(width, legendre, norms)
        for k in range((n_chunks + n_slices - 1) // n_slices * CHUNK):
            c = (sl + k // CHUNK * n_slices) * CHUNK + k % CHUNK  # chunk sl + (k // CHUNK) n_slices, centre k % CHUNK
            if c >= n_items:
                break
            i = _center_of(centers, c)
            n, m = _radial_members(vectors, geometry, i, spec, jidx, order, starts[i], starts[i + 1], weights,
                                   rc_r, rc_a, rmin,
                                   idx, ux, uy, uz, r, x, fc, dfc, w, a_idx, fca, dfca)
            _center_descriptor(row, n, m, nr, na, weighted, slope, legacy, ux, uy, uz, x, fc, w, a_idx, fca,
                               t_prev, t_cur, sa, ang, hs, want_forces)
            energies[i] = _network(spec[i], row, grad, want_forces, n_layers, sizes, pads, acts, net_w, w_off, bias,
                                   b_off, shift, scale, e_scale, e_shift, h, dh, z)
            if not want_forces:
                continue
            _center_gradient(grad, n, m, nr, na, rc_r, weighted, slope, legacy, ux, uy, uz, r, x, fc,
                             dfc, w, a_idx, fca, dfca, t_prev, t_cur, u_prev, u_cur, sa, sc,
                             gx, gy, gz, ang, hs, True)
            # the centre's sums in registers (stores to f[j] could alias them in memory)
            fi0 = fi1 = fi2 = F(0.0)
            w00 = w01 = w02 = w10 = w11 = w12 = w20 = w21 = w22 = F(0.0)
            for q in range(n):
                g0, g1, g2 = gx[q], gy[q], gz[q]
                fi0 += g0
                fi1 += g1
                fi2 += g2
                v0, v1, v2 = ux[q] * r[q], uy[q] * r[q], uz[q] * r[q]
                w00 += v0 * g0
                w01 += v0 * g1
                w02 += v0 * g2
                w10 += v1 * g0
                w11 += v1 * g1
                w12 += v1 * g2
                w20 += v2 * g0
                w21 += v2 * g1
                w22 += v2 * g2
            for q in range(n):  # the scatter to the neighbours
                j = U(jidx[U(idx[q])])
                f[j, 0] -= gx[q]
                f[j, 1] -= gy[q]
                f[j, 2] -= gz[q]
            if want_atomic:
                for q in range(n):
                    j = jidx[idx[q]]
                    for a in range(3):
                        va = F(0.5) * r[q] * (ux[q] if a == 0 else (uy[q] if a == 1 else uz[q]))
                        for b in range(3):
                            vg = va * (gx[q] if b == 0 else (gy[q] if b == 1 else gz[q]))
                            wa_parts[sl, i, a, b] += vg
                            wa_parts[sl, j, a, b] += vg
            f[i, 0] += fi0
            f[i, 1] += fi1
            f[i, 2] += fi2
            wv[0, 0] += w00
            wv[0, 1] += w01
            wv[0, 2] += w02
            wv[1, 0] += w10
            wv[1, 1] += w11
            wv[1, 2] += w12
            wv[2, 0] += w20
            wv[2, 1] += w21
            wv[2, 2] += w22


def _settings(d, work=np.float64):
    """A descriptor setup as the kernels' arguments: type weights, cutoffs,
    orders, flags, and the angular moments' tables, the arrays in `work`."""
    w = d.type_weights.to(torch.float64).numpy() if d.weighted else np.zeros(max(1, d.type_weights.numel()))
    q, sk = harmonic_tables(int(d.angular_order) + 1, float(d.legacy_slope), bool(d.legacy_angular))
    return (w.astype(work), float(d.radial_cutoff), int(d.radial_order) + 1, float(d.angular_cutoff),
            int(d.angular_order) + 1, bool(d.weighted), float(d.legacy_slope), bool(d.legacy_angular),
            float(d.r_min_pair), q.astype(work), sk.astype(work))


def _numpy64(t: Tensor) -> np.ndarray:
    return t.detach().to(torch.float64).contiguous().numpy()


#: requested thread count while a `thread_policy` block runs (torch's own is 1 then)
_policy_threads = [0]
#: one parallel launch at a time: numba's workqueue pool serves one caller
LAUNCH_LOCK = threading.RLock()


class torch_threads:
    """Run numba with torch's thread count (or the count of the enclosing
    `thread_policy`), dealing out centres in small chunks (dynamic
    scheduling: a thread on a busy core does not hold the others up), and
    give torch its count back: numba's OpenMP layer resets the process-wide
    OpenMP thread count."""

    def __init__(self, dynamic: bool = False):
        self.dynamic = dynamic  # only for loops over chunks of centres, never over pairs

    def __enter__(self):
        LAUNCH_LOCK.acquire()
        self.n = max(1, torch.get_num_threads())
        wanted = _policy_threads[0] or self.n
        numba.set_num_threads(min(wanted, numba.config.NUMBA_NUM_THREADS))
        self.chunk = numba.get_parallel_chunksize()
        numba.set_parallel_chunksize(1 if (wanted > 1 and self.dynamic) else 0)

    def __exit__(self, *exc):
        numba.set_parallel_chunksize(self.chunk)
        if torch.get_num_threads() != self.n:
            torch.set_num_threads(self.n)
        LAUNCH_LOCK.release()


class thread_policy:
    """The calculator's thread policy for one call on the CPU: the compiled
    kernels (nearly all the work) get torch's thread count with dynamic
    chunks; the small torch operations in between (networks, gathers) run on
    one thread, so that no OpenMP barrier waits for a thread that another
    process keeps off its core (torch's static split of small operations
    made 2 threads 4x slower than 1 on a busy machine)."""

    def __enter__(self):
        self.n = max(1, torch.get_num_threads())
        self.outer = _policy_threads[0]
        if AVAILABLE and enabled:
            _policy_threads[0] = threads_for_call(self.n)
            if self.n > 1:
                torch.set_num_threads(1)
        return self

    def __exit__(self, *exc):
        _policy_threads[0] = self.outer
        if torch.get_num_threads() != self.n:
            torch.set_num_threads(self.n)


class CompiledChebyshev(torch.autograd.Function):
    """Descriptor of one Chebyshev setup through the compiled kernels.

    First derivatives come from `gradient_kernel`. A backward that itself
    needs a graph (create_graph=True, e.g. force training through the
    model) is computed through the plain-autograd reference instead, so
    higher derivatives stay exact.
    """

    @staticmethod
    def forward(ctx, vectors: Tensor, pair_center: Tensor, neighbor_species: Tensor, n_centers: int, descriptor):
        with torch_threads():
            order, starts = center_order(_int64(pair_center), n_centers)
        v = _numpy64(vectors)
        ns = neighbor_species.detach().cpu().numpy().astype(np.int64, copy=False)
        out = np.empty((n_centers, descriptor.n_features))
        with torch_threads(dynamic=True):
            descriptor_kernel(v, NO_GEOMETRY, ns, NONE, order, starts, NONE, *_settings(descriptor), out)
        ctx.descriptor = descriptor
        ctx.arrays = (v, ns, order, starts)
        ctx.n_centers = n_centers
        ctx.save_for_backward(vectors, pair_center, neighbor_species)
        return torch.from_numpy(out).to(vectors.dtype)

    @staticmethod
    def backward(ctx, grad_out: Tensor):
        d = ctx.descriptor
        if torch.is_grad_enabled():  # double backward requested: the differentiable reference
            vectors, pair_center, neighbor_species = ctx.saved_tensors
            with torch.enable_grad():
                v = vectors.detach().requires_grad_(True)
                feats = d.reference(ctx.n_centers, pair_center, neighbor_species, v)
                (gv,) = torch.autograd.grad(feats, v, grad_out, create_graph=True)
            return gv, None, None, None, None
        v, ns, order, starts = ctx.arrays
        grad = np.empty_like(v)
        with torch_threads(dynamic=True):
            gradient_kernel(v, NO_GEOMETRY, ns, NONE, order, starts, NONE, *_settings(d), _numpy64(grad_out),
                            grad)
        return torch.from_numpy(grad).to(grad_out.dtype), None, None, None, None


@njit(error_model="numpy", parallel=True, cache=True, fastmath=FASTMATH)
def angular_jacobian_kernel(va, starts, a_species, n_species, rc_a, na, legacy, slope, jac):
    """Stored angular derivatives for force training (`descriptor_jacobian`):
    for every triplet {p, q} of a centre (its angular pairs are
    va[starts[c]:starts[c+1]]), d(f T_m)/dv_p = dT_m a_p + T_m b_p added to
    row p * S + (species of q if S > 1) of jac (Pa * S, na, 3), and the same
    for q. Rows belong to one centre: centres run in parallel without races."""
    n_centers = starts.shape[0] - 1
    for c in prange(n_centers):
        T, dT = np.empty(na), np.empty(na)
        for p in range(starts[c], starts[c + 1]):
            vpx, vpy, vpz = va[p, 0], va[p, 1], va[p, 2]
            rp = math.sqrt(vpx * vpx + vpy * vpy + vpz * vpz)
            arg = rp * (PI_AENET / rc_a)
            fcp = 0.5 * (math.cos(arg) + 1.0)
            dfcp = (-0.5 * PI_AENET / rc_a) * math.sin(arg)
            for q in range(p + 1, starts[c + 1]):
                vqx, vqy, vqz = va[q, 0], va[q, 1], va[q, 2]
                rq = math.sqrt(vqx * vqx + vqy * vqy + vqz * vqz)
                arg = rq * (PI_AENET / rc_a)
                fcq = 0.5 * (math.cos(arg) + 1.0)
                dfcq = (-0.5 * PI_AENET / rc_a) * math.sin(arg)
                cos = (vpx * vqx + vpy * vqy + vpz * vqz) / (rp * rq)
                x = cos * slope - 1.0 if legacy else cos
                _chebyshev_d(x, na, T, dT)
                fs = fcp * fcq * slope
                # d cos/d vp = vq/(rp rq) - cos vp/rp^2 ; d f/d vp = dfc_p fc_q vp/rp
                apx = fs * (vqx / (rp * rq) - cos * vpx / (rp * rp))
                apy = fs * (vqy / (rp * rq) - cos * vpy / (rp * rp))
                apz = fs * (vqz / (rp * rq) - cos * vpz / (rp * rp))
                aqx = fs * (vpx / (rp * rq) - cos * vqx / (rq * rq))
                aqy = fs * (vpy / (rp * rq) - cos * vqy / (rq * rq))
                aqz = fs * (vpz / (rp * rq) - cos * vqz / (rq * rq))
                bp = dfcp * fcq / rp
                bq = fcp * dfcq / rq
                row_p = p * n_species + (a_species[q] if n_species > 1 else 0)
                row_q = q * n_species + (a_species[p] if n_species > 1 else 0)
                for m in range(na):
                    jac[row_p, m, 0] += dT[m] * apx + T[m] * bp * vpx
                    jac[row_p, m, 1] += dT[m] * apy + T[m] * bp * vpy
                    jac[row_p, m, 2] += dT[m] * apz + T[m] * bp * vpz
                    jac[row_q, m, 0] += dT[m] * aqx + T[m] * bq * vqx
                    jac[row_q, m, 1] += dT[m] * aqy + T[m] * bq * vqy
                    jac[row_q, m, 2] += dT[m] * aqz + T[m] * bq * vqz


def angular_jacobian(va: Tensor, a_center: Tensor, a_species: Tensor, n_centers: int, n_species: int, rc_a: float,
                     na: int, legacy: bool, slope: float) -> Optional[Tensor]:
    """(Pa * S, na, 3) angular derivative rows of `descriptor_jacobian`, or
    None when the angular pairs are not sorted by centre."""
    order, starts = center_order(_int64(a_center), n_centers)
    if order.size:
        return None
    jac = np.zeros((va.shape[0] * n_species, na, 3))
    with torch_threads(dynamic=True):
        angular_jacobian_kernel(_numpy64(va), starts, _int64(a_species), n_species, float(rc_a), na, legacy,
                                float(slope) if legacy else 1.0, jac)
    return torch.from_numpy(jac).to(va.dtype)


@njit(error_model="numpy", parallel=True, cache=True)
def pair_vectors_kernel(positions, cell, i, j, shifts, out):
    """out[p] = positions[j[p]] - positions[i[p]] + shifts[p] . cell."""
    for p in prange(i.shape[0]):
        a, b = i[p], j[p]
        s0, s1, s2 = shifts[p, 0], shifts[p, 1], shifts[p, 2]
        for c in range(3):
            out[p, c] = positions[b, c] - positions[a, c] + s0 * cell[0, c] + s1 * cell[1, c] + s2 * cell[2, c]


@njit(error_model="numpy", cache=True)
def full_list_kernel(n_atoms, i, j, shifts):
    """A full pair list sorted by centre from a half list (each pair once):
    (i, j, S) and (j, i, -S), by a counting sort over the centres."""
    n_half = i.shape[0]
    starts = np.zeros(n_atoms + 1, dtype=np.int64)
    for p in range(n_half):
        starts[i[p] + 1] += 1
        starts[j[p] + 1] += 1
    for a in range(n_atoms):
        starts[a + 1] += starts[a]
    fill = starts[:-1].copy()
    oi = np.empty(2 * n_half, dtype=np.int64)
    oj = np.empty(2 * n_half, dtype=np.int64)
    os_ = np.empty((2 * n_half, 3), dtype=np.int32)
    for p in range(n_half):
        a, b = i[p], j[p]
        q = fill[a]
        fill[a] += 1
        oi[q] = a
        oj[q] = b
        q2 = fill[b]
        fill[b] += 1
        oi[q2] = b
        oj[q2] = a
        for k in range(3):
            os_[q, k] = shifts[p, k]
            os_[q2, k] = -shifts[p, k]
    return oi, oj, os_


def full_list_from_half(n_atoms: int, i: Tensor, j: Tensor, shifts: Tensor):
    """(i, j, shifts) of the full list (int64, int64, int32), sorted by i,
    from vesin's half list."""
    oi, oj, os_ = full_list_kernel(n_atoms, i.numpy(), j.numpy(), shifts.to(torch.int32).numpy())
    return torch.from_numpy(oi), torch.from_numpy(oj), torch.from_numpy(os_)


@njit(error_model="numpy", parallel=True, cache=True)
def pairs_within_kernel(positions, cell, i, j, shifts, cutoff, block):
    """The pairs of a (cutoff + skin) list that are inside `cutoff`, with their
    vectors, in list order: two parallel passes over blocks (count, write)."""
    n = i.shape[0]
    n_blocks = (n + block - 1) // block
    counts = np.zeros(n_blocks + 1, dtype=np.int64)
    rc2 = cutoff * cutoff
    for b in prange(n_blocks):
        c = 0
        for p in range(b * block, min(n, b * block + block)):
            d2 = 0.0
            for k in range(3):
                v = positions[j[p], k] - positions[i[p], k] + shifts[p, 0] * cell[0, k] + \
                    shifts[p, 1] * cell[1, k] + shifts[p, 2] * cell[2, k]
                d2 += v * v
            if d2 < rc2:
                c += 1
        counts[b + 1] = c
    for b in range(n_blocks):
        counts[b + 1] += counts[b]
    total = counts[n_blocks]
    oi = np.empty(total, dtype=np.int64)
    oj = np.empty(total, dtype=np.int64)
    os_ = np.empty((total, 3), dtype=np.int64)
    ov = np.empty((total, 3))
    for b in prange(n_blocks):
        q = counts[b]
        for p in range(b * block, min(n, b * block + block)):
            v0 = positions[j[p], 0] - positions[i[p], 0] + shifts[p, 0] * cell[0, 0] + \
                shifts[p, 1] * cell[1, 0] + shifts[p, 2] * cell[2, 0]
            v1 = positions[j[p], 1] - positions[i[p], 1] + shifts[p, 0] * cell[0, 1] + \
                shifts[p, 1] * cell[1, 1] + shifts[p, 2] * cell[2, 1]
            v2 = positions[j[p], 2] - positions[i[p], 2] + shifts[p, 0] * cell[0, 2] + \
                shifts[p, 1] * cell[1, 2] + shifts[p, 2] * cell[2, 2]
            if v0 * v0 + v1 * v1 + v2 * v2 < rc2:
                oi[q] = i[p]
                oj[q] = j[p]
                os_[q, 0] = shifts[p, 0]
                os_[q, 1] = shifts[p, 1]
                os_[q, 2] = shifts[p, 2]
                ov[q, 0] = v0
                ov[q, 1] = v1
                ov[q, 2] = v2
                q += 1
    return oi, oj, os_, ov


def pairs_within(positions: Tensor, cell: Tensor, i: Tensor, j: Tensor, shifts: Tensor, cutoff: float):
    """(i, j, shifts, vectors) of the listed pairs inside `cutoff` (float64 CPU tensors)."""
    with torch_threads():
        oi, oj, os_, ov = pairs_within_kernel(_numpy64(positions), _numpy64(cell), i.numpy(), j.numpy(),
                                              shifts.numpy(), float(cutoff), 65536)
    return torch.from_numpy(oi), torch.from_numpy(oj), torch.from_numpy(os_), torch.from_numpy(ov)


#: the last pair list's (weak reference, version, n, order, starts): a reused
#: neighbour list hands the same tensor call after call
_last_view = [None]


def center_view(pair_i: Tensor, n: int):
    """`center_order` of `pair_i`, remembered for the same tensor object
    (same version, not modified in place) between calls."""
    import weakref

    last = _last_view[0]
    if last is not None and last[0]() is pair_i and last[1] == pair_i._version and last[2] == n:
        return last[3], last[4]
    with torch_threads():
        order, starts = center_order(_int64(pair_i), n)
    _last_view[0] = (weakref.ref(pair_i), pair_i._version, n, order, starts)
    return order, starts


def _int64(t: Tensor) -> np.ndarray:
    return t.detach().cpu().numpy().astype(np.int64, copy=False)


def serves(model) -> bool:
    """True when `evaluate_model` can evaluate this model: an eager
    `AenetModel` whose descriptors all use the fast kernels and whose
    networks are plain `AtomicNetwork`s."""
    from .descriptor import ChebyshevDescriptor
    from .model import AenetModel
    from .network import AtomicNetwork

    return isinstance(model, AenetModel) and all(
        type(d) is ChebyshevDescriptor and d.fast for d in model.descriptors) and all(
        type(net) is AtomicNetwork and all(type(layer) is torch.nn.Linear for layer in net.layers)
        for net in model.networks)


#: (model, its networks' tensors (weak references), their versions, packed arrays) of the last call
_last_pack = [None]


def packed_networks(model, dtype=np.float64):
    """`pack_networks` (its float arrays in `dtype`), remembered while the
    model's parameters and buffers are the same tensors, not modified in
    place (training changes them)."""
    import weakref

    # the networks' tensors read from the modules' own dicts: `parameters()` walks named members, ~5x
    # the time (~0.1 ms a call); serves() has checked they are AtomicNetworks of Linear layers
    tensors = [t for net in model.networks for t in (
        *(p for layer in net.layers._modules.values() for p in layer._parameters.values()), *net._buffers.values())
        if t is not None]
    versions = [t._version for t in tensors]
    last = _last_pack[0]
    if not (last is not None and last[0]() is model and last[2] == versions and len(last[1]) == len(tensors)
            and all(ref() is t for ref, t in zip(last[1], tensors))):
        last = (weakref.ref(model), [weakref.ref(t) for t in tensors], versions, {})
        _last_pack[0] = last
    by_dtype = last[3]
    key = np.dtype(dtype).name
    if key not in by_dtype:
        by_dtype[key] = pack_networks(model, dtype)
    return by_dtype[key]


def pack_networks(model, dtype=np.float64):
    """The per-element networks as flat arrays for `model_kernel`, floats in
    `dtype`: (n_layers (S,), sizes (S, L+1) the layers' widths, pads (S, L+1)
    the widths rounded up to a whole step of `_padded` (16 float64, 32
    float32), activation codes (S, L), weights as (out, in) rows of pads[s, l]
    inputs each and their offsets (S, L), biases and offsets, feature shift
    and scale (S, F), energy scale (S,), energy shift + E_atom (S,)). The
    padding inputs have zero weights, so neither the energy nor any
    derivative changes; they let each dot product run in whole SIMD steps."""
    nets = list(model.networks)
    S = len(nets)
    L = max(len(net.layers) for net in nets)
    F = max(int(net.feature_shift.numel()) for net in nets)
    step = 128 // np.dtype(dtype).itemsize  # as `_padded`

    def padded(n):
        return -(-n // step) * step

    n_layers = np.array([len(net.layers) for net in nets], dtype=np.int64)
    sizes = np.zeros((S, L + 1), dtype=np.int64)
    pads = np.zeros((S, L + 1), dtype=np.int64)
    acts = np.zeros((S, L), dtype=np.int64)
    w_off = np.zeros((S, L), dtype=np.int64)
    b_off = np.zeros((S, L), dtype=np.int64)
    shift, scale = np.zeros((S, F)), np.zeros((S, F))
    weights, biases = [], []
    nw = nb = 0
    for s, net in enumerate(nets):
        f = int(net.feature_shift.numel())
        shift[s, :f] = net.feature_shift.detach().double().numpy()
        scale[s, :f] = net.feature_scale.detach().double().numpy()
        sizes[s, 0], pads[s, 0] = f, padded(f)
        for l, layer in enumerate(net.layers):
            sizes[s, l + 1], pads[s, l + 1] = layer.out_features, padded(layer.out_features)
            acts[s, l] = net.activations[l]
            w_off[s, l], b_off[s, l] = nw, nb
            w = np.zeros((layer.out_features, pads[s, l]))
            w[:, :layer.in_features] = layer.weight.detach().double().numpy()
            weights.append(w.reshape(-1))
            biases.append(layer.bias.detach().double().numpy())
            nw += w.size
            nb += layer.out_features
    e_scale = np.array([float(net.energy_scale) for net in nets])
    e_shift = np.array([float(net.energy_shift) + float(net.e_atom) for net in nets])
    return (n_layers, sizes, pads, acts, np.concatenate(weights).astype(dtype), w_off,
            np.concatenate(biases).astype(dtype), b_off, shift.astype(dtype), scale.astype(dtype),
            e_scale.astype(dtype), e_shift.astype(dtype))


def evaluate_model(model, species: Tensor, pair_i: Tensor, pair_j: Tensor, vectors: Optional[Tensor], *,
                   gradients: bool, atomic_virials: bool, geometry=None, dtype: Optional[torch.dtype] = None):
    """Atomic energies, forces, virial and per-atom virials of `model` (see
    `evaluate.evaluate`) through `model_kernel`, one setup's centres at a
    time: descriptors, networks and their derivatives in one pass per
    centre. No per-pair array is made beyond the inputs. Without
    `vectors`, geometry = (positions (N, 3), cell (3, 3), shifts (P, 3))
    gives them as r_j - r_i + shifts . cell, computed where needed. Returns
    (energies, forces, virial, atomic virials or None) as tensors in
    `dtype` (default: that of `vectors`; forces etc. None without
    `gradients`). A float32 model computes in float32 (pair vectors and
    distances in float64), anything else in float64."""
    dtype = dtype or (vectors.dtype if vectors is not None else torch.float64)
    work = np.float32 if dtype == torch.float32 else np.float64
    n = species.shape[0]
    order, starts = center_view(pair_i, n)
    if vectors is None:
        positions, cell, shifts = geometry
        v = NO_VECTORS
        geom = (_numpy64(positions), _numpy64(cell), shifts.detach().cpu().numpy().astype(np.int32, copy=False))
    else:
        v, geom = _numpy64(vectors), NO_GEOMETRY
    spec = _int64(species)
    jn = _int64(pair_j)
    if len(model.descriptors) == 1:
        centers_of_setup = [NONE]
    else:
        setup = np.asarray(model.descriptor_of_element, dtype=np.int64)[spec]
        centers_of_setup = [np.flatnonzero(setup == d).astype(np.int64) for d in range(len(model.descriptors))]
    networks = packed_networks(model, work)
    energies = np.zeros(n, work)
    with torch_threads(dynamic=True):
        slices = slice_count(n)
        f_parts = np.empty((slices if gradients else 0, n, 3), work)
        w_parts = np.empty((slices if gradients else 0, 3, 3), work)
        wa_parts = np.empty((slices if atomic_virials else 0, n, 3, 3), work)
        first = True
        for d, centers in zip(model.descriptors, centers_of_setup):
            if centers is NONE or centers.size:
                model_kernel(v, geom, spec, jn, order, starts, centers, *_settings(d, work), *networks,
                             energies, gradients, slices, f_parts, w_parts, wa_parts, atomic_virials, first)
                first = False
        if first:  # no centres at all: nothing was summed into the slices
            f_parts[:], w_parts[:], wa_parts[:] = 0.0, 0.0, 0.0
        if gradients:  # in the same thread setting (each switch costs ~0.03 ms)
            forces = np.empty((n, 3), work)
            sum_slices(f_parts.reshape(slices, -1), forces.reshape(-1))
            if atomic_virials:
                atomic = np.empty((n, 3, 3), work)
                sum_slices(wa_parts.reshape(slices, -1), atomic.reshape(-1))
    e = torch.from_numpy(energies).to(dtype)
    if not gradients:
        return e, None, None, None
    virial = torch.from_numpy(w_parts.sum(0)).to(dtype)
    atomic = torch.from_numpy(atomic).to(dtype) if atomic_virials else None
    return e, torch.from_numpy(forces).to(dtype), virial, atomic


def pair_vectors(positions: Tensor, cell: Tensor, i: Tensor, j: Tensor, shifts: Tensor) -> Tensor:
    """Compiled `neighbors.pair_vectors` (float64 CPU tensors)."""
    out = np.empty((i.shape[0], 3))
    with torch_threads():
        pair_vectors_kernel(_numpy64(positions), _numpy64(cell), i.numpy(), j.numpy(), shifts.numpy(), out)
    return torch.from_numpy(out)
