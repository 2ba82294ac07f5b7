"""Inverse-distance descriptor and its compressed Jacobian (numba).

For pair ``k = (i, j)``: ``x_k = 1 / |r_i - r_j|`` and ``g_k = dx_k/dr_i = -(r_i - r_j) / |r_ij|^3``;
``dx_k/dr_j = -g_k`` and ``x_k`` depends on no other atom. The Jacobian is therefore stored
as ``G`` with shape (D, 3) instead of a dense (D, 3N) matrix.

The batch functions run on one thread on purpose: they are O(n D) next to the O(n M D)
matrix products around them, and a numba thread team left spinning after a parallel loop
stalls the BLAS threads that come next (measured on 2 cores: 200 ethanol geometries
took 16 ms to predict with parallel batch loops, 0.6 ms without; benchmarks/README.md
section 8).
"""

import numba
import numpy as np


@numba.njit(cache=True)
def descriptor_one(R, pairs, x, G):
    """Fill ``x`` (D,) and ``G`` (D, 3) for one geometry ``R`` (N, 3) and ``pairs`` (D, 2)."""
    for k in range(pairs.shape[0]):
        i = pairs[k, 0]
        j = pairs[k, 1]
        dx = R[i, 0] - R[j, 0]
        dy = R[i, 1] - R[j, 1]
        dz = R[i, 2] - R[j, 2]
        inv = 1.0 / np.sqrt(dx * dx + dy * dy + dz * dz)
        inv3 = inv * inv * inv
        x[k] = inv
        G[k, 0] = -dx * inv3
        G[k, 1] = -dy * inv3
        G[k, 2] = -dz * inv3


@numba.njit(cache=True)
def descriptor_batch(R, pairs):
    """Descriptors ``x`` (n, D) and Jacobians ``G`` (n, D, 3) of geometries ``R`` (n, N, 3)."""
    n = R.shape[0]
    D = pairs.shape[0]
    x = np.empty((n, D))
    G = np.empty((n, D, 3))
    for t in range(n):
        descriptor_one(R[t], pairs, x[t], G[t])
    return x, G


@numba.njit(cache=True)
def scatter_one(fd, G, pairs, F):
    """Set ``F`` (N, 3) to ``J^T fd``: descriptor-space vector ``fd`` (D,) to atoms."""
    F[:] = 0.0
    for k in range(pairs.shape[0]):
        i = pairs[k, 0]
        j = pairs[k, 1]
        for c in range(3):
            v = fd[k] * G[k, c]
            F[i, c] += v
            F[j, c] -= v


@numba.njit(cache=True)
def scatter_batch(fd, G, pairs, n_atoms):
    """``J^T fd`` for a batch: ``fd`` (n, D), ``G`` (n, D, 3) -> (n, N, 3)."""
    n = fd.shape[0]
    F = np.empty((n, n_atoms, 3))
    for t in range(n):
        scatter_one(fd[t], G[t], pairs, F[t])
    return F


@numba.njit(cache=True)
def gather_one(v, G, pairs, out):
    """Set ``out`` (D,) to ``J v`` for an atom-space vector ``v`` (N, 3)."""
    for k in range(pairs.shape[0]):
        i = pairs[k, 0]
        j = pairs[k, 1]
        out[k] = (G[k, 0] * (v[i, 0] - v[j, 0]) + G[k, 1] * (v[i, 1] - v[j, 1])
                  + G[k, 2] * (v[i, 2] - v[j, 2]))


@numba.njit(cache=True)
def gather_batch(v, G, pairs):
    """``J v`` for a batch: ``v`` (n, N, 3), ``G`` (n, D, 3) -> (n, D)."""
    n = v.shape[0]
    out = np.empty((n, pairs.shape[0]))
    for t in range(n):
        gather_one(v[t], G[t], pairs, out[t])
    return out


@numba.njit(cache=True)
def closest_pairs(R):
    """Shortest atom-atom distance of each geometry in ``R`` (n, N, 3) and its atoms.

    Returns ``dist`` (n,), ``i`` (n,), ``j`` (n,) int64.
    """
    n, N, _ = R.shape
    dist = np.empty(n)
    ii = np.zeros(n, dtype=np.int64)
    jj = np.zeros(n, dtype=np.int64)
    for t in range(n):
        best = np.inf
        for i in range(N):
            for j in range(i + 1, N):
                r2 = ((R[t, i, 0] - R[t, j, 0]) ** 2 + (R[t, i, 1] - R[t, j, 1]) ** 2
                      + (R[t, i, 2] - R[t, j, 2]) ** 2)
                if r2 < best:
                    best, ii[t], jj[t] = r2, i, j
        dist[t] = np.sqrt(best)
    return dist, ii, jj


@numba.njit(cache=True)
def geometry_ok(R, r_min):
    """True if ``R`` (N, 3) is finite and no two atoms are closer than ``r_min``."""
    N = R.shape[0]
    for i in range(N):
        for c in range(3):
            if not np.isfinite(R[i, c]):
                return False
    r2_min = r_min * r_min
    for i in range(N):
        for j in range(i):
            r2 = (R[i, 0] - R[j, 0]) ** 2 + (R[i, 1] - R[j, 1]) ** 2 + (R[i, 2] - R[j, 2]) ** 2
            if r2 < r2_min:
                return False
    return True
