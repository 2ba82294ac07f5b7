"""Compiled MD loop: impulse multiple-time-step velocity Verlet, optionally Langevin (BAOAB).

Forces come in *groups* (one kernel expansion each) with periods ``periods[l]`` in inner
steps, ``periods[0] = 1`` and each period a multiple of the one below. Group l kicks the
momenta with ``(dt * periods[l] / 2) F_l`` at the start and end of each of its steps: impulse
r-RESPA (Tuckerman, Berne & Martyna, J. Chem. Phys. 97, 1990 (1992)). With one group this
is velocity Verlet. With friction ``gamma > 0`` each inner drift is split into A O A
(BAOAB, Leimkuhler & Matthews 2013; the O step inside the innermost drift as in OpenMM's
MTSLangevinIntegrator), and the centre-of-mass velocity is removed after each O step.

Group 0 (evaluated every inner step) also carries the contact wall of the pairs no
descriptor covers (:mod:`gdmlx.md.contact`): arrays ``wall_pairs`` (P, 2), ``wall_r0`` (P,)
[A] and stiffness ``wall_k`` [eV/A^3]; P = 0 for no wall.

Units inside the loop are ASE's: positions Angstrom, energies eV, masses amu, time in ASE
units. A force group is the tuple ``(pairs, X, B, X_sq, XB, a, sigma, c)`` of a
:class:`gdmlx.expansion.KernelExpansion`, in the model's own units; ``r_scale`` converts
Angstrom to model length and ``e_scale`` model energy to eV.
"""

import numba
import numpy as np

from gdmlx.kernels.descriptor import geometry_ok
from gdmlx.kernels.predict import predict_one, work_arrays
from gdmlx.md.contact import add_wall
from gdmlx.md.domain import frame_outside

OK, TOO_CLOSE, BOND_BROKEN, ENERGY_JUMP, NOT_FINITE = 0, 1, 2, 3, 4


@numba.njit(cache=True, inline="always")
def group_forces(group, q, r_scale, e_scale, ws, F):
    """Energy (eV) of force group ``group`` at positions ``q`` (N, 3) [A]; forces into ``F`` [eV/A].
    ``ws`` are the work arrays from :func:`workspaces`."""
    pairs, X, B, X_sq, XB, a, sigma, c = group
    ws_x, ws_G, ws_fd, ws_parts = ws
    D = pairs.shape[0]
    E = predict_one(q * r_scale, pairs, X, B, X_sq, XB, a, sigma, c, ws_x[:D], ws_G[:D], ws_fd[:D],
                    ws_parts, F)
    F *= e_scale * r_scale
    return E * e_scale


def workspaces(groups):
    """Work arrays of :func:`gdmlx.kernels.predict.predict_one` for the largest group."""
    return work_arrays(max(g[0].shape[0] for g in groups))


@numba.njit(cache=True, inline="always")
def group_energy(groups, l, q, r_scale, e_scale, ws, wall, F):
    """Energy [eV] of group ``l`` at ``q``, forces into ``F`` (N, 3) [eV/A]; group 0 (the one
    evaluated every step) carries the contact wall ``wall = (wall_pairs, wall_r0, wall_k)``."""
    E = group_forces(groups[l], q, r_scale, e_scale, ws, F)
    if l == 0:
        E += add_wall(q, wall[0], wall[1], wall[2], F)
    return E


@numba.njit(cache=True)
def evaluate_groups(groups, q, r_scale, e_scale, ws, wall, F, E):
    """Energies ``E`` (L,) [eV] and forces ``F`` (L, N, 3) [eV/A] of every group at ``q``
    (:func:`group_energy`); ``ws`` from :func:`workspaces`."""
    for l in range(len(groups)):
        E[l] = group_energy(groups, l, q, r_scale, e_scale, ws, wall, F[l])


@numba.njit(cache=True)
def _domain_status(q, r_min, bonds, bond_max):
    """OK, TOO_CLOSE (or not finite) or BOND_BROKEN for positions ``q``."""
    if not geometry_ok(q, r_min):
        return TOO_CLOSE
    for b in range(bonds.shape[0]):
        i, j = bonds[b, 0], bonds[b, 1]
        r2 = (q[i, 0] - q[j, 0]) ** 2 + (q[i, 1] - q[j, 1]) ** 2 + (q[i, 2] - q[j, 2]) ** 2
        if r2 > bond_max[b] * bond_max[b]:
            return BOND_BROKEN
    return OK


@numba.njit(cache=True)
def _kick(v, F, inv_m, h):
    """``v += h F / m`` for (N, 3) arrays."""
    for i in range(v.shape[0]):
        for k in range(3):
            v[i, k] += h * F[i, k] * inv_m[i]


# The loops below are written out: numba's whole-array forms (``q += h * v``,
# ``out_q[i] = q``) compile a shape-mismatch error message, which took 4.6 s of run_chunk's
# 9.7 s first compilation.
@numba.njit(cache=True)
def _axpy(y, h, x):
    """``y += h x`` for (N, 3) arrays."""
    for i in range(y.shape[0]):
        for k in range(3):
            y[i, k] += h * x[i, k]


@numba.njit(cache=True)
def _copy(y, x):
    """``y[:] = x`` for (N, 3) arrays."""
    for i in range(y.shape[0]):
        for k in range(3):
            y[i, k] = x[i, k]


@numba.njit(cache=True)
def _thermostat(v, masses, inv_m, c1, c2, kT, noise):
    """O step: v <- c1 v + c2 sqrt(kT/m) xi, then remove the centre-of-mass velocity."""
    N = v.shape[0]
    p_com = np.zeros(3)
    for i in range(N):
        s = c2 * np.sqrt(kT * inv_m[i])
        for k in range(3):
            v[i, k] = c1 * v[i, k] + s * noise[i, k]
            p_com[k] += masses[i] * v[i, k]
    m_tot = masses.sum()
    for i in range(N):
        for k in range(3):
            v[i, k] -= p_com[k] / m_tot


@numba.njit(cache=True)
def run_chunk(q, v, F, E, groups, ws, wall, periods, masses, dt, step0, n_steps, save_every, save_phase,
              gamma, kT, noise, r_scale, e_scale, r_min, bonds, bond_max, max_energy_step,
              domain_pairs, outside_sq, out_q, out_v, out_epot, out_ekin, out_outside):
    """Advance ``n_steps`` inner steps in place; returns ``(status, steps_done, frames_saved)``.

    q, v (N, 3) positions [A] and velocities [A / ASE time]; F (L, N, 3) and E (L,) the
    current forces and energies of each group (valid at ``step0``, a multiple of
    ``periods[-1]``); ``ws`` from :func:`workspaces`; ``wall`` the contact wall
    ``(wall_pairs, wall_r0, wall_k)`` added to group 0; noise (n_steps, N, 3) standard normals (used if gamma > 0).
    Frames are recorded every ``save_every`` steps (a multiple of ``periods[-1]``, so every
    group's forces are current), the first after ``save_every - save_phase`` steps of the
    chunk (``save_phase``: the steps run since the last frame, when a chunk is shorter than
    ``save_every``), into out_q, out_v (n_frames, N, 3), out_epot,
    out_ekin (n_frames,) and out_outside (n_frames,) bool: a pair of ``domain_pairs`` (P, 2)
    closer than the square root of its ``outside_sq`` (:mod:`gdmlx.md.domain`). Stops early
    with a non-zero status when the geometry leaves the model's domain (see module constants).
    """
    L = len(groups)
    N = q.shape[0]
    inv_m = 1.0 / masses
    c1 = np.exp(-gamma * dt)
    c2 = np.sqrt(1.0 - c1 * c1)
    n_saved = 0
    for s in range(n_steps):
        t = step0 + s
        for l in range(L):
            if t % periods[l] == 0:
                _kick(v, F[l], inv_m, 0.5 * dt * periods[l])
        if gamma > 0.0:
            _axpy(q, 0.5 * dt, v)
            _thermostat(v, masses, inv_m, c1, c2, kT, noise[s])
            _axpy(q, 0.5 * dt, v)
        else:
            _axpy(q, dt, v)
        status = _domain_status(q, r_min, bonds, bond_max)
        if status != OK:
            return status, s + 1, n_saved
        for l in range(L):
            if (t + 1) % periods[l] == 0:
                E_new = group_energy(groups, l, q, r_scale, e_scale, ws, wall, F[l])
                if not np.isfinite(E_new):
                    return NOT_FINITE, s + 1, n_saved
                if abs(E_new - E[l]) > max_energy_step:
                    return ENERGY_JUMP, s + 1, n_saved
                E[l] = E_new
                _kick(v, F[l], inv_m, 0.5 * dt * periods[l])
        if (save_phase + s + 1) % save_every == 0:
            _copy(out_q[n_saved], q)
            _copy(out_v[n_saved], v)
            out_epot[n_saved] = E.sum()
            ekin = 0.0
            for i in range(N):
                ekin += 0.5 * masses[i] * (v[i, 0] ** 2 + v[i, 1] ** 2 + v[i, 2] ** 2)
            out_ekin[n_saved] = ekin
            out_outside[n_saved] = frame_outside(q, domain_pairs, outside_sq)
            n_saved += 1
    return OK, n_steps, n_saved
