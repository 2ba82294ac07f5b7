import numpy as np
import pytest

from conftest import toy_geometries
from gdmlx import reference
from gdmlx.descriptor import all_pairs, check_pairs, descriptors
from gdmlx.errors import InputError
from gdmlx.kernels.descriptor import gather_batch, scatter_batch


def dense_from_compressed(G, pairs, n_atoms):
    J = np.zeros((len(pairs), 3 * n_atoms))
    for k, (i, j) in enumerate(pairs):
        J[k, 3 * i:3 * i + 3] = G[k]
        J[k, 3 * j:3 * j + 3] = -G[k]
    return J


@pytest.mark.parametrize("pairs", [None, np.array([[3, 0], [1, 4], [2, 1]])])
def test_compressed_jacobian_matches_dense_reference(pairs):
    R = toy_geometries(4)
    pairs = all_pairs(5) if pairs is None else check_pairs(pairs, 5)
    x, G = descriptors(R, pairs)
    for t in range(4):
        x_ref, J_ref = reference.descriptor_dense(R[t], pairs)
        np.testing.assert_allclose(x[t], x_ref, rtol=1e-14)
        np.testing.assert_allclose(dense_from_compressed(G[t], pairs, 5), J_ref, rtol=1e-14)


def test_jacobian_matches_finite_differences():
    R = toy_geometries(1)[0]
    pairs = all_pairs(5)
    _, J = reference.descriptor_dense(R, pairs)
    h = 1e-6
    J_fd = np.empty_like(J)
    for c in range(15):
        dR = np.zeros(15)
        dR[c] = h
        xp = reference.descriptor_dense(R + dR.reshape(5, 3), pairs)[0]
        xm = reference.descriptor_dense(R - dR.reshape(5, 3), pairs)[0]
        J_fd[:, c] = (xp - xm) / (2 * h)
    np.testing.assert_allclose(J, J_fd, rtol=1e-6, atol=1e-9)


def test_gather_and_scatter_are_J_and_J_transpose():
    R = toy_geometries(3)
    pairs = all_pairs(5)
    x, G = descriptors(R, pairs)
    rng = np.random.default_rng(0)
    v = rng.standard_normal((3, 5, 3))
    w = rng.standard_normal((3, len(pairs)))
    Jv = gather_batch(v, G, pairs)
    JTw = scatter_batch(w, G, pairs, 5)
    for t in range(3):
        J = reference.descriptor_dense(R[t], pairs)[1]
        np.testing.assert_allclose(Jv[t], J @ v[t].ravel(), rtol=1e-13)
        np.testing.assert_allclose(JTw[t].ravel(), J.T @ w[t], rtol=1e-13, atol=1e-14)


def test_default_pairs_are_lower_triangle_order():
    np.testing.assert_array_equal(all_pairs(4), [[1, 0], [2, 0], [2, 1], [3, 0], [3, 1], [3, 2]])


@pytest.mark.parametrize("bad, msg", [
    (np.array([[0, 0]]), "itself"),
    (np.array([[0, 1], [1, 0]]), "twice"),
    (np.array([[0, 7]]), "outside"),
    (np.array([0, 1]), "shape"),
    (np.array([[0.0, 1.0]]), "integer"),
])
def test_bad_pair_lists_are_refused(bad, msg):
    with pytest.raises(InputError, match=msg):
        check_pairs(bad, 5)
