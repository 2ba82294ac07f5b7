#!/usr/bin/env python3
"""Learned long-stride maps (issue 7): accuracy, energy conservation and speed.

    OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 NUMBA_NUM_THREADS=1 \\
    python benchmarks/bench_action.py --data ../shared/data/aspirin.npz --name aspirin

1. A gdmlx force field (``--n-train`` geometries, sigma ``--sigma``) from the dataset.
2. Reference MD with it: ``--n-traj`` NVE runs of ``--traj-ps`` at 0.25 fs from dataset
   frames (500 K velocities), frames every 0.5 fs: the action models' training data.
3. Largest stable velocity-Verlet step: NVE runs of ``--scan-ps`` at each step of
   ``--verlet-steps`` from a fresh start; a step counts as stable when the run finishes and
   E_tot fluctuates less than ``--stable-factor`` x the 0.25-fs run's.
4. For each stride: action models for each sigma of ``--action-sigmas`` on
   ``--action-n-train`` pairs; the one with the smallest held-out residual is run for
   ``--run-ps`` NVE from the same start as velocity Verlet at the same step.
Writes ``benchmarks/results/action_<name>.json``.
"""

import argparse
import json
import os
import tempfile
import time

import numpy as np

import gdmlx
from gdmlx.action import ActionModel
from gdmlx.md import MDInstabilityError, Simulation
from gdmlx.md.action_map import ActionMapError, ActionSimulation

HERE = os.path.dirname(os.path.abspath(__file__))


def log(msg):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def nve(model, start, dt_fs, ps, seed, path=None, save_every=None):
    n = round(ps * 1000 / dt_fs)
    every = save_every or max(1, round(2.0 / dt_fs))
    n -= n % every
    sim = Simulation(model, start, dt_fs=dt_fs, temperature_K=500, seed=seed)
    t0 = time.perf_counter()
    s = sim.run(n, trajectory=path, save_every=every, report_every=every * max(1, 1000 // every), progress=False)
    s["wall_per_ps_s"] = (time.perf_counter() - t0) / s["simulated_ps"]
    return s


def write_result(name, res):
    """Write ``res`` as JSON to benchmarks/results/``name``."""
    path = os.path.join(HERE, "results", name)
    with open(path, "w") as f:
        json.dump(res, f, indent=1)
    log(f"wrote {path}")


def force_field_and_data(args):
    """The force field, the reference trajectories (paths) and the start geometry of the runs."""
    ds = gdmlx.load_dataset(args.data)
    rng = np.random.default_rng(0)
    perm = rng.permutation(len(ds.R))
    log(f"force field: {args.n_train} geometries, sigma {args.sigma}")
    model = gdmlx.GDMLRegressor(sigma=args.sigma).fit(ds.R[perm[:args.n_train]], ds.F[perm[:args.n_train]],
                                                      ds.E[perm[:args.n_train]], z=ds.z)
    starts = perm[args.n_train:args.n_train + args.n_traj + 1]
    paths = []
    for k, frame in enumerate(starts[:-1]):
        path = os.path.join(args.workdir, f"{args.name}_ref{k}.h5")
        if os.path.exists(path):
            os.remove(path)
        nve(model, ds.R[frame], 0.25, args.traj_ps, seed=k, path=path, save_every=2)
        paths.append(path)
    log(f"reference trajectories: {len(paths)} x {args.traj_ps} ps")
    return model, paths, ds.R[starts[-1]]


def parser(doc=__doc__):
    """Options of this benchmark (bench_action_direct.py shares them)."""
    p = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", required=True)
    p.add_argument("--name", required=True)
    p.add_argument("--n-train", type=int, default=300)
    p.add_argument("--sigma", type=float, default=10.0)
    p.add_argument("--n-traj", type=int, default=4)
    p.add_argument("--traj-ps", type=float, default=5.0)
    p.add_argument("--scan-ps", type=float, default=5.0)
    p.add_argument("--verlet-steps", default="0.5,1,1.5,2,2.5,3")
    p.add_argument("--stable-factor", type=float, default=10.0)
    p.add_argument("--strides", default="1,2,4")
    p.add_argument("--action-sigmas", default="2,5,10")
    p.add_argument("--action-n-train", type=int, default=100)
    p.add_argument("--run-ps", type=float, default=10.0)
    p.add_argument("--workdir", default=os.path.join(tempfile.gettempdir(), "gdmlx-action"))
    return p


def main():
    args = parser().parse_args()
    os.makedirs(args.workdir, exist_ok=True)
    res = {"args": vars(args), "threads": {k: os.environ.get(k) for k in
                                           ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMBA_NUM_THREADS")}}
    model, paths, start = force_field_and_data(args)
    ref = nve(model, start, 0.25, args.run_ps, seed=99)
    res["reference_0.25fs"] = ref
    res["verlet"] = {}
    for dt in map(float, args.verlet_steps.split(",")):
        try:
            s = nve(model, start, dt, args.run_ps, seed=99)
            s["stable"] = bool(s["etot_std_eV"] < args.stable_factor * ref["etot_std_eV"])
        except MDInstabilityError as exc:
            s = {"stable": False, "error": str(exc)[:200]}
        res["verlet"][str(dt)] = s
        log(f"verlet {dt} fs: {s.get('etot_std_eV', 'unstable')} stable={s['stable']}")
    stable = [float(k) for k, s in res["verlet"].items() if s["stable"]]
    res["largest_stable_verlet_fs"] = max(stable) if stable else None
    res["action"] = {}
    for stride in map(float, args.strides.split(",")):
        best = None
        for sig in map(float, args.action_sigmas.split(",")):
            t0 = time.perf_counter()
            act = ActionModel(stride_fs=stride, sigma=sig, lam=1e-8, n_train=args.action_n_train,
                              n_valid=300).fit(paths, model, verbose=False)
            i = act.fit_info_
            score = (i["valid_rms_dq_learned_A"] / i["valid_rms_dq_midpoint_A"]
                     + i["valid_rms_dp_learned"] / i["valid_rms_dp_midpoint"])
            log(f"stride {stride}: sigma {sig}: held-out residual ratio dq "
                f"{i['valid_rms_dq_learned_A'] / i['valid_rms_dq_midpoint_A']:.3f} dp "
                f"{i['valid_rms_dp_learned'] / i['valid_rms_dp_midpoint']:.3f} ({time.perf_counter() - t0:.0f} s)")
            if best is None or score < best[0]:
                best = (score, sig, act)
        _, sig, act = best
        out = {"sigma": sig, "fit": act.fit_info_}
        n = round(args.run_ps * 1000 / stride)
        every = max(1, round(2.0 / stride))
        n -= n % every
        for label, a in (("learned", act), ("midpoint", _zero_correction(act))):
            try:
                sim = ActionSimulation(model, a, start, temperature_K=500, seed=99, tol=1e-8)
                t0 = time.perf_counter()
                s = sim.run(n, save_every=every, report_every=every * 50, progress=False)
                s["wall_per_ps_s"] = (time.perf_counter() - t0) / s["simulated_ps"]
            except (MDInstabilityError, ActionMapError) as exc:
                s = {"error": str(exc)[:300]}
            out[label] = s
            log(f"stride {stride} {label}: {({k: s.get(k) for k in ('etot_std_eV', 'etot_drift_eV_per_ps', 'mean_iterations', 'wall_per_ps_s', 'error')})}")
        res["action"][str(stride)] = out
    write_result(f"action_{args.name}.json", res)


def _zero_correction(act):
    """The same action model with C = 0: the plain implicit midpoint rule."""
    from gdmlx.expansion import KernelExpansion
    e = act.expansion_
    plain = ActionModel(stride_fs=act.stride_fs, sigma=act.sigma)
    plain._set_molecule(act.z_)
    plain.kappa_ = act.kappa_
    plain.expansion_ = KernelExpansion(e.pairs, e.n_atoms, e.sigma, e.X, 0.0 * e.B, e.a, 0.0)
    return plain


if __name__ == "__main__":
    main()
