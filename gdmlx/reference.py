"""Plain numpy reference implementation of the GDML math, for tests only.

Written for clarity, not speed: dense Jacobians (D x 3N), explicit D x D Hessians and
Python loops over training points. The compiled kernels in :mod:`gdmlx.kernels` must agree
with these functions to rounding error.
"""

import numpy as np

from gdmlx.matern import matern_terms


def descriptor_dense(R, pairs):
    """Inverse distances ``x`` (D,) and the dense Jacobian ``dx/dR`` (D, 3N) of ``R`` (N, 3)."""
    N = R.shape[0]
    x = np.empty(len(pairs))
    J = np.zeros((len(pairs), 3 * N))
    for k, (i, j) in enumerate(pairs):
        r = R[i] - R[j]
        dist = np.linalg.norm(r)
        x[k] = 1.0 / dist
        J[k, 3 * i:3 * i + 3] = -r / dist**3
        J[k, 3 * j:3 * j + 3] = r / dist**3
    return x, J


def force_covariance(d, sigma):
    """``H(d) = -hess phi(d)`` as an explicit (D, D) matrix."""
    _, c2, c1 = matern_terms(d @ d, sigma)
    return c2 * np.eye(len(d)) - c1 * np.outer(d, d)


def kernel_matrix(R_train, pairs, sigma, with_energy=False):
    """Full symmetric training matrix: force blocks, then energy rows if ``with_energy``."""
    desc = [descriptor_dense(R, pairs) for R in R_train]
    M, n3 = len(R_train), 3 * R_train.shape[1]
    size = M * n3 + (M if with_energy else 0)
    K = np.zeros((size, size))
    for m, (xm, Jm) in enumerate(desc):
        for n, (xn, Jn) in enumerate(desc):
            d = xm - xn
            phi, c2, _ = matern_terms(d @ d, sigma)
            K[m * n3:(m + 1) * n3, n * n3:(n + 1) * n3] = Jm.T @ force_covariance(d, sigma) @ Jn
            if with_energy:
                e0 = M * n3
                K[e0 + m, n * n3:(n + 1) * n3] = -c2 * d @ Jn   # Cov(E_m, F_n)
                K[n * n3:(n + 1) * n3, e0 + m] = -c2 * d @ Jn
                K[e0 + m, e0 + n] = phi
    return K


def symmetric_kernel_matrix(R_train, pairs, sigma, perms):
    """Force kernel summed over atom permutations: block (m, n) = sum_p K(R_m, R_n[p]) P_p,
    with ``P_p`` moving column ``3 i + c`` to ``3 p[i] + c``."""
    M, N = R_train.shape[:2]
    n3 = 3 * N
    K = np.zeros((M * n3, M * n3))
    for p in perms:
        move = np.zeros((n3, n3))
        for i in range(N):
            move[3 * i:3 * i + 3, 3 * p[i]:3 * p[i] + 3] = np.eye(3)
        for m in range(M):
            xm, Jm = descriptor_dense(R_train[m], pairs)
            for n in range(M):
                xn, Jn = descriptor_dense(R_train[n][p], pairs)
                K[m * n3:(m + 1) * n3, n * n3:(n + 1) * n3] += Jm.T @ force_covariance(xm - xn, sigma) @ Jn @ move
    return K


def predict(R, pairs, R_train, alphas, a, sigma, c):
    """Energy and forces (N, 3) of geometry ``R`` for coefficients ``alphas`` (M, 3N), ``a`` (M,)."""
    x, J = descriptor_dense(R, pairs)
    E = c
    F_desc = np.zeros(len(pairs))
    for Rm, alpha, am in zip(R_train, alphas, a):
        xm, Jm = descriptor_dense(Rm, pairs)
        d = x - xm
        phi, c2, _ = matern_terms(d @ d, sigma)
        beta = Jm @ alpha
        E += -c2 * d @ beta + phi * am          # grad phi(d) = -c2 d
        F_desc += force_covariance(d, sigma) @ beta + c2 * d * am
    return E, (J.T @ F_desc).reshape(-1, 3)
