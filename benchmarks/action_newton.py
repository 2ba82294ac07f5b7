#!/usr/bin/env python3
"""Learned long-stride maps (issue 7): the implicit solve by simplified Newton against plain
Anderson-accelerated fixed-point iteration.

    cd benchmarks && OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 NUMBA_NUM_THREADS=1 \\
    python action_newton.py --data ../../shared/data/ethanol.npz --name ethanol \\
        --action-sigmas 5 --action-n-train 150 --strides 1,2,3,4,5 --run-ps 20 --rounds 3 --seeds 99,1,2

Force field, reference trajectories and start as in ``bench_action.py`` (same options); one
action model per stride (the first of ``--action-sigmas``, ``--action-n-train`` pairs). For
each stride and each seed of ``--seeds`` (the 500 K start velocities), NVE for ``--run-ps``
from the same start geometry with ``ActionSimulation(newton=False)`` (the old solver) and
with the default simplified-Newton solve, next to velocity Verlet at 0.25 fs and 1 fs;
``--rounds`` interleaved rounds of all runs, wall times as medians (the runs themselves are
deterministic: energies and iteration counts come from the first round, and later rounds
are checked to repeat them; the Newton / Anderson ratio of wall time per ps, for the strides
where both finish every run, is the median over the rounds' and seeds' pairs). Writes
``benchmarks/results/action_newton_<name>.json``.
"""

import os
import time

import numpy as np

from bench_action import force_field_and_data, log, nve, parser, write_result
from gdmlx.action import ActionModel
from gdmlx.md import MDInstabilityError
from gdmlx.md.action_map import ActionMapError, ActionSimulation

KEYS = ("etot_std_eV", "etot_drift_eV_per_ps", "etot_drift_se_eV_per_ps", "mean_iterations", "max_iterations",
        "jacobian_refreshes", "steps", "simulated_ps")
SOLVERS = {"anderson": dict(newton=False), "newton": dict(newton=True)}


def run_map(model, act, start, run_ps, solver, seed):
    """NVE summary of ``run_ps`` with the action map ``act`` and ``solver`` (or how it stopped),
    with ``wall_per_ps_s`` and the map evaluations per stride, Jacobians included."""
    n = round(run_ps * 1000 / act.stride_fs)
    every = max(1, round(2.0 / act.stride_fs))
    n -= n % every
    sim = ActionSimulation(model, act, start, temperature_K=500, seed=seed, **SOLVERS[solver])
    sim._compile()                                  # numba's cache loaded before the clock starts
    t0 = time.perf_counter()
    try:
        s = {k: v for k, v in sim.run(n, save_every=every, report_every=n, progress=False).items() if k in KEYS}
    except (MDInstabilityError, ActionMapError) as exc:
        s = {"error": str(exc)[:300], "steps": sim.step}
    wall = time.perf_counter() - t0
    its = np.array(sim.iterations or [0])
    s.update(wall_s=wall, wall_per_ps_s=wall / (sim.step * act.stride_fs / 1000) if sim.step else None,
             mean_iterations=float(its.mean()), max_iterations=int(its.max()),
             jacobian_refreshes=sim.jacobian_refreshes,
             evaluations_per_stride=float(its.sum() + sim.jacobian_refreshes * (2 * start.size + 1))
             / max(sim.step, 1))
    return s


def main():
    p = parser(__doc__)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--seeds", default="99,1,2")
    args = p.parse_args()
    os.makedirs(args.workdir, exist_ok=True)
    res = {"args": vars(args), "threads": {k: os.environ.get(k) for k in
                                           ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMBA_NUM_THREADS")},
           "started": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())}
    model, paths, start = force_field_and_data(args)
    sigma = float(args.action_sigmas.split(",")[0])
    strides = [float(s) for s in args.strides.split(",")]
    actions = {}
    for stride in strides:
        actions[stride] = ActionModel(stride_fs=stride, sigma=sigma, lam=1e-8, n_train=args.action_n_train,
                                      n_valid=300).fit(paths, model, verbose=False)
        log(f"action model {stride} fs: {actions[stride].fit_info_}")
    res["fit"] = {str(s): a.fit_info_ for s, a in actions.items()}
    rounds = []
    for r in range(args.rounds):
        row = {}
        for seed in map(int, args.seeds.split(",")):
            for dt in (0.25, 1.0):
                row[f"verlet_{dt:g}_s{seed}"] = nve(model, start, dt, args.run_ps, seed=seed)
            for stride in strides:
                for solver in SOLVERS:
                    key = f"{solver}_{stride:g}_s{seed}"
                    row[key] = s = run_map(model, actions[stride], start, args.run_ps, solver, seed)
                    log(f"round {r} {key}: " + ", ".join(f"{k} {v:.3g}" if isinstance(v, float) else f"{k} {v}"
                                                         for k, v in s.items() if k != "error")
                        + f" {s.get('error', '')[:120]}")
        rounds.append(row)
        res["rounds"] = rounds
        write_result(f"action_newton_{args.name}.json", res)
    summary = {}
    for key in rounds[0]:
        first = dict(rounds[0][key])
        for k in ("etot_std_eV", "mean_iterations", "steps"):
            assert all(rr[key].get(k) == first.get(k) for rr in rounds), f"{key}: {k} differs between rounds"
        if first["wall_per_ps_s"] is not None:
            first["wall_per_ps_s_median"] = float(np.median([rr[key]["wall_per_ps_s"] for rr in rounds]))
        summary[key] = first
    res["summary"] = summary
    res["wall_ratio_newton_over_anderson"] = {
        f"{stride:g}": float(np.median([rd[f"newton_{stride:g}_s{seed}"]["wall_per_ps_s"]
                                        / rd[f"anderson_{stride:g}_s{seed}"]["wall_per_ps_s"]
                                        for rd in rounds for seed in args.seeds.split(",")]))
        for stride in strides if not any("error" in rounds[0][f"{solver}_{stride:g}_s{seed}"]
                                         for solver in SOLVERS for seed in args.seeds.split(","))}
    log(f"wall per ps, Newton / Anderson, median over rounds and seeds: {res['wall_ratio_newton_over_anderson']}")
    write_result(f"action_newton_{args.name}.json", res)


if __name__ == "__main__":
    main()
