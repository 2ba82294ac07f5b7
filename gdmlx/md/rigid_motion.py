"""A molecule's rigid motion: centre-of-mass velocity and rotation about the centre of mass.

NVE dynamics with translation- and rotation-invariant forces keeps both constant, so the
kinetic temperature counts ``3N`` degrees of freedom less three for a centre of mass at
rest and less ``r`` (the rank of the inertia tensor: 3, 2 for a linear molecule) for no
rotation; Langevin dynamics, which keeps the centre of mass at rest but whose friction
does not conserve angular momentum, counts ``3N - 3``.
"""

import numpy as np

# principal moments below this fraction of the largest count as zero (a linear molecule)
_LINEAR_RCOND = 1e-8
# a rigid motion holding less than this fraction of the kinetic energy is rounding
_RIGID_RTOL = 1e-12


def _inertia(q, masses):
    """Positions relative to the centre of mass (N, 3) and the inertia tensor (3, 3)."""
    r = q - masses @ q / masses.sum()
    mr2 = masses * np.einsum("ij,ij->i", r, r)
    return r, np.eye(3) * mr2.sum() - np.einsum("i,ij,ik->jk", masses, r, r)


def rotation_rank(q, masses):
    """Rotational degrees of freedom of geometry ``q`` (N, 3) [A]: 3, 2 if it is linear, 0
    for one atom."""
    moments = np.linalg.eigvalsh(_inertia(q, masses)[1])
    return int(np.sum(moments > _LINEAR_RCOND * max(moments.max(), 1e-300)))


def kinetic_dof(q, v, masses, thermostat):
    """Degrees of freedom of the kinetic temperature of a run from geometry ``q`` and
    velocities ``v`` (N, 3) with ``thermostat`` ("nve" or "langevin"): ``3N - 3`` less, in
    NVE, the rotations when ``v`` has none, and ``3N`` in NVE when ``v`` moves the centre of
    mass (motions that ``v`` lacks stay absent; those it has stay in the kinetic energy)."""
    n = 3 * len(masses)
    if thermostat != "nve":
        return n - 3
    p = masses @ v
    moving = float(p @ p) / masses.sum() > _RIGID_RTOL * float(np.einsum("i,ij,ij->", masses, v, v))
    if moving:
        return n
    rotating = without_rigid_motion(q, v, masses)[1] > _RIGID_RTOL
    return n - 3 - (0 if rotating else rotation_rank(q, masses))


def without_rigid_motion(q, v, masses):
    """Velocities ``v`` (N, 3) less their centre-of-mass velocity and their rigid rotation
    about the centre of mass of ``q`` (N, 3), without rescaling: ``(v_new, removed)`` with
    ``removed`` the fraction of the kinetic energy taken out."""
    r, inertia = _inertia(q, masses)
    v_new = v - masses @ v / masses.sum()
    L = np.einsum("i,ij->j", masses, np.cross(r, v_new))
    omega = np.linalg.pinv(inertia, rcond=_LINEAR_RCOND, hermitian=True) @ L
    v_new = v_new - np.cross(omega, r)
    ekin = float(np.einsum("i,ij,ij->", masses, v, v))
    return v_new, (ekin - float(np.einsum("i,ij,ij->", masses, v_new, v_new))) / ekin if ekin > 0 else 0.0
