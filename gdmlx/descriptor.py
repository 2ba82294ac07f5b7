"""Pair lists and the inverse-distance descriptor of geometries.

A descriptor is defined by its pair list ``pairs`` (D, 2) of atom indices. The default
is every pair once, ordered as the lower triangle of the distance matrix (row-major,
``i > j``), the order sGDML uses, so that its models import without reordering.
"""

import numpy as np

from gdmlx.errors import InputError
from gdmlx.kernels.descriptor import descriptor_batch


def all_pairs(n_atoms):
    """All N(N-1)/2 pairs ``(i, j)`` with ``i > j``, lower-triangle order; int64 (D, 2)."""
    i, j = np.tril_indices(n_atoms, -1)
    return np.ascontiguousarray(np.stack([i, j], axis=1), dtype=np.int64)


def check_pairs(pairs, n_atoms):
    """Validate a pair list and return it as a C-contiguous int64 (D, 2) array."""
    p = np.asarray(pairs)
    if p.ndim != 2 or p.shape[1] != 2 or len(p) == 0:
        raise InputError(f"pairs must have shape (D, 2) with D >= 1, got {p.shape}")
    if not np.issubdtype(p.dtype, np.integer):
        raise InputError(f"pairs must be integer atom indices, got dtype {p.dtype}")
    p = np.ascontiguousarray(p, dtype=np.int64)
    if p.min() < 0 or p.max() >= n_atoms:
        raise InputError(f"pairs index atoms outside 0..{n_atoms - 1}")
    if np.any(p[:, 0] == p[:, 1]):
        raise InputError("pairs contain an atom paired with itself")
    key = np.sort(p, axis=1)
    if len(np.unique(key, axis=0)) != len(p):
        raise InputError("pairs contain the same pair twice")
    return p


def descriptors(R, pairs):
    """Descriptors ``x`` (n, D) and compressed Jacobians ``G`` (n, D, 3) of ``R`` (n, N, 3).

    ``x_k = 1/|r_i - r_j|`` in inverse length units, ``G[:, k] = dx_k/dr_i``.
    """
    return descriptor_batch(np.ascontiguousarray(R, dtype=np.float64), pairs)
