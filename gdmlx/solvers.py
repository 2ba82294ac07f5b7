"""Linear solvers for the regularised kernel system ``(K + lam I) alpha = y``."""

import os

import numpy as np
import scipy.linalg

from gdmlx.errors import InsufficientMemoryError


def available_memory_bytes():
    """Memory available to this process now (bytes), from /proc/meminfo where present."""
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_AVPHYS_PAGES")


def analytic_memory_bytes(n_rows):
    """Bytes the analytic solver needs for an ``n_rows`` square float64 matrix."""
    return 8 * n_rows * n_rows


def memory_budget_bytes(memory_limit_gb=None):
    """The memory training may use: the user's limit, or 90 % of what is available now."""
    return memory_limit_gb * 1e9 if memory_limit_gb is not None else 0.9 * available_memory_bytes()


def check_analytic_fits(n_rows, memory_limit_gb=None):
    """Raise InsufficientMemoryError if the dense matrix would not fit in the budget."""
    need = analytic_memory_bytes(n_rows)
    limit = memory_budget_bytes(memory_limit_gb)
    if need > limit:
        raise InsufficientMemoryError(
            f"the analytic solver needs a {n_rows} x {n_rows} matrix ({need / 1e9:.1f} GB) but only "
            f"{limit / 1e9:.1f} GB may be used; use the iterative solver (solver='cg' or 'auto'), "
            "train on fewer points, or raise ComputeOptions.memory_limit_gb if you know the "
            "memory is there")


# scipy 1.17's bundled (32-bit) OpenBLAS crashes with a segmentation fault in multithreaded
# dpotrf once the matrix passes 2^32 bytes (measured here with 2 threads: n = 22600,
# 4.09e9 bytes, factors in 59 s; n = 23200, 4.31e9 bytes, crashes). Larger matrices are
# factored by blocks, whose LAPACK and BLAS calls each stay far below that size.
_LAPACK_MAX_BYTES = 2**32 - 2**26
_BLOCK = 2048


def solve_cholesky_lower(K, y, lam):
    """Solve ``(K + lam I) alpha = y`` in place of ``K``, given only its lower triangle.

    ``K`` is C-contiguous with its lower triangle (row >= column) filled; ``K.T`` is then
    the Fortran-ordered upper triangle, which LAPACK factors without a copy.
    Its contents are destroyed. Returns ``alpha`` with the shape of ``y``.
    """
    K[np.diag_indices_from(K)] += lam
    try:
        if K.nbytes <= _LAPACK_MAX_BYTES:
            factor = scipy.linalg.cho_factor(K.T, lower=False, overwrite_a=True, check_finite=False)
            return scipy.linalg.cho_solve(factor, y, overwrite_b=False, check_finite=False)
        blocked_cholesky_lower(K, _BLOCK)
    except np.linalg.LinAlgError as exc:
        raise np.linalg.LinAlgError(
            f"the kernel matrix is not positive definite at lam={lam:g}: increase lam "
            "(e.g. 1e-8), or check the data for duplicate geometries with different forces"
        ) from exc
    z = _solve_lower_blocked(K, y, _BLOCK)
    return _solve_lower_transposed_blocked(K, z, _BLOCK)


def blocked_cholesky_lower(A, block):
    """In-place right-looking block Cholesky of the lower triangle of C-ordered ``A``.

    After the call the lower triangle holds L with A = L L^T (Golub & Van Loan, Alg. 4.2.2);
    the work is in matrix products of (n x block) panels.
    """
    n = A.shape[0]
    for k in range(0, n, block):
        e = min(k + block, n)
        L = scipy.linalg.cholesky(A[k:e, k:e], lower=True, check_finite=False)
        A[k:e, k:e] = L
        if e == n:
            break
        A[e:, k:e] = scipy.linalg.solve_triangular(L, A[e:, k:e].T, lower=True, check_finite=False).T
        P = A[e:, k:e]
        for j in range(e, n, block):
            f = min(j + block, n)
            A[j:, j:f] -= P[j - e:] @ P[j - e:f - e].T


def _solve_lower_blocked(A, y, block):
    """z with L z = y, L the lower triangle of ``A`` (forward substitution by blocks)."""
    z = np.array(y, dtype=np.float64)
    for k in range(0, len(z), block):
        e = min(k + block, len(z))
        z[k:e] = scipy.linalg.solve_triangular(A[k:e, k:e], z[k:e], lower=True, check_finite=False)
        z[e:] -= A[e:, k:e] @ z[k:e]
    return z


def _solve_lower_transposed_blocked(A, z, block):
    """x with L^T x = z (back substitution by blocks)."""
    x = np.array(z, dtype=np.float64)
    for k in reversed(range(0, len(x), block)):
        e = min(k + block, len(x))
        x[k:e] = scipy.linalg.solve_triangular(A[k:e, k:e], x[k:e], lower=True, trans="T",
                                               check_finite=False)
        x[:k] -= A[k:e, :k].T @ x[k:e]
    return x
