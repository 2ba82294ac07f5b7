"""Covalent bond graph of a molecule from its geometries."""

import ase.data
import numpy as np


def bond_matrix(z, R):
    """(N, N) bool: atoms whose mean distance over geometries ``R`` (n, N, 3) [A] is below
    1.25 x the sum of their covalent radii."""
    return bonded(z, np.linalg.norm(R[:, :, None] - R[:, None], axis=-1).mean(axis=0))


def bonded(z, dist):
    """(N, N) bool: atoms whose distance ``dist`` (N, N) [A] is below 1.25 x the sum of their
    covalent radii."""
    r_cov = ase.data.covalent_radii[np.asarray(z)]
    out = dist < 1.25 * (r_cov[:, None] + r_cov[None])
    np.fill_diagonal(out, False)
    return out
