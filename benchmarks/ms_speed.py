"""NVE speed of multiscale models at outer periods n against the single-step full model,
repeated and interleaved, for a machine shared with other jobs.

``bench_multiscale.py`` times each NVE run once, and its full-model reference once, some
seconds apart: on shared cores one such ratio can be off by 30 %. Here every repeat times
the full model right before each multiscale model's runs at ``--mts`` periods, and the
speed is the median over repeats of the ratio to that adjacent full-model run. Start and
velocities are ``bench_multiscale.py``'s (first test geometry, same seed), so the drifts
are those of its NVE rows. With ``--langevin`` the runs are Langevin runs instead (500 K,
friction 0.01/fs as in ``bench_multiscale.py``'s NVT part, but without a trajectory file
and with frames every 10 n steps, as in NVE).

    OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 NUMBA_NUM_THREADS=1 python benchmarks/ms_speed.py \\
        --data ../shared/data/aspirin.npz --full FULL.h5 --model NAME=MS.h5 --mts 1 2 3 4 \\
        --out OUT.json
"""

import argparse
import json
import os
import warnings

import ase.units
import numpy as np

import gdmlx
from bench_multiscale import nve
from gdmlx.md import Simulation


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", required=True)
    p.add_argument("--full", required=True, help="full model file (the single-step reference)")
    p.add_argument("--model", action="append", required=True, metavar="NAME=FILE",
                   help="multiscale model file, repeatable")
    p.add_argument("--mts", type=int, nargs="+", default=[1, 2, 3, 4], help="outer periods")
    p.add_argument("--ps", type=float, default=10.0, help="simulated ps per NVE run")
    p.add_argument("--repeats", type=int, default=7)
    p.add_argument("--n-train", type=int, default=300, help="as in bench_multiscale.py (for the start)")
    p.add_argument("--n-valid", type=int, default=200, help="as in bench_multiscale.py (for the start)")
    p.add_argument("--temperature", type=float, default=500.0)
    p.add_argument("--seed", type=int, default=0,
                   help="bench_multiscale.py's --seed (start and NVE velocities); Langevin noise: seed + 1")
    p.add_argument("--langevin", action="store_true", help="time Langevin runs instead of NVE")
    p.add_argument("--out", required=True, help="JSON output")
    return p.parse_args()


def langevin(model, start, n, ps, temperature, seed):
    """Langevin run of ``ps`` at outer period n (no trajectory file), as :func:`nve`'s summary."""
    steps = int(ps * 2000) // (10 * n) * (10 * n)
    sim = Simulation(model, start, dt_fs=0.5, temperature_K=temperature, thermostat="langevin",
                     friction_per_fs=0.01, seed=seed, slow_every=n)
    try:
        s = sim.run(steps, save_every=10 * n, report_every=steps, progress=False)
    except gdmlx.md.MDInstabilityError as exc:
        return {"n": n, "unstable": str(exc)}
    return {"n": n, "steps_per_s": s["steps_per_s"], "mean_T": s["mean_temperature_K"],
            "wall_s_per_ps": s["wall_s"] / s["simulated_ps"]}


def main():
    args = parse_args()
    warnings.simplefilter("ignore", gdmlx.EnergyConsistencyWarning)
    ds = gdmlx.load_dataset(args.data)
    perm = np.random.default_rng(args.seed).permutation(len(ds))
    start = ds.R[perm[args.n_train + args.n_valid]]          # bench_multiscale.py's first test geometry
    full = gdmlx.load_model(args.full)
    paths = dict(m.split("=", 1) for m in args.model)
    models = {name: gdmlx.load_model(path) for name, path in paths.items()}
    v0 = Simulation(full, start, temperature_K=args.temperature, seed=args.seed).v * ase.units.fs
    if args.langevin:
        run = lambda model, n, ps=args.ps: langevin(model, start, n, ps, args.temperature, args.seed + 1)
    else:
        run = lambda model, n, ps=args.ps: nve(model, start, v0, n, ps)
    run(full, 1, 0.1)                                 # compile
    for model in models.values():
        run(model, 2, 0.1)
    res = {"data": args.data, "full": args.full, "models": paths,
           "args": vars(args), "threads": {k: os.environ.get(k) for k in ("OMP_NUM_THREADS", "NUMBA_NUM_THREADS")},
           "full_runs": [], "runs": {name: {n: [] for n in args.mts} for name in models}}
    for rep in range(args.repeats):
        for name, model in models.items():
            ref = run(full, 1)
            res["full_runs"].append(ref)
            for n in args.mts:
                r = run(model, n)
                if "steps_per_s" in r:
                    r["speedup_vs_adjacent_full"] = r["steps_per_s"] / ref["steps_per_s"]
                res["runs"][name][n].append(r)
        print(f"repeat {rep + 1} of {args.repeats} done", flush=True)
    full_sps = [r["steps_per_s"] for r in res["full_runs"]]
    energy = () if args.langevin else ("drift_eV_per_ps", "drift_se_eV_per_ps", "etot_std_eV")
    res["full_summary"] = {"steps_per_s_median": float(np.median(full_sps)), "steps_per_s_min": float(min(full_sps)),
                           "steps_per_s_max": float(max(full_sps)), **{k: res["full_runs"][0][k] for k in energy}}
    res["summary"] = {}
    for name, by_n in res["runs"].items():
        res["summary"][name] = {}
        for n, rs in by_n.items():
            ok = [r for r in rs if "steps_per_s" in r]
            if not ok:
                res["summary"][name][n] = {"unstable": rs[0]["unstable"]}
                continue
            ratio = [r["speedup_vs_adjacent_full"] for r in ok]
            res["summary"][name][n] = {"speedup_median": float(np.median(ratio)), "speedup_min": float(min(ratio)),
                                       "speedup_max": float(max(ratio)),
                                       "steps_per_s_median": float(np.median([r["steps_per_s"] for r in ok])),
                                       "runs_finished": len(ok), "runs": len(rs),
                                       **{k: ok[0][k] for k in energy}}
    print(json.dumps({"full": res["full_summary"], **res["summary"]}, indent=1), flush=True)
    with open(args.out, "w") as fh:
        json.dump(res, fh, indent=1)


if __name__ == "__main__":
    main()
