#!/usr/bin/env python3
"""Energy drift of the learned action map against the tolerance of its implicit solve.

    cd benchmarks && OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 NUMBA_NUM_THREADS=1 \\
    python action_tolerance.py --data ../../shared/data/ethanol.npz --name ethanol \\
        --action-n-train 150 --action-sigmas 5 --strides 1 --run-ps 20

Force field, reference trajectories and start as bench_action.py (same options); one
action model per stride (the first of --action-sigmas), run NVE for --run-ps at each
tolerance of --tols. Writes ``benchmarks/results/action_tolerance_<name>.json``.
"""

import os

from bench_action import force_field_and_data, log, parser, write_result
from gdmlx.action import ActionModel
from gdmlx.md.action_map import ActionMapError, ActionSimulation


def main():
    p = parser(__doc__)
    p.add_argument("--tols", default="1e-8,1e-10,1e-12")
    args = p.parse_args()
    os.makedirs(args.workdir, exist_ok=True)
    model, paths, start = force_field_and_data(args)
    sigma = float(args.action_sigmas.split(",")[0])
    res = {"args": vars(args), "threads": {k: os.environ.get(k) for k in ("OMP_NUM_THREADS", "NUMBA_NUM_THREADS")}}
    for stride in map(float, args.strides.split(",")):
        act = ActionModel(stride_fs=stride, sigma=sigma, lam=1e-8, n_train=args.action_n_train,
                          n_valid=300).fit(paths, model, verbose=False)
        n = round(args.run_ps * 1000 / stride)
        every = max(1, round(2.0 / stride))
        res[str(stride)] = {}
        for tol in map(float, args.tols.split(",")):
            sim = ActionSimulation(model, act, start, temperature_K=500, seed=99, tol=tol, max_iter=100)
            try:
                s = sim.run(n - n % every, save_every=every, report_every=every * 500, progress=False)
            except ActionMapError as exc:           # the tolerance is below what rounding allows
                res[str(stride)][f"{tol:g}"] = {"error": str(exc)[:200]}
                log(f"stride {stride} tol {tol:g}: {exc}")
                continue
            res[str(stride)][f"{tol:g}"] = s
            log(f"stride {stride} tol {tol:g}: drift {s['etot_drift_eV_per_ps']:.2e} +- "
                f"{s['etot_drift_se_eV_per_ps']:.2e} eV/ps, E_tot std {s['etot_std_eV']:.2e} eV, "
                f"{s['mean_iterations']:.1f} iterations, {s['wall_s'] / s['simulated_ps']:.2f} s/ps")
    write_result(f"action_tolerance_{args.name}.json", res)


if __name__ == "__main__":
    main()
