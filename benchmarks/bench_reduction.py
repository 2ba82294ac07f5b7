#!/usr/bin/env python3
"""Benchmark automatic descriptor reduction (gdmlx.reduction, issue 4).

Three sub-commands, each writing ``benchmarks/results/reduction_<name>.json``:

``molecule``  one dataset. Split ``perm = numpy.random.default_rng(seed).permutation(n)``:
    train = ``perm[:M]``, valid = ``perm[M:M + n_valid]``, test = the next ``n_test``
    (disjoint). Trains full models for each sigma of ``--sigmas`` and keeps the one with the
    lowest validation force MAE; measures test errors, one-geometry latency (median of
    ``--n-latency`` calls of ``force_parts()[0].predict_one``) and batched throughput (median
    of 3 calls of ``force_parts()[0].predict`` on the test set). Then compares the two
    importance measures on the validation geometries (timing, Spearman rank correlation,
    overlap of the top-k sets at k = 40 % of the features) and runs
    ``reduce_pairs(model, R_valid, F_valid, tol, importance=...)`` with each measure of
    ``--importance``, reporting kept features (local: mean training distance < 5 A),
    test errors, latency and throughput of the reduced model and the reduction's wall time
    (whole and per round). ``--figure`` saves ``plot_reduction`` of the first reduction to
    ``results/reduction_<name>.png``.

``alkanes``   the n-alkane series (C4/C8/C16/C32): same protocol on each (by default M=100,
    100 validation, 100..200 test), then fits ``log(kept) = a + b log(N)`` and saves the
    log-log figure ``results/reduction_alkanes.png``.

``summary``   prints markdown tables from the JSON files.

Thread counts: ``--threads`` (default 2) is written to OMP_NUM_THREADS,
OPENBLAS_NUM_THREADS, MKL_NUM_THREADS and NUMBA_NUM_THREADS before numpy or numba load.
``--solve-threads K`` sets only scipy's OpenBLAS (used by the Cholesky) to K threads.
Fitted full models are cached in ``--cache`` (default /tmp/gdmlx-bench-reduction) so that an
interrupted run does not retrain them; ``--no-cache`` ignores the cache.

Examples (what produced the committed results)::

    python benchmarks/bench_reduction.py molecule --data /work/shared/data/oleic-acid.npz \\
        --n-train 200 --sigmas 10 20 40 --importance masking own-term --figure
    python benchmarks/bench_reduction.py molecule --data /work/shared/data/aspirin.npz \\
        --n-train 300 --sigmas 10 20 40 --importance masking own-term
    python benchmarks/bench_reduction.py alkanes --n-train 100 --sigmas 10 20 40
    python benchmarks/bench_reduction.py summary
"""

import argparse
import json
import os
import sys
import time

THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS")
HERE = os.path.dirname(os.path.abspath(__file__))
RESULTS = os.path.join(HERE, "results")
DATA = "/work/shared/data"
ALKANES = ("alkane-c4", "alkane-c8", "alkane-c16", "alkane-c32")


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)

    def common(q):
        q.add_argument("--n-train", type=int, default=200)
        q.add_argument("--n-valid", type=int, default=200)
        q.add_argument("--n-test", type=int, default=1000)
        q.add_argument("--sigmas", type=float, nargs="+", default=[10.0, 20.0, 40.0])
        q.add_argument("--lam", type=float, default=1e-10)
        q.add_argument("--solver", default="analytic", choices=["analytic", "cg", "auto"],
                       help="solver of the full model and of every retrain")
        q.add_argument("--tol", type=float, default=0.05)
        q.add_argument("--importance", nargs="+", default=["masking"],
                       choices=["masking", "own-term"])
        q.add_argument("--n-latency", type=int, default=300)
        q.add_argument("--threads", type=int, default=2)
        q.add_argument("--solve-threads", type=int, default=None,
                       help="threads of scipy's OpenBLAS (the Cholesky) only, set with threadpoolctl "
                            "(runs before the blocked factorisation used it to avoid dpotrf's crash)")
        q.add_argument("--seed", type=int, default=0)
        q.add_argument("--cache", default="/tmp/gdmlx-bench-reduction")
        q.add_argument("--no-cache", action="store_true")

    m = sub.add_parser("molecule", help="one dataset")
    m.add_argument("--data", required=True)
    m.add_argument("--name", help="result name (default: the dataset file stem)")
    m.add_argument("--figure", action="store_true", help="save results/reduction_<name>.png")
    common(m)
    a = sub.add_parser("alkanes", help="the alkane series, kept features against size")
    common(a)
    a.add_argument("--molecules", nargs="+", default=list(ALKANES))
    a.set_defaults(n_train=100, n_valid=100, n_test=200)
    sub.add_parser("summary", help="print tables from results/reduction_*.json")
    return p.parse_args(argv)


ARGS = parse_args()
if ARGS.cmd != "summary":
    for _v in THREAD_VARS:
        os.environ[_v] = str(ARGS.threads)

import numpy as np  # noqa: E402  (after the thread settings)


def log(msg):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def write_json(path, obj):
    tmp = path + ".tmp"
    with open(tmp, "w") as fh:
        json.dump(obj, fh, indent=1, default=_jsonable)
    os.replace(tmp, path)


def _jsonable(o):
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, np.generic):
        return o.item()
    raise TypeError(type(o))


def split(n, M, n_valid, n_test, seed):
    perm = np.random.default_rng(seed).permutation(n)
    if M + n_valid + n_test > n:
        raise SystemExit(f"split needs {M + n_valid + n_test} frames, dataset has {n}")
    return perm[:M], perm[M:M + n_valid], perm[M + n_valid:M + n_valid + n_test]


def errors(model, R, F, E):
    E_pred, F_pred = model.predict_energy_forces(R)
    dF = F_pred - F
    out = {"f_mae": float(np.abs(dF).mean()), "f_rmse": float(np.sqrt((dF ** 2).mean()))}
    if E is not None:
        dE = E_pred - E
        out.update(e_mae=float(np.abs(dE).mean()), e_rmse=float(np.sqrt((dE ** 2).mean())))
    return out


def speed(model, R_test, n_latency):
    """Median one-geometry latency (us) and batched throughput (geometries/s) of the kernel."""
    from gdmlx.timing import one_geometry_latency_us
    part = model.force_parts()[0]
    p10, p50, p90 = one_geometry_latency_us(part, R_test, n_latency, q=(10, 50, 90))
    part.predict(R_test[:10])
    batch = []
    for _ in range(3):
        t0 = time.perf_counter()
        part.predict(R_test)
        batch.append(time.perf_counter() - t0)
    return {"latency_us": float(p50), "latency_p10_us": float(p10), "latency_p90_us": float(p90),
            "throughput_geom_per_s": float(len(R_test) / np.median(batch)),
            "n_latency": n_latency, "n_batch": int(len(R_test))}


def set_scipy_blas_threads(n):
    """Thread count of the OpenBLAS that scipy.linalg (cho_factor) uses; numpy's is left alone."""
    import scipy.linalg  # noqa: F401  (loads scipy's OpenBLAS)
    from threadpoolctl import ThreadpoolController
    done = []
    for lc in ThreadpoolController().lib_controllers:
        if "scipy.libs" in lc.filepath:
            lc.set_num_threads(n)
            done.append({"filepath": lc.filepath, "version": lc.version, "num_threads": n})
    return done


def fit_full(name, R, F, E, z, sigma, args):
    """Full-descriptor model, from the cache if there."""
    import gdmlx
    path = os.path.join(args.cache, f"{name}_M{len(R)}_s{sigma:g}_lam{args.lam:g}_{args.solver}_seed{args.seed}.h5")
    if not args.no_cache and os.path.exists(path):
        model = gdmlx.load_model(path)
        if model.R_train_ is not None and np.array_equal(model.R_train_, R):
            log(f"{name}: sigma {sigma:g}: loaded cached full model {path}")
            return model, None
    t0 = time.perf_counter()
    model = gdmlx.GDMLRegressor(sigma=sigma, lam=args.lam, solver=args.solver).fit(R, F, E, z=z)
    seconds = time.perf_counter() - t0
    os.makedirs(args.cache, exist_ok=True)
    model.save(path)
    return model, {"fit_s": seconds, **model.fit_info_}


def round_test_errors(R_test, F_test, E_test):
    """``on_round`` callback for ``reduce_pairs``: adds the test errors of each model tried.

    Benchmark bookkeeping only: the reduction selects on the validation set; these numbers
    show what each round's model would give on the test set. Their evaluation time is
    kept apart (``eval_s``) so that it can be taken out of the reduction's own time.
    """
    def on_round(trial, rd):
        t0 = time.perf_counter()
        err = errors(trial, R_test, F_test, E_test)
        rd["test_f_mae"], rd["test_e_mae"] = err["f_mae"], err.get("e_mae")
        rd["eval_s"] = time.perf_counter() - t0
    return on_round


def pairs_local(pairs, mean_distance, cutoff):
    return int(np.sum(mean_distance < cutoff)), int(np.sum(mean_distance >= cutoff))


def run_molecule(data_path, name, args, figure=False):
    from scipy.stats import spearmanr

    from gdmlx.reduction import (LOCAL_CUTOFF_ANG, _pair_rows, masking_importance,
                                 own_term_importance, plot_reduction, reduce_pairs)
    t_start = time.perf_counter()
    solve_blas = set_scipy_blas_threads(args.solve_threads) if args.solve_threads else None
    ds = np.load(data_path)
    R_all, F_all, z = ds["R"], ds["F"], ds["z"]
    E_all = ds["E"].reshape(-1) if "E" in ds else None
    n, N = R_all.shape[:2]
    tr, va, te = split(n, args.n_train, args.n_valid, args.n_test, args.seed)
    E_tr = None if E_all is None else E_all[tr]
    E_te = None if E_all is None else E_all[te]
    R_va, F_va = R_all[va], F_all[va]
    R_te, F_te = R_all[te], F_all[te]
    out_path = os.path.join(RESULTS, f"reduction_{name}.json")
    res = {"name": name, "data": data_path, "n_atoms": int(N), "n_frames": int(n),
           "n_pairs_full": N * (N - 1) // 2, "args": vars(args),
           "threads": {v: os.environ.get(v) for v in THREAD_VARS}, "solve_blas": solve_blas,
           "split": {"seed": args.seed, "n_train": len(tr), "n_valid": len(va), "n_test": len(te),
                     "rule": "perm = default_rng(seed).permutation(n); train, valid, test = "
                             "consecutive slices of perm"},
           "training_matrix_size": 3 * N * len(tr),
           "training_matrix_gb": 8 * (3 * N * len(tr)) ** 2 / 1e9}

    # 1. full model, sigma chosen on the validation set
    grid, models = [], {}
    for sigma in args.sigmas:
        model, info = fit_full(name, R_all[tr], F_all[tr], E_tr, z, sigma, args)
        v = float(np.abs(model.predict(R_va) - F_va).mean())
        grid.append({"sigma": sigma, "valid_f_mae": v, "fit": info})
        models[sigma] = model
        log(f"{name}: sigma {sigma:g}: validation force MAE {v:.4f}" +
            (f" (fit {info['fit_s']:.0f} s)" if info else ""))
    best = min(grid, key=lambda g: g["valid_f_mae"])
    sigma = best["sigma"]
    full = models[sigma]
    del models
    res["sigma_grid"] = grid
    res["sigma"] = sigma
    res["sigma_at_grid_edge"] = sigma in (min(args.sigmas), max(args.sigmas)) and len(args.sigmas) > 1
    dist = np.linalg.norm(R_all[tr][:, full.pairs_[:, 0]] - R_all[tr][:, full.pairs_[:, 1]], axis=-1).mean(0)
    nl, nn = pairs_local(full.pairs_, dist, LOCAL_CUTOFF_ANG)
    res["full"] = {"n_pairs": len(full.pairs_), "n_local": nl, "n_nonlocal": nn,
                   "valid_f_mae": best["valid_f_mae"], "test": errors(full, R_te, F_te, E_te),
                   **speed(full, R_te, args.n_latency)}
    log(f"{name}: full model sigma {sigma:g}: test force MAE {res['full']['test']['f_mae']:.4f}, "
        f"latency {res['full']['latency_us']:.0f} us, {res['full']['throughput_geom_per_s']:.0f} geom/s")
    write_json(out_path, res)

    # 2. cheap against published importance, on the full model
    exp = full.expansion_
    masking_importance(exp, R_va[:1])        # compile
    own_term_importance(exp, R_va[:1])
    t0 = time.perf_counter()
    imp_m = masking_importance(exp, R_va)
    t_m = time.perf_counter() - t0
    t0 = time.perf_counter()
    imp_o = own_term_importance(exp, R_va)
    t_o = time.perf_counter() - t0
    D = len(imp_m)
    k = int(round(0.4 * D))
    top_m = set(np.argsort(imp_m)[::-1][:k].tolist())
    top_o = set(np.argsort(imp_o)[::-1][:k].tolist())
    rho = spearmanr(imp_m, imp_o)
    loc = dist < LOCAL_CUTOFF_ANG
    res["importance_comparison"] = {
        "n_valid": len(R_va), "masking_s": t_m, "own_term_s": t_o, "speedup": t_m / t_o,
        "spearman": float(rho.statistic if hasattr(rho, "statistic") else rho[0]),
        "spearman_local_only": float(spearmanr(imp_m[loc], imp_o[loc])[0]) if loc.sum() > 2 else None,
        "spearman_nonlocal_only": float(spearmanr(imp_m[~loc], imp_o[~loc])[0]) if (~loc).sum() > 2 else None,
        "top_k": k, "top_k_overlap": len(top_m & top_o), "top_k_overlap_fraction": len(top_m & top_o) / k,
        "top_k_local_masking": int(loc[sorted(top_m)].sum()),
        "top_k_local_own_term": int(loc[sorted(top_o)].sum()),
        "masking": imp_m, "own_term": imp_o, "mean_distance": dist}
    ic = res["importance_comparison"]
    log(f"{name}: importance: masking {t_m:.2f} s, own-term {t_o:.3f} s; Spearman {ic['spearman']:.3f}; "
        f"top-{k} overlap {ic['top_k_overlap']} ({ic['top_k_overlap_fraction']:.0%})")
    write_json(out_path, res)

    # 3. reductions
    res["reductions"] = {}
    for method in args.importance:
        log(f"{name}: reducing with {method} importance, tol {args.tol}")
        t0 = time.perf_counter()
        reduced, rep = reduce_pairs(full, R_va, F_va, tol=args.tol, importance=method,
                                    on_round=round_test_errors(R_te, F_te, E_te))
        seconds = time.perf_counter() - t0 - sum(rd["eval_s"] for rd in rep.rounds)
        kept_rows = _pair_rows(full.pairs_, reduced.pairs_)
        r = {"seconds": seconds, "n_rounds": len(rep.rounds),
             "n_pairs_kept": len(reduced.pairs_), "n_pairs_full": len(full.pairs_),
             "kept_percent": 100.0 * len(reduced.pairs_) / len(full.pairs_),
             "n_local": rep.n_local, "n_nonlocal": rep.n_nonlocal,
             "n_local_full": nl, "n_nonlocal_full": nn,
             "full_valid_f_mae": rep.full_valid_f_mae, "rounds": rep.rounds,
             "rounds_seconds_sum": float(sum(x["seconds"] for x in rep.rounds)),
             "valid_f_mae": float(np.abs(reduced.predict(R_va) - F_va).mean()),
             "test": errors(reduced, R_te, F_te, E_te), "kept_pair_rows": kept_rows,
             **speed(reduced, R_te, args.n_latency)}
        r["test_f_mae_change_percent"] = 100 * (r["test"]["f_mae"] / res["full"]["test"]["f_mae"] - 1)
        if "e_mae" in r["test"]:
            r["test_e_mae_change_percent"] = 100 * (r["test"]["e_mae"] / res["full"]["test"]["e_mae"] - 1)
        r["latency_speedup"] = res["full"]["latency_us"] / r["latency_us"]
        r["throughput_speedup"] = r["throughput_geom_per_s"] / res["full"]["throughput_geom_per_s"]
        res["reductions"][method] = r
        log(f"{name}: {method}: kept {r['n_pairs_kept']}/{len(full.pairs_)} ({r['kept_percent']:.1f} %), "
            f"{rep.n_local} local, {rep.n_nonlocal} non-local; test force MAE "
            f"{res['full']['test']['f_mae']:.4f} -> {r['test']['f_mae']:.4f} "
            f"({r['test_f_mae_change_percent']:+.1f} %); latency x{r['latency_speedup']:.2f}; "
            f"{seconds:.0f} s, {len(rep.rounds)} rounds")
        if figure and method == args.importance[0]:
            fig = os.path.join(RESULTS, f"reduction_{name}.png")
            plot_reduction(rep, N, fig, method)
            res["figure"] = os.path.relpath(fig, os.path.dirname(HERE))
        write_json(out_path, res)
        del reduced
    if len(res["reductions"]) == 2:
        a, b = (set(res["reductions"][m]["kept_pair_rows"].tolist()) for m in ("masking", "own-term"))
        res["kept_sets"] = {"intersection": len(a & b), "union": len(a | b), "jaccard": len(a & b) / len(a | b)}
    res["total_seconds"] = time.perf_counter() - t_start
    write_json(out_path, res)
    log(f"{name}: done in {res['total_seconds']:.0f} s; wrote {out_path}")
    return res


def run_alkanes(args):
    rows = []
    for mol in args.molecules:
        path = os.path.join(RESULTS, f"reduction_{mol}.json")
        res = run_molecule(os.path.join(DATA, f"{mol}.npz"), mol, args)
        r = res["reductions"][args.importance[0]]
        rows.append({"name": mol, "n_atoms": res["n_atoms"], "n_pairs_full": res["n_pairs_full"],
                     "n_pairs_kept": r["n_pairs_kept"], "n_local": r["n_local"], "n_nonlocal": r["n_nonlocal"],
                     "sigma": res["sigma"], "test_f_mae_full": res["full"]["test"]["f_mae"],
                     "test_f_mae_reduced": r["test"]["f_mae"], "latency_speedup": r["latency_speedup"],
                     "seconds": r["seconds"], "json": os.path.basename(path)})
    summarize_alkanes(rows, args)


def summarize_alkanes(rows, args):
    N = np.array([r["n_atoms"] for r in rows], float)
    kept = np.array([r["n_pairs_kept"] for r in rows], float)
    full = np.array([r["n_pairs_full"] for r in rows], float)
    b, a = np.polyfit(np.log(N), np.log(kept), 1)
    bf, af = np.polyfit(np.log(N), np.log(full), 1)
    out = {"rows": rows, "fit_kept": {"a": a, "b": b}, "fit_full": {"a": af, "b": bf},
           "args": vars(args), "threads": {v: os.environ.get(v) for v in THREAD_VARS}}
    if len(N) >= 3:
        b2, _ = np.polyfit(np.log(N[1:]), np.log(kept[1:]), 1)
        out["fit_kept_without_smallest"] = {"b": b2}
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        fig, ax = plt.subplots(figsize=(5.5, 4.2))
        xs = np.geomspace(N.min() * 0.9, N.max() * 1.1, 50)
        ax.loglog(N, full, "o", color="0.5", label="full descriptor N(N-1)/2")
        ax.loglog(xs, np.exp(af) * xs ** bf, "--", color="0.5", label=f"fit: exponent {bf:.2f}")
        ax.loglog(N, kept, "s", color="C3", label=f"kept after reduction (tol {args.tol:g})")
        ax.loglog(xs, np.exp(a) * xs ** b, "-", color="C3", label=f"fit: exponent {b:.2f}")
        for r in rows:
            ax.annotate(r["name"].replace("alkane-", "").upper(), (r["n_atoms"], r["n_pairs_kept"]),
                        textcoords="offset points", xytext=(5, -12), fontsize=8)
        ax.set(xlabel="atoms N", ylabel="pair features",
               title="n-alkanes: descriptor size against molecule size")
        ax.legend(fontsize=8)
        fig.tight_layout()
        fig.savefig(os.path.join(RESULTS, "reduction_alkanes.png"), dpi=120)
        plt.close(fig)
        out["figure"] = "benchmarks/results/reduction_alkanes.png"
    except ImportError:
        log("matplotlib missing: no figure")
    write_json(os.path.join(RESULTS, "reduction_alkanes.json"), out)
    log(f"alkanes: kept ~ N^{b:.2f} (full ~ N^{bf:.2f})")


def summary():
    import glob
    for path in sorted(glob.glob(os.path.join(RESULTS, "reduction_*.json"))):
        with open(path) as fh:
            res = json.load(fh)
        if "rows" in res:
            print(f"\n### alkanes: kept ~ N^{res['fit_kept']['b']:.2f}, full ~ N^{res['fit_full']['b']:.2f}\n")
            print("| molecule | N | pairs | kept | local | non-local | sigma | test F MAE full | reduced | latency x | s |")
            print("|---|---|---|---|---|---|---|---|---|---|---|")
            for r in res["rows"]:
                print(f"| {r['name']} | {r['n_atoms']} | {r['n_pairs_full']} | {r['n_pairs_kept']} | "
                      f"{r['n_local']} | {r['n_nonlocal']} | {r['sigma']:g} | {r['test_f_mae_full']:.4f} | "
                      f"{r['test_f_mae_reduced']:.4f} | {r['latency_speedup']:.2f} | {r['seconds']:.0f} |")
            continue
        f = res.get("full")
        if f is None:
            continue
        print(f"\n### {res['name']} (N={res['n_atoms']}, M={res['split']['n_train']}, sigma={res['sigma']:g}, "
              f"grid {[g['sigma'] for g in res['sigma_grid']]}: "
              f"{[round(g['valid_f_mae'], 4) for g in res['sigma_grid']]})\n")
        print("| model | pairs | % | local | non-local | test F MAE | dF % | test E MAE | latency us | x | geom/s | x | reduction s | rounds |")
        print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
        print(f"| full | {f['n_pairs']} | 100 | {f['n_local']} | {f['n_nonlocal']} | {f['test']['f_mae']:.4f} | | "
              f"{f['test'].get('e_mae', float('nan')):.4f} | {f['latency_us']:.0f} | 1 | "
              f"{f['throughput_geom_per_s']:.0f} | 1 | | |")
        for m, r in res.get("reductions", {}).items():
            print(f"| {m} | {r['n_pairs_kept']} | {r['kept_percent']:.1f} | {r['n_local']} | {r['n_nonlocal']} | "
                  f"{r['test']['f_mae']:.4f} | {r['test_f_mae_change_percent']:+.1f} | "
                  f"{r['test'].get('e_mae', float('nan')):.4f} | {r['latency_us']:.0f} | {r['latency_speedup']:.2f} | "
                  f"{r['throughput_geom_per_s']:.0f} | {r['throughput_speedup']:.2f} | {r['seconds']:.0f} | {r['n_rounds']} |")
        ic = res.get("importance_comparison")
        if ic:
            print(f"\nimportance: masking {ic['masking_s']:.3f} s, own-term {ic['own_term_s']:.4f} s "
                  f"(x{ic['speedup']:.0f}); Spearman {ic['spearman']:.3f} (local {ic['spearman_local_only']}, "
                  f"non-local {ic['spearman_nonlocal_only']}); top-{ic['top_k']} overlap {ic['top_k_overlap']} "
                  f"({ic['top_k_overlap_fraction']:.1%})")
        for m, r in res.get("reductions", {}).items():
            print(f"\n{m} rounds:")
            for x in r["rounds"]:
                print(f"  {x['n_pairs']:5d} pairs  drop {x['drop_fraction']:.4f}  valid F MAE {x['valid_f_mae']:.4f} "
                      f"({x['valid_f_mae'] / r['full_valid_f_mae'] - 1:+.1%})  "
                      f"{'accepted' if x['accepted'] else 'rejected'}  {x['seconds']:.1f} s")
        if "kept_sets" in res:
            print(f"\nkept sets masking vs own-term: {res['kept_sets']}")


def main():
    if ARGS.cmd == "summary":
        summary()
    elif ARGS.cmd == "molecule":
        name = ARGS.name or os.path.splitext(os.path.basename(ARGS.data))[0]
        run_molecule(ARGS.data, name, ARGS, figure=ARGS.figure)
    else:
        run_alkanes(ARGS)


if __name__ == "__main__":
    main()
