"""How often alanine-dipeptide models survive 50 ps of Langevin MD at 500 K (0.5 fs, single
step, three seeds, same start), and how much of it they spend outside the training domain:
the full model, multiscale models with an unreduced slow part (local pairs at most 2 and 3
bonds apart), the reduced multiscale model that ``bench_multiscale.py`` left in its cache
(run it on ala-dipeptide first, or pass --reduced), and any ``--model NAME=PATH``.

    OMP_NUM_THREADS=2 OPENBLAS_NUM_THREADS=2 NUMBA_NUM_THREADS=2 python benchmarks/ms_stability.py
"""

import argparse
import glob
import warnings

import numpy as np

import gdmlx
from gdmlx.md import MDInstabilityError, Simulation


def survival(model, start, seed, ps=50.0):
    """'ok' if a Langevin run of ``ps`` finishes, else the engine's reason (shortened), and
    the fraction of frames outside the training domain (gdmlx.md.domain) up to the end or stop."""
    sim = Simulation(model, start, dt_fs=0.5, temperature_K=500, thermostat="langevin",
                     friction_per_fs=0.01, seed=seed)
    steps = int(ps * 2000)
    try:
        summary = sim.run(steps, save_every=100, report_every=steps, progress=False)
        return "ok", round(summary["outside_fraction"], 3)
    except MDInstabilityError as exc:
        return str(exc)[:60], round(exc.summary.get("outside_fraction", 1.0), 3)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default="../shared/data/ala-dipeptide.npz")
    p.add_argument("--reduced", default=None, help="reduced multiscale model file (default: the cache's)")
    p.add_argument("--model", action="append", default=[], metavar="NAME=PATH",
                   help="another model file to run (repeatable), e.g. one reduced with the MD check")
    args = p.parse_args()
    warnings.simplefilter("ignore", gdmlx.EnergyConsistencyWarning)
    ds = gdmlx.load_dataset(args.data)
    perm = np.random.default_rng(0).permutation(len(ds))
    train, start = perm[:300], ds.R[perm[500]]
    fit = lambda m: m.fit(ds.R[train], ds.F[train], ds.E[train], ds.z)
    models = {"full": fit(gdmlx.GDMLRegressor(sigma=80, lam=1e-10))}
    for hops in (2, 3):
        models[f"multiscale, max_hops {hops}, unreduced"] = fit(gdmlx.MultiscaleModel(
            slow=gdmlx.GDMLRegressor(sigma=80, lam=1e-10), n_fast=100, max_hops=hops))
    reduced = args.reduced or glob.glob("/tmp/gdmlx-bench-multiscale/ala-dipeptide_M300_s80_lam1e-10_"
                                        "analytic_nfast100_*_ms.h5")[0]
    models["multiscale, reduced slow part"] = gdmlx.load_model(reduced)
    for item in args.model:
        name, path = item.split("=", 1)
        models[name] = gdmlx.load_model(path)
    for name, model in models.items():
        print(name, [survival(model, start, seed) for seed in (1, 2, 3)], flush=True)


if __name__ == "__main__":
    main()
