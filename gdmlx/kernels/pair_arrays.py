"""The inverse-distance descriptor and its Jacobian products as whole-array operations.

The same math as :mod:`gdmlx.kernels.descriptor` (whose numba loops the CPU uses), written
for any numpy-compatible array module (numpy, or CuPy on a GPU: the GPU backend runs these).
The sums over pairs become products with the pair *incidence* matrix ``S`` (D, N),
``S[k, i] = +1`` and ``S[k, j] = -1`` for pair ``k = (i, j)``: dense matrix products, which
is what a GPU does best, at N times the work of the loops (small next to the kernel sums).
"""

import numpy as np

from gdmlx.backend import array_module


def incidence(pairs, n_atoms, xp=np):
    """Incidence matrix ``S`` (D, N) float64 of ``pairs`` (D, 2), as an ``xp`` array."""
    pairs = np.asarray(pairs)
    S = np.zeros((len(pairs), n_atoms))
    rows = np.arange(len(pairs))
    S[rows, pairs[:, 0]] = 1.0
    S[rows, pairs[:, 1]] = -1.0
    return xp.asarray(S)


def pair_work(n, D, xp=np, dtype="float64"):
    """Work arrays of :func:`descriptors` and :func:`to_atoms` for up to ``n`` geometries of
    ``D`` pairs: one (2, n, D) array (x and a scratch) and one (2, n, D, 3) (G and a scratch)."""
    return xp.empty((2, n, D), dtype=dtype), xp.empty((2, n, D, 3), dtype=dtype)


def descriptors(R, S, work=None):
    """Descriptors ``x`` (n, D) and Jacobians ``G`` (n, D, 3) of ``R`` (n, N, 3), with
    ``x_k = 1/|r_i - r_j|`` and ``G[:, k] = dx_k/dr_i``; arrays of R's module. Computed in
    place in ``work`` (:func:`pair_work`, made if not given): x and G are views of it, valid
    until its next use."""
    xp = array_module(R)
    n = len(R)
    flat, vec = work or pair_work(n, len(S), xp, R.dtype)
    (x, cube), (G, sq) = flat[:, :n], vec[:, :n]
    diff = xp.matmul(S, R, out=G)                       # (n, D, 3): r_i - r_j
    xp.multiply(diff, diff, out=sq).sum(axis=2, out=x)
    x **= 0.5
    xp.divide(1.0, x, out=x)
    xp.multiply(x, x, out=cube)
    cube *= x
    G = xp.negative(diff, out=G)
    G *= cube[:, :, None]                               # -diff / |diff|^3
    return x, G


def to_atoms(fd, G, S, work=None):
    """``J^T fd``: descriptor-space vectors ``fd`` (n, D) to atom vectors (n, N, 3), a new
    array; the (n, D, 3) product goes into the scratch of ``work`` (:func:`pair_work`, the
    one ``G`` came from) if given."""
    scratch = None if work is None else work[1][1, :len(fd)]
    return S.T @ array_module(fd).multiply(fd[:, :, None], G, out=scratch)


def from_atoms(v, G, S):
    """``J v``: atom vectors ``v`` (n, N, 3) to descriptor space (n, D)."""
    return (G * (S @ v)).sum(axis=2)
