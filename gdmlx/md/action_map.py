"""MD with a learned long-stride map (see :mod:`gdmlx.action`).

Each stride solves the implicit midpoint equation of the action S = tau H + C::

    q' = q + tau pm/m + dC/dp(qm, pm)
    p' = p + tau F(qm) - dC/dq(qm, pm),          qm = (q + q')/2, pm = (p + p')/2

by simplified Newton (Hairer & Wanner, Solving ODEs II, IV.8): Anderson-accelerated
(Walker & Ni, SIAM J. Numer. Anal. 49, 1715 (2011)) fixed-point iteration of the map
preconditioned with the inverse of a finite-difference Jacobian that is reused over many
strides, started from an explicit step; ``newton=False`` iterates the plain map. The
solution is symplectic and, because C is even in p, time-reversible, up to the solver
tolerance. Langevin: half a friction step (O) before and after each stride. Units are
ASE's (see :mod:`gdmlx.md.integrator`).
"""

import time
import warnings

import ase.units
import numba
import numpy as np

from gdmlx.action import ActionModel, force_model_fingerprint
from gdmlx.dataset import chemical_formula
from gdmlx.errors import GeometryError, InputError, user_stacklevel
from gdmlx.interrupts import interrupts_deferred, terminate_as_interrupt
from gdmlx.kernels.phase_features import phase_features_one, phase_gradient_one
from gdmlx.kernels.predict import expansion_one
from gdmlx.md import integrator
from gdmlx.md.domain import frame_outside
from gdmlx.md.simulation import (_STOP_REASONS, MDInstabilityError, Simulation, recorded_temperature, say_interrupted,
                                 summarize)
from gdmlx.md.trajectory import open_trajectory
from gdmlx.progress import Pacer, finish, show, time_left
from gdmlx.validation import check_count, check_force_model, check_number

# A saved state farther than BEYOND_FACTOR x the action model's reach from its nearest
# training pair counts as beyond its data (ethanol, 1 fs: reference pairs and runs that
# stayed in the trained methyl orientation reach 0.19 at most, runs in another 0.22-0.32
# for most of their frames); more than WARN_BEYOND_FRACTION of such frames is warned about.
BEYOND_FACTOR = 1.25
WARN_BEYOND_FRACTION = 0.05
JACOBIAN_STEP = 1e-6            # A, forward differences of the midpoint map
MAX_TOL = 1e-4                  # A: the loosest tolerance of the implicit solve accepted
ROUNDING_ULPS = 8               # a residual within this many ulps of the largest coordinate is rounding


class ActionMapError(GeometryError):
    """The implicit equation of a stride did not converge; the message says where."""


@numba.njit(cache=True)
def correction_gradient_one(q, v, pairs, tau, X, B, X_sq, XB, sigma, f, G, Hq, fd, dq, dv):
    """Gradient of the learned correction (in its fitted variables) at one state.

    ``dq`` (N, 3) and ``dv`` (N, 3) receive d(kappa C)/dq and d(kappa C)/dv; ``f``, ``G``,
    ``Hq``, ``fd`` are work arrays of the phase features (2D,), (D, 3), (D, 3), (2D,).
    """
    phase_features_one(q, v, pairs, tau, f, G, Hq)
    expansion_one(f, X, B, X_sq, XB, np.zeros(X.shape[0]), sigma, 0.0, fd)
    for k in range(fd.shape[0]):
        fd[k] = -fd[k]
    phase_gradient_one(fd, G, Hq, pairs, tau, dq, dv)


def anderson_solve(G, z0, tol, max_iter, memory, precond=None):
    """Solve ``z = G(z)`` by Anderson-accelerated fixed-point iteration.

    Returns ``(z, iterations, residual)``; ``residual`` is max |G(z) - z| (same units as z).
    The numpy reference of :func:`anderson_midpoint`, which MD uses.
    Stops when it falls below ``tol`` or after ``max_iter`` evaluations of G. ``z`` may have
    any shape; the mixing works on it flattened. With ``precond`` (n, n), an approximation
    of (I - dG/dz)^-1, the mixing acts on the simplified-Newton map
    ``z -> z + precond (G(z) - z)`` instead of on G; the fixed point is the same.
    """
    shape = z0.shape
    K = np.eye(z0.size) if precond is None else precond
    z = z0.reshape(-1)
    g = G(z.reshape(shape)).reshape(-1)
    r = g - z
    s = K @ r
    dS, dPhi = [], []
    for it in range(1, max_iter + 1):
        res = float(np.abs(r).max())
        if res < tol:
            return g.reshape(shape), it, res
        z_new = z + s
        if dS:
            gamma = np.linalg.lstsq(np.stack(dS, axis=1), s, rcond=None)[0]
            z_new -= np.stack(dPhi, axis=1) @ gamma
        g_new = G(z_new.reshape(shape)).reshape(-1)
        r = g_new - z_new
        s_new = K @ r
        dS.append(s_new - s)
        dPhi.append(z_new + s_new - z - s)
        if len(dS) > memory:
            dS.pop(0)
            dPhi.pop(0)
        z, g, s = z_new, g_new, s_new
    return g.reshape(shape), max_iter, float(np.abs(r).max())


@numba.njit(cache=True)
def midpoint_map(w, q, p, inv_m, tau, groups, r_scale, e_scale, ws, wall, F_g, E_g, correction,
                 cws, out):
    """``out = G(w)``, the right-hand side of the implicit midpoint equation of one stride.

    ``w`` and ``out`` (2, N, 3) hold ``(q', tau p'/m)``; q, p (N, 3) the start of the stride
    [A, amu A/T]; ``inv_m`` (N,); ``groups``/``ws``/``wall``/``F_g``/``E_g`` the force field as
    in :func:`gdmlx.md.integrator.evaluate_groups`; ``correction = (pairs, X, B, X_sq, XB,
    sigma, kappa)`` the learned C and ``cws`` the work arrays of
    :func:`correction_gradient_one`. :meth:`ActionSimulation.map_reference` is the same in numpy.
    """
    N = q.shape[0]
    qm = np.empty((N, 3))
    vm = np.empty((N, 3))
    for i in range(N):
        for k in range(3):
            qm[i, k] = 0.5 * (q[i, k] + w[0, i, k])
            vm[i, k] = 0.5 * (p[i, k] * inv_m[i] + w[1, i, k] / tau)
    integrator.evaluate_groups(groups, qm, r_scale, e_scale, ws, wall, F_g, E_g)
    pairs, X, B, X_sq, XB, sigma, kappa = correction
    f, G, Hq, fd, dq, dv = cws
    correction_gradient_one(qm, vm, pairs, tau, X, B, X_sq, XB, sigma, f, G, Hq, fd, dq, dv)
    for i in range(N):
        for k in range(3):
            F = 0.0
            for l in range(F_g.shape[0]):
                F += F_g[l, i, k]
            out[0, i, k] = q[i, k] + tau * vm[i, k] + dv[i, k] * inv_m[i] / kappa
            out[1, i, k] = (p[i, k] + tau * F - dq[i, k] / kappa) * tau * inv_m[i]


# The vector updates below are written out as loops, and the small solve by hand: numba's
# whole-array statements compile a shape-mismatch error message, and np.linalg.solve its
# LAPACK binding; the two took 10 s of anderson_midpoint's 15.6 s first compilation.
@numba.njit(cache=True, fastmath={"reassoc", "contract"})
def _mixing(dR, r):
    """Least-squares coefficients ``gamma`` minimising |dR^T gamma - r| for the history
    ``dR`` (k, n), from the normal equations with a relative ridge of 1e-12 (k <= 24: a
    k x k solve instead of an SVD of n x k, 4 against 25 us for k = 12, n = 54), solved by
    Gaussian elimination with partial pivoting."""
    k, n = dR.shape
    M = np.empty((k, k + 1))            # the normal equations, right-hand side in column k
    for h in range(k):
        for l in range(h + 1):
            s = 0.0
            for j in range(n):
                s += dR[h, j] * dR[l, j]
            M[h, l] = M[l, h] = s
        s = 0.0
        for j in range(n):
            s += dR[h, j] * r[j]
        M[h, k] = s
    ridge = 0.0
    for h in range(k):
        ridge = max(ridge, M[h, h])
    for h in range(k):
        M[h, h] += 1e-12 * ridge
    for c in range(k):
        piv = c
        for h in range(c + 1, k):
            if abs(M[h, c]) > abs(M[piv, c]):
                piv = h
        for l in range(c, k + 1):
            M[c, l], M[piv, l] = M[piv, l], M[c, l]
        for h in range(c + 1, k):
            f = M[h, c] / M[c, c]
            for l in range(c, k + 1):
                M[h, l] -= f * M[c, l]
    gamma = np.empty(k)
    for h in range(k - 1, -1, -1):
        s = M[h, k]
        for l in range(h + 1, k):
            s -= M[h, l] * gamma[l]
        gamma[h] = s / M[h, h]
    return gamma


@numba.njit(cache=True)
def _max_abs(r):
    """``max |r_j|`` of a vector; NaN if any r_j is NaN (a NaN residual is not convergence)."""
    m = 0.0
    for j in range(r.shape[0]):
        a = abs(r[j])
        if a != a:
            return a
        m = max(m, a)
    return m


@numba.njit(cache=True, fastmath={"reassoc", "contract"})
def _precondition(K, r, s):
    """``s = K r`` for a matrix ``K`` (n, n); ``s = r`` when ``K`` is empty (0, 0): no
    preconditioner, the plain fixed-point map."""
    n = r.shape[0]
    if K.shape[0] == 0:
        for j in range(n):
            s[j] = r[j]
        return
    for i in range(n):
        t = 0.0
        for j in range(n):
            t += K[i, j] * r[j]
        s[i] = t


@numba.njit(cache=True)
def anderson_midpoint(z, tol, max_iter, memory, K, q, p, inv_m, tau, groups, r_scale, e_scale, ws,
                      wall, F_g, E_g, correction, cws):
    """:func:`anderson_solve` of ``z = midpoint_map(z)`` compiled, in place of ``z`` (2, N, 3)
    (C-contiguous; the start guess on entry, the solution on return); returns
    ``(iterations, residual)``: evaluations of the map and max |G(z) - z| (A).

    ``K`` (6N, 6N) is the preconditioner of :func:`anderson_solve`, (I - dG/dz)^-1 from
    :func:`midpoint_jacobian` (simplified Newton), or an empty (0, 0) array for the plain
    fixed-point map. The history is a ring of ``memory`` differences (the least-squares
    mixing does not depend on their order).
    """
    n = z.size
    zf = z.reshape(n)
    g = np.empty(n)                     # G(z) of the current iterate
    midpoint_map(z, q, p, inv_m, tau, groups, r_scale, e_scale, ws, wall, F_g, E_g, correction, cws,
                 g.reshape(z.shape))
    r = np.empty(n)                     # G(z) - z
    for j in range(n):
        r[j] = g[j] - zf[j]
    s = np.empty(n)                     # K r: the step to the next iterate before mixing
    _precondition(K, r, s)
    dS = np.empty((memory, n))
    dPhi = np.empty((memory, n))        # differences of z + s
    z_old = np.empty(n)
    s_new = np.empty(n)
    stored = 0
    for it in range(1, max_iter + 1):
        res = _max_abs(r)
        if res < tol:
            for j in range(n):
                zf[j] = g[j]
            return it, res
        for j in range(n):
            z_old[j] = zf[j]
            zf[j] += s[j]
        if stored > 0:
            gamma = _mixing(dS[:stored], s)
            for h in range(stored):
                for j in range(n):
                    zf[j] -= gamma[h] * dPhi[h, j]
        midpoint_map(z, q, p, inv_m, tau, groups, r_scale, e_scale, ws, wall, F_g, E_g, correction, cws,
                     g.reshape(z.shape))
        for j in range(n):
            r[j] = g[j] - zf[j]
        _precondition(K, r, s_new)
        slot = (it - 1) % memory
        for j in range(n):
            dS[slot, j] = s_new[j] - s[j]
            dPhi[slot, j] = zf[j] + s_new[j] - z_old[j] - s[j]
            s[j] = s_new[j]
        stored = min(stored + 1, memory)
    for j in range(n):
        zf[j] = g[j]
    return max_iter, _max_abs(r)


@numba.njit(cache=True)
def midpoint_jacobian(w, h, q, p, inv_m, tau, groups, r_scale, e_scale, ws, wall, F_g, E_g,
                      correction, cws, A):
    """``A = I - dG/dw`` (6N, 6N) at ``w`` (2, N, 3) by forward differences of step ``h`` (A)
    of :func:`midpoint_map` (same further arguments): 6N + 1 evaluations of the map. Its
    inverse is the simplified-Newton preconditioner of :func:`anderson_midpoint`."""
    n = w.size
    wf = w.reshape(n)
    g0 = np.empty(n)
    g = np.empty(n)
    midpoint_map(w, q, p, inv_m, tau, groups, r_scale, e_scale, ws, wall, F_g, E_g, correction, cws,
                 g0.reshape(w.shape))
    for c in range(n):
        keep = wf[c]
        wf[c] = keep + h
        step = wf[c] - keep             # h as represented
        midpoint_map(w, q, p, inv_m, tau, groups, r_scale, e_scale, ws, wall, F_g, E_g, correction,
                     cws, g.reshape(w.shape))
        wf[c] = keep
        for i in range(n):
            A[i, c] = (1.0 if i == c else 0.0) - (g[i] - g0[i]) / step


class ActionSimulation:
    """MD of one molecule with strides of a learned action map.

    Parameters
    ----------
    force_model : fitted gdmlx model (the force field H is built on)
    action : fitted :class:`gdmlx.action.ActionModel`; its ``stride_fs`` is the step
    positions : (N, 3) start geometry in Angstrom
    temperature_K, thermostat, friction_per_fs, seed, velocities, masses, time_fs, contact_wall,
    max_bond_stretch, max_energy_step_ev :
        as for :class:`gdmlx.md.Simulation` (velocities in A/fs; masses must be the action
        model's, the standard ones)
    tol : float
        Convergence of the implicit equation: max |change| of q' and of tau p'/m (A), at
        most :data:`MAX_TOL`.
    max_iter, memory : iteration cap and Anderson history length. Beyond about 2.5 fs the
        plain fixed-point map diverges (the fastest stretches turn too far in one stride) and
        only the Anderson mixing converges it; a history of 12 needs fewer iterations than 6
        there (ethanol, 3 fs: 29 against 37 per stride; 2 fs: 18.9 against 20.2;
        benchmarks/README.md section 6).
    newton : bool
        Solve by simplified Newton (the default): the Anderson mixing acts on
        w -> w + K (G(w) - w) with K = (I - dG/dw)^-1 from 6N + 1 evaluations of the map
        G at a stride's explicit guess, kept for the following strides. The fixed point is
        the same; ethanol needs 1.6-1.8x fewer map evaluations per stride at 1-3 fs, the
        Jacobians' included, and at 4 fs, where the plain iteration can fail within 40
        strides, every stride converges (benchmarks/README.md section 6, "Simplified
        Newton"). False: the plain map.
    jacobian_every : int or None
        Renew the Jacobian every this many strides. None (default): renew it when the last
        stride cost more map evaluations than the strides since the last renewal did on
        average, the renewal's 6N + 1 included (this minimises that average; ethanol: every
        25-80 strides at 1-3 fs). A stride that does not converge with an older Jacobian is solved
        again with a new one.
    """

    def __init__(self, force_model, action, positions, *, temperature_K=300.0, thermostat="nve",
                 friction_per_fs=None, seed=None, velocities=None, masses=None, time_fs=0.0, tol=1e-10,
                 max_iter=100, memory=12, newton=True, jacobian_every=None,
                 max_bond_stretch=2.0, max_energy_step_ev=1.0, contact_wall=True):
        self.tol = check_number(tol, "tol", strict=True)
        if self.tol > MAX_TOL:               # 1e300 'converged' at once: no implicit step was solved
            raise InputError(f"tol ({tol!r} A) must be at most {MAX_TOL:g} A: the implicit step is solved to "
                             "this residual in positions (measured runs: 1e-12 to 1e-8 A, default 1e-10)")
        check_force_model(force_model, "the force model")
        if not isinstance(action, ActionModel):
            raise InputError(f"action must be an ActionModel (gdmlx.ActionModel.load(path) reads one from a "
                             f"file), got {type(action).__name__}")
        force_model.force_parts()                        # NotFittedError for unfitted models
        action.check_fitted()
        if not np.array_equal(np.asarray(force_model.z_), action.z_):
            raise InputError(f"the action model was trained for {chemical_formula(action.z_)} (atomic numbers "
                             f"{action.z_.tolist()}), the force model is {chemical_formula(force_model.z_)} "
                             f"({np.asarray(force_model.z_).tolist()}): learn an action model for this force "
                             "model from its own NVE runs (gdmlx action train REF.h5 --model MODEL)")
        if getattr(action, "force_model_", "") and force_model_fingerprint(force_model) != action.force_model_:
            raise InputError("the action model was trained with another force model than this one: its "
                             "correction applies to the force field it was fitted against; run it with that "
                             "force model, or learn one for this model from its own NVE runs (gdmlx action "
                             "train REF.h5 --model MODEL)")
        base = Simulation(force_model, positions, dt_fs=action.stride_fs, temperature_K=temperature_K,
                          thermostat=thermostat, friction_per_fs=friction_per_fs, seed=seed,
                          velocities=velocities, masses=masses, time_fs=time_fs,
                          max_bond_stretch=max_bond_stretch, max_energy_step_ev=max_energy_step_ev,
                          contact_wall=contact_wall)
        if not np.allclose(base.masses, action.masses_):
            raise InputError(f"masses {np.round(base.masses, 3).tolist()}: the action model was learned "
                             f"with the standard masses {np.round(action.masses_, 3).tolist()}")
        self.base, self.action = base, action
        self.z, self.masses, self.q, self.v = base.z, base.masses, base.q, base.v
        self.tau = action.tau
        self.max_iter, self.memory = check_count(max_iter, "max_iter"), check_count(memory, "memory")
        self.newton = bool(newton)
        self.jacobian_every = None if jacobian_every is None else check_count(jacobian_every, "jacobian_every")
        self.step = 0
        self.iterations = []
        self.jacobian_refreshes = 0
        self._K, self._K_age = np.empty((0, 0)), 0          # the preconditioner, strides since computed
        N, D = len(self.z), len(action.pairs_)
        self._ws = (np.empty(2 * D), np.empty((D, 3)), np.empty((D, 3)), np.empty(2 * D),
                    np.empty((N, 3)), np.empty((N, 3)))
        self._F_groups, self._E_groups = np.empty_like(base.F), np.empty_like(base.E)
        self.epot, self.F = self._forces(self.q)

    # ------------------------------------------------------------ one stride
    def _forces(self, q):
        """Potential energy (eV) and forces (N, 3) [eV/A] of the force model at ``q``."""
        b = self.base
        integrator.evaluate_groups(b.groups, q, b.r_scale, b.e_scale, b.ws, b.wall, self._F_groups,
                                   self._E_groups)
        return float(self._E_groups.sum()), self._F_groups.sum(axis=0)

    def _correction(self, q, p):
        """(dC/dq, dC/dp) of the learned correction at state (q, p)."""
        a, e = self.action, self.action.expansion_
        f, G, Hq, fd, dq, dv = self._ws
        correction_gradient_one(q, p / self.masses[:, None], a.pairs_, self.tau, e.X, e.B, e.X_sq,
                                e.XB, e.sigma, f, G, Hq, fd, dq, dv)
        return dq / a.kappa_, dv / (a.kappa_ * self.masses[:, None])

    def map_reference(self, w):
        """The right-hand side of the implicit midpoint equation in numpy, for the current
        state: ``w`` (2, N, 3) = (q', tau p'/m) -> the same (tests hold
        :func:`midpoint_map` to it)."""
        m = self.masses[:, None]
        q, p, tau = self.q, self.v * m, self.tau
        pos = tau / m
        qm, pm = 0.5 * (q + w[0]), 0.5 * (p + w[1] / pos)
        _, F = self._forces(qm)
        cq, cp = self._correction(qm, pm)
        return np.stack([q + tau * pm / m + cp, (p + tau * F - cq) * pos])

    def stride(self):
        """Advance (q, v) by one stride; returns the number of iterations used."""
        m = self.masses[:, None]
        q, p, tau = self.q, self.v * m, self.tau
        pos = tau / m                                       # momentum -> position-like units
        cq, cp = self._correction(q, p)
        guess = np.stack([q + tau * p / m + 0.5 * tau * pos * self.F + cp, (p + tau * self.F - cq) * pos])
        if self._jacobian_due():
            self._refresh_jacobian(guess, q, p)
        w = guess.copy()
        it, res = self._solve(w, q, p, self.max_iter)
        if not res < self.tol and self.newton and self._K_age > 0:     # once more with a fresh Jacobian
            self._refresh_jacobian(guess, q, p)
            w = guess.copy()
            more, res = self._solve(w, q, p, self.max_iter)
            it += more
        if not res < self.tol or not np.all(np.isfinite(w)):
            floor = ROUNDING_ULPS * np.finfo(float).eps * np.abs(w).max()
            raise ActionMapError(
                f"stride {self.step + 1}: the implicit midpoint equation did not converge in "
                f"{self.max_iter} iterations (residual {res:.2e} A > tol {self.tol:g} A). "
                + (f"The residual is at the rounding error of coordinates up to {np.abs(w).max():.1f} A "
                   f"({floor:.1e} A): tol is too small for double precision; use a larger tol "
                   "(ActionSimulation(tol=...), gdmlx md --action-tol)" if res <= floor else
                   f"The stride ({self.action.stride_fs} fs) is too long for this molecule's fastest motion, "
                   "or the trajectory left the action model's training data; use a shorter stride or "
                   "raise max_iter (ActionSimulation(max_iter=...), gdmlx md --action-max-iter)"))
        self.q, self.v = w[0].copy(), w[1] / pos / m
        self.epot, self.F = self._forces(self.q)
        self.step += 1
        self._K_age += 1
        self.iterations.append(it)
        return it

    def _jacobian_due(self):
        """Whether the next stride needs a new Newton Jacobian: with ``newton``, when there is
        none yet, when it is ``jacobian_every`` strides old, or (``jacobian_every=None``) when
        the last stride cost more map evaluations than the strides since the refresh did on
        average, the refresh's own 6N + 1 included (the classic replacement rule: that average
        is smallest when renewed as the marginal cost reaches it)."""
        if not self.newton:
            return False
        if self._K.size == 0:
            return True
        if self.jacobian_every is not None:
            return self._K_age >= self.jacobian_every
        since = self.iterations[-self._K_age:]
        return since[-1] * len(since) > self._K.shape[0] + 1 + sum(since)

    def _refresh_jacobian(self, w, q, p):
        """The simplified-Newton preconditioner (I - dG/dw)^-1 (6N, 6N) at ``w`` (2, N, 3) and
        the stride's start (q, p): forward differences of the compiled map (step
        ``JACOBIAN_STEP`` A; 6N + 1 map evaluations), inverted by LU."""
        A = np.empty((w.size, w.size))
        midpoint_jacobian(w.copy(), JACOBIAN_STEP, *self._map_args(q, p), A)
        self._K, self._K_age = np.linalg.inv(A), 0
        self.jacobian_refreshes += 1

    def _map_args(self, q, p):
        """The arguments of :func:`midpoint_map` after ``w``, for the stride from (q, p)."""
        b, a = self.base, self.action
        e = a.expansion_
        return (q, p, 1.0 / self.masses, self.tau, b.groups, b.r_scale, b.e_scale, b.ws, b.wall, self._F_groups,
                self._E_groups, (a.pairs_, e.X, e.B, e.X_sq, e.XB, e.sigma, a.kappa_), self._ws)

    def _solve(self, w, q, p, max_iter):
        """The compiled implicit-midpoint solve from the guess ``w`` (2, N, 3), in place."""
        return anderson_midpoint(w, self.tol, max_iter, self.memory, self._K, *self._map_args(q, p))

    def _compile(self):
        """Compile (or load) the stride's kernels with a solve of no iterations (and, with
        ``newton``, a Jacobian) on a copy of the state, so that :meth:`run` times strides,
        not numba."""
        p = self.v * self.masses[:, None]
        self._correction(self.q, p)
        self._solve(np.stack([self.q, p]), self.q, p, 0)
        if self.newton:
            midpoint_jacobian(np.stack([self.q, p]), JACOBIAN_STEP, *self._map_args(self.q, p),
                              np.empty((2 * p.size, 2 * p.size)))

    def _thermostat(self, h):
        b = self.base
        c1 = np.exp(-b.gamma * h)
        integrator._thermostat(self.v, self.masses, 1.0 / self.masses, c1, np.sqrt(1.0 - c1 * c1), b.kT,
                               b.rng.standard_normal(self.v.shape))

    # ------------------------------------------------------------ run
    @terminate_as_interrupt()          # SIGTERM (a batch time limit) ends a run as Ctrl-C does
    def run(self, n_strides, trajectory=None, save_every=1, report_every=None, progress=True):
        """Run ``n_strides`` strides; frames every ``save_every`` strides to ``trajectory``,
        progress every ``report_every`` strides (default None: by the clock, as
        :meth:`gdmlx.md.Simulation.run`).

        Returns the summary of :func:`gdmlx.md.simulation.summarize` (steps are strides)
        plus ``mean_iterations`` and ``max_iterations`` per stride, ``jacobian_refreshes``
        and, for an action model that records its reach, ``beyond_action_data_fraction``
        (saved frames beyond :data:`BEYOND_FACTOR` x that reach from its data; warned about
        above :data:`WARN_BEYOND_FRACTION`). Raises MDInstabilityError or
        ActionMapError when the run cannot go on; frames written so far are kept.
        """
        if self.base.stopped:
            raise MDInstabilityError(f"this simulation stopped earlier ({self.base.stopped}); its state is "
                                     "outside what the map can step: start a new ActionSimulation")
        n_strides, save_every = check_count(n_strides, "n_strides"), check_count(save_every, "save_every")
        pacer = Pacer(n_strides, None if report_every is None else check_count(report_every, "report_every"))
        b = self.base
        self._compile()
        first, refreshes = len(self.iterations), self.jacobian_refreshes      # this run's strides from here
        start = self.step
        frames = {"time_fs": [], "epot": [], "ekin": [], "outside": [], "beyond_data": []}
        done, t0, status, writer = 0, time.perf_counter(), integrator.OK, None
        try:
            with interrupts_deferred():                 # a file opened is a file closed and renamed
                writer = trajectory is not None and open_trajectory(
                    trajectory, self.z, self.masses,
                    {"dt_fs": self.action.stride_fs, "temperature_K": recorded_temperature(b),
                     "gamma_per_fs": b.gamma * ase.units.fs, "integrator": "action map",
                     "force_model": b.force_model, "contact_wall": b.contact_wall})
            while done < n_strides:
                e_before = self.epot
                if b.gamma > 0:
                    self._thermostat(0.5 * self.tau)
                self.stride()
                if b.gamma > 0:
                    self._thermostat(0.5 * self.tau)
                done += 1
                status = integrator._domain_status(self.q, b.r_min, b.bonds, b.bond_max)
                if status == integrator.OK and abs(self.epot - e_before) > b.max_energy_step:
                    status = integrator.ENERGY_JUMP
                if status != integrator.OK:
                    break
                if done % save_every == 0:
                    ekin = 0.5 * float(np.sum(self.masses[:, None] * self.v**2))
                    t_fs = self.base.time0_fs + self.step * self.action.stride_fs
                    outside = frame_outside(self.q, b.domain_pairs, b.outside_sq)
                    for key, val in (("time_fs", t_fs), ("epot", self.epot), ("ekin", ekin),
                                     ("outside", outside), ("beyond_data", self._beyond_data())):
                        frames[key].append(val)
                    if writer:
                        writer.append([t_fs], self.q[None], self.v[None], [self.epot], [ekin])
                if progress and pacer.due(done):
                    wall = time.perf_counter() - t0
                    show(f"action MD stride {done}/{n_strides}  {done / wall:,.0f} strides/s  mean iterations "
                         f"{np.mean(self.iterations[first:]):.1f}{time_left(done, n_strides, wall)}")
        except (ActionMapError, KeyboardInterrupt) as exc:
            exc.summary = self._summary(frames, done, t0, first, refreshes)     # the run up to there
            if isinstance(exc, ActionMapError):
                b.stopped = f"at stride {self.step}: the implicit solve failed"
            else:
                if progress:
                    finish()
                say_interrupted(f"{self.step - start} strides", self.base.time0_fs + self.step * self.action.stride_fs,
                                trajectory if writer else None, len(frames["time_fs"]))
            raise
        finally:
            if writer:
                writer.close(complete=done == n_strides and status == integrator.OK, status=int(status))
            if progress:
                finish()
        summary = self._summary(frames, done, t0, first, refreshes)
        if summary.get("beyond_action_data_fraction", 0.0) > WARN_BEYOND_FRACTION:
            warnings.warn(
                f"{100 * summary['beyond_action_data_fraction']:.0f} % of the saved frames lay beyond the action "
                f"model's data (over {BEYOND_FACTOR} x the farthest held-out pair from its nearest training "
                "pair): its correction is not learned there and can do worse than none (energy "
                "fluctuation and drift). Learn it from reference runs that visit these states, e.g. "
                "started from several different geometries", UserWarning, stacklevel=user_stacklevel())
        if status != integrator.OK:
            b.stopped = f"at stride {self.step}: {_STOP_REASONS[status]}"
            exc = MDInstabilityError(f"action MD stopped at stride {self.step}: {_STOP_REASONS[status]}")
            exc.summary = summary
            raise exc
        return summary

    def _summary(self, frames, done, t0, first, refreshes):
        """The run's summary; its strides' iteration counts are ``iterations[first:]``, and
        ``refreshes`` the Jacobian renewals before it (an earlier run's are not its own)."""
        summary = summarize(frames, done, time.perf_counter() - t0, self.action.stride_fs, self.base.temperature)
        its = self.iterations[first:]
        summary.update(mean_iterations=float(np.mean(its)) if its else 0.0, max_iterations=int(max(its, default=0)),
                       jacobian_refreshes=self.jacobian_refreshes - refreshes)
        if getattr(self.action, "reach_", None) is not None and frames["beyond_data"]:
            summary["beyond_action_data_fraction"] = float(np.mean(frames["beyond_data"]))
        return summary

    def _beyond_data(self):
        """Whether the current state lies beyond the action model's data (``BEYOND_FACTOR``
        x its reach from the nearest training pair); False when the model has no reach."""
        reach = getattr(self.action, "reach_", None)        # None: models made by hand, older files
        return reach is not None and self._data_distance() > BEYOND_FACTOR * reach

    def _data_distance(self):
        """:meth:`gdmlx.action.ActionModel.data_distance` of the current state, from the
        compiled features (the numpy ones took 90 us, 15 % of a run saving every 2 strides)."""
        f, G, Hq = self._ws[:3]
        phase_features_one(self.q, self.v, self.action.pairs_, self.tau, f, G, Hq)
        e = self.action.expansion_
        return float(np.sqrt(max((f @ f + e.X_sq - 2.0 * (e.X @ f)).min(), 0.0)))
