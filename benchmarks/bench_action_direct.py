#!/usr/bin/env python3
"""Learned long-stride maps without the action structure (issue 7): the control experiment.

    OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 NUMBA_NUM_THREADS=1 \\
    python benchmarks/bench_action_direct.py --data ../shared/data/ethanol.npz --name ethanol \\
        --action-n-train 150 --strides 1,2 --run-ps 20

Same force field, reference trajectories, kernel, features and training pairs as
bench_action.py (same options), but the map is *explicit*: a velocity-Verlet stride of
the force field, plus a correction predicted from the start state (q, p)::

    q' = q_VV + dC/dp (q, p),      p' = p_VV - dC/dq (q, p)

C is the same kind of kernel model over the same phase-space features, trained on the same
pairs to reproduce (q', p'); only it is evaluated at the start state instead of at the
midpoint, and without the momentum-flip sum (an explicit residual has no reason to be even
in p). Such a map is neither symplectic nor time-reversible. Each map runs NVE for
``--run-ps`` from the same start and velocities as the learned action map and as velocity
Verlet at 0.25 and 0.5 fs, and we compare energy drift and fluctuation and the kinetic
temperature of each element (equipartition).
Writes ``benchmarks/results/action_direct_<name>.json``.
"""

import os
import time

import ase.units
import numpy as np

from bench_action import force_field_and_data, log, nve, parser, write_result
from gdmlx.action import ActionModel, model_forces
from gdmlx.md import MDInstabilityError, read_trajectory
from gdmlx.md.action_map import ActionMapError, ActionSimulation


class DirectMap(ActionModel):
    """The action model's kernel and features, fitted as an explicit correction to a
    velocity-Verlet stride, evaluated at the start state."""

    def _transforms(self):
        F = 2 * len(self.pairs_)
        return np.arange(F)[None], np.ones((1, F))             # no momentum flip: not even in p

    def _residual_gradients(self, q0, v0, q1, v1, force_model):
        m = self.masses_[:, None]
        q_vv, p_vv = verlet_stride(q0, m * v0, m, self.tau, lambda q: model_forces(force_model, q))
        return q0, v0, -(m * v1 - p_vv), q1 - q_vv         # labels dC/dq, dC/dp at the start


def verlet_stride(q, p, m, tau, forces, F0=None):
    """One velocity-Verlet step of length ``tau`` (ASE units) from (q, p); ``forces(q)`` [eV/A]."""
    F0 = forces(q) if F0 is None else F0
    q1 = q + tau * p / m + 0.5 * tau**2 * F0 / m
    return q1, p + 0.5 * tau * (F0 + forces(q1))


class DirectMapSimulation(ActionSimulation):
    """ActionSimulation with the explicit stride of a :class:`DirectMap`."""

    def stride(self):
        m = self.masses[:, None]
        p = self.v * m
        q1, p1 = verlet_stride(self.q, p, m, self.tau, lambda q: self._forces(q)[1], self.F)
        cq, cp = self._correction(self.q, p)
        self.q, self.v = q1 + cp, (p1 - cq) / m
        self.epot, self.F = self._forces(self.q)
        self.step += 1
        self.iterations.append(0)
        return 0


def element_temperatures(path):
    """Mean kinetic temperature (K) of each element over a trajectory's frames."""
    t = read_trajectory(path)
    z, v = np.asarray(t["z"]), np.asarray(t["velocities"]) / ase.units.fs   # A/fs -> ASE units
    ekin = 0.5 * np.asarray(t["masses"])[None, :, None] * v**2
    return {int(e): float(2 * ekin[:, z == e].sum(axis=(1, 2)).mean() / (3 * np.sum(z == e) * ase.units.kB))
            for e in np.unique(z)}


def run(sim_cls, model, act, start, n, every, path):
    try:
        sim = sim_cls(model, act, start, temperature_K=500, seed=99, tol=1e-8)
        t0 = time.perf_counter()
        s = sim.run(n, trajectory=path, save_every=every, report_every=every * 50, progress=False)
        s["wall_per_ps_s"] = (time.perf_counter() - t0) / s["simulated_ps"]
        s["element_temperature_K"] = element_temperatures(path)
    except (MDInstabilityError, ActionMapError) as exc:
        s = {"error": str(exc)[:300], "stride_reached": sim.step}
    return s


def main():
    args = parser(__doc__).parse_args()
    os.makedirs(args.workdir, exist_ok=True)
    res = {"args": vars(args), "threads": {k: os.environ.get(k) for k in
                                           ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMBA_NUM_THREADS")}}
    model, paths, start = force_field_and_data(args)
    for dt in (0.25, 0.5):                 # velocity Verlet, same start and velocities
        path = os.path.join(args.workdir, f"{args.name}_verlet_{dt:g}.h5")
        s = nve(model, start, dt, args.run_ps, seed=99, path=path, save_every=round(2.0 / dt))
        s["element_temperature_K"] = element_temperatures(path)
        res[f"verlet_{dt:g}fs"] = s
        log(f"verlet {dt} fs: " + str({k: s.get(k) for k in (
            "etot_drift_eV_per_ps", "etot_drift_se_eV_per_ps", "etot_std_eV", "element_temperature_K")}))
    sigma = float(args.action_sigmas.split(",")[0])
    for stride in map(float, args.strides.split(",")):
        n = round(args.run_ps * 1000 / stride)
        every = max(1, round(2.0 / stride))
        n -= n % every
        out = {"sigma": sigma}
        for label, cls, sim_cls in (("action", ActionModel, ActionSimulation),
                                    ("direct", DirectMap, DirectMapSimulation)):
            act = cls(stride_fs=stride, sigma=sigma, lam=1e-8, n_train=args.action_n_train,
                      n_valid=300).fit(paths, model, verbose=False)
            path = os.path.join(args.workdir, f"{args.name}_{label}_{stride:g}.h5")
            s = run(sim_cls, model, act, start, n, every, path)
            s["fit"] = act.fit_info_
            out[label] = s
            log(f"stride {stride} {label}: " + str({k: s.get(k) for k in (
                "etot_drift_eV_per_ps", "etot_drift_se_eV_per_ps", "etot_std_eV",
                "element_temperature_K", "error")}))
        res[str(stride)] = out
    write_result(f"action_direct_{args.name}.json", res)


if __name__ == "__main__":
    main()
