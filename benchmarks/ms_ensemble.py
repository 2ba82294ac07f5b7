"""Do an outer step and the single-step model sample the same distributions? An ensemble
of independent Langevin runs (seeds) per integrator, compared by run-to-run statistics.

One 50-ps run of a 54-atom chain samples its slow conformational motion poorly: two such
runs differ in a dihedral histogram by more than the two halves of one run do
(benchmarks/README.md section 3). Here each integrator gets ``--seeds`` independent runs
from the same start; bond-length means are compared with standard errors from the scatter
between runs (independent by construction), and the dihedral histogram of the pooled runs
of one integrator against the other's, next to the same distance between two halves of the
seeds of one integrator (the noise scale). Also: wall time per simulated ps, and every
integrator against the reference data.

    OMP_NUM_THREADS=2 OPENBLAS_NUM_THREADS=2 NUMBA_NUM_THREADS=2 python benchmarks/ms_ensemble.py \\
        --data ../shared/data/oleic-acid.npz --model MS.h5 --full FULL.h5 --mts 3 --seeds 1-8 \\
        --out OUT.json
"""

import argparse
import json
import os
import tempfile
import time
import warnings

import numpy as np

import gdmlx
from bench_multiscale import dihedral_histogram, first_dihedral
from gdmlx.md import MDInstabilityError, Simulation, read_trajectory
from gdmlx.multiscale import bond_graph_pairs
from ms_stability import seeds_arg


def runs(model, start, mts, seeds, ps, every, tmp, name):
    """Positions (frames, N, 3) of each finished run, wall s per simulated ps, and stops."""
    out, walls, stops = [], [], []
    steps = int(ps * 2000) // every * every
    for seed in seeds:
        path = os.path.join(tmp, f"{name}_{seed}.h5")
        sim = Simulation(model, start, dt_fs=0.5, temperature_K=500, thermostat="langevin",
                         friction_per_fs=0.01, seed=seed, slow_every=mts)
        sim.run(every * 200, save_every=every, report_every=every * 200, progress=False)   # 100 fs warm-up
        t0 = time.perf_counter()
        try:
            sim.run(steps, trajectory=path, save_every=every, report_every=steps, progress=False)
        except MDInstabilityError as exc:
            stops.append(str(exc)[:80])
            continue
        walls.append((time.perf_counter() - t0) / (steps * 0.5e-3))
        out.append(read_trajectory(path)["positions"][len(read_trajectory(path)["positions"]) // 10:])
    return out, float(np.median(walls)) if walls else None, stops


def run_stats(trajs, bonds, dih):
    """Per-run bond-length means (runs, B) and the pooled dihedral histogram."""
    i, j = bonds[:, 0], bonds[:, 1]
    means = np.array([np.linalg.norm(q[:, i] - q[:, j], axis=-1).mean(0) for q in trajs])
    hist = np.mean([dihedral_histogram(q, dih) for q in trajs], axis=0)
    return means, hist


def compare(a, b, bonds, dih):
    """Bond means (max |diff|, RMS of diff / s.e. from run-to-run scatter) and dihedral TVD."""
    (ma, ha), (mb, hb) = run_stats(a, bonds, dih), run_stats(b, bonds, dih)
    se = np.sqrt(ma.var(0, ddof=1) / len(ma) + mb.var(0, ddof=1) / len(mb))
    z = (ma.mean(0) - mb.mean(0)) / se
    return {"bond_mean_diff_max_A": float(np.abs(ma.mean(0) - mb.mean(0)).max()),
            "bond_mean_diff_over_stderr_rms": float(np.sqrt((z**2).mean())),
            "dihedral_tvd": float(0.5 * np.abs(ha - hb).sum())}


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", required=True)
    p.add_argument("--model", required=True, help="multiscale model file")
    p.add_argument("--full", help="single full model file (optional)")
    p.add_argument("--mts", type=int, default=3)
    p.add_argument("--seeds", type=seeds_arg, default=list(range(1, 9)))
    p.add_argument("--ps", type=float, default=50.0)
    p.add_argument("--out", required=True)
    args = p.parse_args()
    warnings.simplefilter("ignore", gdmlx.EnergyConsistencyWarning)
    ds = gdmlx.load_dataset(args.data)
    start = ds.R[np.random.default_rng(0).permutation(len(ds))[500]]
    bonds = bond_graph_pairs(ds.z, ds.R[:300], 1)
    dih = first_dihedral([tuple(b) for b in bonds], len(ds.z))
    every = 10 * args.mts
    ms = gdmlx.load_model(args.model)
    res = {"args": vars(args), "threads": {k: os.environ.get(k) for k in ("OMP_NUM_THREADS", "NUMBA_NUM_THREADS")},
           "dihedral_atoms": [int(a) for a in dih]}
    ens = {}
    with tempfile.TemporaryDirectory() as tmp:
        plan = [("multiscale_n1", ms, 1), (f"multiscale_n{args.mts}", ms, args.mts)]
        if args.full:
            plan.append(("full_n1", gdmlx.load_model(args.full), 1))
        for name, model, n in plan:
            trajs, wall, stops = runs(model, start, n, args.seeds, args.ps, every, tmp, name)
            ens[name] = trajs
            res[name] = {"finished": len(trajs), "stops": stops, "wall_s_per_ps": wall}
            print(json.dumps({name: res[name]}), flush=True)
    half = len(ens["multiscale_n1"]) // 2
    res["noise_n1_halves_of_seeds"] = compare(ens["multiscale_n1"][:half], ens["multiscale_n1"][half:], bonds, dih)
    res["n%d_vs_n1" % args.mts] = compare(ens[f"multiscale_n{args.mts}"], ens["multiscale_n1"], bonds, dih)
    data = [ds.R[k * len(ds) // 8:(k + 1) * len(ds) // 8] for k in range(8)]   # 8 consecutive blocks
    res["data_halves"] = compare(data[:4], data[4:], bonds, dih)
    for name, trajs in ens.items():
        res[f"{name}_vs_data"] = compare(trajs, data, bonds, dih)
    if args.full:
        res["n%d_vs_full" % args.mts] = compare(ens[f"multiscale_n{args.mts}"], ens["full_n1"], bonds, dih)
        res["speedup_n%d_vs_full" % args.mts] = res["full_n1"]["wall_s_per_ps"] / res[f"multiscale_n{args.mts}"]["wall_s_per_ps"]
    print(json.dumps({k: v for k, v in res.items() if k != "args"}), flush=True)
    with open(args.out, "w") as f:
        json.dump(res, f, indent=1)


if __name__ == "__main__":
    main()
