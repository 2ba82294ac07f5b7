#!/usr/bin/env python3
"""Learning curves with and without permutational symmetries (issue 6).

    OMP_NUM_THREADS=2 OPENBLAS_NUM_THREADS=2 NUMBA_NUM_THREADS=2 \\
    python benchmarks/bench_symmetry.py --data ../shared/data/aspirin.npz --name aspirin

For each training-set size of ``--sizes`` (the first n of one random permutation, seed 0;
the test set is the last ``--n-test`` of it), gdmlx is trained without and with
symmetries (``perms="auto"``), sigma ``--sigma``, lam ``--lam``, solver "auto" under ``--memory-gb``; each
fit runs in its own process (peak memory from ``ru_maxrss``). sGDML (its own environment,
``--sgdml-python``) is trained with symmetries on the same points for sizes up to
``--sgdml-max-n``. Writes ``benchmarks/results/symmetry_<name>.json``.
"""

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))


def log(msg):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def worker(args):
    """One gdmlx fit and test, printed as JSON (runs in a fresh process)."""
    import gdmlx
    ds = gdmlx.load_dataset(args.data)
    train, test = np.load(args.train_idx), np.load(args.test_idx)
    t0 = time.perf_counter()
    model = gdmlx.GDMLRegressor(sigma=args.sigma, lam=args.lam, solver="auto",
                                perms="auto" if args.sym else None,
                                options=gdmlx.ComputeOptions(memory_limit_gb=args.memory_gb))
    model.fit(ds.R[train], ds.F[train], ds.E[train], z=ds.z)
    fit_s = time.perf_counter() - t0
    E, F = model.predict_energy_forces(ds.R[test])
    out = {"n_train": len(train), "sym": args.sym, "n_perms": len(model.perms_), "fit_s": fit_s,
           "f_mae": float(np.abs(F - ds.F[test]).mean()), "e_mae": float(np.abs(E - ds.E[test]).mean()),
           "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, **model.fit_info_}
    print(json.dumps(out, default=float))


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", required=True)
    p.add_argument("--name", default=None)
    p.add_argument("--sizes", default="100,200,400,800")
    p.add_argument("--n-test", type=int, default=1000)
    p.add_argument("--sigma", type=float, default=10.0)
    p.add_argument("--lam", type=float, default=1e-10)
    p.add_argument("--memory-gb", type=float, default=16.0)
    p.add_argument("--sgdml-max-n", type=int, default=200)
    p.add_argument("--sgdml-python", default="/work/sgdml-venv/bin/python")
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--sym", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--train-idx", help=argparse.SUPPRESS)
    p.add_argument("--test-idx", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.worker:
        return worker(args)
    name = args.name or os.path.splitext(os.path.basename(args.data))[0]
    n = len(np.load(args.data)["R"])
    perm = np.random.default_rng(0).permutation(n)
    tmp = tempfile.mkdtemp(prefix=f"gdmlx-sym-{name}-")
    test_path = os.path.join(tmp, "test.npy")
    np.save(test_path, perm[-args.n_test:])
    res = {"args": vars(args), "threads": {k: os.environ.get(k) for k in
                                           ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMBA_NUM_THREADS")},
           "runs": []}
    for size in map(int, args.sizes.split(",")):
        train_path = os.path.join(tmp, f"train{size}.npy")
        np.save(train_path, perm[:size])
        for sym in (False, True):
            cmd = [sys.executable, __file__, "--worker", "--data", args.data, "--sigma", str(args.sigma),
                   "--lam", str(args.lam),
                   "--memory-gb", str(args.memory_gb), "--train-idx", train_path, "--test-idx", test_path]
            r = subprocess.run(cmd + (["--sym"] if sym else []), capture_output=True, text=True, check=False)
            run = json.loads(r.stdout.strip().splitlines()[-1]) if r.returncode == 0 else {
                "n_train": size, "sym": sym, "error": r.stderr[-500:]}
            run["code"] = "gdmlx"
            res["runs"].append(run)
            log(json.dumps({k: run.get(k) for k in ("code", "n_train", "sym", "n_perms", "fit_s", "f_mae", "e_mae", "peak_rss_mb", "solver", "error")}))
        if size <= args.sgdml_max_n:
            out = os.path.join(tmp, f"sgdml{size}.json")
            cmd = [args.sgdml_python, os.path.join(HERE, "sgdml_runner.py"), "--data", args.data,
                   "--train-idx", train_path, "--test-idx", test_path, "--sigma", str(args.sigma),
                   "--lam", str(args.lam), "--sym", "--out-json", out, "--out-model", os.path.join(tmp, f"sgdml{size}.npz"),
                   "--threads", os.environ.get("OMP_NUM_THREADS", "2"), "--n-latency", "20", "--n-batch-reps", "1"]
            r = subprocess.run(cmd, capture_output=True, text=True, check=False)
            if r.returncode == 0:
                with open(out) as fh:
                    s = json.load(fh)
                run = {"code": "sGDML", "n_train": size, "sym": True, "n_perms": s.get("n_perms"),
                       "fit_s": s.get("t_train_s"), "f_mae": s["f_mae"], "e_mae": s["e_mae"],
                       "peak_rss_mb": s.get("peak_rss_mb")}
            else:
                run = {"code": "sGDML", "n_train": size, "sym": True, "error": r.stderr[-500:]}
            res["runs"].append(run)
            log(json.dumps(run)[:300])
    suffix = "" if args.lam == 1e-10 else f"_lam{args.lam:g}"
    path = os.path.join(HERE, "results", f"symmetry_{name}{suffix}.json")
    with open(path, "w") as f:
        json.dump(res, f, indent=1, default=float)
    log(f"wrote {path}")


if __name__ == "__main__":
    main()
