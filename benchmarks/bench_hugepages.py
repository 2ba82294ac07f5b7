#!/usr/bin/env python3
"""First touch of large arrays with and without numpy's transparent-huge-page request.

    OMP_NUM_THREADS=2 OPENBLAS_NUM_THREADS=2 NUMBA_NUM_THREADS=2 \\
    python benchmarks/bench_hugepages.py --data ../shared/data/aspirin.npz --rounds 3

numpy asks the kernel for huge pages (``madvise``) on every large array. Each measurement
runs in a fresh process, alternating the request on and off
(``numpy._core.multiarray._set_madvise_hugepage``): the time to touch ``--gb`` of a new
``numpy.empty`` array (one write per 4 KB), and the time of training's internal-subspace
assembly (``--n-train`` geometries) into a ``numpy.empty`` matrix, as gdmlx allocated it
before ``gdmlx.solvers.large_zeros``, and into ``large_zeros``. Prints one line each.
"""

import argparse
import json
import subprocess
import sys
import time


def child(mode, what, gb, data, n_train):
    """Seconds for one measurement, in this (fresh) process."""
    from numpy._core import multiarray
    multiarray._set_madvise_hugepage(mode == "on")
    import numpy as np
    if what == "touch":
        t = time.perf_counter()
        a = np.empty(int(gb * 1e9) // 8)
        a[::512] = 1.0
        return time.perf_counter() - t
    import gdmlx
    from gdmlx import training
    from gdmlx.descriptor import all_pairs
    from gdmlx.kernel_data import KernelData
    from gdmlx.rigid import InternalCoordinates
    ds = gdmlx.load_dataset(data)
    R = ds.R[np.random.default_rng(0).permutation(len(ds.R))[:n_train]]
    pairs = all_pairs(R.shape[1])
    keep = InternalCoordinates(R).keep
    training.assemble_kernel_matrix(KernelData(R[:10], pairs, None), 10.0, False, keep[:10])  # compile
    if what == "assembly-numpy-empty":
        training.large_zeros = lambda shape: np.empty(shape)
    t = time.perf_counter()
    training.assemble_kernel_matrix(KernelData(R, pairs, None), 10.0, False, keep)
    return time.perf_counter() - t


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data", required=True)
    p.add_argument("--n-train", type=int, default=500)
    p.add_argument("--gb", type=float, default=4.0)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        print(json.dumps(child(*args.child, args.gb, args.data, args.n_train)))
        return
    for r in range(args.rounds):            # interleaved: the host's memory state drifts
        for what in ("touch", "assembly-numpy-empty", "assembly-large-zeros"):
            for mode in ("on", "off"):
                out = subprocess.run([sys.executable, __file__, "--data", args.data, "--n-train", str(args.n_train),
                                      "--gb", str(args.gb), "--child", mode, what],
                                     capture_output=True, text=True, check=True).stdout
                print(f"{what}, huge pages {mode}: {json.loads(out):.2f} s", flush=True)


if __name__ == "__main__":
    main()
