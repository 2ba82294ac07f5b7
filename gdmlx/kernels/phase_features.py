"""Phase-space pair features of a state (q, v) and their compressed Jacobian (numba).

For pair ``k = (i, j)`` with ``r = q_i - q_j``, ``d = |r|``, ``u = v_i - v_j`` and a time
scale ``tau``::

    x_k = 1 / d                       (inverse distance, as in the GDML descriptor)
    y_k = tau * dx_k/dt = -tau (r . u) / d^3

``y`` is the descriptor's velocity over one stride: invariant under rotation and
translation, and odd under the momentum flip ``v -> -v`` (``x`` is even). Derivatives
(those with respect to atom j are the negatives)::

    dx_k/dq_i = G_k = -r / d^3
    dy_k/dq_i = Hq_k = -tau (u / d^3 - 3 (r . u) r / d^5)
    dy_k/dv_i = tau G_k

so the Jacobian is stored as ``G`` (D, 3) and ``Hq`` (D, 3).
"""

import numba
import numpy as np


@numba.njit(cache=True)
def phase_features_one(q, v, pairs, tau, f, G, Hq):
    """Fill ``f`` (2D,) = (x, y), ``G`` (D, 3) and ``Hq`` (D, 3) for one state.

    q : (N, 3) positions [A]; v : (N, 3) velocities [A per time unit of ``tau``].
    """
    D = pairs.shape[0]
    for k in range(D):
        i = pairs[k, 0]
        j = pairs[k, 1]
        r0 = q[i, 0] - q[j, 0]
        r1 = q[i, 1] - q[j, 1]
        r2 = q[i, 2] - q[j, 2]
        u0 = v[i, 0] - v[j, 0]
        u1 = v[i, 1] - v[j, 1]
        u2 = v[i, 2] - v[j, 2]
        inv = 1.0 / np.sqrt(r0 * r0 + r1 * r1 + r2 * r2)
        inv3 = inv * inv * inv
        ru = r0 * u0 + r1 * u1 + r2 * u2
        f[k] = inv
        f[D + k] = -tau * ru * inv3
        G[k, 0] = -r0 * inv3
        G[k, 1] = -r1 * inv3
        G[k, 2] = -r2 * inv3
        s = 3.0 * ru * inv3 * inv * inv
        Hq[k, 0] = -tau * (u0 * inv3 - s * r0)
        Hq[k, 1] = -tau * (u1 * inv3 - s * r1)
        Hq[k, 2] = -tau * (u2 * inv3 - s * r2)


@numba.njit(cache=True)
def phase_gradient_one(gf, G, Hq, pairs, tau, dq, dv):
    """Chain rule: ``dq`` (N, 3) and ``dv`` (N, 3) set to ``J_q^T gf`` and ``J_v^T gf``.

    ``gf`` (2D,) is a gradient with respect to the features (x, y).
    """
    D = pairs.shape[0]
    dq[:] = 0.0
    dv[:] = 0.0
    for k in range(D):
        i = pairs[k, 0]
        j = pairs[k, 1]
        gx = gf[k]
        gy = gf[D + k]
        for c in range(3):
            a = gx * G[k, c] + gy * Hq[k, c]
            b = gy * tau * G[k, c]
            dq[i, c] += a
            dq[j, c] -= a
            dv[i, c] += b
            dv[j, c] -= b


def phase_features_dense(q, v, pairs, tau):
    """Features (n, 2D) and dense Jacobians (n, 2D, 6N) of states ``q``, ``v`` (n, N, 3).

    Plain numpy; the Jacobian's columns are ordered (q atom 0 xyz, ..., q atom N-1, v atom
    0, ..., v atom N-1). Used for training (dense algebra) and by tests as the reference
    for :func:`phase_features_one`.
    """
    n, N, _ = q.shape
    D = len(pairs)
    i, j = pairs[:, 0], pairs[:, 1]
    r = q[:, i] - q[:, j]                                   # (n, D, 3)
    u = v[:, i] - v[:, j]
    d = np.linalg.norm(r, axis=2)
    ru = np.einsum("ndc,ndc->nd", r, u)
    x = 1.0 / d
    y = -tau * ru / d**3
    G = -r / d[..., None] ** 3
    Hq = -tau * (u / d[..., None] ** 3 - 3.0 * (ru / d**5)[..., None] * r)
    J = np.zeros((n, 2 * D, 2, N, 3))
    rows = np.arange(D)
    J[:, rows, 0, i] = G
    J[:, rows, 0, j] = -G
    J[:, D + rows, 0, i] = Hq
    J[:, D + rows, 0, j] = -Hq
    J[:, D + rows, 1, i] = tau * G
    J[:, D + rows, 1, j] = -tau * G
    return np.concatenate([x, y], axis=1), J.reshape(n, 2 * D, 6 * N)
