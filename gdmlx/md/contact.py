"""A contact wall for atom pairs that no descriptor of the model covers.

A reduced descriptor (:mod:`gdmlx.reduction`) and a multiscale model's two pair lists leave
out the pairs that never came close in the training data: their features carried no force
worth keeping. In a long run a floppy molecule can still bring such a pair together, and
then the model has no force between the two atoms at all: they pass through each other
(measured for oleic acid, whose reduced multiscale model covers 364 of 1431 pairs:
benchmarks/README.md section 3). The MD engine therefore adds, for every uncovered pair, a
repulsive wall where the two atoms would overlap::

    E = k (r0 - r)^3   for r < r0,   0 otherwise,
    r0 = min(VDW_FRACTION x (sum of van der Waals radii), OUTSIDE_FACTOR x shortest training distance)

The van der Waals term puts the wall where real atoms repel strongly (1.8 A for two
hydrogens), so it stays out of the way of physical contacts; the training-distance term
keeps it outside the training domain, where it changes nothing the model was fitted to.
Its energy is part of the potential energy the engine integrates and reports (energy is
conserved with it).
"""

import numba
import numpy as np
from ase.data.vdw_alvarez import vdw_radii

from gdmlx.md.domain import OUTSIDE_FACTOR, pair_floors
from gdmlx.units import length_in_ang

WALL_K_EV = 1.0       # stiffness k, eV / A^3: 1 eV (23 kcal/mol) at 1 A inside the onset
VDW_FRACTION = 0.75   # wall onset as a fraction of the sum of van der Waals radii (Alvarez 2013)


def uncovered_pairs(n_atoms, covered):
    """Pairs (P, 2) with i > j of ``n_atoms`` atoms that are not in ``covered`` (C, 2), either order."""
    mask = np.ones((n_atoms, n_atoms), dtype=bool)
    covered = np.asarray(covered, dtype=np.int64).reshape(-1, 2)
    mask[covered[:, 0], covered[:, 1]] = mask[covered[:, 1], covered[:, 0]] = False
    i, j = np.tril_indices(n_atoms, -1)
    keep = mask[i, j]
    return np.ascontiguousarray(np.stack([i[keep], j[keep]], axis=1), dtype=np.int64)


def contact_walls(covered, R_train, z, factor=OUTSIDE_FACTOR):
    """Uncovered pairs (P, 2), their wall onsets r0 (P,) and their domain limits (P,) [A]:
    the limit is ``factor`` x the pair's shortest distance over the training geometries
    ``R_train`` (M, N, 3) [A]; the onset is the smaller of the limit and ``VDW_FRACTION`` x
    the sum of the atoms' van der Waals radii (elements without a radius: the limit)."""
    R_train = np.asarray(R_train, dtype=np.float64)
    pairs = uncovered_pairs(R_train.shape[1], covered)
    if not len(pairs):
        return pairs, np.empty(0), np.empty(0)
    d = np.linalg.norm(R_train[:, pairs[:, 0]] - R_train[:, pairs[:, 1]], axis=-1)
    limit = factor * d.min(axis=0)
    vdw = VDW_FRACTION * vdw_radii[np.asarray(z)[pairs]].sum(axis=1)
    return pairs, np.fmin(limit, vdw), limit


def model_wall(model, enabled=True):
    """The contact wall of a fitted ``model`` in Angstrom and eV: ``(pairs (P, 2), r0 (P,),
    k)``, and the uncovered pairs' domain limits (P,) [A]. P = 0 when every pair is in a
    descriptor or the model keeps no training geometries; k = 0 when not ``enabled``."""
    R_train = getattr(model, "R_train_", None)
    if R_train is None:
        return (np.empty((0, 2), dtype=np.int64), np.empty(0), WALL_K_EV), np.empty(0)
    covered, _ = pair_floors(model.force_parts())
    pairs, r0, limits = contact_walls(covered, R_train * length_in_ang(model.length_unit_), model.z_)
    return (pairs, r0, WALL_K_EV if enabled else 0.0), limits


def wall_energy_forces(R, pairs, r0, k=WALL_K_EV):
    """Numpy reference: wall energy [eV] and forces (N, 3) [eV/A] at positions ``R`` (N, 3) [A]."""
    R = np.asarray(R, dtype=np.float64)
    diff = R[pairs[:, 0]] - R[pairs[:, 1]]
    r = np.linalg.norm(diff, axis=1)
    depth = np.maximum(r0 - r, 0.0)
    f = 3.0 * k * depth**2 / np.where(r > 0, r, 1.0)      # |F| / r, pushing the pair apart
    F = np.zeros_like(R)
    np.add.at(F, pairs[:, 0], f[:, None] * diff)
    np.add.at(F, pairs[:, 1], -f[:, None] * diff)
    return float(k * np.sum(depth**3)), F


@numba.njit(cache=True)
def add_wall(q, pairs, r0, k, F):
    """Wall energy [eV] at positions ``q`` (N, 3) [A]; its forces are *added* to ``F`` (N, 3)."""
    E = 0.0
    for p in range(pairs.shape[0]):
        i, j = pairs[p, 0], pairs[p, 1]
        dx, dy, dz = q[i, 0] - q[j, 0], q[i, 1] - q[j, 1], q[i, 2] - q[j, 2]
        r2 = dx * dx + dy * dy + dz * dz
        if r2 >= r0[p] * r0[p]:
            continue
        r = np.sqrt(r2)
        depth = r0[p] - r
        E += k * depth ** 3
        f = 3.0 * k * depth * depth / max(r, 1e-12)
        F[i, 0] += f * dx
        F[i, 1] += f * dy
        F[i, 2] += f * dz
        F[j, 0] -= f * dx
        F[j, 1] -= f * dy
        F[j, 2] -= f * dz
    return E
