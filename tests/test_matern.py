import numpy as np
import pytest

from gdmlx.matern import matern_gradient_terms_inplace, matern_terms, matern_terms_jit


def phi_of(d, sigma):
    return matern_terms(d @ d, sigma)[0]


@pytest.mark.parametrize("sigma", [0.7, 3.0, 20.0])
def test_gradient_and_hessian_match_finite_differences(sigma):
    d = np.random.default_rng(1).standard_normal(6) * 0.5
    _, c2, c1 = matern_terms(d @ d, sigma)
    h = 1e-5
    grad_fd = np.array([(phi_of(d + h * e, sigma) - phi_of(d - h * e, sigma)) / (2 * h)
                        for e in np.eye(6)])
    np.testing.assert_allclose(-c2 * d, grad_fd, rtol=1e-7, atol=1e-12)

    def grad(v):
        return -matern_terms(v @ v, sigma)[1] * v

    hess_fd = np.array([(grad(d + h * e) - grad(d - h * e)) / (2 * h) for e in np.eye(6)])
    np.testing.assert_allclose(c1 * np.outer(d, d) - c2 * np.eye(6), hess_fd, rtol=1e-6, atol=1e-12)


def test_value_at_zero_and_compiled_twin():
    phi, c2, c1 = matern_terms(0.0, 2.0)
    assert (phi, c2, c1) == (1.0, 5.0 / 12.0, 25.0 / 48.0)
    for r2 in (0.0, 0.3, 4.0):
        np.testing.assert_allclose(matern_terms_jit(r2, 1.5), matern_terms(r2, 1.5), rtol=1e-15)


def test_inplace_gradient_terms_match_and_reuse_their_input():
    r2 = np.random.default_rng(3).uniform(0.0, 9.0, (7, 5))
    _, c2_ref, c1_ref = matern_terms(r2, 1.7)
    work = r2.copy()
    c2, c1 = matern_gradient_terms_inplace(work, 1.7)
    assert c2 is work
    np.testing.assert_allclose(c2, c2_ref, rtol=1e-15, atol=0)
    np.testing.assert_allclose(c1, c1_ref, rtol=1e-15, atol=0)


def test_in_place_terms_are_bit_for_bit_matern_terms():
    from gdmlx.matern import matern_terms, matern_terms_into
    r2 = np.random.default_rng(3).uniform(0.0, 4.0, (5, 7))
    expected = matern_terms(r2, 1.7)
    s, t, e = r2.copy(), np.empty_like(r2), np.empty_like(r2)
    for got, want in zip(matern_terms_into(s, t, e, 1.7), expected):
        np.testing.assert_array_equal(got, want)
