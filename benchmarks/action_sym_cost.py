#!/usr/bin/env python3
"""Cost of an action-map stride with the correction summed over permutations, against the
plain correction and a velocity-Verlet step (issue 7): ethanol, the set-up of
benchmarks/action_seeds.py (held-out references), 2000 strides a run, five interleaved
rounds, medians (us per stride).

    OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 NUMBA_NUM_THREADS=1 python benchmarks/action_sym_cost.py

Writes benchmarks/results/action_sym_cost.json.
"""

import json
import os
import tempfile
import time

import numpy as np

from action_seeds import HERE, models
from gdmlx.action import ActionModel
from gdmlx.md import Simulation
from gdmlx.md.action_map import ActionSimulation

with tempfile.TemporaryDirectory() as work:
    model, action, start = models("held-out", 4, work)
    paths = [os.path.join(work, f"ref{k}.h5") for k in range(4)]
    sym = ActionModel(stride_fs=1.0, sigma=5.0, n_train=150, perms="auto").fit(paths, model, verbose=False)
res = {"plain": [], "sym": [], "verlet": []}
for r in range(5):
    for name, act in (("plain", action), ("sym", sym), ("verlet", None)):
        sim = (Simulation(model, start, dt_fs=1.0, temperature_K=500, seed=1) if act is None else
               ActionSimulation(model, act, start, temperature_K=500, seed=1))
        n = 2000
        sim.run(10, save_every=2, report_every=10, progress=False)
        t0 = time.perf_counter(); sim.run(n, save_every=2, report_every=n, progress=False); res[name].append((time.perf_counter() - t0) / n * 1e6)
med = {k: float(np.median(v)) for k, v in res.items()}
out = {"us_per_stride": res, "median": med, "sym_over_plain": med["sym"] / med["plain"],
       "plain_over_verlet": med["plain"] / med["verlet"], "n_permutations": len(sym.perms_)}
print(json.dumps(out, indent=1))
with open(os.path.join(HERE, "results", "action_sym_cost.json"), "w") as fh:
    json.dump(out, fh, indent=1)
