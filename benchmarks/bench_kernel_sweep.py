"""Where the one-geometry kernel's time goes: its cost per training point and per descriptor
element, and what storing the model in float32 would change.

Times :func:`gdmlx.kernels.predict.expansion_one` (one thread) on random arrays of M training
points x D pairs, over M at D = 210 (aspirin's pairs: does the time per point change when X
and B outgrow the core's L2 cache?) and over D at M = 200 (the fit ``ns/point = a + b D``
splits the per-point cost, the Matern terms, from the per-element streaming), each the
median of 7 repeats of ``--calls`` calls. With ``--model`` and ``--data`` it also predicts
the last 200 geometries with the model's X, then its B, rounded to float32 (arithmetic in
float64) and reports the largest energy and mean descriptor-force changes.

    NUMBA_NUM_THREADS=1 python benchmarks/bench_kernel_sweep.py \\
        --model asp500_sgdml.npz --data ../shared/data/aspirin.npz
"""

import argparse
import json
import time

import numpy as np

import gdmlx
from gdmlx.descriptor import descriptors
from gdmlx.kernels.predict import expansion_one, predict_desc_batch


def kernel_ns_per_point(M, D, calls, rng):
    """Median time (ns) per training point of expansion_one on random M x D arrays."""
    X, B = rng.uniform(0.1, 1.1, (M, D)), rng.standard_normal((M, D))
    X_sq, XB, a, fd = (X * X).sum(1), (X * B).sum(1), np.zeros(M), np.empty(D)
    x = X[0] + 0.01
    args = (x, X, B, X_sq, XB, a, 10.0, 0.0, fd)
    for _ in range(100):
        expansion_one(*args)
    times = []
    for _ in range(7):
        t0 = time.perf_counter()
        for _ in range(calls):
            expansion_one(*args)
        times.append((time.perf_counter() - t0) / calls)
    return 1e9 * float(np.median(times)) / M


def float32_changes(model_path, data_path):
    """Largest energy change and mean |descriptor-force| change when X, or B, is rounded to
    float32, on the dataset's last 200 geometries (model units)."""
    model = gdmlx.import_sgdml_model(model_path) if str(model_path).endswith(".npz") else gdmlx.load_model(model_path)
    exp = model.expansion_
    x, _ = descriptors(gdmlx.load_dataset(data_path).R[-200:], exp.pairs)
    E0, f0 = predict_desc_batch(x, exp.X, exp.B, exp.a, exp.sigma, exp.c)
    out = {}
    for name, X, B in (("X", exp.X.astype(np.float32).astype(float), exp.B),
                       ("B", exp.X, exp.B.astype(np.float32).astype(float))):
        E1, f1 = predict_desc_batch(x, X, B, exp.a, exp.sigma, exp.c)
        out[f"{name}_float32"] = {"max_abs_dE": float(np.abs(E1 - E0).max()),
                                  "mean_abs_dF_desc": float(np.abs(f1 - f0).mean()),
                                  "mean_abs_F_desc": float(np.abs(f0).mean())}
    return out


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--calls", type=int, default=500)
    p.add_argument("--model", help="model (sGDML .npz or gdmlx .h5) for the float32 check")
    p.add_argument("--data", help="its dataset")
    p.add_argument("--out", help="JSON output")
    args = p.parse_args()
    rng = np.random.default_rng(0)
    res = {"over_M_at_D210": {}, "over_D_at_M200": {}}
    for M in (50, 100, 200, 300, 400, 500, 700, 1000):
        ns = kernel_ns_per_point(M, 210, args.calls, rng)
        res["over_M_at_D210"][M] = {"ns_per_point": ns, "MB": 2 * M * 210 * 8 / 1e6,
                                    "GB_per_s": 2 * 210 * 8 / ns}
        print(f"M {M:5d} (X and B {2 * M * 210 * 8 / 1e6:.2f} MB): {ns:6.1f} ns a point, "
              f"{2 * 210 * 8 / ns:5.1f} GB/s", flush=True)
    Ds = (8, 16, 32, 64, 128, 210, 256)
    ns = [kernel_ns_per_point(200, D, 2 * args.calls, rng) for D in Ds]
    res["over_D_at_M200"] = dict(zip(Ds, ns))
    slope, intercept = np.polyfit(Ds, ns, 1)
    res["fit_ns_per_point"] = {"a": float(intercept), "b_per_element": float(slope)}
    print(f"D {list(Ds)} at M 200: {[round(v, 1) for v in ns]} ns a point; "
          f"fit {intercept:.1f} + {slope:.3f} D ns", flush=True)
    if args.model and args.data:
        res["float32"] = float32_changes(args.model, args.data)
        print(json.dumps(res["float32"], indent=1))
    if args.out:
        with open(args.out, "w") as fh:
            json.dump(res, fh, indent=1)


if __name__ == "__main__":
    main()
