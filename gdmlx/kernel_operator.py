"""Matrix-free training kernel: ``(K + lam I) v`` without forming K.

``(K v)_m = J_m^T sum_n H(x_m - x_n) J_n v_n`` is the prediction formula of
:mod:`gdmlx.kernels.predict` evaluated at the training points with ``beta_n = J_n v_n``:
O(M^2 D) work in three (M x D) @ (D x M)-sized matrix products, O(M^2) memory for the
cached Matern coefficients.
"""

import numpy as np

from gdmlx.kernels.descriptor import scatter_batch
from gdmlx.matern import matern_terms


class ForceKernelOperator:
    """``v -> (K + lam I) v`` for the force-force training kernel.

    ``data``: :class:`gdmlx.kernel_data.KernelData` (with symmetries, the sum over
    permutations runs over its permuted copies). Vectors are flat (3NM,) in the training
    matrix's order ``m * 3N + 3 * atom + xyz``.
    """

    def __init__(self, data, sigma, lam):
        self.data, self.lam = data, lam
        X, Xc = data.X, data.X_cols
        self.shape = (X.shape[0] * 3 * data.n_atoms,) * 2
        r2 = np.maximum(np.einsum("md,md->m", X, X)[:, None] + np.einsum("md,md->m", Xc, Xc)[None, :]
                        - 2.0 * X @ Xc.T, 0.0)
        _, self.C2, self.C1 = matern_terms(r2, sigma)
        self.n_products = 0

    def matvec(self, v):
        d = self.data
        Bv = d.betas(v.reshape(d.n_train, d.n_atoms, 3))
        db = d.X @ Bv.T - np.einsum("md,md->m", d.X_cols, Bv)[None, :]   # (x_m - x_n) . beta_n
        W = -self.C1 * db
        fd = self.C2 @ Bv + W.sum(axis=1)[:, None] * d.X - W @ d.X_cols
        self.n_products += 1
        return scatter_batch(np.ascontiguousarray(fd), d.G, d.pairs, d.n_atoms).ravel() + self.lam * v
