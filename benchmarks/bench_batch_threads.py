"""Batched prediction and the CG kernel product with the O(n D) batch loops (descriptor,
Jacobian scatter and gather) on one thread, as gdmlx runs them, against the same loops as
numba parallel loops (``prange``), as gdmlx ran them before; interleaved rounds in one process.

The parallel variants are defined here (benchmark only). Between two BLAS calls a parallel
numba loop wakes its thread team, which then spins while the BLAS threads want the cores.

    OMP_NUM_THREADS=2 OPENBLAS_NUM_THREADS=2 NUMBA_NUM_THREADS=2 python benchmarks/bench_batch_threads.py \\
        --model /tmp/asp500.h5 --data ../shared/data/aspirin.npz --batch 1000
"""

import argparse
import json

import numba
import numpy as np

import gdmlx
from bench_gpu import median_time
from gdmlx.kernel_data import KernelData
from gdmlx.kernel_operator import ForceKernelOperator
from gdmlx.kernels import descriptor as serial
from gdmlx.kernels.predict import predict_desc_batch


@numba.njit(cache=True, parallel=True)
def descriptor_batch_parallel(R, pairs):
    x = np.empty((R.shape[0], pairs.shape[0]))
    G = np.empty((R.shape[0], pairs.shape[0], 3))
    for t in numba.prange(R.shape[0]):
        serial.descriptor_one(R[t], pairs, x[t], G[t])
    return x, G


@numba.njit(cache=True, parallel=True)
def scatter_batch_parallel(fd, G, pairs, n_atoms):
    F = np.empty((fd.shape[0], n_atoms, 3))
    for t in numba.prange(fd.shape[0]):
        serial.scatter_one(fd[t], G[t], pairs, F[t])
    return F


@numba.njit(cache=True, parallel=True)
def gather_batch_parallel(v, G, pairs):
    out = np.empty((v.shape[0], pairs.shape[0]))
    for t in numba.prange(v.shape[0]):
        serial.gather_one(v[t], G[t], pairs, out[t])
    return out


def predict(exp, R, desc, scatter):
    x, G = desc(R, exp.pairs)
    E, fd = predict_desc_batch(x, exp.X, exp.B, exp.a, exp.sigma, exp.c, exp.XB, exp.X_sq)
    return E, scatter(np.ascontiguousarray(fd), G, exp.pairs, exp.n_atoms)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True)
    p.add_argument("--data", required=True)
    p.add_argument("--batch", type=int, default=1000)
    p.add_argument("--n-cg", type=int, default=500)
    p.add_argument("--rounds", type=int, default=7)
    p.add_argument("--calls", type=int, default=5)
    p.add_argument("--out")
    args = p.parse_args()
    model, ds = gdmlx.load_model(args.model), gdmlx.load_dataset(args.data)
    exp, R = model.expansion_, np.ascontiguousarray(ds.R[-args.batch:])
    data = KernelData(ds.R[:args.n_cg], model.pairs_)
    op = ForceKernelOperator(data, model.sigma, 1e-10)
    v = np.random.default_rng(0).standard_normal(op.shape[0])
    E1, F1 = predict(exp, R, serial.descriptor_batch, serial.scatter_batch)
    E2, F2 = predict(exp, R, descriptor_batch_parallel, scatter_batch_parallel)
    assert np.allclose(F1, F2, rtol=0, atol=1e-12 * np.abs(F1).max())

    def matvec_parallel():
        data.betas = lambda a: gather_batch_parallel(np.ascontiguousarray(a), data.G_cols, data.pairs)
        try:
            import gdmlx.kernel_operator as ko
            ko.scatter_batch, saved = scatter_batch_parallel, ko.scatter_batch
            return op.matvec(v)
        finally:
            ko.scatter_batch = saved
            del data.betas

    rows = {"predict_serial": [], "predict_parallel": [], "cg_serial": [], "cg_parallel": []}
    for _ in range(args.rounds):
        rows["predict_serial"].append(median_time(lambda: predict(exp, R, serial.descriptor_batch, serial.scatter_batch), args.calls))
        rows["predict_parallel"].append(median_time(lambda: predict(exp, R, descriptor_batch_parallel, scatter_batch_parallel), args.calls))
        rows["cg_serial"].append(median_time(lambda: op.matvec(v), args.calls))
        rows["cg_parallel"].append(median_time(matvec_parallel, args.calls))
    med = {k: float(np.median(t)) for k, t in rows.items()}
    out = {"batch": args.batch, "n_cg": args.n_cg, "median_s": med, "rounds": rows,
           "predict_geometries_per_s": {k: args.batch / med[f"predict_{k}"] for k in ("serial", "parallel")},
           "speedup_predict": med["predict_parallel"] / med["predict_serial"],
           "speedup_cg": med["cg_parallel"] / med["cg_serial"]}
    print(json.dumps({k: out[k] for k in ("median_s", "predict_geometries_per_s", "speedup_predict", "speedup_cg")}, indent=1))
    if args.out:
        with open(args.out, "w") as f:
            json.dump(out, f, indent=1)


if __name__ == "__main__":
    main()
