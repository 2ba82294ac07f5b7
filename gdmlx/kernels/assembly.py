"""Training kernel matrix assembly (numba, parallel over blocks).

The force-force block of training points m and n (3N x 3N) is

    K_mn = J_m^T H(x_m - x_n) J_n = c2 J_m^T J_n - c1 (J_m^T d)(J_n^T d)^T,   d = x_m - x_n,

(coefficients from :mod:`gdmlx.matern`). With the compressed Jacobian, ``J_m^T J_n`` has
one 3x3 outer product ``g_m,k g_n,k^T`` per pair k = (i, j), added to atom blocks (i, i)
and (j, j) and subtracted from (i, j) and (j, i): O(N^2) work per block instead of O(N^4).

Only the lower triangle (row >= column) of the matrix is written. The matrix has the rows
and columns of the coordinates ``keep`` (M, r) that each training point keeps (all 3N, or
the internal coordinates of :mod:`gdmlx.rigid`), ordered ``m * r + i`` for coordinate
``keep[m, i] = 3 * atom + xyz``, with optional energy rows ``M r + m`` after them.
"""

import numba
import numpy as np

from gdmlx.matern import matern_terms_jit


@numba.njit(cache=True, inline="always")
def _project(d, G, pairs, u):
    """``u`` (3N,) = J^T d for one training point's Jacobian ``G`` (D, 3)."""
    u[:] = 0.0
    for k in range(pairs.shape[0]):
        i = 3 * pairs[k, 0]
        j = 3 * pairs[k, 1]
        for c in range(3):
            v = d[k] * G[k, c]
            u[i + c] += v
            u[j + c] -= v


@numba.njit(cache=True, inline="always")
def _squared_norm(d):
    """``d . d``, written out (``np.dot`` compiles numba's BLAS binding: 1.4 s on first use)."""
    s = 0.0
    for k in range(d.shape[0]):
        s += d[k] * d[k]
    return s


@numba.njit(cache=True, inline="always")
def lower_triangle_block(b):
    """Block index b -> (m, n) with n <= m, row-major over the lower triangle."""
    m = int((np.sqrt(8.0 * b + 1.0) - 1.0) / 2.0)
    while m * (m + 1) // 2 > b:
        m -= 1
    while (m + 1) * (m + 2) // 2 <= b:
        m += 1
    return m, b - m * (m + 1) // 2


# The block writers below take int64 indices and write whole (3N, 3N) work blocks, which
# callers copy into place: one compiled version each (every other argument type, a literal
# 0 offset or a prange's unsigned index, compiled another, about 1 s each on first use).
@numba.njit(cache=True)
def _fill_block(X, G, pairs, m, n, sigma, K, u_m, u_n):
    """Write the 3N x 3N block K_mn of training points m, n (int64) into ``K`` (3N, 3N)."""
    n3 = u_m.shape[0]
    d = X[m] - X[n]
    _, c2, c1 = matern_terms_jit(_squared_norm(d), sigma)
    _project(d, G[m], pairs, u_m)
    _project(d, G[n], pairs, u_n)
    for p in range(n3):
        f = -c1 * u_m[p]
        for q in range(n3):
            K[p, q] = f * u_n[q]
    for k in range(pairs.shape[0]):
        i = 3 * pairs[k, 0]
        j = 3 * pairs[k, 1]
        for a in range(3):
            gm = c2 * G[m, k, a]
            for c in range(3):
                v = gm * G[n, k, c]
                K[i + a, i + c] += v
                K[j + a, j + c] += v
                K[i + a, j + c] -= v
                K[j + a, i + c] -= v


@numba.njit(cache=True, inline="always")
def _copy_kept(S, keep_m, keep_n, K, r0, q0):
    """``K[r0 + i, q0 + j] = S[keep_m[i], keep_n[j]]``: the kept rows and columns of a block."""
    for i in range(keep_m.shape[0]):
        row = S[keep_m[i]]
        for j in range(keep_n.shape[0]):
            K[r0 + i, q0 + j] = row[keep_n[j]]


@numba.njit(cache=True, parallel=True)
def assemble_force_blocks(X, G, pairs, n_atoms, sigma, keep, K, b0, b1):
    """Write the force-force blocks K_mn (m >= n) number ``b0`` to ``b1`` - 1 (row-major over
    the lower triangle, :func:`lower_triangle_block`; all: 0 to M (M + 1) / 2) into ``K``.

    X (M, D) training descriptors, G (M, D, 3) their Jacobians, pairs (D, 2) int64, keep
    (M, r) int64 the coordinates kept, K (>= M r, >= M r) C-contiguous float64, in place.
    Callers go in ranges of blocks so that Ctrl-C and progress reports get a turn.
    """
    M, r = keep.shape
    n3 = 3 * n_atoms
    for t in numba.prange(b1 - b0):
        m, n = lower_triangle_block(b0 + t)
        S = np.empty((n3, n3))
        _fill_block(X, G, pairs, m, n, sigma, S, np.empty(n3), np.empty(n3))
        _copy_kept(S, keep[m], keep[n], K, m * r, n * r)


@numba.njit(cache=True, parallel=True)
def assemble_force_columns(X, G, pairs, n_atoms, sigma, cols, K):
    """Write the block columns of training points ``cols`` (k,): ``K`` (3NM, 3Nk) = K[:, cols]."""
    M = X.shape[0]
    n3 = 3 * n_atoms
    every = np.arange(n3)
    for m in numba.prange(M):
        S, u_m, u_n = np.empty((n3, n3)), np.empty(n3), np.empty(n3)
        for c in range(cols.shape[0]):
            _fill_block(X, G, pairs, np.int64(m), cols[c], sigma, S, u_m, u_n)
            _copy_kept(S, every, every, K, m * n3, c * n3)


@numba.njit(cache=True, parallel=True)
def assemble_energy_rows(X, G, pairs, n_atoms, sigma, keep, K):
    """Write the energy rows (index M r + m) of the lower triangle of ``K``.

    Energy-force entries ``Cov(E_m, F_n) = -c2 (J_n^T d)^T`` for all n and energy-energy
    entries ``phi(d)`` for n <= m, with ``d = x_m - x_n``. Shapes as in
    :func:`assemble_force_blocks`; K must be (M r + M) square.
    """
    M, r = keep.shape
    e0 = M * r
    for m in numba.prange(M):
        u_n = np.empty(3 * n_atoms)
        for n in range(M):
            d = X[m] - X[n]
            phi, c2, _ = matern_terms_jit(_squared_norm(d), sigma)
            _project(d, G[n], pairs, u_n)
            for j in range(r):
                K[e0 + m, n * r + j] = -c2 * u_n[keep[n, j]]
            if n <= m:
                K[e0 + m, e0 + n] = phi


@numba.njit(cache=True)
def _fill_symmetric_block(Xall, Gall, pairs, perms, m, n, sigma, K, S, u_m, u_n):
    """Write ``sum_p K(x_m, x_n^p) P_p`` into ``K`` (3N, 3N): the block of the kernel summed
    over the permutations ``perms`` (P, N), for int64 indices m, n.

    ``Xall`` (M + MP, D), ``Gall`` hold the M training points, then their permuted copies
    (point n, permutation p at row ``M + n P + p``); ``S`` is a (3N, 3N) work array.
    Column ``3 perm[i] + c`` of the block collects column ``3 i + c`` of each copy's block.
    """
    P, N = perms.shape
    M = Xall.shape[0] // (P + 1)
    n3 = 3 * N
    K[:, :] = 0.0
    for p in range(P):
        _fill_block(Xall, Gall, pairs, m, M + n * P + p, sigma, S, u_m, u_n)
        for i in range(N):
            col = 3 * perms[p, i]
            for c in range(3):
                for r in range(n3):
                    K[r, col + c] += S[r, 3 * i + c]


@numba.njit(cache=True, parallel=True)
def assemble_symmetric_force_blocks(Xall, Gall, pairs, perms, sigma, keep, K, b0, b1):
    """Blocks ``b0`` to ``b1`` - 1 of the lower triangle of the permutation-summed force
    kernel (see :func:`_fill_symmetric_block`) on the coordinates ``keep`` (M, r)."""
    P, N = perms.shape
    M, r = keep.shape
    n3 = 3 * N
    for t in numba.prange(b1 - b0):
        m, n = lower_triangle_block(b0 + t)
        S = np.empty((n3, n3))
        _fill_symmetric_block(Xall, Gall, pairs, perms, m, n, sigma, S,
                              np.empty((n3, n3)), np.empty(n3), np.empty(n3))
        _copy_kept(S, keep[m], keep[n], K, m * r, n * r)


@numba.njit(cache=True, parallel=True)
def assemble_symmetric_force_columns(Xall, Gall, pairs, perms, sigma, cols, K):
    """Block columns ``cols`` (k,) of the permutation-summed kernel: ``K`` (3NM, 3Nk)."""
    P, N = perms.shape
    M = Xall.shape[0] // (P + 1)
    n3 = 3 * N
    every = np.arange(n3)
    for m in numba.prange(M):
        out, S, u_m, u_n = np.empty((n3, n3)), np.empty((n3, n3)), np.empty(n3), np.empty(n3)
        for c in range(cols.shape[0]):
            _fill_symmetric_block(Xall, Gall, pairs, perms, np.int64(m), cols[c], sigma, out, S, u_m, u_n)
            _copy_kept(out, every, every, K, m * n3, c * n3)
