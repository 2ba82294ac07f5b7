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



BROKEN_FACTOR = 1.6     # atoms closer than this x their covalent radii belong to one fragment
CLASH_FACTOR = 0.5      # two atoms closer than this x their covalent radii: collided


def fragments(z, R):
    """Fragment label (N,) of each atom of geometry ``R`` (N, 3) [A]: connected components
    of the graph of pairs closer than ``BROKEN_FACTOR`` times their covalent radii summed
    (loose: a bond stretched at high temperature, or a proton between two oxygens on its
    way from one to the other, keeps its atoms in one fragment)."""
    from scipy.sparse.csgraph import connected_components
    r_cov = ase.data.covalent_radii[np.asarray(z)]
    dist = np.linalg.norm(R[:, None] - R[None], axis=-1)
    return connected_components(dist < BROKEN_FACTOR * (r_cov[:, None] + r_cov[None]), directed=False)[1]


def topology_change(z, n_fragments, R):
    """How geometry ``R`` (N, 3) [A] stopped being the molecule (or complex) of
    ``n_fragments`` fragments (:func:`fragments`), as ``(i, j, r, what)``: two atoms closer
    than ``CLASH_FACTOR`` times their covalent radii summed (``what`` = "collided"), or
    more fragments than at the start ("broke": ``i`` in the smallest fragment, ``j`` the
    atom outside it nearest to it); None while neither happened."""
    r_cov = ase.data.covalent_radii[np.asarray(z)]
    dist = np.linalg.norm(R[:, None] - R[None], axis=-1)
    i, j = np.nonzero(np.triu(dist < CLASH_FACTOR * (r_cov[:, None] + r_cov[None]), 1))
    if len(i):
        return int(i[0]), int(j[0]), float(dist[i[0], j[0]]), "collided"
    labels = fragments(z, R)
    if labels.max() + 1 <= n_fragments:
        return None
    small = labels == np.argmin(np.bincount(labels))
    inside, outside = np.flatnonzero(small), np.flatnonzero(~small)
    k = np.argmin(dist[np.ix_(inside, outside)])
    i, j = inside[k // len(outside)], outside[k % len(outside)]
    return int(i), int(j), float(dist[i, j]), "broke"
