"""Linear solvers for the regularised kernel system ``(K + lam I) alpha = y``."""

import mmap
import os

import numpy as np
import scipy.linalg

from gdmlx.blas import gemm_subtract_tn, potrf_upper, syrk_subtract_upper, trsm_upper_transposed
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


def large_zeros(shape):
    """A zero-filled float64 array for a large matrix, in its own anonymous memory map.

    numpy asks the kernel for transparent huge pages (``madvise``) on every large array.
    On this project's virtual machines that made the first touch of new memory about 3x
    slower, and since a huge page holds several whole rows, writing a lower triangle
    backed the upper one too (aspirin, 500 points: assembly 10.5-13.8 s into numpy's
    array, 8.0-8.6 s into this one; peak memory of the fit 6.7 against 3.9 GB;
    benchmarks/README.md section 1c, ``bench_hugepages.py``). Memory mapped here is zero
    until written and returned to the system when the array is freed.
    """
    nbytes = 8 * int(np.prod(shape))
    if nbytes == 0:
        return np.zeros(shape)
    memory = mmap.mmap(-1, nbytes, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)  # not shared memory
    return np.frombuffer(memory, dtype=np.float64).reshape(shape)


def analytic_memory_bytes(n_rows, block_rows=0, triangle=False):
    """Bytes an analytic solve of an ``n_rows`` system needs: the whole float64 matrix, or
    with ``triangle`` what GDML training writes, the only memory that gets backed
    (:func:`large_zeros`): the lower triangle, the upper halves of the diagonal blocks of
    ``block_rows`` rows (one per training point) that the assembly writes whole, a partial
    page per row, and 5 %. Peak growth of fits measured against this estimate:
    benchmarks/README.md section 8, ``bench_analytic_memory.py``.
    """
    if not triangle:
        return 8 * n_rows * n_rows
    per_row = 4 * block_rows + 4096
    return int(1.05 * (4 * n_rows * (n_rows + 1) + per_row * n_rows))


def memory_budget_bytes(memory_limit_gb=None):
    """The memory training may use: the user's limit, or 90 % of what is available now."""
    return memory_limit_gb * 1e9 if memory_limit_gb is not None else 0.9 * available_memory_bytes()


def check_analytic_fits(n_rows, memory_limit_gb=None, block_rows=0, triangle=False, energy_rows=False):
    """Raise InsufficientMemoryError if the dense system would not fit in the budget
    (arguments as in :func:`analytic_memory_bytes`; ``energy_rows``: the system has energy
    labels, which the iterative solver does not take)."""
    need = analytic_memory_bytes(n_rows, block_rows, triangle)
    limit = memory_budget_bytes(memory_limit_gb)
    if need > limit:
        way_out = ("fit without energy labels (the iterative solver, solver='cg' or 'auto', does not "
                   "take them; the energies then give the integration constant only)" if energy_rows else
                   "use the iterative solver (solver='cg' or 'auto'; gdmlx train --solver cg)")
        raise InsufficientMemoryError(
            f"the analytic solver needs {need / 1e9:.3g} GB for its {n_rows} x {n_rows} system but only "
            f"{limit / 1e9:.3g} GB may be used; {way_out}, train on fewer points, or raise the budget "
            "if you know the memory is there (ComputeOptions.memory_limit_gb; gdmlx train --memory-limit-gb)")


# Every factorisation goes through the blocked routine below, whose LAPACK and BLAS calls
# each see one block of at most _BLOCK rows. scipy 1.17's bundled OpenBLAS (0.3.30) crashes
# with a segmentation fault in its multithreaded dpotrf on large matrices: with 2 threads
# at n = 23200 on one of this project's machines, and at n = 15800 (2.0 GB) on another,
# where n = 15500 still factored. The blocked routine is as fast (2 threads, n = 11000:
# 5.2 s against dpotrf's 5.3 s; n = 15000: 12.5 against 11.9 s; benchmarks/bench_cholesky.py).
_BLOCK = 2048


def solve_cholesky_lower(K, y, lam, progress=None):
    """Solve ``(K + lam I) alpha = y`` in place of ``K``, given only its lower triangle.

    ``K`` is C-contiguous with its lower triangle (row >= column) filled; it is factored in
    place (:func:`blocked_cholesky_lower`, which reports to ``progress``) and its contents
    are destroyed. Returns ``alpha`` with the shape of ``y``.
    """
    K[np.diag_indices_from(K)] += lam
    try:
        cholesky_lower(K, progress)
    except np.linalg.LinAlgError as exc:
        raise np.linalg.LinAlgError(
            f"the kernel matrix is not positive definite at lam={lam:g}: increase lam "
            f"(e.g. to {max(10 * lam, 1e-10):g}), or check the data for duplicate geometries with different forces"
        ) from exc
    return cholesky_solve(K, y)


def cholesky_lower(K, progress=None):
    """Factor the C-ordered square ``K`` (lower triangle filled) as L L^T in place; returns
    ``K``, whose lower triangle is then L (the upper one is left undefined).
    ``progress``: see :func:`blocked_cholesky_lower`."""
    blocked_cholesky_lower(K, _BLOCK, progress)
    return K


def lower_gram(A, out, panel=_BLOCK):
    """Lower triangle (row >= column) of ``A A^T`` into ``out`` (n, n) for ``A`` (n, d), by
    panels of ``panel`` rows; returns ``out``. One ``A @ A.T`` would go to OpenBLAS's
    threaded dsyrk, which crashes (segmentation fault) on large outputs with 2 threads
    (measured: 17000 x 17000 from 40000 columns); each panel is a plain matrix product."""
    n = A.shape[0]
    for r0 in range(0, n, panel):
        r1 = min(n, r0 + panel)
        np.matmul(A[r0:r1], A[:r1].T, out=out[r0:r1, :r1])
    return out


def cholesky_solve(L, y):
    """x with L L^T x = y, L the lower triangle of ``L`` (from :func:`cholesky_lower`)."""
    return _solve_lower_transposed_blocked(L, _solve_lower_blocked(L, y, _BLOCK), _BLOCK)


def blocked_cholesky_lower(A, block, progress=None):
    """In-place right-looking block Cholesky of the lower triangle of C-ordered ``A``.

    After the call the lower triangle holds L with A = L L^T (Golub & Van Loan, Alg. 4.2.2).
    ``A.T`` is the Fortran-ordered upper triangle, factored as U^T U with U = L^T: a LAPACK
    factorisation of each diagonal block, a triangular solve for the panel to its right and
    matrix products for the trailing blocks, all in place (:mod:`gdmlx.blas`). Each library
    call is one block's work, so Ctrl-C stops the factorisation within one call; after each
    block column ``progress(fraction)`` is called, if given, with the fraction of the
    arithmetic done.
    """
    U = A.T
    n = A.shape[0]
    for k in range(0, n, block):
        e = min(k + block, n)
        potrf_upper(U[k:e, k:e])
        if progress is not None:
            progress(1.0 - ((n - e) / n) ** 3)
        if e == n:
            break
        trsm_upper_transposed(U[k:e, k:e], U[k:e, e:])
        for j in range(e, n, block):
            f = min(j + block, n)
            syrk_subtract_upper(U[k:e, j:f], U[j:f, j:f])
            if f < n:
                gemm_subtract_tn(U[k:e, j:f], U[k:e, f:], U[j:f, f:])


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
