#!/usr/bin/env python3
"""Large training sets with the iterative solver (issue 6): time, memory, accuracy.

    OMP_NUM_THREADS=2 OPENBLAS_NUM_THREADS=2 NUMBA_NUM_THREADS=2 \\
    python benchmarks/bench_scale.py --data ../shared/data/aspirin.npz --n-train 2000

Trains ``GDMLRegressor(solver="cg")`` on the first ``--n-train`` geometries of a random
permutation (seed 0), tests on up to ``--n-test`` of the rest, and writes time, CG
products, peak memory (``ru_maxrss``) and errors to
``benchmarks/results/scale_<name>_n<n>_lam<lam>[_sym].json``.
"""

import argparse
import json
import os
import resource
import time

import numpy as np

import gdmlx

HERE = os.path.dirname(os.path.abspath(__file__))


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", required=True)
    p.add_argument("--n-train", type=int, required=True)
    p.add_argument("--n-test", type=int, default=500)
    p.add_argument("--sigma", type=float, default=10.0)
    p.add_argument("--cg-tol", type=float, default=1e-5)
    p.add_argument("--lam", type=float, default=1e-10)
    p.add_argument("--memory-gb", type=float, default=16.0)
    p.add_argument("--sym", action="store_true")
    args = p.parse_args()
    name = os.path.splitext(os.path.basename(args.data))[0]
    ds = gdmlx.load_dataset(args.data)
    perm = np.random.default_rng(0).permutation(len(ds.R))
    train, test = perm[:args.n_train], perm[args.n_train:args.n_train + args.n_test]
    opts = gdmlx.ComputeOptions(memory_limit_gb=args.memory_gb, cg_tol=args.cg_tol, verbose=True,
                                cg_checkpoint=f"/tmp/gdmlx-scale-{name}-{args.n_train}.npz")
    model = gdmlx.GDMLRegressor(sigma=args.sigma, lam=args.lam, solver="cg", options=opts,
                                perms="auto" if args.sym else None)
    t0 = time.perf_counter()
    model.fit(ds.R[train], ds.F[train], ds.E[train], z=ds.z)
    out = {"data": args.data, "n_train": args.n_train, "n_unknowns": args.n_train * 3 * len(ds.z),
           "n_perms": len(model.perms_), "fit_s": time.perf_counter() - t0, **model.fit_info_,
           "train_energy_fit": model.energy_fit_,
           "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
           "args": vars(args), "threads": {k: os.environ.get(k) for k in
                                           ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMBA_NUM_THREADS")}}
    if len(test):
        E, F = model.predict_energy_forces(ds.R[test])
        out.update(n_test=len(test), f_mae=float(np.abs(F - ds.F[test]).mean()),
                   e_mae=float(np.abs(E - ds.E[test]).mean()))
    path = os.path.join(HERE, "results", f"scale_{name}_n{args.n_train}_lam{args.lam:g}{'_sym' if args.sym else ''}.json")
    with open(path, "w") as f:
        json.dump(out, f, indent=1, default=float)
    print(json.dumps(out, indent=1, default=float))


if __name__ == "__main__":
    main()
