"""Iterative (CG + Nystrom) against analytic (Cholesky) training on the same points.

For each tolerance: CG iterations (kernel products), solve time, and how far its predicted
test forces are from the analytic model's; plus peak memory of each solver in its own
process. Threads: set OMP_NUM_THREADS / OPENBLAS_NUM_THREADS / NUMBA_NUM_THREADS.

    python benchmarks/bench_cg.py --data ../shared/data/aspirin.npz --n-train 200 --points 50
    python benchmarks/bench_cg.py --data ../shared/data/ethanol.npz --n-train 1000 --sweep-points 8,16,31,62,125,250
"""

import argparse
import json
import os
import resource
import subprocess
import sys
import time

import numpy as np


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", required=True)
    p.add_argument("--n-train", type=int, default=200)
    p.add_argument("--n-test", type=int, default=500)
    p.add_argument("--sigma", type=float, default=10.0)
    p.add_argument("--lam", type=float, default=1e-10, help="regularisation, same for both solvers")
    p.add_argument("--points", type=int, default=50, help="Nystrom preconditioner points")
    p.add_argument("--tols", default="1e-3,1e-4,1e-5,1e-6")
    p.add_argument("--side", default=None, help=argparse.SUPPRESS)
    p.add_argument("--tol", type=float, default=None, help=argparse.SUPPRESS)
    p.add_argument("--sweep-points", default=None,
                   help="comma-separated preconditioner sizes: time a cg fit (tol 1e-5) for each, in fresh "
                        "processes, and nothing else")
    p.add_argument("--out", default=None)
    return p.parse_args(argv)


def one_side(args):
    """Train with one solver in this process; print a JSON line with forces saved to .npy."""
    import gdmlx
    ds = gdmlx.load_dataset(args.data)
    perm = np.random.default_rng(0).permutation(len(ds))
    tr, te = perm[:args.n_train], perm[args.n_train:args.n_train + args.n_test]
    opts = gdmlx.ComputeOptions(cg_tol=args.tol or 1e-5, preconditioner_points=args.points)
    t0 = time.perf_counter()
    model = gdmlx.GDMLRegressor(sigma=args.sigma, lam=args.lam, solver=args.side, options=opts).fit(
        ds.R[tr], ds.F[tr], ds.E[tr], ds.z)
    wall = time.perf_counter() - t0
    F = model.predict(ds.R[te])
    np.save(f"/tmp/bench_cg_{args.side}_{args.tol}.npy", F)
    out = dict(model.fit_info_, wall_s=wall, f_mae=float(np.abs(F - ds.F[te]).mean()),
               peak_rss_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    print(json.dumps(out))


def run_side(args, side, tol=None):
    cmd = [sys.executable, __file__, "--data", args.data, "--n-train", str(args.n_train),
           "--n-test", str(args.n_test), "--sigma", str(args.sigma), "--lam", str(args.lam),
           "--points", str(args.points),
           "--side", side] + (["--tol", str(tol)] if tol else [])
    line = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout.strip().splitlines()[-1]
    return json.loads(line)


def sweep_points(args):
    """cg fits with each preconditioner size of ``--sweep-points`` (a failed solve is recorded)."""
    res = {"data": args.data, "n_train": args.n_train, "sigma": args.sigma, "lam": args.lam, "runs": [],
           "threads": {k: os.environ.get(k) for k in ("OMP_NUM_THREADS", "NUMBA_NUM_THREADS")}}
    for k in (int(v) for v in args.sweep_points.split(",")):
        args.points = k
        try:
            run = run_side(args, "cg", 1e-5)
        except subprocess.CalledProcessError as exc:
            run = {"preconditioner_points": k, "failed": exc.stderr.strip().splitlines()[-1]}
        res["runs"].append(run)
        print(json.dumps(run), flush=True)
    name = os.path.splitext(os.path.basename(args.data))[0]
    out = args.out or os.path.join(os.path.dirname(os.path.abspath(__file__)), "results",
                                   f"cg_points_{name}_n{args.n_train}.json")
    with open(out, "w") as fh:
        json.dump(res, fh, indent=1)


def main():
    args = parse_args()
    if args.side:
        return one_side(args)
    if args.sweep_points:
        return sweep_points(args)
    res = {"data": args.data, "n_train": args.n_train, "points": args.points, "lam": args.lam,
           "threads": {k: os.environ.get(k) for k in ("OMP_NUM_THREADS", "NUMBA_NUM_THREADS")}}
    res["analytic"] = run_side(args, "analytic")
    F_ref = np.load("/tmp/bench_cg_analytic_None.npy")
    print("analytic", json.dumps(res["analytic"]), flush=True)
    res["cg"] = []
    for tol in (float(t) for t in args.tols.split(",")):
        r = run_side(args, "cg", tol)
        F = np.load(f"/tmp/bench_cg_cg_{tol}.npy")
        r.update(tol=tol, f_diff_mean=float(np.abs(F - F_ref).mean()), f_diff_max=float(np.abs(F - F_ref).max()))
        res["cg"].append(r)
        print("cg", json.dumps(r), flush=True)
    name = os.path.splitext(os.path.basename(args.data))[0]
    out = args.out or os.path.join(os.path.dirname(os.path.abspath(__file__)), "results", f"cg_{name}_n{args.n_train}" + (f"_lam{args.lam:g}" if args.lam != 1e-10 else "") + ".json")
    with open(out, "w") as fh:
        json.dump(res, fh, indent=1)


if __name__ == "__main__":
    main()
