"""One-geometry force latency of one sGDML model in sGDML and in gdmlx, in alternating rounds.

Section 1's table takes the two latencies from one run each, minutes apart, and sGDML's
moves between 0.28 and 0.61 ms from run to run on these shared machines. Here the same
model file (sGDML's, imported into gdmlx with ``gdmlx.import_sgdml_model``: the same
numbers) is timed in alternating rounds, sGDML in a fresh process of its own environment
(``GDMLPredict(model, max_processes=1)``, as in section 1), gdmlx in this process
(``model.predict``, the public API), each round a median over ``--calls`` calls cycling
through test geometries. The ratio is taken per round and its median reported.

    OMP_NUM_THREADS=2 OPENBLAS_NUM_THREADS=2 NUMBA_NUM_THREADS=2 \\
    python benchmarks/bench_latency.py --model sgdml_model.npz --data ../shared/data/aspirin.npz
"""

import argparse
import json
import os
import subprocess
import time

import numpy as np

import gdmlx

SGDML_SIDE = """
import json, sys, time
import numpy as np
from sgdml.predict import GDMLPredict
model_path, data_path, calls = sys.argv[1], sys.argv[2], int(sys.argv[3])
model = dict(np.load(model_path, allow_pickle=True))
R = np.load(data_path)['R'][-500:].reshape(500, -1)
gp = GDMLPredict(model, max_processes=1)
for k in range(20):
    gp.predict(R[k:k + 1])
lat = []
for k in range(calls):
    t0 = time.perf_counter()
    gp.predict(R[k % 500:k % 500 + 1])
    lat.append(time.perf_counter() - t0)
print(json.dumps({'median_ms': 1e3 * float(np.median(lat))}))
"""


def gdmlx_latency_ms(model, R, calls):
    """Median wall time (ms) of ``model.predict`` on one geometry, cycling through ``R``."""
    for k in range(20):
        model.predict(R[k])
    lat = []
    for k in range(calls):
        t0 = time.perf_counter()
        model.predict(R[k % len(R)])
        lat.append(time.perf_counter() - t0)
    return 1e3 * float(np.median(lat))


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True, help="sGDML model .npz (no symmetries)")
    p.add_argument("--data", required=True, help="dataset; its last 500 geometries are timed")
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--calls", type=int, default=1000)
    p.add_argument("--sgdml-python", default="/work/sgdml-venv/bin/python")
    p.add_argument("--out", default=None, help="JSON output")
    args = p.parse_args()
    model = gdmlx.import_sgdml_model(args.model)
    R = gdmlx.load_dataset(args.data).R[-500:]
    rounds = []
    for r in range(args.rounds):
        out = subprocess.run([args.sgdml_python, "-c", SGDML_SIDE, args.model, args.data, str(args.calls)],
                             capture_output=True, text=True, check=True)
        sgdml_ms = json.loads(out.stdout.strip().splitlines()[-1])["median_ms"]
        gdmlx_ms = gdmlx_latency_ms(model, R, args.calls)
        rounds.append({"sgdml_ms": sgdml_ms, "gdmlx_ms": gdmlx_ms, "ratio": sgdml_ms / gdmlx_ms})
        print(json.dumps(rounds[-1]), flush=True)
    res = {"model": args.model, "data": args.data, "calls": args.calls, "rounds": rounds,
           "median_ratio": float(np.median([r["ratio"] for r in rounds])),
           "threads": {k: os.environ.get(k) for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS",
                                                      "NUMBA_NUM_THREADS")}}
    print(json.dumps({k: res[k] for k in ("median_ratio",)}))
    if args.out:
        with open(args.out, "w") as fh:
            json.dump(res, fh, indent=1)


if __name__ == "__main__":
    main()
