"""Do multiscale models keep MD inside their training domain? Survival of 50-ps Langevin runs
at 500 K (0.5 fs, single step, one start, several seeds) and the fraction of frames outside
the training domain (gdmlx.md.domain), for the full model and for multiscale models whose
fast part has each ``--fast-lam``; test force errors; with ``--nve``, 10-ps NVE drift and
fluctuation at outer periods 1, 3 and 4 (seed 5). ``--model NAME=PATH`` adds model files
(e.g. a reduced multiscale model from bench_multiscale.py's cache); ``--mts n`` runs the
survival runs of multiscale models at outer period n.

    OMP_NUM_THREADS=2 OPENBLAS_NUM_THREADS=2 NUMBA_NUM_THREADS=2 python benchmarks/ms_stability.py \\
        --data ../shared/data/ala-dipeptide.npz --sigma 80 --fast-lam 1e-4 1e-3 1e-2 --seeds 1-8 --nve
"""

import argparse
import json
import warnings

import numpy as np

import gdmlx
from gdmlx.md import MDInstabilityError, Simulation


def survival(model, start, seed, ps=50.0, mts=1):
    """'ok' if a Langevin run of ``ps`` (slow part every ``mts`` steps) finishes, else the
    engine's reason (shortened), and the fraction of frames outside the training domain up
    to the end or stop."""
    sim = Simulation(model, start, dt_fs=0.5, temperature_K=500, thermostat="langevin",
                     friction_per_fs=0.01, seed=seed, slow_every=mts if isinstance(model, gdmlx.MultiscaleModel) else 1)
    every = 100 * mts
    steps = int(ps * 2000) // every * every
    try:
        summary = sim.run(steps, save_every=every, report_every=steps, progress=False)
        return "ok", round(summary["outside_fraction"], 3)
    except MDInstabilityError as exc:
        return str(exc)[:60], round(exc.summary.get("outside_fraction", 1.0), 3)


def nve_run(model, start, n, seed, ps=10.0):
    """NVE run of ``ps`` at 500 K (velocities from ``seed``), slow part every ``n`` steps: where
    it stopped (None if it finished), the fraction of frames outside the training domain,
    drift (eV/ps, +- block s.e.), E_tot std (eV) and mean temperature."""
    sim = Simulation(model, start, dt_fs=0.5, temperature_K=500, seed=seed, slow_every=n)
    steps = int(ps * 2000) // (10 * n) * 10 * n
    try:
        s = sim.run(steps, save_every=10 * n, report_every=steps, progress=False)
    except MDInstabilityError as exc:
        return {"n": n, "stopped_ps": sim.step / 2000, "outside": exc.summary.get("outside_fraction")}
    return {"n": n, "stopped_ps": None, "outside": s["outside_fraction"],
            "drift_eV_per_ps": s["etot_drift_eV_per_ps"], "drift_se_eV_per_ps": s["etot_drift_se_eV_per_ps"],
            "etot_std_eV": s["etot_std_eV"], "mean_T": s["mean_temperature_K"]}


def seeds_arg(text):
    a, _, b = text.partition("-")
    return list(range(int(a), int(b) + 1)) if b else [int(s) for s in text.split(",")]


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default="../shared/data/ala-dipeptide.npz")
    p.add_argument("--sigma", type=float, default=80.0, help="sigma of the full model and the slow part")
    p.add_argument("--fast-lam", type=float, nargs="*", default=[1e-3], help="fast parts' lam (sigma 4)")
    p.add_argument("--no-full", action="store_true", help="do not fit the full model (large molecules)")
    p.add_argument("--mts", type=int, default=1, help="outer period of the survival runs (default 1)")
    p.add_argument("--seeds", type=seeds_arg, default=[1, 2, 3], help="e.g. 1-8 or 1,2,3")
    p.add_argument("--nve", action="store_true", help="also NVE drift at outer periods 1, 3, 4")
    p.add_argument("--model", action="append", default=[], metavar="NAME=PATH",
                   help="another model file to run (repeatable)")
    args = p.parse_args()
    warnings.simplefilter("ignore", gdmlx.EnergyConsistencyWarning)
    ds = gdmlx.load_dataset(args.data)
    if len(ds) <= 1000:
        p.error(f"{args.data} has {len(ds)} geometries; this benchmark trains on 300, starts from the "
                "501st and tests on those from the 1001st (of a fixed shuffle)")
    perm = np.random.default_rng(0).permutation(len(ds))
    train, start, test = perm[:300], ds.R[perm[500]], perm[1000:2000]
    fit = lambda m: m.fit(ds.R[train], ds.F[train], ds.E[train], ds.z)
    models = {} if args.no_full else {"full": fit(gdmlx.GDMLRegressor(sigma=args.sigma, lam=1e-10))}
    for lam in args.fast_lam:
        models[f"multiscale, fast lam {lam:g}"] = fit(gdmlx.MultiscaleModel(
            fast=gdmlx.GDMLRegressor(sigma=4.0, lam=lam), slow=gdmlx.GDMLRegressor(sigma=args.sigma, lam=1e-10),
            n_fast=100))
    for item in args.model:
        name, path = item.rsplit("=", 1)
        models[name] = gdmlx.load_model(path)
    for name, model in models.items():
        runs = [survival(model, start, seed, mts=args.mts) for seed in args.seeds]
        row = {"model": name, "survived": f"{sum(r[0] == 'ok' for r in runs)}/{len(runs)}",
               "outside": [r[1] for r in runs], "stops": [r[0] for r in runs if r[0] != "ok"],
               "test_f_mae": float(np.abs(model.predict(ds.R[test]) - ds.F[test]).mean())}
        if isinstance(model, gdmlx.MultiscaleModel):
            row["fast_alone_f_mae"] = float(np.abs(model.fast_.predict(ds.R[test]) - ds.F[test]).mean())
            row["n_pairs_slow"] = len(model.slow_.pairs_)
        if args.nve:
            row["nve"] = [nve_run(model, start, n, seed=5) for n in ((1,) if name == "full" else (1, 3, 4))]
        print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
