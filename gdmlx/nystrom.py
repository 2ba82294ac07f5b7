"""Nystrom preconditioner for the force-kernel system (Rudi et al., FALKON, NeurIPS 2017).

With C = K[:, S] the kernel columns of a subset S of training points and
K_SS = L L^T, ``K ~ B B^T`` with ``B = C L^-T``. Its regularised inverse, by Woodbury,

    (B B^T + lam I)^-1 v = (v - B (lam I + B^T B)^-1 B^T v) / lam,

costs two (3NM x 3Nk) products per application. B overwrites C (one triangular solve in
place, by panels of rows): memory 8 * 3NM * 3Nk bytes (with a copy, as before, the solve
took 25.5 s instead of 20.6 s for aspirin, 1000 points, 83 of them in S, and twice the
memory; benchmarks/README.md section 8), and 8 (3Nk)^2 for K_SS's factor, then the inner
matrix.
"""

import numpy as np

from gdmlx.blas import trsm_upper_transposed
from gdmlx.kernels.assembly import (
    assemble_force_columns,
    assemble_symmetric_force_columns,
)
from gdmlx.solvers import cholesky_lower, cholesky_solve, large_zeros, lower_gram


_PANEL_ROWS = 8192   # rows of C per triangular solve: BLAS sees blocks of bounded size


class NystromPreconditioner:
    """``apply(r) ~ (K + lam I)^-1 r`` from ``n_points`` training points spread over the set."""

    def __init__(self, data, sigma, lam, n_points):
        M = data.n_train
        n3 = 3 * data.n_atoms
        self.points = np.unique(np.linspace(0, M - 1, min(n_points, M)).astype(np.int64))
        C = large_zeros((M * n3, len(self.points) * n3))
        if data.perms is None:
            assemble_force_columns(data.X, data.G, data.pairs, data.n_atoms, sigma, self.points, C)
        else:
            Xall, Gall = data.stacked()
            assemble_symmetric_force_columns(Xall, Gall, data.pairs, data.perms, sigma, self.points, C)
        rows = (self.points[:, None] * n3 + np.arange(n3)).ravel()
        L = C[rows]                                   # K_SS (fancy indexing copies), factored in place
        L[np.diag_indices_from(L)] += lam + 1e-12 * np.trace(L) / len(L)
        cholesky_lower(L)
        for r0 in range(0, len(C), _PANEL_ROWS):      # C <- C L^-T, i.e. C^T <- L^-1 C^T
            trsm_upper_transposed(L.T, C[r0:r0 + _PANEL_ROWS].T)
        del L                                         # freed before the inner matrix is made
        self.B = C
        inner = lower_gram(self.B.T, np.empty((self.B.shape[1],) * 2))
        inner[np.diag_indices_from(inner)] += lam
        self.inner = cholesky_lower(inner)
        self.lam = lam

    @staticmethod
    def memory_bytes(n_train, n_atoms, n_points):
        """Peak bytes of the preconditioner: the (3NM x 3Nk) matrix B and one (3Nk x 3Nk)
        beside it (K_SS's factor, then the inner matrix)."""
        return 8 * (3 * n_atoms) ** 2 * n_points * (n_train + n_points)

    def apply(self, r):
        return (r - self.B @ cholesky_solve(self.inner, self.B.T @ r)) / self.lam
