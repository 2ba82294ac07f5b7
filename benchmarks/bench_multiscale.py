"""Multiscale model + impulse r-RESPA against the single-step full model (gdmlx issue 5).

For one molecule: train a full GDML model and a MultiscaleModel (fast local part + slow
residual part) on the same geometries; compare test accuracy; run NVE at outer periods
n = 1..8 (drift, fluctuation, speed) next to the full model at the same inner step; run
long Langevin trajectories with the full model and with the multiscale model at a chosen
n, and compare bond-length, dihedral and vibrational-spectrum statistics. With
``--reduce-slow TOL`` the slow part's descriptor is reduced (gdmlx.reduction.reduce_slow_part,
validation geometries ``perm[n_train:n_train + n_valid]``, never the test set) before MD.
Fitted models are kept in ``--cache`` and reused by a run with the same settings, so that
the MD part can be rerun without the training (the timings of training are then absent).

    OMP_NUM_THREADS=2 OPENBLAS_NUM_THREADS=2 NUMBA_NUM_THREADS=2 \
        python benchmarks/bench_multiscale.py --data ../shared/data/aspirin.npz --n-train 300 --mts 4
"""

import argparse
import json
import os
import time
import warnings

import ase.units
import numpy as np
import sklearn.base

import gdmlx
from gdmlx.md import Simulation
from gdmlx.md.probe import StabilityProbe
from gdmlx.multiscale import bond_graph_pairs
from gdmlx.reduction import reduce_slow_part
from gdmlx.timing import one_geometry_latency_us

def parse_args():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", required=True)
    p.add_argument("--n-train", type=int, default=300)
    p.add_argument("--n-valid", type=int, default=200, help="validation geometries (for --reduce-slow)")
    p.add_argument("--n-test", type=int, default=1000)
    p.add_argument("--n-fast", type=int, default=100, help="training geometries of the fast part")
    p.add_argument("--fast-lam", type=float, default=1e-4,
                   help="the fast part's lam (sigma 4; default 1e-4, MultiscaleModel's default)")
    p.add_argument("--reduce-slow", type=float, default=None, metavar="TOL",
                   help="reduce the slow part's descriptor to validation force MAE within TOL")
    p.add_argument("--importance", default="masking", choices=("masking", "own-term"))
    p.add_argument("--md-check", action="store_true",
                   help="--reduce-slow: every reduction must also pass the MD check (3 Langevin runs "
                        "of 20 ps at --temperature and outer period --mts, gdmlx.md.probe.StabilityProbe)")
    p.add_argument("--sigma", type=float, default=10.0)
    p.add_argument("--lam", type=float, default=1e-10, help="lam of the full model and the slow part")
    p.add_argument("--solver", default="analytic", choices=("analytic", "cg", "auto"),
                   help="solver of the full model and the slow part")
    p.add_argument("--mts", type=int, default=4, help="outer period for the NVT comparison")
    p.add_argument("--nve-ps", type=float, default=10.0)
    p.add_argument("--nvt-ps", type=float, default=50.0)
    p.add_argument("--temperature", type=float, default=500.0)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--cache", default="/tmp/gdmlx-bench-multiscale",
                   help="folder for the fitted models, reused by a run with the same settings ('' : none)")
    p.add_argument("--out", default=None, help="JSON output (default benchmarks/results/multiscale_<name>.json)")
    return p.parse_args()


def errors(model, R, F, E):
    E_p, F_p = model.predict_energy_forces(R)
    return {"f_mae": float(np.abs(F_p - F).mean()), "e_mae": float(np.abs(E_p - E).mean())}


def nve(model, start, v0, n, ps):
    steps = int(ps * 2000) // (10 * n) * (10 * n)
    sim = Simulation(model, start, dt_fs=0.5, velocities=v0, slow_every=n)
    try:
        s = sim.run(steps, save_every=10 * n, report_every=steps, progress=False)
    except gdmlx.md.MDInstabilityError as exc:
        return {"n": n, "unstable": str(exc)}
    return {"n": n, "steps_per_s": s["steps_per_s"], "drift_eV_per_ps": s["etot_drift_eV_per_ps"],
            "drift_se_eV_per_ps": s.get("etot_drift_se_eV_per_ps"),
            "etot_std_eV": s["etot_std_eV"], "mean_T": s["mean_temperature_K"],
            "wall_s_per_ps": s["wall_s"] / s["simulated_ps"]}


def nvt_trajectory(model, start, n, save_every, ps, temperature, seed, path):
    """Langevin run (1 ps equilibration, then ``ps``) with outer period n, frames every save_every.

    Returns ``(summary, trajectory)``; a run the engine stops (the geometry left the model's
    domain) keeps its frames, and ``summary["error"]`` says why it stopped.
    """
    steps = int(ps * 2000) // save_every * save_every
    sim = Simulation(model, start, dt_fs=0.5, temperature_K=temperature, thermostat="langevin",
                     friction_per_fs=0.01, seed=seed, slow_every=n)
    t0 = time.perf_counter()
    try:
        sim.run(2000 // save_every * save_every, save_every=save_every, report_every=save_every * 10,
                progress=False)
        t0 = time.perf_counter()
        sim.run(steps, trajectory=path, save_every=save_every, report_every=steps, progress=False)
        error = None
    except gdmlx.md.MDInstabilityError as exc:
        error = str(exc)
    wall = time.perf_counter() - t0
    if not os.path.exists(path):        # stopped during equilibration
        return {"wall_s": wall, "simulated_ps": 0.0, "error": error}, None
    trj = gdmlx.md.read_trajectory(path)
    return {"wall_s": wall, "simulated_ps": len(trj["positions"]) * save_every * 0.5e-3, "error": error}, trj


def dihedral(q, i, j, k, l):
    b0, b1, b2 = q[:, i] - q[:, j], q[:, k] - q[:, j], q[:, l] - q[:, k]
    b1 /= np.linalg.norm(b1, axis=1)[:, None]
    v = b0 - np.einsum("ij,ij->i", b0, b1)[:, None] * b1
    w = b2 - np.einsum("ij,ij->i", b2, b1)[:, None] * b1
    return np.degrees(np.arctan2(np.einsum("ij,ij->i", np.cross(b1, v), w), np.einsum("ij,ij->i", v, w)))


def first_dihedral(bonds, n_atoms):
    """Atoms i-j-k-l of the first proper dihedral along a bond j-k with heavy neighbours."""
    nb = {a: set() for a in range(n_atoms)}
    for a, b in bonds:
        nb[a].add(b)
        nb[b].add(a)
    for j, k in bonds:
        left, right = nb[j] - {k}, nb[k] - {j}
        if left and right:
            return min(left), j, k, min(right)
    return None


def spectrum(v, dt_fs):
    """Vibrational density of states from the velocity autocorrelation (normalised)."""
    v = v.reshape(len(v), -1)
    f = np.fft.rfft(v - v.mean(0), n=2 * len(v), axis=0)
    vacf = np.fft.irfft((f * f.conj()).real.sum(1))[:len(v)]
    vacf /= vacf[0]
    s = np.abs(np.fft.rfft(vacf * np.hanning(2 * len(v))[len(v):]))
    freq_cm = np.fft.rfftfreq(len(v), d=dt_fs * 1e-15) / 2.99792458e10
    return freq_cm, s / s.sum()


def dihedral_histogram(R, dih):
    """Normalised histogram (36 bins of 10 degrees) of dihedral ``dih`` over frames ``R``."""
    return np.histogram(dihedral(R, *dih), np.linspace(-180, 180, 37))[0] / len(R)


def block_mean_se(x, blocks=10):
    """Mean (over axis 0) and its standard error from ``blocks`` block means."""
    b = np.array([c.mean(0) for c in np.array_split(x, blocks)])
    return x.mean(0), b.std(0, ddof=1) / np.sqrt(blocks)


def compare_to_data(positions, R_data, bonds, dih):
    """Bond-length and dihedral statistics of ``positions`` (n, N, 3) against ``R_data``
    (reference frames: the dataset, or another trajectory)."""
    i, j = bonds[:, 0], bonds[:, 1]
    length = lambda R: np.linalg.norm(R[:, i] - R[:, j], axis=-1)
    (m_t, se_t), (m_d, se_d) = block_mean_se(length(positions)), block_mean_se(length(R_data))
    z = (m_t - m_d) / np.sqrt(se_t**2 + se_d**2)
    out = {"bond_mean_diff_max_A": float(np.abs(m_t - m_d).max()),
           "bond_mean_diff_over_stderr_rms": float(np.sqrt((z**2).mean())),
           "bond_std_ratio_mean": float((length(positions).std(0) / length(R_data).std(0)).mean())}
    if dih is not None:
        h = lambda R: dihedral_histogram(R, dih)
        out["dihedral_atoms"] = [int(a) for a in dih]
        out["dihedral_tvd"] = float(0.5 * np.abs(h(positions) - h(R_data)).sum())
    return out


def compare_nvt(ref, test, bonds, dih, dt_save_fs):
    """Statistics of the multiscale trajectory against the reference, with noise scales."""
    def halves(x):
        h = len(x) // 2
        return x[:h], x[h:2 * h]

    out = compare_to_data(test["positions"], ref["positions"], bonds, dih)
    if dih is not None:
        r1, r2 = halves(ref["positions"])
        out["dihedral_tvd_ref_halves"] = float(0.5 * np.abs(dihedral_histogram(r1, dih)
                                                            - dihedral_histogram(r2, dih)).sum())
    n = min(len(ref["velocities"]), len(test["velocities"]))
    f, s_r = spectrum(ref["velocities"][:n], dt_save_fs)
    _, s_t = spectrum(test["velocities"][:n], dt_save_fs)
    r1, r2 = halves(ref["velocities"][:n])
    f_h, s_h1 = spectrum(r1, dt_save_fs)
    _, s_h2 = spectrum(r2, dt_save_fs)
    cos = lambda a, b: float(a @ b / np.linalg.norm(a) / np.linalg.norm(b))
    out["spectrum_cosine"] = cos(s_r[f < 4000], s_t[f < 4000])
    out["spectrum_cosine_ref_halves"] = cos(s_h1[f_h < 4000], s_h2[f_h < 4000])
    T = lambda tr: 2 * tr["ekin"] / ((3 * len(tr["z"]) - 3) * 8.617333262e-5)
    out["mean_T_ref"], out["mean_T_test"] = float(T(ref).mean()), float(T(test).mean())
    return out


def fit_models(args, ds, name, train, valid, test, res):
    """The full model and the multiscale model (slow part reduced with --reduce-slow), from
    ``--cache`` if a run with the same settings saved them there; timings and reduction
    details go into ``res`` when they are fitted here."""
    key = (f"{name}_M{args.n_train}_s{args.sigma:g}_lam{args.lam:g}_{args.solver}_nfast{args.n_fast}"
           f"_flam{args.fast_lam:g}"
           f"_red{args.reduce_slow}_{args.importance}{f'_mdcheck{args.mts}' if args.md_check else ''}"
           f"_seed{args.seed}")
    paths = [os.path.join(args.cache, f"{key}_{part}.h5") for part in ("full", "ms")] if args.cache else []
    if paths and all(os.path.exists(p) for p in paths):
        res["loaded_from_cache"] = paths
        return gdmlx.load_model(paths[0]), gdmlx.load_model(paths[1])
    t0 = time.perf_counter()
    big = gdmlx.GDMLRegressor(sigma=args.sigma, lam=args.lam, solver=args.solver)
    full = sklearn.base.clone(big).fit(ds.R[train], ds.F[train], ds.E[train], ds.z)
    res["t_fit_full_s"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    fast = gdmlx.GDMLRegressor(sigma=4.0, lam=args.fast_lam)
    ms = gdmlx.MultiscaleModel(fast=fast, slow=big, n_fast=args.n_fast).fit(
        ds.R[train], ds.F[train], ds.E[train], ds.z)
    res["t_fit_multiscale_s"] = time.perf_counter() - t0
    if args.reduce_slow is not None:
        res["n_pairs_slow_unreduced"] = len(ms.slow_.pairs_)
        res["test_multiscale_unreduced"] = errors(ms, ds.R[test], ds.F[test], ds.E[test])
        t0 = time.perf_counter()
        probe = StabilityProbe(temperature_K=args.temperature, slow_every=args.mts) if args.md_check else None
        ms, report = reduce_slow_part(ms, ds.R[valid], ds.F[valid], tol=args.reduce_slow,
                                      importance=args.importance, probe=probe)
        res["reduction"] = {"tol": args.reduce_slow, "importance": args.importance,
                            "md_check": args.md_check, "seconds": time.perf_counter() - t0, "rounds": report.rounds,
                            "n_local": report.n_local, "n_nonlocal": report.n_nonlocal}
    if paths:
        os.makedirs(args.cache, exist_ok=True)
        full.save(paths[0])
        ms.save(paths[1])
    return full, ms


def main():
    args = parse_args()
    warnings.simplefilter("ignore", gdmlx.EnergyConsistencyWarning)
    ds = gdmlx.load_dataset(args.data)
    name = os.path.splitext(os.path.basename(args.data))[0]
    perm = np.random.default_rng(args.seed).permutation(len(ds))
    train, valid = perm[:args.n_train], perm[args.n_train:args.n_train + args.n_valid]
    test = perm[args.n_train + args.n_valid:args.n_train + args.n_valid + args.n_test]
    res = {"data": args.data, "n_train": args.n_train, "sigma": args.sigma, "args": vars(args),
           "threads": {k: os.environ.get(k) for k in ("OMP_NUM_THREADS", "NUMBA_NUM_THREADS")}}
    full, ms = fit_models(args, ds, name, train, valid, test, res)
    res["latency_us"] = {label: one_geometry_latency_us(part, ds.R[test], repeats=500) for label, part in
                         (("full", full.force_parts()[0]), ("fast", ms.force_parts()[0]),
                          ("slow", ms.force_parts()[1]))}
    res["n_pairs_fast"], res["n_pairs_slow"] = len(ms.fast_.pairs_), len(ms.slow_.pairs_)
    res["n_train_fast"] = ms.fast_.expansion_.n_train
    res["test_full"] = errors(full, ds.R[test], ds.F[test], ds.E[test])
    res["test_multiscale"] = errors(ms, ds.R[test], ds.F[test], ds.E[test])
    res["test_fast_part_alone"] = errors(ms.fast_, ds.R[test], ds.F[test], ds.E[test])
    print(json.dumps({k: res[k] for k in ("test_full", "test_multiscale", "n_pairs_fast", "n_pairs_slow",
                                          "latency_us")}), flush=True)

    start = ds.R[test[0]]
    warm = Simulation(full, start, temperature_K=args.temperature, seed=args.seed)
    v0 = warm.v * ase.units.fs          # ASE velocity units -> A/fs
    nve(full, start, v0, 1, 0.1)
    nve(ms, start, v0, 2, 0.1)
    res["nve_full"] = nve(full, start, v0, 1, args.nve_ps)
    res["nve_multiscale"] = [nve(ms, start, v0, n, args.nve_ps) for n in range(1, 9)]
    for r in res["nve_multiscale"]:
        if "steps_per_s" in r:
            r["speedup_vs_full"] = r["steps_per_s"] / res["nve_full"]["steps_per_s"]
            r["drift_ratio_vs_full"] = abs(r["drift_eV_per_ps"]) / max(abs(res["nve_full"]["drift_eV_per_ps"]), 1e-12)
        print(json.dumps(r), flush=True)

    out = args.out or os.path.join(os.path.dirname(__file__), "results", f"multiscale_{name}{'_reduced' if args.reduce_slow is not None else ''}.json")
    with open(out, "w") as fh:          # NVE results, in case the NVT part fails
        json.dump(res, fh, indent=1)

    tmp = f"/tmp/ms_{name}_{os.getpid()}"
    every = args.mts            # both trajectories sampled every mts inner steps
    s_ref, ref = nvt_trajectory(full, start, 1, every, args.nvt_ps, args.temperature, args.seed + 1, tmp + "_ref.h5")
    s_ms, trj = nvt_trajectory(ms, start, args.mts, every, args.nvt_ps, args.temperature, args.seed + 2, tmp + "_ms.h5")
    if ref is None or trj is None:      # a run stopped during its equilibration: nothing to compare
        res["nvt"] = {"ps": args.nvt_ps, "mts": args.mts, "error_full": s_ref["error"],
                      "error_multiscale": s_ms["error"]}
        print(json.dumps(res["nvt"]), flush=True)
        with open(out, "w") as fh:
            json.dump(res, fh, indent=1)
        return
    bonds = bond_graph_pairs(ds.z, ds.R[train], 1)
    dih = first_dihedral([tuple(b) for b in bonds], len(ds.z))
    res["nvt"] = {"ps": args.nvt_ps, "mts": args.mts,
                  "ps_done_full": s_ref["simulated_ps"], "ps_done_multiscale": s_ms["simulated_ps"],
                  "error_full": s_ref["error"], "error_multiscale": s_ms["error"],
                  "wall_s_per_ps_full": s_ref["wall_s"] / s_ref["simulated_ps"],
                  "wall_s_per_ps_multiscale": s_ms["wall_s"] / s_ms["simulated_ps"]}
    res["nvt"]["speedup"] = res["nvt"]["wall_s_per_ps_full"] / res["nvt"]["wall_s_per_ps_multiscale"]
    res["nvt"].update(compare_nvt(ref, trj, bonds, dih, 0.5 * every))
    # the same multiscale model at a single step: what the outer step alone changes
    s_one, one = nvt_trajectory(ms, start, 1, every, args.nvt_ps, args.temperature, args.seed + 3, tmp + "_ms1.h5")
    res["nvt"]["vs_multiscale_single_step"] = {"ps_done": s_one["simulated_ps"], "error": s_one["error"],
                                               "wall_s_per_ps": s_one["wall_s"] / s_one["simulated_ps"],
                                               **compare_nvt(one, trj, bonds, dih, 0.5 * every)}
    # the data are frames of one reference (xTB) Langevin run at 500 K: what every run should match
    half = len(ds.R) // 2
    res["nvt"]["vs_data"] = {"data_halves": compare_to_data(ds.R[:half], ds.R[half:], bonds, dih),
                             "full": compare_to_data(ref["positions"], ds.R, bonds, dih),
                             "multiscale": compare_to_data(trj["positions"], ds.R, bonds, dih),
                             "multiscale_single_step": compare_to_data(one["positions"], ds.R, bonds, dih)}
    print(json.dumps(res["nvt"]), flush=True)
    with open(out, "w") as fh:
        json.dump(res, fh, indent=1)


if __name__ == "__main__":
    main()
