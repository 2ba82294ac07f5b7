"""Descriptors of the training points, and of their permuted copies when the model uses
permutational symmetries: what kernel assembly, the kernel product and the preconditioner
work on."""

import numpy as np

from gdmlx.descriptor import descriptors
from gdmlx.kernels.descriptor import gather_batch


class KernelData:
    """Training descriptors ``X`` (M, D) and Jacobians ``G`` (M, D, 3) of ``R`` (M, N, 3).

    With ``perms`` (P, N), P > 1, the kernel is summed over the permutations: column point
    n of the kernel becomes the copies ``R_n[perm_p]``, whose descriptors are ``X_cols``
    (M P, D) and ``G_cols`` (row ``n P + p``). Without, ``X_cols`` is ``X``.
    """

    def __init__(self, R, pairs, perms=None):
        self.pairs, self.n_atoms, self.n_train = pairs, R.shape[1], R.shape[0]
        self.X, self.G = descriptors(R, pairs)
        self.perms = perms if perms is not None and len(perms) > 1 else None
        if self.perms is None:
            self.X_cols, self.G_cols = self.X, self.G
        else:
            self.X_cols, self.G_cols = descriptors(R[:, self.perms].reshape(-1, self.n_atoms, 3), pairs)

    def permuted(self, v):
        """Per-point vectors ``v`` (M, N, 3) -> their copies ``v_n[perm_p]`` (M P, N, 3)."""
        return v if self.perms is None else v[:, self.perms].reshape(-1, self.n_atoms, 3)

    def betas(self, alphas):
        """``beta`` (M P, D) of the kernel expansion for force coefficients ``alphas`` (M, N, 3)."""
        return gather_batch(np.ascontiguousarray(self.permuted(alphas)), self.G_cols, self.pairs)

    def stacked(self):
        """``X`` and ``G`` followed by the permuted copies, as the symmetric assembly takes them."""
        return np.concatenate([self.X, self.X_cols]), np.concatenate([self.G, self.G_cols])
