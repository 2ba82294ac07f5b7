"""Where a trajectory is, relative to the model's training data: pair distances below the
shortest seen in training.

A kernel model has learned each pair's repulsion only down to the shortest distance that
pair had in the training geometries. A trajectory that keeps going below it runs on
extrapolation. The engine stops outright when two atoms come closer than half the shortest
training distance (:mod:`gdmlx.md.integrator`); this module measures the milder case, a
pair below ``factor`` times *its own* shortest training distance, frame by frame:
:func:`frame_outside` in the compiled MD loop, :func:`outside_frames` its numpy reference.
:func:`pair_floors` gives the floors of the pairs in a model's descriptors; the engine adds
those of the pairs outside them from the training geometries (:mod:`gdmlx.md.contact`).
"""

import numba
import numpy as np

OUTSIDE_FACTOR = 0.8    # a pair below 0.8 x its shortest training distance is outside


def pair_floors(parts, r_scale=1.0):
    """Pairs (P, 2) of a model's force parts and each pair's shortest training distance (P,).

    ``parts``: :class:`gdmlx.expansion.KernelExpansion` objects (a multiscale model's fast and
    slow part); a pair in several parts gets the shortest of its distances. Descriptors are
    inverse distances, so the shortest distance is ``1 / max(X)`` per column. Distances are
    divided by ``r_scale`` (Angstrom to model length), i.e. returned in Angstrom.
    """
    pairs = np.concatenate([np.sort(p.pairs, axis=1) for p in parts])
    floors = np.concatenate([1.0 / p.X.max(axis=0) for p in parts]) / r_scale
    unique, inverse = np.unique(pairs, axis=0, return_inverse=True)
    shortest = np.full(len(unique), np.inf)
    np.minimum.at(shortest, inverse.reshape(-1), floors)
    return unique, shortest


def outside_frames(positions, pairs, floors, factor=OUTSIDE_FACTOR):
    """Boolean (n,): frames of ``positions`` (n, N, 3) with a pair closer than ``factor`` x its floor."""
    positions = np.asarray(positions)
    d = np.linalg.norm(positions[:, pairs[:, 0]] - positions[:, pairs[:, 1]], axis=-1)
    return np.any(d < factor * floors, axis=1)


def outside_limits_sq(floors, factor=OUTSIDE_FACTOR):
    """Squared distances (P,) [A^2] below which a pair is outside: ``(factor * floors)**2``."""
    return (factor * np.asarray(floors, dtype=np.float64)) ** 2


@numba.njit(cache=True)
def frame_outside(q, pairs, limits_sq):
    """Whether positions ``q`` (N, 3) have a pair closer than its limit (:func:`outside_limits_sq`)."""
    for k in range(pairs.shape[0]):
        i, j = pairs[k, 0], pairs[k, 1]
        r2 = (q[i, 0] - q[j, 0]) ** 2 + (q[i, 1] - q[j, 1]) ** 2 + (q[i, 2] - q[j, 2]) ** 2
        if r2 < limits_sq[k]:
            return True
    return False
