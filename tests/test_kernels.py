"""The compiled kernels against the plain numpy reference (gdmlx.reference)."""

import numpy as np
import pytest

from conftest import toy_geometries
from gdmlx import reference
from gdmlx.descriptor import all_pairs, descriptors
from gdmlx.expansion import KernelExpansion
from gdmlx.kernels.descriptor import gather_batch
from gdmlx.kernels.predict import expansion_one, expansion_split
from gdmlx.kernel_data import KernelData
from gdmlx.training import assemble_kernel_matrix

SIGMA = 1.7
PAIR_LISTS = [all_pairs(5), np.array([[1, 0], [3, 0], [4, 2], [4, 1], [2, 0]], dtype=np.int64)]


@pytest.mark.parametrize("pairs", PAIR_LISTS)
@pytest.mark.parametrize("with_energy", [False, True])
def test_assembly_matches_reference(pairs, with_energy):
    R = toy_geometries(4, seed=3)
    K = assemble_kernel_matrix(KernelData(R, pairs), SIGMA, with_energy)
    K_ref = reference.kernel_matrix(R, pairs, SIGMA, with_energy)
    lower = np.tril_indices(len(K))
    scale = np.abs(K_ref).max()
    np.testing.assert_allclose(K[lower] / scale, K_ref[lower] / scale, rtol=0, atol=1e-12)
    assert np.allclose(K_ref, K_ref.T) and np.linalg.eigvalsh(K_ref).min() > -1e-12 * scale


def test_assembly_in_chunks_reports_progress_and_stops_between_chunks():
    """105 blocks go in two compiled calls (64 + 41): the same matrix as the reference, a
    progress report after each, and an interrupt raised there stops the assembly."""
    R = toy_geometries(14, seed=5)
    done = []
    K = assemble_kernel_matrix(KernelData(R, all_pairs(5)), SIGMA, False, progress=done.append)
    K_ref = reference.kernel_matrix(R, all_pairs(5), SIGMA, False)
    lower = np.tril_indices(len(K))
    np.testing.assert_allclose(K[lower], K_ref[lower], rtol=0, atol=1e-12 * np.abs(K_ref).max())
    assert done == [64 / 105, 1.0]

    def interrupt(fraction):
        raise KeyboardInterrupt
    with pytest.raises(KeyboardInterrupt):
        assemble_kernel_matrix(KernelData(R, all_pairs(5)), SIGMA, False, progress=interrupt)


def random_expansion(pairs, M=6, seed=0, with_energy=True):
    rng = np.random.default_rng(seed)
    R_train = toy_geometries(M, seed=seed + 10)
    alphas = rng.standard_normal((M, 5, 3))
    a = rng.standard_normal(M) if with_energy else np.zeros(M)
    X, G = descriptors(R_train, pairs)
    exp = KernelExpansion(pairs, 5, SIGMA, X, gather_batch(alphas, G, pairs), a, c=-3.5)
    return exp, R_train, alphas.reshape(M, -1), a


@pytest.mark.parametrize("M", [3, 6, 9])          # training points in blocks of 4, and the rest
@pytest.mark.parametrize("pairs", PAIR_LISTS)
def test_single_and_batched_prediction_match_reference(pairs, M):
    exp, R_train, alphas, a = random_expansion(pairs, M=M)
    R = toy_geometries(7, seed=5)
    E_batch, F_batch = exp.predict(R, batch_size=3)
    for t in range(7):
        E_ref, F_ref = reference.predict(R[t], pairs, R_train, alphas, a, SIGMA, -3.5)
        E_one, F_one = exp.predict_one(R[t])
        scale = np.abs(F_ref).max()
        for E, F in ((E_one, F_one), (E_batch[t], F_batch[t])):
            assert abs(E - E_ref) <= 1e-10 * max(1.0, abs(E_ref))
            np.testing.assert_allclose(F / scale, F_ref / scale, rtol=0, atol=1e-10)


def test_prediction_at_a_training_point_is_finite_and_consistent():
    """d = 0 exactly: the batched |d|^2 expansion must not go negative or produce NaN."""
    pairs = all_pairs(5)
    exp, R_train, alphas, a = random_expansion(pairs)
    E_b, F_b = exp.predict(R_train)
    for t in range(len(R_train)):
        E_ref, F_ref = reference.predict(R_train[t], pairs, R_train, alphas, a, SIGMA, -3.5)
        assert np.isfinite(E_b[t]) and abs(E_b[t] - E_ref) < 1e-9 * max(1, abs(E_ref))
        np.testing.assert_allclose(F_b[t], F_ref, rtol=1e-8, atol=1e-9 * np.abs(F_ref).max())


def test_forces_are_minus_energy_gradient():
    exp, *_ = random_expansion(all_pairs(5))
    R = toy_geometries(1, seed=9)[0]
    _, F = exp.predict_one(R)
    h = 1e-5
    F_fd = np.empty(15)
    for c in range(15):
        dR = np.zeros(15)
        dR[c] = h
        F_fd[c] = -(exp.predict_one(R + dR.reshape(5, 3))[0]
                    - exp.predict_one(R - dR.reshape(5, 3))[0]) / (2 * h)
    np.testing.assert_allclose(F.ravel(), F_fd, rtol=1e-6, atol=1e-7 * np.abs(F).max())


def test_predictions_invariant_under_rotation_and_translation():
    exp, *_ = random_expansion(all_pairs(5))
    R = toy_geometries(3, seed=4)
    E, F = exp.predict(R)
    rng = np.random.default_rng(2)
    Q, _ = np.linalg.qr(rng.standard_normal((3, 3)))
    R2 = R @ Q.T + rng.standard_normal(3)
    E2, F2 = exp.predict(R2)
    np.testing.assert_allclose(E2, E, rtol=1e-12)
    np.testing.assert_allclose(F2, F @ Q.T, rtol=1e-10, atol=1e-12 * np.abs(F).max())


def test_one_geometry_path_refuses_what_the_check_refuses():
    """predict_one (the packed, checked kernel) gives NaN for a geometry that is not finite
    or has two atoms closer than r_min, and the same numbers as without the check otherwise."""
    exp, *_ = random_expansion(all_pairs(5))
    R = toy_geometries(1, seed=6)[0]
    r = np.linalg.norm(R[:, None] - R[None], axis=-1)[np.tril_indices(5, -1)].min()
    E, F = exp.predict_one(R)
    assert exp.predict_one(R, 0.999 * r)[0] == E
    assert np.isnan(exp.predict_one(R, 1.001 * r)[0])
    bad = R.copy()
    bad[3, 1] = np.nan
    assert np.isnan(exp.predict_one(bad)[0])
    bad[3, 1] = np.inf
    assert np.isnan(exp.predict_one(bad)[0])


def test_expansion_arrays_stay_views_of_the_packed_ones_through_pickle():
    """X, B and a are views of the packed arrays the one-geometry kernel takes; a pickled or
    deep-copied expansion rebuilds them so (not two copies of each training array)."""
    import copy
    import pickle
    exp, *_ = random_expansion(all_pairs(5))
    R = toy_geometries(1, seed=6)[0]
    for other in (pickle.loads(pickle.dumps(exp)), copy.deepcopy(exp)):
        assert np.shares_memory(other.X, other._rows) and np.shares_memory(other.B, other._rows)
        assert np.shares_memory(other.a, other._terms) and np.shares_memory(other.XB, other._terms)
        np.testing.assert_array_equal(other.X, exp.X)
        assert other.predict_one(R)[0] == exp.predict_one(R)[0]


@pytest.mark.parametrize("M", [9, 13, 40])
@pytest.mark.parametrize("n_parts", [2, 3])
def test_split_expansion_matches_single_thread(M, n_parts):
    """The parallel one-geometry path (chunks of training points) against the serial one;
    M = 9 with 3 parts leaves the last chunk empty."""
    exp, *_ = random_expansion(all_pairs(5), M=M)
    x, _ = descriptors(toy_geometries(1, seed=8), exp.pairs)
    D = x.shape[1]
    args = (x[0], exp.X, exp.B, exp.X_sq, exp.XB, exp.a, exp.sigma, exp.c)
    fd_one, fd_split = np.empty(D), np.empty(D)
    E_one = expansion_one(*args, fd_one)
    E_split = expansion_split(*args, fd_split, np.empty((n_parts, D)))
    assert abs(E_split - E_one) <= 1e-12 * max(1.0, abs(E_one))
    np.testing.assert_allclose(fd_split, fd_one, rtol=0, atol=1e-12 * np.abs(fd_one).max())
