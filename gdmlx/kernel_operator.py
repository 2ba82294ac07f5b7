"""Matrix-free training kernel: ``(K + lam I) v`` without forming K.

``(K v)_m = J_m^T sum_n H(x_m - x_n) J_n v_n`` is the prediction formula of
:mod:`gdmlx.kernels.predict` evaluated at the training points with ``beta_n = J_n v_n``:
O(M^2 D) work in three (M x D) @ (D x M)-sized matrix products, O(M^2) memory for the
cached Matern coefficients.
"""

import numpy as np

from gdmlx.kernels.descriptor import gather_batch, scatter_batch
from gdmlx.matern import matern_terms


class ForceKernelOperator:
    """``v -> (K + lam I) v`` for the force-force training kernel.

    X (M, D), G (M, D, 3): training descriptors and Jacobians; pairs (D, 2); vectors are
    flat (3NM,) in the training matrix's order ``m * 3N + 3 * atom + xyz``.
    """

    def __init__(self, X, G, pairs, n_atoms, sigma, lam):
        self.X, self.G, self.pairs, self.n_atoms, self.lam = X, G, pairs, n_atoms, lam
        self.shape = (X.shape[0] * 3 * n_atoms,) * 2
        sq = np.einsum("md,md->m", X, X)
        r2 = np.maximum(sq[:, None] + sq[None, :] - 2.0 * X @ X.T, 0.0)
        _, self.C2, self.C1 = matern_terms(r2, sigma)
        self.n_products = 0

    def matvec(self, v):
        M = self.X.shape[0]
        Bv = gather_batch(v.reshape(M, self.n_atoms, 3), self.G, self.pairs)
        db = self.X @ Bv.T - np.einsum("md,md->m", self.X, Bv)[None, :]   # (x_m - x_n) . beta_n
        W = -self.C1 * db
        fd = self.C2 @ Bv + W.sum(axis=1)[:, None] * self.X - W @ self.X
        self.n_products += 1
        return scatter_batch(np.ascontiguousarray(fd), self.G, self.pairs, self.n_atoms).ravel() + self.lam * v
