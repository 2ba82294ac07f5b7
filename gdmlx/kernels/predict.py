"""Energy and force prediction of a fitted kernel expansion.

A fitted model is the expansion (see :mod:`gdmlx.matern` for c1, c2, phi)::

    E(x)      = c + sum_m [ -c2_m (d_m . beta_m) + phi_m a_m ]
    F_desc(x) =     sum_m [  c2_m beta_m + (c2_m a_m - c1_m (d_m . beta_m)) d_m ]
    F(R)      = J(R)^T F_desc,                 d_m = x - x_m,

with training descriptors ``X`` (M, D), ``B`` (M, D) the rows ``beta_m = J_m alpha_m`` and
``a`` (M,) the energy-label coefficients (zero for a force-only model). F = -dE/dR exactly.

Both paths expand ``|d_m|^2 = |x|^2 + |x_m|^2 - 2 x.x_m`` and ``d_m.beta_m = x.beta_m - x_m.beta_m``
with precomputed ``|x_m|^2`` and ``x_m.beta_m``: :func:`predict_one` is a fused loop for one
geometry (MD: latency), :func:`predict_desc_batch` evaluates many geometries with matrix
products (throughput).
"""

import numba
import numpy as np

from gdmlx.backend import array_module
from gdmlx.kernels.descriptor import descriptor_one, geometry_ok, scatter_one
from gdmlx.matern import matern_terms_into, matern_terms_jit


@numba.njit(cache=True, inline="always")
def _row_terms(xX, xB, x_sq, X_sq_m, XB_m, a_m, sigma):
    """Energy term, ``c2`` and ``w = c2 a - c1 (d.beta)`` of one training point, from the
    dot products ``xX = x.x_m`` and ``xB = x.beta_m``."""
    phi, c2, c1 = matern_terms_jit(max(x_sq + X_sq_m - 2.0 * xX, 0.0), sigma)
    db = xB - XB_m
    return phi * a_m - c2 * db, c2, c2 * a_m - c1 * db


@numba.njit(cache=True, fastmath={"reassoc", "contract"})
def expansion_one(x, X, B, X_sq, XB, a, sigma, c, fd):
    """Energy of descriptor ``x`` (D,); writes the descriptor-space force into ``fd`` (D,).

    Uses the same expansion as :func:`predict_desc_batch`, with ``X_sq`` (M,) = |x_m|^2 and
    ``XB`` (M,) = x_m . beta_m precomputed. Training points go four at a time, so that each
    load of ``x`` and each load and store of ``fd`` serves four rows of X and B: the loop
    is bound by memory operations (measured 25-30 % faster than one row at a time).
    """
    M, D = X.shape
    x_sq = 0.0
    for k in range(D):
        x_sq += x[k] * x[k]
    fd[:] = 0.0
    E = c
    w_sum = 0.0
    M4 = M - M % 4
    for m in range(0, M4, 4):
        s0 = s1 = s2 = s3 = 0.0
        t0 = t1 = t2 = t3 = 0.0
        for k in range(D):
            xk = x[k]
            s0 += xk * X[m, k]
            s1 += xk * X[m + 1, k]
            s2 += xk * X[m + 2, k]
            s3 += xk * X[m + 3, k]
            t0 += xk * B[m, k]
            t1 += xk * B[m + 1, k]
            t2 += xk * B[m + 2, k]
            t3 += xk * B[m + 3, k]
        e0, c0, w0 = _row_terms(s0, t0, x_sq, X_sq[m], XB[m], a[m], sigma)
        e1, c1, w1 = _row_terms(s1, t1, x_sq, X_sq[m + 1], XB[m + 1], a[m + 1], sigma)
        e2, c2, w2 = _row_terms(s2, t2, x_sq, X_sq[m + 2], XB[m + 2], a[m + 2], sigma)
        e3, c3, w3 = _row_terms(s3, t3, x_sq, X_sq[m + 3], XB[m + 3], a[m + 3], sigma)
        E += e0 + e1 + e2 + e3
        w_sum += w0 + w1 + w2 + w3
        for k in range(D):
            fd[k] += (c0 * B[m, k] - w0 * X[m, k] + c1 * B[m + 1, k] - w1 * X[m + 1, k]
                      + c2 * B[m + 2, k] - w2 * X[m + 2, k] + c3 * B[m + 3, k] - w3 * X[m + 3, k])
    for m in range(M4, M):
        xX = 0.0
        xB = 0.0
        for k in range(D):
            xX += x[k] * X[m, k]
            xB += x[k] * B[m, k]
        e, c2, w = _row_terms(xX, xB, x_sq, X_sq[m], XB[m], a[m], sigma)
        E += e
        w_sum += w
        for k in range(D):
            fd[k] += c2 * B[m, k] - w * X[m, k]
    for k in range(D):
        fd[k] += w_sum * x[k]
    return E


# Below this many elements of X per thread, starting threads costs more than it saves.
# Measured with 2 threads (one / split, us): M x D = 500 x 36: 12.9 / 13.3; 300 x 128:
# 18.4 / 15.5; 300 x 147: 22.2 / 17.5; 500 x 210: 47.0 / 34.1.
MIN_ELEMENTS_PER_THREAD = 15_000


@numba.njit(cache=True, parallel=True)
def expansion_split(x, X, B, X_sq, XB, a, sigma, c, fd, parts):
    """:func:`expansion_one` with the training points split into ``T = parts.shape[0]``
    chunks evaluated in parallel; ``parts`` (T, D) holds each chunk's force (work array).

    For one geometry of a large model: each thread streams its own part of X and B, so
    the memory traffic per thread halves.
    """
    M, D = X.shape
    T = parts.shape[0]
    step = ((M + T - 1) // T + 3) // 4 * 4
    E_parts = np.zeros(T)
    for t in numba.prange(T):
        lo, hi = min(M, t * step), min(M, (t + 1) * step)
        E_parts[t] = expansion_one(x, X[lo:hi], B[lo:hi], X_sq[lo:hi], XB[lo:hi], a[lo:hi],
                                   sigma, 0.0, parts[t])
    for k in range(D):
        s = 0.0
        for t in range(T):
            s += parts[t, k]
        fd[k] = s
    return c + E_parts.sum()


def work_arrays(D):
    """Work arrays ``(x, G, fd, parts)`` of :func:`predict_one` for up to D pairs, with room
    for one force per numba thread."""
    return np.empty(D), np.empty((D, 3)), np.empty(D), np.empty(numba.get_num_threads() * D)


@numba.njit(cache=True)
def predict_one(R, pairs, X, B, X_sq, XB, a, sigma, c, x, G, fd, parts, F):
    """Energy of geometry ``R`` (N, 3); forces written into ``F`` (N, 3).

    ``x`` (D,), ``G`` (D, 3), ``fd`` (D,) and ``parts`` (>= T D,) are caller-owned work
    arrays, so that an MD loop can call this without allocating. Up to T threads share the
    training points when the model has at least ``MIN_ELEMENTS_PER_THREAD`` elements per
    thread (:func:`expansion_split`); otherwise one thread does all.
    """
    descriptor_one(R, pairs, x, G)
    D = X.shape[1]
    T = min(parts.shape[0] // D, X.size // MIN_ELEMENTS_PER_THREAD)
    if T > 1:
        # a contiguous (T, D) view: a strided one would stop the loops from vectorising
        E = expansion_split(x, X, B, X_sq, XB, a, sigma, c, fd, parts[:T * D].reshape((T, D)))
    else:
        E = expansion_one(x, X, B, X_sq, XB, a, sigma, c, fd)
    scatter_one(fd, G, pairs, F)
    return E


def packed_work(D):
    """The one work array of :func:`predict_checked` for up to D pairs: room for x, G, fd
    and one force per numba thread, (5 + T) D values."""
    return np.empty((5 + numba.get_num_threads()) * D)


@numba.njit(cache=True)
def predict_checked(R, r_min, pairs, rows, terms, sigma, c, work, F):
    """:func:`predict_one` behind a check of ``R``, with the model's arrays packed.

    Returns NaN (``F`` unset) if ``R`` (N, 3) is not finite or two atoms are closer than
    ``r_min``. ``rows`` (2, M, D) holds X and B, ``terms`` (3, M) X_sq, XB and a, ``work``
    (:func:`packed_work`) x, G, fd and parts: each array argument costs the call ~0.1-0.2 us
    to unbox, and a Python caller of one geometry (an optimiser, a Python MD loop, the
    ASE calculator) pays it every call.
    """
    if not geometry_ok(R, r_min):
        return np.nan
    D = pairs.shape[0]
    return predict_one(R, pairs, rows[0], rows[1], terms[0], terms[1], terms[2], sigma, c, work[:D],
                       work[D:4 * D].reshape((D, 3)), work[4 * D:5 * D], work[5 * D:], F)


def batch_work(n, M, xp=np, dtype="float64"):
    """Work arrays of :func:`predict_desc_batch` for up to ``n`` descriptors and ``M``
    training points: one (4, n, M) array of module ``xp``."""
    return xp.empty((4, n, M), dtype=dtype)


def predict_desc_batch(x, X, B, a, sigma, c, XB=None, X_sq=None, work=None):
    """Energies (n,) and descriptor-space forces (n, D) for descriptors ``x`` (n, D).

    The sums over training points are written as matrix products (BLAS)::

        |d|^2   = |x|^2 + |x_m|^2 - 2 x . x_m
        d.beta  = x . beta_m - x_m . beta_m
        F_desc  = C2 @ B + rowsum(W) x - W @ X,    W = c2 a - c1 (d.beta)

    ``XB`` (M,) = rowwise ``x_m . beta_m`` and ``X_sq`` (M,) = ``|x_m|^2`` may be passed
    precomputed. The (n, M) intermediates are computed in place in ``work`` (:func:`batch_work`
    for at least n descriptors; made here if not given): a loop that passes the same work
    arrays every call allocates nothing of size n x M (fresh arrays of several MB were
    mapped and page-faulted in again on every MD step). Works on numpy and CuPy arrays.
    """
    xp = array_module(x)
    n, M = len(x), len(X)
    if XB is None:
        XB = np.einsum("md,md->m", X, B)
    if X_sq is None:
        X_sq = np.einsum("md,md->m", X, X)
    if work is None:
        work = batch_work(n, M, xp, x.dtype)
    db, r2, t, e = (w[:n] for w in work)
    xX = xp.matmul(x, X.T, out=db)
    xX *= 2.0
    xp.add(np.einsum("nd,nd->n", x, x)[:, None], X_sq[None, :], out=r2)
    r2 -= xX
    xp.maximum(r2, 0.0, out=r2)
    xp.matmul(x, B.T, out=db)
    db -= XB[None, :]
    phi, c2, c1 = matern_terms_into(r2, t, e, sigma, xp)
    E = c + phi @ a - np.einsum("nm,nm->n", c2, db)
    W = xp.multiply(c2, a[None, :], out=phi)
    c1 *= db
    W -= c1                                         # W = c2 a - c1 db
    fd = c2 @ B + W.sum(axis=1)[:, None] * x - W @ X
    return E, fd
