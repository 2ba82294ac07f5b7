#!/usr/bin/env python3
"""Kernel assembly time, with and without the first touch of the matrix's memory.

    OMP_NUM_THREADS=2 OPENBLAS_NUM_THREADS=2 NUMBA_NUM_THREADS=2 \\
    python benchmarks/bench_assembly.py --data ../shared/data/toluene.npz --n-train 500

(1) In a fresh process, write a matrix of the training matrix's size twice (numpy fill)
and time both; (2) in another fresh process, assemble the training matrix ``--repeats``
times (``--n-train`` random training geometries, seed 0, sigma 10) and time each. The first
of each pays for memory the process has never touched; the later ones show the work itself.
With ``--internal``, the matrix assembled is the one training solves without symmetries:
projected on the internal subspaces (:mod:`gdmlx.rigid`), M (3N - 6) rows.
"""

import argparse
import json
import subprocess
import sys
import time

import numpy as np

import gdmlx
from gdmlx.descriptor import all_pairs
from gdmlx.kernel_data import KernelData
from gdmlx.rigid import InternalCoordinates
from gdmlx.training import assemble_kernel_matrix


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", required=True)
    p.add_argument("--n-train", type=int, default=500)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--internal", action="store_true", help="the internal-subspace matrix")
    p.add_argument("--fill-n", type=int, default=None, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.fill_n:
        times = []
        for _ in range(2):
            t0 = time.perf_counter()
            np.empty((args.fill_n, args.fill_n)).fill(1.0)
            times.append(round(time.perf_counter() - t0, 3))
        print(json.dumps(times))
        return
    ds = gdmlx.load_dataset(args.data)
    R = ds.R[np.random.default_rng(0).permutation(len(ds.R))[:args.n_train]]
    rows = 3 * R.shape[1] - (6 if args.internal else 0)
    n = args.n_train * rows
    fill = subprocess.run([sys.executable, __file__, "--data", args.data, "--fill-n", str(n)],
                          capture_output=True, text=True, check=True)
    data = KernelData(R, all_pairs(R.shape[1]))
    keep = InternalCoordinates(R).keep if args.internal else None   # before assembly in training, too

    def assemble(d):
        return assemble_kernel_matrix(d, 10.0, False, None if keep is None else keep[:d.n_train])

    assemble(KernelData(R[:2], data.pairs))     # load compiled code
    out = {"data": args.data, "n_train": args.n_train, "internal": args.internal,
           "matrix_gb": 8 * n * n / 1e9, "fill_s": json.loads(fill.stdout), "assembly_s": []}
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        assemble(data)
        out["assembly_s"].append(round(time.perf_counter() - t0, 3))
    print(json.dumps(out))


if __name__ == "__main__":
    main()
