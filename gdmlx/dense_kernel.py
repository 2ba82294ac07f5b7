"""Gradient-domain training matrix for features with dense Jacobians, with a symmetry group.

For features ``f_a`` (F,) with Jacobians ``J_a`` (F, n) and a group of feature transforms
``g f = s * f[idx]`` (a permutation ``idx`` (F,) of the features, e.g. induced by swapping
identical atoms, times a diagonal of signs ``s``, e.g. the momentum flip; the identity
included), block (a, b) of the matrix is::

    K_ab = sum_g J_a^T H(f_a - g f_b) g J_b,      H(d) = c2 I - c1 d d^T   (gdmlx.matern)

i.e. the Hessian kernel of ``k_sym(f, f') = sum_g k(f, g f')`` (sGDML sums over atom
permutations the same way). Used where the Jacobian has no pair structure, e.g. the
phase-space features of :mod:`gdmlx.kernels.phase_features`; the work is matrix products.
"""

import numpy as np

from gdmlx.matern import matern_terms
from gdmlx.solvers import large_zeros

_PANEL_BYTES = 256 * 2**20


def assemble_dense(f, J, sigma, index, signs):
    """Training matrix (M n, M n) for features ``f`` (M, F) and Jacobians ``J`` (M, F, n).

    ``index`` (G, F) int and ``signs`` (G, F): the group's transforms (module docstring).
    """
    M, F, n = J.shape
    K = large_zeros((M * n, M * n))
    Jt = np.ascontiguousarray(J.transpose(0, 2, 1)).reshape(M * n, F)
    Jf_self = np.einsum("afi,af->ai", J, f)                              # J_a^T f_a
    panel = max(1, int(_PANEL_BYTES // (8 * n * M * n)))
    for idx, g in zip(index, signs):
        fg = f[:, idx] * g
        Jgt = Jt[:, idx] * g
        r2 = (f * f).sum(1)[:, None] + (fg * fg).sum(1)[None, :] - 2.0 * f @ fg.T
        _, c2, c1 = matern_terms(np.maximum(r2, 0.0), sigma)
        A = Jf_self[:, :, None] - (Jt @ fg.T).reshape(M, n, M)              # J_a^T d_ab
        Bd = (f @ Jgt.T).reshape(M, M, n) - np.einsum("bf,bif->bi", fg, Jgt.reshape(M, n, F))[None]
        for a0 in range(0, M, panel):                                       # d_ab^T g J_b
            a1 = min(M, a0 + panel)
            gram = (Jt[a0 * n:a1 * n] @ Jgt.T).reshape(a1 - a0, n, M, n)
            block = c2[a0:a1, None, :, None] * gram
            block -= c1[a0:a1, None, :, None] * A[a0:a1, :, :, None] * Bd[a0:a1, None, :, :]
            K[a0 * n:a1 * n] += block.reshape((a1 - a0) * n, M * n)
    return K
