"""Matrix-free training kernel: ``(K + lam I) v`` without forming K.

``(K v)_m = J_m^T sum_n H(x_m - x_n) J_n v_n`` is the prediction formula of
:mod:`gdmlx.kernels.predict` evaluated at the training points with ``beta_n = J_n v_n``:
O(M^2 D) work in three (M x D) @ (D x M)-sized matrix products, O(M^2) memory for the
cached Matern coefficients (:meth:`ForceKernelOperator.memory_bytes`). The products run on the array module ``xp`` (numpy, or cupy
for the GPU backend); the Jacobian products use the compiled loops of
:mod:`gdmlx.kernels.descriptor` on the CPU and the whole-array operations of
:mod:`gdmlx.kernels.pair_arrays` on a device.
"""

import numpy as np

from gdmlx.backend import to_host
from gdmlx.kernels.descriptor import scatter_batch
from gdmlx.kernels.pair_arrays import from_atoms, incidence, to_atoms
from gdmlx.matern import matern_gradient_terms_inplace


class ForceKernelOperator:
    """``v -> (K + lam I) v`` for the force-force training kernel.

    ``data``: :class:`gdmlx.kernel_data.KernelData` (with symmetries, the sum over
    permutations runs over its permuted copies). Vectors are flat (3NM,) numpy arrays in the
    training matrix's order ``m * 3N + 3 * atom + xyz``. ``xp`` holds the kernel's arrays;
    ``compiled`` (default: when ``xp`` is numpy) picks the compiled Jacobian products over
    the whole-array ones.
    """

    def __init__(self, data, sigma, lam, xp=np, compiled=None):
        self.data, self.lam, self.xp = data, lam, xp
        self.compiled = xp is np if compiled is None else compiled
        self.X, self.X_cols = xp.asarray(data.X), xp.asarray(data.X_cols)
        self.shape = (data.n_train * 3 * data.n_atoms,) * 2
        r2 = self.X @ self.X_cols.T                  # |x_m - x_n|^2, in place: two (M, MP) arrays at most
        r2 *= -2.0
        r2 += xp.einsum("md,md->m", self.X, self.X)[:, None]
        r2 += xp.einsum("md,md->m", self.X_cols, self.X_cols)[None, :]
        xp.maximum(r2, 0.0, out=r2)
        self.C2, self.C1 = matern_gradient_terms_inplace(r2, sigma, xp)
        if not self.compiled:
            self.S = incidence(data.pairs, data.n_atoms, xp)
            self.G, self.G_cols = xp.asarray(data.G), xp.asarray(data.G_cols)
        self.n_products = 0

    @staticmethod
    def memory_bytes(n_train, n_cols):
        """Bytes of the operator's largest arrays for ``n_train`` points and ``n_cols`` = points
        times permutations: the cached ``c2, c1`` and one work array of a product, each
        (n_train, n_cols) float64."""
        return 3 * 8 * n_train * n_cols

    def matvec(self, v):
        d, xp = self.data, self.xp
        alphas = v.reshape(d.n_train, d.n_atoms, 3)
        if self.compiled:
            Bv = xp.asarray(d.betas(alphas))
        else:
            Bv = from_atoms(xp.asarray(d.permuted(alphas)), self.G_cols, self.S)
        W = self.X @ Bv.T                                        # (x_m - x_n) . beta_n, then
        W -= xp.einsum("md,md->m", self.X_cols, Bv)[None, :]
        W *= self.C1                                             # W = -c1 (x_m - x_n) . beta_n
        W *= -1.0
        fd = self.C2 @ Bv + W.sum(axis=1)[:, None] * self.X - W @ self.X_cols
        self.n_products += 1
        if self.compiled:
            F = scatter_batch(np.ascontiguousarray(to_host(fd)), d.G, d.pairs, d.n_atoms)
        else:
            F = to_host(to_atoms(fd, self.G, self.S))
        return F.ravel() + self.lam * v
