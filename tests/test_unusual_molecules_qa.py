"""Molecules unlike the bent organic ones of the other tests: linear and nearly linear
chains, where a rotation about the molecular axis moves the atoms little or not at all."""

import numpy as np

from gdmlx.descriptor import all_pairs
from gdmlx.kernel_data import KernelData
from gdmlx.options import ComputeOptions
from gdmlx.rigid import InternalCoordinates
from gdmlx.training import assemble_kernel_matrix, fit_expansion

SIGMA = 2.0
LINE = np.array([[0.0, 0.0, 0.0], [0.0, 0.0, 1.16], [0.0, 0.0, -1.16]])    # CO2, on z [A]


def _pair_forces(R):
    """Forces (n, N, 3) of harmonic springs between all atom pairs, rest lengths those of LINE."""
    F = np.zeros_like(R)
    for i, j in all_pairs(R.shape[1]):
        d = R[:, i] - R[:, j]
        r = np.linalg.norm(d, axis=1)
        f = -(8.0 * (r - np.linalg.norm(LINE[i] - LINE[j])) / r)[:, None] * d
        F[:, i] += f
        F[:, j] -= f
    return F


def _nearly_linear(n, bend, seed=0):
    """``n`` geometries (n, 3, 3) [A] stretched along the axis, bent off it by about ``bend``."""
    rng = np.random.default_rng(seed)
    stretch = 0.05 * rng.standard_normal((n, 3, 1)) * np.array([0.0, 0.0, 1.0])
    return LINE + stretch + bend * rng.standard_normal((n, 3, 3))


def test_internal_solve_of_nearly_linear_geometries_solves_the_full_system():
    """A rotation about the axis of a geometry bent by 1e-5 A moves its atoms by ~1e-5 of
    the other rigid motions: it must still be a rigid motion to full precision, or the
    internal system (gdmlx.rigid) is not the full one (residual 3e-5 at lam 1e-12 when it
    was a mixture of rotations about x, y and z)."""
    R, lam = _nearly_linear(20, 1e-5), 1e-12
    F = _pair_forces(R)
    assert InternalCoordinates(R).n_kept == 3              # six rigid motions, 3N - 6 kept
    _, alphas, _ = fit_expansion(R, F, None, all_pairs(3), SIGMA, lam, False, ComputeOptions(verbose=False))
    K = assemble_kernel_matrix(KernelData(R, all_pairs(3)), SIGMA, False)
    K = np.tril(K) + np.tril(K, -1).T
    y = F.ravel()
    residual = K @ alphas.ravel() + lam * alphas.ravel() - y
    assert np.linalg.norm(residual) < 1e-8 * np.linalg.norm(y)
