"""How often alanine-dipeptide models survive 50 ps of Langevin MD at 500 K (0.5 fs, single
step): the full model, the multiscale model with an unreduced slow part, and the reduced one
from bench_multiscale's cache (run bench_multiscale.py on ala-dipeptide first). Three seeds.

    OMP_NUM_THREADS=2 OPENBLAS_NUM_THREADS=2 NUMBA_NUM_THREADS=2 python benchmarks/ms_stability.py
"""

import numpy as np, time, warnings, sys
import gdmlx
from gdmlx.md import Simulation, MDInstabilityError
warnings.simplefilter("ignore")
ds = gdmlx.load_dataset('../shared/data/ala-dipeptide.npz')
perm = np.random.default_rng(0).permutation(len(ds))
train, test = perm[:300], perm[500:1500]
big = gdmlx.GDMLRegressor(sigma=80, lam=1e-10)
ms = gdmlx.MultiscaleModel(slow=big, n_fast=100).fit(ds.R[train], ds.F[train], ds.E[train], ds.z)
full = gdmlx.GDMLRegressor(sigma=80, lam=1e-10).fit(ds.R[train], ds.F[train], ds.E[train], ds.z)
import glob
red = gdmlx.load_model(glob.glob('/tmp/gdmlx-bench-multiscale/ala-dipeptide_M300_s80_lam1e-10_analytic_nfast100_*_ms.h5')[0])
start = ds.R[test[0]]
for name, model in [("full", full), ("ms unreduced", ms), ("ms reduced", red)]:
    for seed in (1, 2, 3):
        sim = Simulation(model, start, dt_fs=0.5, temperature_K=500, thermostat="langevin", friction_per_fs=0.01, seed=seed)
        try:
            sim.run(100000, save_every=100, report_every=100000, progress=False)
            res = "50 ps ok"
        except MDInstabilityError as e:
            res = str(e)[:40]
        print(name, seed, res, flush=True)
