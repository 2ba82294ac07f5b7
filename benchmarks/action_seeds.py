#!/usr/bin/env python3
"""Learned long-stride map on the bundled ethanol data, over several seeds: how much its
gain depends on where the reference runs went (issue 7).

    OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 NUMBA_NUM_THREADS=1 \\
    python benchmarks/action_seeds.py --refs held-out
    OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 NUMBA_NUM_THREADS=1 \\
    python benchmarks/action_seeds.py --refs one-start

The force field is examples/train_and_predict.py's (300 points, sigma 20). The action
model (stride 1 fs, 150 pairs, sigma 5) learns from ``--n-refs`` NVE runs of 5 ps at 0.25 fs
and 500 K that start from held-out dataset geometries (``held-out``, as the example does)
or from the training geometries 0, 1, 2 ... (``one-start``: in the bundled data these
share one orientation of the methyl group, which the runs keep). Each seed then runs
``--ps`` of NVE from the held-out geometry 10 with the learned map, the plain implicit
midpoint rule (C = 0) and velocity Verlet at the stride, with the same start velocities.
With ``--sym`` the action model sums its kernel over ethanol's 12 atom permutations
(``ActionModel(perms="auto")``). Writes ``benchmarks/results/action_seeds_<refs>[_sym].json``.
"""

import argparse
import json
import os
import tempfile

import numpy as np

import gdmlx
from bench_action import _zero_correction, log
from gdmlx.action import ActionModel
from gdmlx.cli.demo import bundled_dataset_path
from gdmlx.md import Simulation
from gdmlx.md.action_map import ActionSimulation

HERE = os.path.dirname(os.path.abspath(__file__))
KEYS = ("etot_std_eV", "etot_drift_eV_per_ps", "etot_drift_se_eV_per_ps", "mean_temperature_K", "wall_s",
        "beyond_action_data_fraction")


def models(refs, n_refs, work, perms=None):
    """The example's force field and an action model learned from ``refs`` reference runs."""
    ds = gdmlx.load_dataset(bundled_dataset_path())
    idx = np.random.default_rng(0).permutation(len(ds))
    train, held_out = idx[:300], idx[300:]
    model = gdmlx.GDMLRegressor(sigma=20.0).fit(ds.R[train], ds.F[train], energies=ds.E[train], z=ds.z)
    starts = ds.R[held_out[:n_refs]] if refs == "held-out" else model.R_train_[:n_refs]
    paths = []
    for k, q in enumerate(starts):
        path = os.path.join(work, f"ref{k}.h5")
        Simulation(model, q, dt_fs=0.25, temperature_K=500, seed=k).run(
            20_000, trajectory=path, save_every=2, progress=False)
        paths.append(path)
    action = ActionModel(stride_fs=1.0, sigma=5.0, n_train=150, perms=perms).fit(paths, model, verbose=False)
    return model, action, ds.R[held_out[10]]


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--refs", choices=("held-out", "one-start"), default="held-out")
    p.add_argument("--n-refs", type=int, default=4)
    p.add_argument("--seeds", default="1,2,3,4,5,7")
    p.add_argument("--ps", type=float, default=20.0)
    p.add_argument("--sym", action="store_true", help="sum the action kernel over the atom permutations")
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as work:
        model, action, start = models(args.refs, args.n_refs, work, "auto" if args.sym else None)
    log(f"action model: {action.fit_info_}")
    n = int(round(args.ps * 1000))
    rows = []
    for seed in (int(s) for s in args.seeds.split(",")):
        row = {"seed": seed}
        for name, act in (("learned", action), ("midpoint", _zero_correction(action)), ("verlet", None)):
            sim = (Simulation(model, start, dt_fs=1.0, temperature_K=500, seed=seed) if act is None else
                   ActionSimulation(model, act, start, temperature_K=500, seed=seed))
            s = sim.run(n, save_every=2, report_every=n, progress=False)
            row[name] = {k: s.get(k) for k in KEYS}
        rows.append(row)
        log(f"seed {seed}: " + " | ".join(
            f"{k} std {row[k]['etot_std_eV']:.2e} drift {row[k]['etot_drift_eV_per_ps']:+.1e} "
            f"+- {row[k]['etot_drift_se_eV_per_ps']:.1e}" for k in ("learned", "midpoint", "verlet"))
            + f" | learned beyond its data {row['learned']['beyond_action_data_fraction']}")
    out = os.path.join(HERE, "results", f"action_seeds_{args.refs}{'_sym' if args.sym else ''}.json")
    with open(out, "w") as fh:
        json.dump({"args": vars(args), "fit_info": action.fit_info_, "runs": rows}, fh, indent=1, default=float)
    log(f"wrote {out}")


if __name__ == "__main__":
    main()
