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


def solve_cholesky_lower(K, y, lam):
    """Solve ``(K + lam I) alpha = y`` in place of ``K``, given only its lower triangle.

    ``K`` is C-contiguous with its lower triangle (row >= column) filled; ``K.T`` is then
    the Fortran-ordered upper triangle, which LAPACK factors without a copy.
    Its contents are destroyed. Returns ``alpha`` with the shape of ``y``.
    """
    K[np.diag_indices_from(K)] += lam
    try:
        factor = scipy.linalg.cho_factor(K.T, lower=False, overwrite_a=True, check_finite=False)
    except np.linalg.LinAlgError as exc:
        raise np.linalg.LinAlgError(
            f"the kernel matrix is not positive definite at lam={lam:g}: increase lam "
            "(e.g. 1e-8), or check the data for duplicate geometries with different forces"
        ) from exc
    return scipy.linalg.cho_solve(factor, y, overwrite_b=False, check_finite=False)
