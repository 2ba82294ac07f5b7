"""Two checkouts of gdmlx on the same small job, in alternating fresh processes: a check
that a change made nothing slower. Each round fits the bundled ethanol data (300 points,
sigma 10), predicts the other 700 geometries in one batch (median of 5), evaluates the
ASE calculator on 3000 single geometries (median) and runs 50,000 NVE steps.

    git worktree add /tmp/old <commit>; git worktree add /tmp/new HEAD
    NUMBA_NUM_THREADS=1 OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 \\
        python benchmarks/ab_versions.py /tmp/old /tmp/new --rounds 3

Prints each round's numbers and the medians per checkout (compilation is outside the timings).
"""
import argparse
import json
import os
import subprocess
import sys

import numpy as np

ROUND = r"""
import json, sys, time
import numpy as np
import ase
import gdmlx
from gdmlx.cli.demo import bundled_dataset_path
from gdmlx.md import Simulation
ds = gdmlx.load_dataset(bundled_dataset_path())
idx = np.random.default_rng(0).permutation(len(ds))
train, test = idx[:300], idx[300:]
gdmlx.GDMLRegressor(sigma=10.0).fit(ds.R[train[:20]], ds.F[train[:20]], ds.E[train[:20]], z=ds.z)   # compiles
t = time.perf_counter()
model = gdmlx.GDMLRegressor(sigma=10.0).fit(ds.R[train], ds.F[train], ds.E[train], z=ds.z)
fit = time.perf_counter() - t
model.predict(ds.R[test[:10]])
batch = []
for _ in range(5):
    t = time.perf_counter(); model.predict(ds.R[test]); batch.append(time.perf_counter() - t)
atoms = ase.Atoms(numbers=ds.z, positions=ds.R[0]); atoms.calc = gdmlx.GDMLCalculator(model)
one = []
for k in range(3000):
    atoms.positions = ds.R[test[k % len(test)]]
    t = time.perf_counter(); atoms.get_forces(); one.append(time.perf_counter() - t)
sim = Simulation(model, ds.R[0], temperature_K=300, seed=0)
sim.run(1000, progress=False)
md = sim.run(50000, progress=False)
print(json.dumps({"fit_s": fit, "batch_ms": 1e3 * float(np.median(batch)),
                  "calculator_us": 1e6 * float(np.median(one)), "md_steps_per_s": md["steps_per_s"]}))
"""


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("checkouts", nargs=2, help="the two checkouts' folders (old, new)")
    p.add_argument("--rounds", type=int, default=3)
    args = p.parse_args()
    results = {c: [] for c in args.checkouts}
    for r in range(args.rounds):
        for checkout in args.checkouts:
            env = {**os.environ, "PYTHONPATH": os.path.abspath(checkout)}
            out = subprocess.run([sys.executable, "-c", ROUND], env=env, text=True, capture_output=True, check=True)
            results[checkout].append(json.loads(out.stdout.splitlines()[-1]))
            print(f"round {r + 1} {checkout}: {results[checkout][-1]}", flush=True)
    for checkout, rows in results.items():
        print(f"median {checkout}: " + ", ".join(f"{k} {np.median([row[k] for row in rows]):.4g}" for k in rows[0]))


if __name__ == "__main__":
    main()
