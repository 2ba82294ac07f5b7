#!/usr/bin/env python3
"""Multiscale models (issue 5): what a cheaper slow part, fitted to fewer points, costs in accuracy.

    OMP_NUM_THREADS=2 OPENBLAS_NUM_THREADS=2 NUMBA_NUM_THREADS=2 \\
    python benchmarks/ms_slow_points.py --data ../shared/data/aspirin.npz

On a small molecule the slow part costs about as much as the full model (same pairs, same
points), which caps the multiple-time-step speed-up near 2x. This fits, on one split
(seed 0: 300 training and 1000 test geometries), the full model, the default multiscale
model, and multiscale models whose slow part sees only an evenly spaced subset of the
training points (at sigma and 2 sigma), next to full models on the same subsets. Prints
test force and energy MAE.
"""

import argparse

import numpy as np

import gdmlx


def mae(model, R, F, E):
    E_p, F_p = model.predict_energy_forces(R)
    return float(np.abs(F_p - F).mean()), float(np.abs(E_p - E).mean())


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", required=True)
    p.add_argument("--sigma", type=float, default=10.0)
    p.add_argument("--n-train", type=int, default=300)
    p.add_argument("--subsets", default="100,150,200")
    args = p.parse_args()
    ds = gdmlx.load_dataset(args.data)
    idx = np.random.default_rng(0).permutation(len(ds.R))
    tr, te = idx[:args.n_train], idx[500:1500]
    R, F, E = ds.R[tr], ds.F[tr], ds.E[tr]
    test = (ds.R[te], ds.F[te], ds.E[te])
    full = gdmlx.GDMLRegressor(sigma=args.sigma).fit(R, F, E, ds.z)
    ms = gdmlx.MultiscaleModel(slow=gdmlx.GDMLRegressor(sigma=args.sigma)).fit(R, F, E, ds.z)
    print("| model | force MAE | energy MAE |\n|---|---|---|")
    print(f"| full, {args.n_train} points | %.3f | %.3f |" % mae(full, *test))
    print(f"| multiscale, slow part on {args.n_train} | %.3f | %.3f |" % mae(ms, *test))
    E_f, F_f = ms.fast_.predict_energy_forces(R)
    for n in map(int, args.subsets.split(",")):
        sub = np.unique(np.linspace(0, len(R) - 1, n).astype(int))
        for sigma in (args.sigma, 2 * args.sigma):
            slow = gdmlx.GDMLRegressor(sigma=sigma).fit(R[sub], F[sub] - F_f[sub], E[sub] - E_f[sub], ds.z)
            m = gdmlx.MultiscaleModel.from_parts(ms.fast_, slow)
            print(f"| multiscale, slow part on {n} (sigma {sigma:g}) | %.3f | %.3f |" % mae(m, *test), flush=True)
        sub_full = gdmlx.GDMLRegressor(sigma=args.sigma).fit(R[sub], F[sub], E[sub], ds.z)
        print(f"| full, {n} points | %.3f | %.3f |" % mae(sub_full, *test), flush=True)


if __name__ == "__main__":
    main()
