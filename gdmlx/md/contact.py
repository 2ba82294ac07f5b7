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

from gdmlx.backend import array_module
from gdmlx.md.domain import OUTSIDE_FACTOR, model_floors
from gdmlx.validation import check_flag

WALL_K_EV = 1.0       # stiffness k, eV / A^3: 1 eV (23 kcal/mol) at 1 A inside the onset
VDW_FRACTION = 0.75   # wall onset as a fraction of the sum of van der Waals radii (Alvarez 2013)
VDW_RADII = np.r_[vdw_radii, np.full(119 - len(vdw_radii), np.nan)]   # [A] of z = 0..118, NaN: none given


def wall_onsets(z, pairs, floors, factor=OUTSIDE_FACTOR):
    """Wall onsets r0 (P,) [A] of ``pairs`` (P, 2) of atoms ``z`` with shortest training
    distances ``floors`` (P,) [A]: the smaller of ``factor`` x the floor and
    ``VDW_FRACTION`` x the sum of the atoms' van der Waals radii (elements without a
    radius: the former)."""
    vdw = VDW_FRACTION * VDW_RADII[np.asarray(z)[pairs]].sum(axis=1) if len(pairs) else np.empty(0)
    return np.fmin(factor * np.asarray(floors, dtype=np.float64), vdw)


def model_wall(model, enabled=True):
    """The contact wall of a fitted ``model``: ``(pairs (P, 2), r0 (P,) [A], k [eV/A^3])`` for
    the pairs outside all its descriptors (:func:`gdmlx.md.domain.model_floors`). P = 0 when
    every pair is covered, the model keeps no training geometries, or not ``enabled``."""
    pairs, floors, covered = model_floors(model)
    outside = ~covered & check_flag(enabled, "contact_wall")
    wall_pairs = np.ascontiguousarray(pairs[outside])
    return wall_pairs, wall_onsets(model.z_, wall_pairs, floors[outside]), WALL_K_EV


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


def wall_energy_forces_batch(q, S, r0, k=WALL_K_EV, work=None):
    """Wall energies (n,) [eV] and forces (n, N, 3) [eV/A] of positions ``q`` (n, N, 3) [A],
    with the wall pairs as incidence matrix ``S`` (P, N) (:func:`gdmlx.kernels.pair_arrays.incidence`)
    and onsets ``r0`` (P,): whole-array operations on q's array module (the replica engine).
    The intermediates go into ``work``, arrays (3, n, P) and (2, n, P, 3) of that module
    (made if not given; an MD loop passes the same ones every step)."""
    xp = array_module(q)
    n, P = len(q), len(S)
    flat, vec = work or (xp.empty((3, n, P), q.dtype), xp.empty((2, n, P, 3), q.dtype))
    (r, depth, f), (diff, sq) = flat[:, :n], vec[:, :n]
    xp.matmul(S, q, out=diff)                           # (n, P, 3): r_i - r_j
    xp.multiply(diff, diff, out=sq).sum(axis=2, out=r)
    r **= 0.5
    xp.maximum(xp.subtract(r0, r, out=depth), 0.0, out=depth)
    xp.multiply(3.0 * k, depth, out=f)
    f *= depth
    f /= xp.maximum(r, 1e-12, out=r)                    # |F| / r, pushing the pair apart
    E = k * xp.power(depth, 3, out=r).sum(axis=1)
    return E, S.T @ xp.multiply(f[:, :, None], diff, out=diff)


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
