"""Where a trajectory is, relative to the model's training data: pair distances below the
shortest seen in training.

A kernel model has learned each pair's repulsion only down to the shortest distance that
pair had in the training geometries. A trajectory that keeps going below it runs on
extrapolation. The engine stops outright when two atoms come closer than half the shortest
training distance (:mod:`gdmlx.md.integrator`); this module measures the milder case, a
pair below ``factor`` times *its own* shortest training distance, frame by frame:
:func:`frame_outside` in the compiled MD loop, :func:`outside_frames` its numpy reference.
:func:`pair_floors` gives the floors of the pairs in a model's descriptors,
:func:`model_floors` those of every pair (the ones outside the descriptors from the training
geometries: the model has no force between such atoms, :mod:`gdmlx.md.contact`).
"""

import numba
import numpy as np

from gdmlx.bonds import bonded
from gdmlx.errors import GeometryError
from gdmlx.units import in_angstrom, length_in_ang

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


def uncovered_pairs(n_atoms, covered):
    """Pairs (P, 2) with i > j of ``n_atoms`` atoms that are not in ``covered`` (C, 2), either order."""
    mask = np.ones((n_atoms, n_atoms), dtype=bool)
    covered = np.asarray(covered, dtype=np.int64).reshape(-1, 2)
    mask[covered[:, 0], covered[:, 1]] = mask[covered[:, 1], covered[:, 0]] = False
    i, j = np.tril_indices(n_atoms, -1)
    keep = mask[i, j]
    return np.ascontiguousarray(np.stack([i[keep], j[keep]], axis=1), dtype=np.int64)


def model_floors(model):
    """Every pair of a fitted model with its shortest training distance [A]: ``(pairs (P, 2),
    floors (P,), covered (P,) bool)``, the pairs in the model's descriptors first
    (:func:`pair_floors`), then the others, whose floors come from the training geometries
    (left out when the model keeps none)."""
    scale = length_in_ang(model.length_unit_)
    pairs, floors = pair_floors(model.force_parts(), 1.0 / scale)
    R_train = getattr(model, "R_train_", None)
    other = uncovered_pairs(len(model.z_), pairs) if R_train is not None else np.empty((0, 2), np.int64)
    other_floors = (np.linalg.norm(R_train[:, other[:, 0]] - R_train[:, other[:, 1]], axis=-1).min(axis=0)
                    * scale if len(other) else np.empty(0))
    covered = np.r_[np.ones(len(pairs), bool), np.zeros(len(other), bool)]
    return (np.ascontiguousarray(np.concatenate([pairs, other]), dtype=np.int64),
            np.concatenate([floors, other_floors]), covered)


def outside_frames(positions, pairs, floors, factor=OUTSIDE_FACTOR):
    """Boolean (n,): frames of ``positions`` (n, N, 3) with a pair closer than ``factor`` x its floor."""
    positions = np.asarray(positions)
    d = np.linalg.norm(positions[:, pairs[:, 0]] - positions[:, pairs[:, 1]], axis=-1)
    return np.any(d < factor * floors, axis=1)


def worst_pair(positions, pairs, floors, factor=OUTSIDE_FACTOR, name="positions"):
    """A sentence naming the pair of ``positions`` (n, N, 3) [A] furthest below ``factor`` x
    its floor, or "" when no pair is below."""
    positions = np.asarray(positions).reshape(-1, *np.shape(positions)[-2:])
    d = np.linalg.norm(positions[:, pairs[:, 0]] - positions[:, pairs[:, 1]], axis=-1)
    ratio = d / (factor * floors)
    g, k = np.unravel_index(np.argmin(ratio), ratio.shape)
    if ratio[g, k] >= 1.0:
        return ""
    i, j = pairs[k]
    return (f"{name}{'' if len(positions) == 1 else f'[{g}]'}: atoms {i} and {j} are {d[g, k]:.2f} A apart, "
            f"closer than {factor} x their shortest distance in the training data ({floors[k]:.2f} A)")


CONTINUE_FACTOR = 0.5    # a run given its velocities goes on unless a pair is below 0.5 x its floor


def check_start_inside(positions, pairs, floors, name="positions", continuing=False):
    """Raise GeometryError if a start geometry ``positions`` (n, N, 3) [A] has a pair closer
    than 0.8 x its floor: MD from there runs on extrapolation, and a geometry whose atoms
    are listed in another order than the model's looks exactly like that. A run that
    ``continuing`` (given its velocities: the state of an earlier run, which may have
    ended a little outside) is refused only below 0.5 x, where the engines stop."""
    factor = CONTINUE_FACTOR if continuing else OUTSIDE_FACTOR
    where = worst_pair(positions, pairs, floors, factor, name)
    if where and continuing:
        raise GeometryError(f"{where}: the state is too far outside the model's domain to go on from "
                            "(a run of another model, or atoms in another order than the model's)")
    if where:
        raise GeometryError(f"{where}: the start is outside the model's domain. Are its atoms in the "
                            "model's order? (gdmlx.match_atom_order(atoms, model) reorders them; gdmlx md: "
                            "--reorder)")


def training_distances(model):
    """Mean and longest distance [A] of every pair of atoms over the model's training
    geometries, ``(mean, longest)``, each (N, N); for a model that kept none (imported from
    sGDML), from its descriptors, NaN for pairs no descriptor has."""
    N = len(model.z_)
    R = getattr(model, "R_train_", None)
    if R is not None:
        R = in_angstrom(R, model.length_unit_)
        d = np.linalg.norm(R[:, :, None] - R[:, None], axis=-1)
        return d.mean(axis=0), d.max(axis=0)
    mean, longest = np.full((N, N), np.nan), np.full((N, N), np.nan)
    for part in model.force_parts():
        inv = part.X / length_in_ang(model.length_unit_)          # 1/A
        i, j = part.pairs[:, 0], part.pairs[:, 1]
        mean[i, j] = mean[j, i] = (1.0 / inv).mean(axis=0)
        longest[i, j] = longest[j, i] = 1.0 / inv.min(axis=0)
    np.fill_diagonal(mean, 0.0)
    np.fill_diagonal(longest, 0.0)
    return mean, longest


STRETCH_FACTOR = 1.5    # a start with a training bond beyond 1.5 x its longest training length is refused


def training_bonds(model):
    """Pairs (B, 2) bonded in the training data (by their mean distance) and the longest
    distance each had there (B,) [A]."""
    mean, longest = training_distances(model)
    i, j = np.nonzero(np.tril(bonded(np.asarray(model.z_), mean)))
    return np.ascontiguousarray(np.stack([i, j], axis=1), dtype=np.int64), longest[i, j]


def stretched_bond(positions, bonds, longest, name="positions"):
    """A sentence naming the bond of ``positions`` (n, N, 3) [A] stretched furthest beyond
    ``STRETCH_FACTOR`` x its longest training distance (:func:`training_bonds`), or ""."""
    if not len(bonds):
        return ""
    positions = np.asarray(positions).reshape(-1, *np.shape(positions)[-2:])
    i, j = bonds[:, 0], bonds[:, 1]
    d = np.linalg.norm(positions[:, i] - positions[:, j], axis=-1)
    ratio = d / (STRETCH_FACTOR * longest)
    g, k = np.unravel_index(np.argmax(ratio), ratio.shape)
    if ratio[g, k] <= 1.0:
        return ""
    return (f"{name}{'' if len(positions) == 1 else f'[{g}]'}: atoms {i[k]} and {j[k]}, bonded in the training "
            f"data (at most {longest[k]:.2f} A apart), are {d[g, k]:.2f} A apart")


def check_start_bonds(positions, model, name="positions"):
    """Raise GeometryError if a start geometry ``positions`` (n, N, 3) [A] has a pair that is
    bonded in the training data (mean distance) stretched beyond ``STRETCH_FACTOR`` x its
    longest training distance: a broken bond, positions in another length unit than
    Angstrom, or atoms in another order."""
    where = stretched_bond(positions, *training_bonds(model), name)
    if where:
        raise GeometryError(
            f"{where}: the start is not the molecule the model knows. Positions must be in Angstrom, with the "
            "atoms in the model's order (gdmlx.match_atom_order) and no bond broken.")


def outside_limits_sq(floors, factor=OUTSIDE_FACTOR):
    """Squared distances (P,) [A^2] below which a pair is outside: ``(factor * floors)**2``."""
    return (factor * np.asarray(floors, dtype=np.float64)) ** 2


@numba.njit(cache=True)
def ratio_range(q, pairs, limits_sq):
    """``(min, max)`` over the pairs k of positions ``q`` (N, 3) of |q_i - q_j|^2 / limits_sq[k]:
    below 1, a pair is closer than its limit; above 1, further apart."""
    lo, hi = np.inf, 0.0
    for k in range(pairs.shape[0]):
        i, j = pairs[k, 0], pairs[k, 1]
        r = ((q[i, 0] - q[j, 0]) ** 2 + (q[i, 1] - q[j, 1]) ** 2 + (q[i, 2] - q[j, 2]) ** 2) / limits_sq[k]
        lo, hi = min(lo, r), max(hi, r)
    return lo, hi


@numba.njit(cache=True)
def frame_outside(q, pairs, limits_sq):
    """Whether positions ``q`` (N, 3) have a pair closer than its limit (:func:`outside_limits_sq`)."""
    for k in range(pairs.shape[0]):
        i, j = pairs[k, 0], pairs[k, 1]
        r2 = (q[i, 0] - q[j, 0]) ** 2 + (q[i, 1] - q[j, 1]) ** 2 + (q[i, 2] - q[j, 2]) ** 2
        if r2 < limits_sq[k]:
            return True
    return False
