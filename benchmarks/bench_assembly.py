#!/usr/bin/env python3
"""Kernel assembly time, with and without the first touch of the matrix's memory.

    OMP_NUM_THREADS=2 OPENBLAS_NUM_THREADS=2 NUMBA_NUM_THREADS=2 \\
    python benchmarks/bench_assembly.py --data ../shared/data/toluene.npz --n-train 500

(1) In a fresh process, write a matrix of the training matrix's size twice (numpy fill)
and time both; (2) in another fresh process, assemble the training matrix ``--repeats``
times (``--n-train`` random training geometries, seed 0, sigma 10) and time each. The first
of each pays for memory the process has never touched; the later ones show the work itself.
With ``--internal``, the matrix assembled is the one training solves: on the internal
coordinates (:mod:`gdmlx.rigid`), M (3N - 6) rows.

With ``--vs-sgdml ROUNDS``: alternating rounds of sGDML's assembly of its full matrix
(``sgdml_runner.py --assembly-only``, in its own environment) and gdmlx's assembly of the
internal matrix, each in a fresh process, on the same points; prints each round's times
and the median ratio (both pay for first-touching their matrix's memory, as in training).
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
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
    p.add_argument("--no-fill", action="store_true", help="skip step (1)")
    p.add_argument("--vs-sgdml", type=int, metavar="ROUNDS", default=0)
    p.add_argument("--sgdml-python", default="/work/sgdml-venv/bin/python")
    p.add_argument("--threads", type=int, default=2, help="sGDML's processes (--vs-sgdml)")
    p.add_argument("--fill-n", type=int, default=None, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.vs_sgdml:
        return rounds_vs_sgdml(args)
    if args.fill_n:
        times = []
        for _ in range(2):
            t0 = time.perf_counter()
            np.empty((args.fill_n, args.fill_n)).fill(1.0)
            times.append(round(time.perf_counter() - t0, 3))
        print(json.dumps(times))
        return
    ds = gdmlx.load_dataset(args.data)
    R = ds.R[training_indices(len(ds.R), args.n_train)]
    rows = 3 * R.shape[1] - (6 if args.internal else 0)
    n = args.n_train * rows
    fill = "[]" if args.no_fill else subprocess.run(
        [sys.executable, __file__, "--data", args.data, "--fill-n", str(n)],
        capture_output=True, text=True, check=True).stdout
    data = KernelData(R, all_pairs(R.shape[1]))
    keep = InternalCoordinates(R).keep if args.internal else None   # before assembly in training, too

    def assemble(d):
        return assemble_kernel_matrix(d, 10.0, False, None if keep is None else keep[:d.n_train])

    assemble(KernelData(R[:2], data.pairs))     # load compiled code
    out = {"data": args.data, "n_train": args.n_train, "internal": args.internal,
           "matrix_gb": 8 * n * n / 1e9, "fill_s": json.loads(fill), "assembly_s": []}
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        assemble(data)
        out["assembly_s"].append(round(time.perf_counter() - t0, 3))
    print(json.dumps(out))


def training_indices(n_data, n_train):
    """The training points of every run here: the first ``n_train`` of a seed-0 permutation."""
    return np.random.default_rng(0).permutation(n_data)[:n_train]


def rounds_vs_sgdml(args):
    n_data = len(np.load(args.data)["R"])
    here = os.path.dirname(os.path.abspath(__file__))
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        idx = os.path.join(tmp, "train.npy")
        np.save(idx, training_indices(n_data, args.n_train))
        for r in range(args.vs_sgdml):
            out = os.path.join(tmp, "sgdml.json")
            subprocess.run([args.sgdml_python, os.path.join(here, "sgdml_runner.py"), "--data", args.data,
                            "--train-idx", idx, "--test-idx", idx, "--sigma", "10", "--lam", "1e-10",
                            "--out-json", out, "--out-model", os.path.join(tmp, "m.npz"),
                            "--threads", str(args.threads), "--assembly-only"],
                           check=True, capture_output=True)
            with open(out) as fh:
                t_sgdml = json.load(fh)["t_assemble_s"]
            g = subprocess.run([sys.executable, __file__, "--data", args.data, "--n-train", str(args.n_train),
                                "--internal", "--repeats", "1", "--no-fill"], check=True, capture_output=True, text=True)
            t_gdmlx = json.loads(g.stdout)["assembly_s"][0]
            rows.append({"sgdml_s": round(t_sgdml, 2), "gdmlx_s": t_gdmlx, "ratio": round(t_sgdml / t_gdmlx, 1)})
            print(json.dumps(rows[-1]), flush=True)
    print(json.dumps({"data": args.data, "n_train": args.n_train, "rounds": rows,
                      "median_ratio": float(np.median([r["ratio"] for r in rows]))}))


if __name__ == "__main__":
    main()
