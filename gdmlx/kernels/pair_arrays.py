"""The inverse-distance descriptor and its Jacobian products as whole-array operations.

The same math as :mod:`gdmlx.kernels.descriptor` (whose numba loops the CPU uses), written
for any numpy-compatible array module (numpy, or CuPy on a GPU: the GPU backend runs these).
The sums over pairs become products with the pair *incidence* matrix ``S`` (D, N),
``S[k, i] = +1`` and ``S[k, j] = -1`` for pair ``k = (i, j)``: dense matrix products, which
is what a GPU does best, at N times the work of the loops (small next to the kernel sums).
"""

import numpy as np


def incidence(pairs, n_atoms, xp=np):
    """Incidence matrix ``S`` (D, N) float64 of ``pairs`` (D, 2), as an ``xp`` array."""
    pairs = np.asarray(pairs)
    S = np.zeros((len(pairs), n_atoms))
    rows = np.arange(len(pairs))
    S[rows, pairs[:, 0]] = 1.0
    S[rows, pairs[:, 1]] = -1.0
    return xp.asarray(S)


def descriptors(R, S):
    """Descriptors ``x`` (n, D) and Jacobians ``G`` (n, D, 3) of ``R`` (n, N, 3), with
    ``x_k = 1/|r_i - r_j|`` and ``G[:, k] = dx_k/dr_i``; arrays of R's module."""
    diff = S @ R                                        # (n, D, 3): r_i - r_j
    inv = 1.0 / (diff * diff).sum(axis=2) ** 0.5
    return inv, -diff * (inv * inv * inv)[:, :, None]


def to_atoms(fd, G, S):
    """``J^T fd``: descriptor-space vectors ``fd`` (n, D) to atom vectors (n, N, 3)."""
    return S.T @ (fd[:, :, None] * G)


def from_atoms(v, G, S):
    """``J v``: atom vectors ``v`` (n, N, 3) to descriptor space (n, D)."""
    return (G * (S @ v)).sum(axis=2)
