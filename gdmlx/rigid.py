"""Rigid motions and the internal subspace of a geometry.

Translations and rotations change no interatomic distance, so they lie in the null space of
the descriptor's Jacobian (``J_m t = 0`` for every rigid motion t of geometry m). The force
kernel blocks ``K_mn = J_m^T H J_n`` vanish on them from both sides, and the training system
``(K + lam I) alpha = y`` splits exactly into an internal part, orthogonal to the rigid
motions, and a rigid part ``lam alpha_rigid = y_rigid`` that no prediction sees (predictions
use ``beta_m = J_m alpha_m``). Solving only the internal part, with orthonormal bases P_m of
each geometry's internal subspace,

    (P^T K P + lam I) b = P^T y,   alpha = P b,

gives the same model from a system of M (3N - 6) rows instead of 3NM: its Cholesky
factorisation costs ((3N - 6) / 3N)^3 as much (0.65 for toluene, N = 15).
"""

import numpy as np


def rigid_motions(R):
    """The six rigid motions of each geometry, (M, 3N, 6), not normalised.

    Columns 0-2 translate along x, y, z; columns 3-5 rotate about the x, y, z axes through
    the centroid (velocity ``omega x (r - centroid)``). ``R`` (M, N, 3) in any length unit.
    """
    M, N = R.shape[:2]
    r = R - R.mean(axis=1, keepdims=True)
    modes = np.zeros((M, N, 3, 6))
    for c in range(3):
        modes[:, :, c, c] = 1.0
        axis = np.zeros(3)
        axis[c] = 1.0
        modes[:, :, :, 3 + c] = np.cross(axis, r)
    return modes.reshape(M, 3 * N, 6)


def internal_bases(R, rtol=1e-6):
    """Orthonormal bases of the internal subspaces of geometries ``R`` (M, N, 3).

    Returns P (M, 3N, 3N - k): the columns of P_m are orthonormal and orthogonal to every
    rigid motion of geometry m. k is the rank of the rigid motions (6, or 5 when a geometry
    is linear: a rotation about its axis moves nothing), counting singular values above
    ``rtol`` times the largest; the smallest rank over all geometries is used for all, so
    that every geometry has the same number of rows in the system.
    """
    U, s, _ = np.linalg.svd(rigid_motions(R), full_matrices=True)
    k = int((s > rtol * s[:, :1]).sum(axis=1).min())
    return np.ascontiguousarray(U[:, :, k:])


def projection_pays(n_train, n_atoms, n_internal, n_pairs):
    """Whether solving in the internal subspaces is cheaper than the full system.

    The projected matrix costs a product of (M r x D) panels, about (M r)^2 D flops for its
    lower triangle (r = ``n_internal`` rows per geometry); it saves ((3NM)^3 - (rM)^3) / 3
    flops of Cholesky factorisation. Counted twice, since the panels are narrower than the
    factorisation's and run less efficiently.
    """
    full, internal = 3 * n_atoms * n_train, n_internal * n_train
    return (full ** 3 - internal ** 3) / 3 > 2 * internal ** 2 * n_pairs
