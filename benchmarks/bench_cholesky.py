#!/usr/bin/env python3
"""Time gdmlx's blocked in-place Cholesky against scipy's (LAPACK dpotrf) on one matrix size.

    OMP_NUM_THREADS=2 OPENBLAS_NUM_THREADS=2 python benchmarks/bench_cholesky.py --sizes 6000,11000,15000,17100

Every factorisation runs in its own process, so that a crash of the library (OpenBLAS's
threaded dpotrf segfaults on large matrices on some machines) is recorded as such and the
next one still runs. The matrix is SPD with a random dense low-rank part: (A A^T)/r + I.
Methods: ``scipy`` (``cho_factor`` on the Fortran view, no copy: what gdmlx used below
4.2 GB before), ``gdmlx`` (:func:`gdmlx.solvers.blocked_cholesky_lower`), and ``gdmlx-1t``
(the same with one BLAS thread). Prints a table; ``--out`` writes JSON.
"""

import argparse
import json
import os
import subprocess
import sys
import time


def factor(method, n):
    """Seconds to factor an n x n SPD matrix with ``method`` (run in the child process)."""
    import numpy as np
    import scipy.linalg
    from threadpoolctl import threadpool_limits

    from gdmlx.solvers import _BLOCK, blocked_cholesky_lower
    rng = np.random.default_rng(0)
    A = rng.standard_normal((n, 64))
    K = A @ A.T / 64
    K[np.diag_indices(n)] += 1.0
    t = time.perf_counter()
    if method == "scipy":
        scipy.linalg.cho_factor(K.T, lower=False, overwrite_a=True, check_finite=False)
    elif method == "gdmlx":
        blocked_cholesky_lower(K, _BLOCK)
    else:
        with threadpool_limits(1, user_api="blas"):
            blocked_cholesky_lower(K, _BLOCK)
    return time.perf_counter() - t


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--sizes", default="6000,11000,15000,17100")
    p.add_argument("--methods", default="scipy,gdmlx,gdmlx-1t")
    p.add_argument("--out")
    p.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        print(json.dumps(factor(args.child[0], int(args.child[1]))))
        return
    rows = []
    for n in map(int, args.sizes.split(",")):
        row = {"n": n, "gb": 8 * n * n / 1e9}
        for method in args.methods.split(","):
            proc = subprocess.run([sys.executable, __file__, "--child", method, str(n)],
                                  capture_output=True, text=True)
            row[method] = json.loads(proc.stdout) if proc.returncode == 0 else f"crashed (exit {proc.returncode})"
        rows.append(row)
        print(row, flush=True)
    threads = os.environ.get("OPENBLAS_NUM_THREADS", "unset")
    print(f"\nOPENBLAS_NUM_THREADS={threads}; seconds per factorisation\n")
    methods = args.methods.split(",")
    print("| n (GB) | " + " | ".join(methods) + " |")
    print("|---" * (len(methods) + 1) + "|")
    for r in rows:
        cells = [f"{r[m]:.2f}" if isinstance(r[m], float) else r[m] for m in methods]
        print(f"| {r['n']} ({r['gb']:.2f}) | " + " | ".join(cells) + " |")
    if args.out:
        with open(args.out, "w") as fh:
            json.dump({"openblas_threads": threads, "rows": rows}, fh, indent=1)


if __name__ == "__main__":
    main()
