"""Covalent bond graph of a molecule from its geometries."""

import ase.data
import numpy as np


def bond_matrix(z, R):
    """(N, N) bool: atoms whose mean distance over geometries ``R`` (n, N, 3) [A] is below
    1.25 x the sum of their covalent radii."""
    return bonded(z, mean_distances(R))


def mean_distances(R, chunk_bytes=16e6):
    """(N, N) mean interatomic distances over geometries ``R`` (n, N, 3), summed over chunks of
    geometries whose (chunk, N, N, 3) differences take about ``chunk_bytes``: all at once
    they took 100 x the memory of ``R`` for a 40-atom molecule (0.3 GB for 3000 geometries,
    GBs for a training set of a large molecule)."""
    R = np.asarray(R, dtype=float)
    n, N = R.shape[:2]
    step = max(1, int(chunk_bytes // (N * N * 3 * 8)))
    total = np.zeros((N, N))
    for start in range(0, n, step):
        chunk = R[start:start + step]
        total += np.linalg.norm(chunk[:, :, None] - chunk[:, None], axis=-1).sum(axis=0)
    return total / n


def bonded(z, dist):
    """(N, N) bool: atoms whose distance ``dist`` (N, N) [A] is below 1.25 x the sum of their
    covalent radii."""
    r_cov = ase.data.covalent_radii[np.asarray(z)]
    out = dist < 1.25 * (r_cov[:, None] + r_cov[None])
    np.fill_diagonal(out, False)
    return out
