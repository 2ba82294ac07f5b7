"""Permutational symmetries: detection, the summed kernel, and an exactly symmetric model."""

from pathlib import Path

import numpy as np
import pytest

import gdmlx
from conftest import toy_energy_forces, toy_geometries
from gdmlx import reference
from gdmlx.cli.demo import bundled_dataset_path
from gdmlx.descriptor import all_pairs
from gdmlx.errors import InputError
from gdmlx.kernel_data import KernelData
from gdmlx.symmetry import check_permutations, close_pairs, find_permutations, pairs_closed
from gdmlx.training import assemble_kernel_matrix

TOY_PERMS = np.array([[0, 1, 2, 3, 4], [3, 1, 2, 0, 4]])      # atoms 0 and 3 are both carbon


def _as_set(perms):
    return {tuple(int(i) for i in p) for p in perms}


def test_ethanol_methyl_rotor_and_ch2_swap_are_found():
    ds = gdmlx.load_dataset(bundled_dataset_path())
    perms = find_permutations(ds.R[:50], ds.z)
    assert len(perms) == 12 and np.array_equal(perms[0], np.arange(9))     # S3 (CH3) x S2 (CH2)
    check_permutations(perms, ds.z)                                          # a group of same-element swaps
    sgdml = np.load(Path(__file__).parent / "data" / "sgdml_ethanol20_sym_model.npz")["perms"]
    # sGDML's permutations (found by matching geometries; its ethanol atom order) form a
    # subgroup of the bond graph's automorphisms there too
    R_sg = np.load(Path(__file__).parent / "data" / "sgdml_ethanol20_sym_pred.npz")["R"]
    z_sg = np.array([6, 6, 8, 1, 1, 1, 1, 1, 1])
    assert _as_set(sgdml) <= _as_set(find_permutations(R_sg, z_sg))


def test_benzene_has_the_twelve_ring_symmetries():
    ang = np.arange(6) * np.pi / 3
    ring = np.stack([np.cos(ang), np.sin(ang), 0 * ang], axis=1)
    R = np.concatenate([1.39 * ring, 2.47 * ring])[None]
    perms = find_permutations(R, np.r_[[6] * 6, [1] * 6])
    assert len(perms) == 12
    for p in perms:                      # each maps the molecule onto itself (a rigid motion)
        d = np.linalg.norm(R[0][:, None] - R[0][None], axis=-1)
        np.testing.assert_allclose(d[np.ix_(p, p)], d, atol=1e-12)


def test_group_size_is_capped_and_stays_a_group():
    ds = gdmlx.load_dataset(bundled_dataset_path())
    perms = find_permutations(ds.R[:50], ds.z, max_size=4)
    assert 1 < len(perms) <= 4
    check_permutations(perms, ds.z)


def test_summed_kernel_matches_reference():
    R = toy_geometries(3, seed=4)
    pairs = all_pairs(5)
    K = assemble_kernel_matrix(KernelData(R, pairs, TOY_PERMS), 1.7, False)
    K_ref = reference.symmetric_kernel_matrix(R, pairs, 1.7, TOY_PERMS)
    lower = np.tril_indices(len(K))
    np.testing.assert_allclose(K[lower], K_ref[lower], rtol=0, atol=1e-12 * np.abs(K_ref).max())
    np.testing.assert_allclose(K_ref, K_ref.T, atol=1e-12 * np.abs(K_ref).max())


@pytest.fixture(scope="module")
def symmetric_model(toy_data):
    R, F, E, z = toy_data
    return gdmlx.GDMLRegressor(sigma=2.0, lam=1e-8, perms=TOY_PERMS).fit(R[:20], F[:20], E[:20], z=z)


def test_model_is_exactly_invariant_and_equivariant(symmetric_model, toy_data):
    R = toy_data[0][40:45]
    E, F = symmetric_model.predict_energy_forces(R)
    E_p, F_p = symmetric_model.predict_energy_forces(R[:, TOY_PERMS[1]])
    np.testing.assert_allclose(E_p, E, rtol=1e-12)
    np.testing.assert_allclose(F_p, F[:, TOY_PERMS[1]], atol=1e-10 * np.abs(F).max())
    E1, F1 = symmetric_model.expansion_.predict_one(R[0][TOY_PERMS[1]])      # compiled path too
    np.testing.assert_allclose(F1, F[0][TOY_PERMS[1]], atol=1e-10 * np.abs(F).max())


def test_symmetric_model_reproduces_training_forces_and_round_trips(symmetric_model, toy_data, tmp_path):
    R, F = toy_data[0][:20], toy_data[1][:20]
    np.testing.assert_allclose(symmetric_model.predict(R), F, atol=1e-4 * np.abs(F).max())
    symmetric_model.save(tmp_path / "s.h5")
    back = gdmlx.load_model(tmp_path / "s.h5")
    np.testing.assert_array_equal(back.perms_, TOY_PERMS)
    np.testing.assert_array_equal(back.predict(toy_data[0][40:]), symmetric_model.predict(toy_data[0][40:]))


def test_cg_agrees_with_analytic_with_symmetries(symmetric_model, toy_data):
    R, F, E, z = toy_data
    opts = gdmlx.ComputeOptions(cg_tol=1e-10, preconditioner_points=5)
    cg = gdmlx.GDMLRegressor(sigma=2.0, lam=1e-8, perms=TOY_PERMS, solver="cg", options=opts).fit(
        R[:20], F[:20], E[:20], z=z)
    np.testing.assert_allclose(cg.predict(R[40:]), symmetric_model.predict(R[40:]),
                               atol=1e-6 * np.abs(F).max())


def test_symmetries_help_when_the_data_are_symmetric():
    """The toy chain's potential is symmetric under reversing the chain: with that symmetry
    and data seen in both atom orders, the symmetric model generalises better."""
    z = np.array([6, 6, 8, 6, 6])
    reverse = np.array([[0, 1, 2, 3, 4], [4, 3, 2, 1, 0]])
    R = toy_geometries(80, seed=9)
    R = np.concatenate([R, R[:, reverse[1]]])[np.random.default_rng(0).permutation(160)]
    E, F = toy_energy_forces(R)
    plain = gdmlx.GDMLRegressor(sigma=2.0, lam=1e-8).fit(R[:15], F[:15], E[:15], z=z)
    sym = gdmlx.GDMLRegressor(sigma=2.0, lam=1e-8, perms=reverse).fit(R[:15], F[:15], E[:15], z=z)
    err = lambda m: np.abs(m.predict(R[100:]) - F[100:]).mean()  # noqa: E731
    assert err(sym) < err(plain)


def test_bad_permutations_and_open_pair_lists_are_refused(toy_data):
    R, F, E, z = toy_data
    with pytest.raises(InputError, match="different elements"):
        check_permutations([[0, 1, 2, 3, 4], [2, 1, 0, 3, 4]], z)
    with pytest.raises(InputError, match="group"):
        check_permutations([[0, 1, 2, 3, 4], [3, 0, 2, 1, 4]], z)          # a 3-cycle alone
    with pytest.raises(InputError, match="identity"):
        check_permutations(TOY_PERMS[::-1], z)
    pairs = np.array([[1, 0], [2, 0]])
    assert not pairs_closed(pairs, TOY_PERMS)
    closed = close_pairs(pairs, TOY_PERMS)
    assert pairs_closed(closed, TOY_PERMS) and len(closed) == 4
    with pytest.raises(InputError, match="not closed"):
        gdmlx.GDMLRegressor(pairs=pairs, perms=TOY_PERMS).fit(R[:5], F[:5], E[:5], z=z)


def test_reduction_keeps_pair_lists_closed_under_the_symmetries():
    from gdmlx.reduction import reduce_pairs
    z = np.array([6, 6, 8, 6, 6])
    reverse = np.array([[0, 1, 2, 3, 4], [4, 3, 2, 1, 0]])
    R = toy_geometries(70, seed=2)
    E, F = toy_energy_forces(R)
    model = gdmlx.GDMLRegressor(sigma=2.0, lam=1e-8, perms=reverse).fit(R[:40], F[:40], E[:40], z=z)
    tried = []
    reduced, report = reduce_pairs(model, R[40:], F[40:], tol=0.5, progress=False,
                                   on_round=lambda trial, rd: tried.append(trial.pairs_))
    assert tried and all(pairs_closed(p, reverse) for p in tried)       # every model tried
    assert len(reduced.pairs_) < 10 and pairs_closed(reduced.pairs_, reverse)
    assert np.array_equal(reduced.perms_, reverse)
