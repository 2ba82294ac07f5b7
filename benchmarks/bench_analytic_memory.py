"""How much memory the analytic solver's matrix really takes: peak resident memory of a fit
against the n x n float64 matrix (8 n^2 bytes) and its lower triangle (4 n (n + 1) bytes).

Training assembles only the lower triangle, into memory that is backed page by page as it
is written (``gdmlx.solvers.large_zeros``), and the blocked Cholesky factorisation and the
triangular solves touch only that triangle. The budget check (``solvers.check_analytic_fits``)
should therefore count the triangle; this script measures the process's peak RSS
(``ru_maxrss``) growth over a baseline taken after loading the data and compiling the kernels
(a 20-point fit of the same data), in a fresh process per dataset.

    OMP_NUM_THREADS=2 OPENBLAS_NUM_THREADS=2 NUMBA_NUM_THREADS=2 python benchmarks/bench_analytic_memory.py \\
        --data ../shared/data/ethanol.npz --n-train 1000
"""

import argparse
import json
import resource
import time


import gdmlx


def rss_mb():
    """Current resident memory (MB) from /proc/self/statm."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize() / 1e6


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", required=True)
    p.add_argument("--n-train", type=int, required=True)
    p.add_argument("--sigma", type=float, default=10.0)
    p.add_argument("--out")
    args = p.parse_args()
    ds = gdmlx.load_dataset(args.data)
    R, F, E = ds.R[:args.n_train], ds.F[:args.n_train], ds.E[:args.n_train]
    gdmlx.GDMLRegressor(sigma=args.sigma).fit(R[:20], F[:20], E[:20], z=ds.z)   # compile
    base = rss_mb()
    t0 = time.perf_counter()
    model = gdmlx.GDMLRegressor(sigma=args.sigma, lam=1e-10).fit(R, F, E, z=ds.z)
    wall = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e3
    n = model.fit_info_["system_rows"]
    out = {"data": args.data, "n_train": args.n_train, "system_rows": n, "fit_s": wall,
           "baseline_rss_mb": base, "peak_rss_mb": peak, "growth_mb": peak - base,
           "full_matrix_mb": 8 * n * n / 1e6, "lower_triangle_mb": 4 * n * (n + 1) / 1e6}
    out["growth_over_triangle"] = out["growth_mb"] / out["lower_triangle_mb"]
    print(json.dumps(out, indent=1))
    if args.out:
        with open(args.out, "w") as f:
            json.dump(out, f, indent=1)


if __name__ == "__main__":
    main()
