"""Feature importance by masking (Kabylda et al., Nat. Commun. 14, 3562 (2023)).

Removing a group S of pair features from a fitted model (from the training descriptors,
``beta``, the query descriptor and its Jacobian rows) changes, for each training point m,
``|d_m|^2 -> |d_m|^2 - sum_{k in S} d_mk^2`` and ``d_m . beta_m -> d_m . beta_m - sum_{k in S}
d_mk beta_mk``, hence the kernel coefficients c2, c1, W = c2 a - c1 (d.beta). The
descriptor-space force of the masked model differs from the full one by

    dF_desc[S, j] = sum_m  dc2_mS beta_mj + dW_mS d_mj      (j not in S),   dF_desc[S, j] = -F_desc[j]  (j in S)

so all masked predictions of one geometry are two (G x M) @ (M x D) matrix products,
instead of G separate predictions. Groups are single features, or for a model summed over
permutations the features' orbits, which reduction keeps or drops whole.
"""

import numba
import numpy as np

from gdmlx.matern import matern_terms


def masked_force_change_sq(x, G, pairs, n_atoms, X, B, a, sigma, groups):
    """Squared force change summed over atoms, for masking each group of features: (n_groups,).

    x (D,), G (D, 3): one query geometry's descriptor and Jacobian; X, B (M, D), a (M,),
    sigma: the fitted expansion; groups (D,) int: each feature's group, 0 .. n_groups - 1.
    """
    D = len(x)
    member = np.zeros((D, groups.max() + 1))
    member[np.arange(D), groups] = 1.0
    d = x[None, :] - X
    r2 = np.einsum("md,md->m", d, d)
    db = np.einsum("md,md->m", d, B)
    _, c2, c1 = matern_terms(r2, sigma)
    W = c2 * a - c1 * db
    F_desc = c2 @ B + W @ d
    _, c2k, c1k = matern_terms(np.maximum(r2[:, None] - (d * d) @ member, 0.0), sigma)    # (M, groups)
    dc2 = c2k - c2[:, None]
    dW = c2k * a[:, None] - c1k * (db[:, None] - (d * B) @ member) - W[:, None]
    dF = dc2.T @ B + dW.T @ d                                                              # (groups, D)
    dF[groups, np.arange(D)] = -F_desc
    return _scatter_rows_sq(np.ascontiguousarray(dF), G, pairs, n_atoms)


@numba.njit(cache=True)
def _scatter_rows_sq(dF, G, pairs, n_atoms):
    """For each row k of ``dF`` (K, D): |J^T dF[k]|^2 summed over atoms and xyz."""
    K, D = dF.shape
    out = np.empty(K)
    F = np.empty((n_atoms, 3))
    for k in range(K):
        F[:] = 0.0
        for j in range(D):
            v = dF[k, j]
            i0, j0 = pairs[j, 0], pairs[j, 1]
            for c in range(3):
                F[i0, c] += v * G[j, c]
                F[j0, c] -= v * G[j, c]
        out[k] = (F * F).sum()
    return out
