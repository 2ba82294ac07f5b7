"""Short NVE runs from bench_multiscale.py's start geometry: does a model stay in its training
domain? For each model file (and, with ``--fit-fast-lam``, for a multiscale model with an
unreduced slow part fitted here on bench_multiscale.py's training split), 10-ps NVE at 500 K
(seed 0) at outer periods 1 and 3; prints where runs stopped and the fraction of frames
outside the training domain (gdmlx.md.domain).

    OMP_NUM_THREADS=2 OPENBLAS_NUM_THREADS=2 NUMBA_NUM_THREADS=2 python benchmarks/nve_outside.py \\
        --data ../shared/data/oleic-acid.npz --sigma 80 --lam 1e-9 --solver cg --fit-fast-lam 1e-4 \\
        /tmp/gdmlx-bench-multiscale/oleic-acid_*_ms.h5
"""

import argparse
import json
import warnings

import numpy as np

import gdmlx
from ms_stability import nve_run


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("models", nargs="*", help="model files")
    p.add_argument("--data", required=True)
    p.add_argument("--n-train", type=int, default=300)
    p.add_argument("--n-valid", type=int, default=200)
    p.add_argument("--sigma", type=float, default=10.0)
    p.add_argument("--lam", type=float, default=1e-10)
    p.add_argument("--solver", default="analytic")
    p.add_argument("--fit-fast-lam", type=float, default=None,
                   help="also fit a multiscale model (fast part sigma 4 with this lam, 100 points)")
    args = p.parse_args()
    warnings.simplefilter("ignore", gdmlx.EnergyConsistencyWarning)
    ds = gdmlx.load_dataset(args.data)
    perm = np.random.default_rng(0).permutation(len(ds))       # bench_multiscale.py's split
    train, test = perm[:args.n_train], perm[args.n_train + args.n_valid:]
    start = ds.R[test[0]]
    models = {path: gdmlx.load_model(path) for path in args.models}
    if args.fit_fast_lam is not None:
        ms = gdmlx.MultiscaleModel(fast=gdmlx.GDMLRegressor(sigma=4.0, lam=args.fit_fast_lam),
                                   slow=gdmlx.GDMLRegressor(sigma=args.sigma, lam=args.lam, solver=args.solver),
                                   n_fast=100).fit(ds.R[train], ds.F[train], ds.E[train], ds.z)
        models[f"multiscale, fast lam {args.fit_fast_lam:g}, unreduced"] = ms
    for name, model in models.items():
        periods = (1, 3) if isinstance(model, gdmlx.MultiscaleModel) else (1,)
        print(json.dumps({"model": name, "test_f_mae": float(np.abs(model.predict(ds.R[test[:500]]) - ds.F[test[:500]]).mean()),
                          "nve": [nve_run(model, start, n, seed=0) for n in periods]}), flush=True)


if __name__ == "__main__":
    main()
