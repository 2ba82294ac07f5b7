"""Rigid motions, and the internal coordinates the training system is solved in.

Translations and rotations change no interatomic distance, so they lie in the null space of
the descriptor's Jacobian (``J_m t = 0`` for every rigid motion t of geometry m). The force
kernel blocks ``K_mn = J_m^T H J_n`` vanish on them from both sides, and the training system
``(K + lam I) alpha = y`` splits exactly into an internal part, orthogonal to the rigid
motions, and a rigid part ``lam alpha_rigid = y_rigid`` that no prediction sees (predictions
use ``beta_m = J_m alpha_m``). With orthonormal bases P_m (3N, r) of the internal subspaces
the internal part is

    (P^T K P + lam I) b = P^T y,   alpha = P b,

M (3N - 6) rows instead of 3NM: its Cholesky factorisation costs ((3N - 6) / 3N)^3 as much.

Building ``P^T K P`` costs dense products (O(N^4) per block). Dropping 6 Cartesian
coordinates per geometry costs no arithmetic: with ``Q_m`` (3N, r) selecting the kept coordinates
and ``W_m = Q_m^T P_m`` (r, r, invertible when the dropped coordinates can tell the six
rigid motions apart), ``Q_m^T K_mn Q_n = W_m (P_m^T K_mn P_n) W_n^T`` because K_mn maps into
and reads from the internal subspaces only. Substituting ``b = W^T c`` and multiplying by W,

    (Q^T K Q + lam W W^T) c = Q^T Pi y,   alpha = Pi Q c,

with ``Pi = P P^T = I - U U^T`` the projector off the rigid motions (U their orthonormal
basis) and ``W W^T = I - (Q^T U)(Q^T U)^T`` per geometry: the same solution, from a matrix
whose entries are entries of the full kernel matrix (:mod:`gdmlx.kernels.assembly`). With
energy labels, their covariances with the forces of point n, vectors e in the internal
subspace, become ``e^T P_n W_n^T = e^T Q_n``: again entries of the full matrix. The
dropped coordinates are chosen per geometry by QR with column pivoting on ``U_m^T``, which
keeps ``W_m`` well conditioned; still, the matrix's condition number can grow by up to
``1 / sigma_min(W)^2`` (24-109 in the worst geometries of this project's datasets,
benchmarks/README.md section 1d), with no loss of digits measured at lam 1e-10.
"""

import numpy as np
import scipy.linalg


def rigid_motions(R):
    """The six rigid motions of each geometry, (M, 3N, 6), mutually orthogonal, not normalised.

    Columns 0-2 translate along x, y, z (norm sqrt(N)); columns 3-5 rotate about the
    principal axes of the geometry (unit masses) through the centroid, largest moment first
    (velocity ``a x (r - centroid)``, norm sqrt(moment)). About principal axes, the small
    rotation of a nearly linear geometry is computed to full relative precision, where a
    mixture of rotations about x, y and z would cancel. ``R`` (M, N, 3) in any length unit.
    """
    M, N = R.shape[:2]
    r = R - R.mean(axis=1, keepdims=True)
    inertia = np.einsum("mni,mni->m", r, r)[:, None, None] * np.eye(3) - np.einsum("mni,mnj->mij", r, r)
    axes = np.linalg.eigh(inertia)[1][:, :, ::-1]                        # (M, 3, 3), columns
    modes = np.zeros((M, N, 3, 6))
    for c in range(3):
        modes[:, :, c, c] = 1.0
        modes[:, :, :, 3 + c] = np.cross(axes[:, None, :, c], r)
    return modes.reshape(M, 3 * N, 6)


class InternalCoordinates:
    """The kept Cartesian coordinates of training geometries ``R`` (M, N, 3) and the
    transformations between the full training system and the internal one (module doc).

    ``rigid`` (M, 3N, k): orthonormal bases of the rigid motions. k is their rank (6, or 5
    when a geometry is linear: a rotation about its axis moves nothing), counting singular
    values above ``rtol`` times the largest; the smallest rank over all geometries is used
    for all, so that every geometry keeps the same number of coordinates. ``keep`` (M, r):
    the kept coordinate indices ``3 * atom + xyz`` of each geometry, increasing, r = 3N - k.
    """

    def __init__(self, R, rtol=1e-6):
        M, N = R.shape[:2]
        T = rigid_motions(R)
        s = np.linalg.norm(T, axis=1)                   # (M, 6): singular values, T's columns being orthogonal
        k = int((s > rtol * s.max(axis=1, keepdims=True)).sum(axis=1).min())
        self.rigid = np.ascontiguousarray(np.linalg.qr(T[:, :, :k] / s[:, None, :k])[0])
        keep = np.empty((M, 3 * N - k), dtype=np.int64)
        for m in range(M):
            _, _, pivots = scipy.linalg.qr(self.rigid[m].T, mode="economic", pivoting=True)
            keep[m] = np.sort(pivots[k:])
        self.keep = keep

    @property
    def n_kept(self):
        """r, the kept coordinates per geometry."""
        return self.keep.shape[1]

    def remove_rigid(self, v):
        """``Pi v`` for per-geometry vectors v (M, 3N)."""
        return v - np.einsum("mpk,mk->mp", self.rigid, np.einsum("mpk,mp->mk", self.rigid, v))

    def labels(self, y):
        """Force labels y (M, 3N) -> the internal system's right-hand side ``Q^T Pi y``, (M r,)."""
        return np.take_along_axis(self.remove_rigid(y), self.keep, axis=1).ravel()

    def coefficients(self, c):
        """The internal system's solution c (M r,) -> force coefficients ``Pi Q c``, (M, 3N)."""
        M = self.keep.shape[0]
        alpha = np.zeros((M, self.rigid.shape[1]))
        np.put_along_axis(alpha, self.keep, c.reshape(M, -1), axis=1)
        return self.remove_rigid(alpha)

    def subtract_rigid_regularisation(self, K, lam):
        """Subtract ``lam (Q^T U)(Q^T U)^T`` from the diagonal blocks of ``K`` (>= M r square),
        in place, so that the solver's ``+ lam I`` makes them ``+ lam W W^T``."""
        r = self.n_kept
        for m, (keep, U) in enumerate(zip(self.keep, self.rigid)):
            Uk = U[keep]
            K[m * r:(m + 1) * r, m * r:(m + 1) * r] -= lam * (Uk @ Uk.T)
