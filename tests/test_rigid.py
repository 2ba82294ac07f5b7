"""Solving in the internal coordinates (gdmlx.rigid): the kept coordinates, the internal
matrix against the orthogonally projected one, and the same model as the full system."""

import functools

import numpy as np
import pytest
import scipy.linalg

import gdmlx
import gdmlx.training
from conftest import toy_energy_forces, toy_geometries
from gdmlx.descriptor import all_pairs, descriptors
from gdmlx.kernel_data import KernelData
from gdmlx.rigid import InternalCoordinates, rigid_motions
from gdmlx.training import assemble_kernel_matrix

SIGMA = 1.7
LAM = 1e-3
SPARSE_PAIRS = np.array([[1, 0], [3, 0], [4, 2], [4, 1], [2, 0]], dtype=np.int64)
TOY_PERMS = np.array([[0, 1, 2, 3, 4], [3, 1, 2, 0, 4]])


def test_rigid_motions_leave_the_descriptor_unchanged():
    R = toy_geometries(3, seed=2)
    modes = rigid_motions(R).reshape(3, 5, 3, 6)
    for k in range(6):
        h = 1e-6
        Xp, _ = descriptors(R + h * modes[..., k], all_pairs(5))
        Xm, _ = descriptors(R - h * modes[..., k], all_pairs(5))
        assert np.abs((Xp - Xm) / (2 * h)).max() < 1e-8      # first-order change is zero


def test_internal_coordinates_drop_six_well_separated_coordinates():
    R = toy_geometries(4, seed=1)
    coords = InternalCoordinates(R)
    assert coords.keep.shape == (4, 9) and coords.rigid.shape == (4, 15, 6)
    for keep, U, T in zip(coords.keep, coords.rigid, rigid_motions(R)):
        assert np.all(np.diff(keep) > 0)
        np.testing.assert_allclose(U.T @ U, np.eye(6), atol=1e-12)
        np.testing.assert_allclose(U @ (U.T @ T), T, atol=1e-12)          # spans the rigid motions
        W = scipy.linalg.null_space(T.T)[keep]      # Q^T P for an orthonormal internal basis P
        assert np.linalg.svd(W, compute_uv=False).min() > 0.2


def test_linear_molecule_has_five_rigid_motions():
    line = np.array([[0.0, 0.0, 0.0], [1.1, 0.0, 0.0], [2.3, 0.0, 0.0]])
    assert InternalCoordinates(np.stack([line, 1.05 * line])).n_kept == 4


def _internal_and_projected(R, pairs, perms, with_energy):
    """The internal system's matrix (kept coordinates, with its regularisation) and, by brute
    force from the full (reference-tested) matrix with orthonormal internal bases P_m,
    ``W (P^T K P + lam I) W^T`` with ``W_m = Q_m^T P_m``; both symmetric, whole."""
    data, coords = KernelData(R, pairs, perms), InternalCoordinates(R)
    M, n3, r = len(R), 3 * R.shape[1], coords.n_kept
    e = M if with_energy else 0
    P = np.zeros((M * n3 + e, M * r + e))
    W = np.zeros((M * r + e, M * r + e))
    for m, T in enumerate(rigid_motions(R)):
        basis = scipy.linalg.null_space(T.T)
        P[m * n3:(m + 1) * n3, m * r:(m + 1) * r] = basis
        W[m * r:(m + 1) * r, m * r:(m + 1) * r] = basis[coords.keep[m]]
    P[M * n3:, M * r:] = W[M * r:, M * r:] = np.eye(e)
    K = assemble_kernel_matrix(data, SIGMA, with_energy)
    K = np.tril(K) + np.tril(K, -1).T
    expected = W @ (P.T @ K @ P + LAM * np.eye(len(W))) @ W.T
    Ki = assemble_kernel_matrix(data, SIGMA, with_energy, coords.keep)
    coords.subtract_rigid_regularisation(Ki, LAM)
    Ki = np.tril(Ki) + np.tril(Ki, -1).T + LAM * np.eye(len(Ki))
    return Ki, expected


@pytest.mark.parametrize("pairs", [all_pairs(5), SPARSE_PAIRS])
@pytest.mark.parametrize("with_energy", [False, True])
def test_internal_matrix_is_the_transformed_projected_matrix(pairs, with_energy):
    Ki, expected = _internal_and_projected(toy_geometries(5, seed=3), pairs, None, with_energy)
    scale = np.abs(expected).max()
    np.testing.assert_allclose(Ki / scale, expected / scale, rtol=0, atol=1e-13)


def test_internal_matrix_with_permutational_symmetry():
    Ki, expected = _internal_and_projected(toy_geometries(4, seed=5), all_pairs(5), TOY_PERMS, False)
    scale = np.abs(expected).max()
    np.testing.assert_allclose(Ki / scale, expected / scale, rtol=0, atol=1e-13)


@pytest.mark.parametrize("use_energy_labels, perms", [(False, None), (True, None), (False, TOY_PERMS)])
def test_internal_solve_gives_the_full_systems_model(monkeypatch, use_energy_labels, perms):
    R = toy_geometries(30, seed=1)
    E, F = toy_energy_forces(R)
    F = F + 0.3        # a net force (rigid part of the labels) that no model can represent
    R_test = toy_geometries(8, seed=9)

    def fit():
        return gdmlx.GDMLRegressor(sigma=2.0, lam=1e-8, use_energy_labels=use_energy_labels,
                                   perms=perms).fit(R, F, energies=E, z=np.ones(5, dtype=int))

    internal = fit()
    # with rtol 2 no rigid motion is found: every coordinate is kept, the full system
    monkeypatch.setattr(gdmlx.training, "InternalCoordinates", functools.partial(InternalCoordinates, rtol=2.0))
    full = fit()
    assert internal.fit_info_["system_rows"] < full.fit_info_["system_rows"]
    # the full system carries alpha_rigid = y_rigid / lam, large here: it loses digits
    F_full, E_full = full.predict(R_test), full.predict_energy(R_test)
    np.testing.assert_allclose(internal.predict(R_test), F_full, rtol=0, atol=1e-7 * np.abs(F_full).max())
    np.testing.assert_allclose(internal.predict_energy(R_test), E_full, rtol=0, atol=1e-7 * np.abs(E_full).max())
