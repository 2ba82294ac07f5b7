#!/usr/bin/env python3
"""Learned long-stride maps (issue 7): does the map get better with more training pairs?

    cd benchmarks && OMP_NUM_THREADS=2 OPENBLAS_NUM_THREADS=2 NUMBA_NUM_THREADS=2 \\
    python action_learning_curve.py --data ../../shared/data/ethanol.npz --name ethanol \\
        --action-sigmas 5 --strides 2,3,4 --pair-counts 150,300,600 --run-ps 20

Force field and reference trajectories as in ``bench_action.py`` (same options). For each
stride and each number of training pairs in ``--pair-counts``: one action model (the first
sigma of ``--action-sigmas``), its held-out residual against the plain midpoint rule, its
fit time, and ``--run-ps`` of NVE from the same start (tolerance ``--tol``), next to
velocity Verlet at 0.25 fs and at the stride itself. Writes
``benchmarks/results/action_curve_<name>.json``.
"""

import time

from bench_action import force_field_and_data, log, nve, parser, write_result

from gdmlx.action import ActionModel
from gdmlx.md import MDInstabilityError
from gdmlx.md.action_map import ActionMapError, ActionSimulation

KEYS = ("etot_std_eV", "etot_drift_eV_per_ps", "etot_drift_se_eV_per_ps", "mean_iterations",
        "wall_per_ps_s", "error")


def run_map(model, act, start, run_ps, tol):
    """NVE summary of ``run_ps`` with the action map ``act`` (or its error)."""
    n = round(run_ps * 1000 / act.stride_fs)
    every = max(1, round(2.0 / act.stride_fs))
    n -= n % every
    try:
        sim = ActionSimulation(model, act, start, temperature_K=500, seed=99, tol=tol)
        t0 = time.perf_counter()
        s = sim.run(n, save_every=every, report_every=every * 50, progress=False)
        s["wall_per_ps_s"] = (time.perf_counter() - t0) / s["simulated_ps"]
    except (MDInstabilityError, ActionMapError) as exc:
        s = {"error": str(exc)[:300]}
    return s


def main():
    p = parser(__doc__)
    p.add_argument("--pair-counts", default="150,300,600")
    p.add_argument("--tol", type=float, default=1e-10)
    args = p.parse_args()
    import os
    os.makedirs(args.workdir, exist_ok=True)
    res = {"args": vars(args), "threads": {k: os.environ.get(k) for k in
                                           ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMBA_NUM_THREADS")}}
    model, paths, start = force_field_and_data(args)
    res["verlet"] = {"0.25": nve(model, start, 0.25, args.run_ps, seed=99)}
    sigma = float(args.action_sigmas.split(",")[0])
    res["curve"] = []
    for stride in map(float, args.strides.split(",")):
        try:
            res["verlet"][str(stride)] = nve(model, start, stride, args.run_ps, seed=99)
        except MDInstabilityError as exc:
            res["verlet"][str(stride)] = {"error": str(exc)[:200]}
        log(f"verlet {stride} fs: {({k: res['verlet'][str(stride)].get(k) for k in KEYS})}")
        for n_pairs in map(int, args.pair_counts.split(",")):
            t0 = time.perf_counter()
            act = ActionModel(stride_fs=stride, sigma=sigma, lam=1e-8, n_train=n_pairs,
                              n_valid=300).fit(paths, model, verbose=False)
            i = act.fit_info_
            row = {"stride_fs": stride, "n_pairs": n_pairs, "sigma": sigma,
                   "fit_s": time.perf_counter() - t0,
                   "valid_ratio_dq": i["valid_rms_dq_learned_A"] / i["valid_rms_dq_midpoint_A"],
                   "valid_ratio_dp": i["valid_rms_dp_learned"] / i["valid_rms_dp_midpoint"]}
            row["run"] = run_map(model, act, start, args.run_ps, args.tol)
            res["curve"].append(row)
            log(f"stride {stride} fs, {n_pairs} pairs: fit {row['fit_s']:.0f} s, held-out ratio dq "
                f"{row['valid_ratio_dq']:.3f} dp {row['valid_ratio_dp']:.3f}; "
                f"{({k: row['run'].get(k) for k in KEYS})}")
            write_result(f"action_curve_{args.name}.json", res)


if __name__ == "__main__":
    main()
