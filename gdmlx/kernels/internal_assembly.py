"""Training matrix in the internal subspaces of the training geometries (numba).

With orthonormal bases P_m (3N, r) of the internal subspaces (:mod:`gdmlx.rigid`) and the
projected Jacobians ``A_m = (J_m P_m)^T`` (r, D), the projected force block is

    P_m^T K_mn P_n = c2 A_m A_n^T - c1 (A_m d)(A_n d)^T,   d = x_m - x_n.

The products ``A_m A_n^T`` of all blocks are one matrix product of the stacked A (M r, D)
with itself, done by BLAS (:func:`gdmlx.training.assemble_internal_matrix`); the kernels
here build A, then scale each block by c2 and subtract its rank-one term, with
``A_m d = Y[m, :, m] - Y[m, :, n]`` from ``Y = A X^T``. Layout as in
:mod:`gdmlx.kernels.assembly`: lower triangle, rows ``m r + i``, energy rows ``M r + m``.
"""

import numba
import numpy as np

from gdmlx.kernels.assembly import lower_triangle_block
from gdmlx.matern import matern_terms_jit


@numba.njit(cache=True, parallel=True)
def internal_jacobians(G, pairs, P):
    """``A`` (M, r, D) with ``A[m] = (J_m P_m)^T`` for Jacobians ``G`` (M, D, 3), ``P`` (M, 3N, r)."""
    M, D = G.shape[:2]
    r = P.shape[2]
    A = np.empty((M, r, D))
    for m in numba.prange(M):
        for k in range(D):
            i = 3 * pairs[k, 0]
            j = 3 * pairs[k, 1]
            for q in range(r):
                s = 0.0
                for c in range(3):
                    s += G[m, k, c] * (P[m, i + c, q] - P[m, j + c, q])
                A[m, q, k] = s
    return A


@numba.njit(cache=True, parallel=True)
def finish_internal_blocks(X, Y, sigma, K):
    """Turn the lower triangle of ``K``, holding ``A_m A_n^T`` per block, into the projected
    kernel. ``X`` (M, D) descriptors, ``Y`` (M r, M) = A X^T, K (>= M r, >= M r), in place."""
    M = X.shape[0]
    r = Y.shape[0] // M
    for b in numba.prange(M * (M + 1) // 2):
        m, n = lower_triangle_block(b)
        d = X[m] - X[n]
        _, c2, c1 = matern_terms_jit(np.dot(d, d), sigma)
        w = np.empty(r)                     # A_n d
        for j in range(r):
            w[j] = Y[n * r + j, m] - Y[n * r + j, n]
        for i in range(r):
            v = c1 * (Y[m * r + i, m] - Y[m * r + i, n])
            row = m * r + i
            for j in range(r):
                K[row, n * r + j] = c2 * K[row, n * r + j] - v * w[j]


@numba.njit(cache=True, parallel=True)
def internal_energy_rows(X, Y, sigma, K):
    """Energy rows ``M r + m`` of the projected matrix: ``-c2 (A_n d)`` against the force
    columns of every n and ``phi(d)`` against energies n <= m. K must be (M r + M) square."""
    M = X.shape[0]
    r = Y.shape[0] // M
    e0 = M * r
    for m in numba.prange(M):
        for n in range(M):
            d = X[m] - X[n]
            phi, c2, _ = matern_terms_jit(np.dot(d, d), sigma)
            for j in range(r):
                K[e0 + m, n * r + j] = -c2 * (Y[n * r + j, m] - Y[n * r + j, n])
            if n <= m:
                K[e0 + m, e0 + n] = phi
