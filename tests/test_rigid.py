"""Solving in the internal subspaces (gdmlx.rigid): exact bases, the projected matrix, and
the same model as the full system."""

import numpy as np
import pytest

import gdmlx
import gdmlx.training
from conftest import toy_energy_forces, toy_geometries
from gdmlx.descriptor import all_pairs, descriptors
from gdmlx.kernel_data import KernelData
from gdmlx.rigid import internal_bases, rigid_motions
from gdmlx.training import assemble_internal_matrix, assemble_kernel_matrix

SIGMA = 1.7
SPARSE_PAIRS = np.array([[1, 0], [3, 0], [4, 2], [4, 1], [2, 0]], dtype=np.int64)


def test_rigid_motions_leave_the_descriptor_unchanged():
    R = toy_geometries(3, seed=2)
    X0, _ = descriptors(R, all_pairs(5))
    modes = rigid_motions(R).reshape(3, 5, 3, 6)
    for k in range(6):
        h = 1e-6
        Xp, _ = descriptors(R + h * modes[..., k], all_pairs(5))
        Xm, _ = descriptors(R - h * modes[..., k], all_pairs(5))
        assert np.abs((Xp - Xm) / (2 * h)).max() < 1e-8      # first-order change is zero


def test_internal_bases_are_orthonormal_complements():
    R = toy_geometries(4, seed=1)
    P = internal_bases(R)
    assert P.shape == (4, 15, 9)
    for Pm, Qm in zip(P, rigid_motions(R)):
        np.testing.assert_allclose(Pm.T @ Pm, np.eye(9), atol=1e-12)
        assert np.abs(Pm.T @ Qm).max() < 1e-12


def test_linear_molecule_has_five_rigid_motions():
    line = np.array([[0.0, 0.0, 0.0], [1.1, 0.0, 0.0], [2.3, 0.0, 0.0]])
    P = internal_bases(np.stack([line, 1.05 * line]))
    assert P.shape == (2, 9, 4)


@pytest.mark.parametrize("pairs", [all_pairs(5), SPARSE_PAIRS])
@pytest.mark.parametrize("with_energy", [False, True])
def test_internal_matrix_is_the_projected_kernel_matrix(pairs, with_energy):
    """Brute force: P^T K P from the full (reference-tested) assembly; panels of 2 blocks."""
    R = toy_geometries(5, seed=3)
    data, P = KernelData(R, pairs), internal_bases(R)
    M, n3, r = 5, 15, P.shape[2]
    e = M if with_energy else 0
    T = np.zeros((M * n3 + e, M * r + e))
    for m in range(M):
        T[m * n3:(m + 1) * n3, m * r:(m + 1) * r] = P[m]
    T[M * n3:, M * r:] = np.eye(e)
    K = assemble_kernel_matrix(data, SIGMA, with_energy)
    K = np.tril(K) + np.tril(K, -1).T
    expected = T.T @ K @ T
    Ki = assemble_internal_matrix(data, P, SIGMA, with_energy, panel_rows=2 * r)
    lower = np.tril_indices(len(Ki))
    scale = np.abs(expected).max()
    np.testing.assert_allclose(Ki[lower] / scale, expected[lower] / scale, rtol=0, atol=1e-13)


@pytest.mark.parametrize("use_energy_labels", [False, True])
def test_internal_solve_gives_the_full_systems_model(monkeypatch, use_energy_labels):
    R = toy_geometries(30, seed=1)
    E, F = toy_energy_forces(R)
    F = F + 0.3        # a net force (rigid part of the labels) that no model can represent
    R_test = toy_geometries(8, seed=9)

    def fit():
        return gdmlx.GDMLRegressor(sigma=2.0, lam=1e-8, use_energy_labels=use_energy_labels).fit(
            R, F, energies=E, z=np.ones(5, dtype=int))

    internal = fit()
    monkeypatch.setattr(gdmlx.training, "projection_pays", lambda *args: False)
    full = fit()
    assert internal.fit_info_["system_rows"] < full.fit_info_["system_rows"]
    # the full system carries alpha_rigid = y_rigid / lam, large here: it loses digits
    F_full, E_full = full.predict(R_test), full.predict_energy(R_test)
    np.testing.assert_allclose(internal.predict(R_test), F_full, rtol=0, atol=1e-7 * np.abs(F_full).max())
    np.testing.assert_allclose(internal.predict_energy(R_test), E_full, rtol=0, atol=1e-7 * np.abs(E_full).max())
