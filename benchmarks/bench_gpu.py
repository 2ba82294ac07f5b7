"""The CPU and GPU backends on one model: batched prediction, the CG kernel product, replica
MD, float32's force error, and the GPU's roofline (issue 8).

A gdmlx model is trained on the first ``--n-train`` geometries of ``--data`` (analytic
solve on the CPU; cached in ``--model`` so reruns skip it) and tested on the last 1000.
Paths timed, each a median over ``--repeats`` runs:

* batched prediction of ``--batch`` geometries (geometries/s; several sizes): ``cpu`` the compiled CPU
  path (numba descriptor and scatter, BLAS sums), ``array-cpu`` the whole-array path on
  numpy (what the GPU runs, on the CPU), ``gpu`` the whole-array path on CuPy;
* one product of the CG solver's kernel operator for ``--n-cg`` training points (ms; several):
  ``cpu`` (compiled Jacobian products), ``array-cpu``, ``gpu``;
* MD: the single-molecule engine (steps/s) and the replica engine with 1 .. ``--replicas``
  replicas (replica-steps/s) on each backend, on the GPU with whole-array steps
  (``gpu-arrays``) and fused steps (``gpu-fused``, :mod:`gdmlx.kernels.fused_md`; one
  molecule also with each of ``--blocks`` blocks per replica); NVE, 0.5 fs, 300 K;
* the fused GPU steps against the CPU engine: positions after ``--md-steps`` NVE steps
  from the same start, forces at the same geometry;
* float32: the whole-array path in float32 against float64 on the test geometries (the
  force difference next to the model's own test error);
* roofline (GPU only): device-to-device copy bandwidth and the DGEMM rate.

GPU rows appear when CuPy sees a CUDA device. Example (2 threads, as every CPU number in
benchmarks/README.md):

    OMP_NUM_THREADS=2 OPENBLAS_NUM_THREADS=2 NUMBA_NUM_THREADS=2 python benchmarks/bench_gpu.py \\
        --data ../shared/data/aspirin.npz --model /tmp/aspirin500.h5 --out benchmarks/results/gpu_cpu.json
"""

import argparse
import json
import os
import platform
import time

import ase.units
import numpy as np

import gdmlx
from gdmlx.backend import _cupy
from gdmlx.descriptor import all_pairs
from gdmlx.device_expansion import DeviceExpansion
from gdmlx.kernel_data import KernelData
from gdmlx.kernel_operator import ForceKernelOperator
from gdmlx.md import ReplicaSimulation, Simulation


def median_time(fn, repeats, sync=lambda: None):
    """Median wall time (s) of ``fn()`` after one warm-up call; ``sync`` waits for the device."""
    fn()
    sync()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


def backends():
    """(name, array module, compiled Jacobian products?, sync) of each path on this machine."""
    out = [("cpu", np, True, lambda: None), ("array-cpu", np, False, lambda: None)]
    cupy = _cupy()
    if cupy is not None:
        out.append(("gpu", cupy, False, cupy.cuda.Device().synchronize))
    return out


def trained_model(args):
    ds = gdmlx.load_dataset(args.data)
    if os.path.exists(args.model):
        return gdmlx.load_model(args.model), ds
    t0 = time.perf_counter()
    model = gdmlx.GDMLRegressor(sigma=args.sigma, lam=1e-10).fit(
        ds.R[:args.n_train], ds.F[:args.n_train], ds.E[:args.n_train], z=ds.z)
    print(f"trained {args.n_train} points in {time.perf_counter() - t0:.1f} s", flush=True)
    model.save(args.model)
    return model, ds


def prediction(model, ds, args):
    exp = model.expansion_
    rows = {}
    for batch in args.batch:
        R = ds.R[-batch:]
        for name, xp, compiled, sync in backends():
            if compiled:
                fn = lambda: exp.predict(R)
            else:
                dev = DeviceExpansion(exp, xp)
                R_dev = xp.asarray(R)
                fn = lambda: dev.energy_forces(R_dev)
            t = median_time(fn, args.repeats, sync)
            rows[f"{name}-{batch}"] = {"s": t, "geometries_per_s": len(R) / t}
            print(f"prediction {name:9s} {batch:6d}: {len(R) / t:10,.0f} geometries/s", flush=True)
    return rows


def kernel_product(ds, args):
    rows = {}
    for n_cg in args.n_cg:
        data = KernelData(ds.R[:n_cg], all_pairs(len(ds.z)))
        v = np.random.default_rng(0).standard_normal(n_cg * 3 * len(ds.z))
        for name, xp, compiled, sync in backends():
            op = ForceKernelOperator(data, args.sigma, 1e-10, xp, compiled)
            t = median_time(lambda: op.matvec(v), args.repeats, sync)
            rows[f"{name}-{n_cg}"] = {"ms": 1e3 * t}
            print(f"CG product {name:9s}: {1e3 * t:8.2f} ms ({n_cg} points)", flush=True)
    return rows


def md(model, ds, args):
    start = ds.R[args.n_train]
    rows = {}
    sim = Simulation(model, start, dt_fs=0.5, seed=0)
    sim.run(100, save_every=100, report_every=100, progress=False)        # compile
    s = sim.run(args.md_steps, save_every=100, report_every=args.md_steps, progress=False)
    rows["single-cpu"] = {"steps_per_s": s["steps_per_s"]}
    print(f"MD single engine     : {s['steps_per_s']:10,.0f} steps/s", flush=True)
    engines = [("cpu", {"backend": "cpu"})]
    if _cupy() is not None:
        engines += [("gpu-arrays", {"backend": "gpu", "fused_steps": False}),
                    ("gpu-fused", {"backend": "gpu", "fused_steps": True})]
        engines += [(f"gpu-fused-P{p}", {"backend": "gpu", "fused_steps": True, "blocks_per_replica": p})
                    for p in args.blocks]
    for name, kw in engines:
        for n in sorted({1, 10, 100, args.replicas}) if "-P" not in name else [1]:
            rows[f"replicas-{name}-{n}"] = recorded(f"MD {n} replicas {name}", md_row, model, start, n, kw, args)
    return rows


def md_row(model, start, n, kw, args):
    """Steps/s of ``n`` replicas with engine settings ``kw``: about ``--md-seconds`` of NVE
    after a warm-up (whose time, compilation included, is ``start_s``)."""
    t0 = time.perf_counter()
    reps = ReplicaSimulation(model, start, n, dt_fs=0.5, seed=0, **kw)
    reps.run(100, save_every=100, report_every=100, progress=False)    # warm-up
    first = time.perf_counter() - t0
    rate = reps.run(100, save_every=100, report_every=100, progress=False)["steps_per_s"]
    steps = int(min(args.md_seconds * rate, 100 * args.md_steps)) // 100 * 100 + 100
    s = reps.run(steps, save_every=100, report_every=steps, progress=False)
    return {"steps_per_s": s["steps_per_s"], "blocks_per_replica": getattr(reps.fused, "P", None),
            "replica_steps_per_s": s["replica_steps_per_s"], "start_s": first}


def recorded(label, fn, *args):
    """``fn(*args)``, printed under ``label``; an error (fused steps on a machine where numba
    cannot compile CUDA, say) is printed and recorded instead, so the other rows still come."""
    try:
        row = fn(*args)
    except Exception as exc:                     # a benchmark reports what broke and goes on
        row = {"error": f"{type(exc).__name__}: {exc}"}
    print(f"{label}: {row}", flush=True)
    return row


def fused_agreement(model, ds, args):
    """The fused GPU steps against the CPU single engine: positions after ``--md-steps`` NVE
    steps from the same start and velocities, and the forces at the GPU's end geometry."""
    if _cupy() is None:
        return {}
    start = ds.R[args.n_train]
    v = Simulation(model, start, dt_fs=0.5, seed=0).v * ase.units.fs       # A/fs
    cpu = Simulation(model, start, velocities=v, dt_fs=0.5)
    cpu.run(args.md_steps, save_every=100, report_every=args.md_steps, progress=False)
    return {f"P={P}": recorded(f"fused vs CPU, P={P}", fused_difference, model, start, v, cpu.q, P, args)
            for P in (1, None)}


def fused_difference(model, start, v, q_cpu, P, args):
    """Largest position and relative force differences of fused GPU steps against ``q_cpu``."""
    gpu = ReplicaSimulation(model, start, velocities=v[None], dt_fs=0.5, backend="gpu",
                            fused_steps=True, blocks_per_replica=P)
    gpu.run(args.md_steps, save_every=100, report_every=args.md_steps, progress=False)
    F_cpu = model.predict(gpu.positions[0])[0] * gpu.e_scale * gpu.r_scale     # predict: (1, N, 3)
    F_gpu = gpu.F[0].get()[0]
    return {"steps": args.md_steps, "blocks_per_replica": gpu.fused.P,
            "max_position_difference_A": float(np.abs(gpu.positions[0] - q_cpu).max()),
            "max_force_difference_relative": float(np.abs(F_gpu - F_cpu).max() / np.abs(F_cpu).max())}


def float32_error(model, ds, args):
    R, F_ref = ds.R[-1000:], ds.F[-1000:]
    rows = {}
    for name, xp, compiled, _ in backends():
        if compiled:
            continue
        E64, F64 = DeviceExpansion(model.expansion_, xp).predict(R)
        E32, F32 = DeviceExpansion(model.expansion_, xp, "float32").predict(R)
        rows[name] = {"model_force_mae": float(np.abs(F64 - F_ref).mean()),
                      "float32_force_mae_vs_float64": float(np.abs(F32 - F64).mean()),
                      "float32_force_max_vs_float64": float(np.abs(F32 - F64).max()),
                      "float32_energy_max_vs_float64": float(np.abs(E32 - E64).max())}
        print(f"float32 {name}: {rows[name]}", flush=True)
    return rows


def roofline(args):
    cupy = _cupy()
    if cupy is None:
        return {}
    sync = cupy.cuda.Device().synchronize
    a = cupy.ones(2**27)                       # 1 GiB
    b = cupy.empty_like(a)
    t = median_time(lambda: cupy.copyto(b, a), args.repeats, sync)
    n = 8192
    x, y = cupy.random.standard_normal((n, n)), cupy.random.standard_normal((n, n))
    t_mm = median_time(lambda: x @ y, args.repeats, sync)
    out = {"copy_GB_per_s": 2 * a.nbytes / t / 1e9, "dgemm_TFLOP_per_s": 2 * n**3 / t_mm / 1e12,
           "device": cupy.cuda.runtime.getDeviceProperties(0)["name"].decode()}
    print(f"roofline: {out}", flush=True)
    return out


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", required=True)
    p.add_argument("--model", required=True, help="trained model cache (.h5)")
    p.add_argument("--n-train", type=int, default=500)
    p.add_argument("--sigma", type=float, default=10.0)
    p.add_argument("--batch", type=int, nargs="+", default=[1000, 10000])
    p.add_argument("--n-cg", type=int, nargs="+", default=[500, 2000])
    p.add_argument("--replicas", type=int, default=1000)
    p.add_argument("--blocks", type=int, nargs="*", default=[1, 4, 8, 16, 32, 64],
                   help="blocks per replica tried for one molecule in fused GPU steps")
    p.add_argument("--md-steps", type=int, default=2000)
    p.add_argument("--md-seconds", type=float, default=2.0, help="about how long each MD row runs")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--out", required=True)
    args = p.parse_args()
    model, ds = trained_model(args)
    result = {"args": vars(args), "machine": platform.processor() or platform.machine(),
              "threads": {k: os.environ.get(k) for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS",
                                                         "NUMBA_NUM_THREADS")},
              "roofline": roofline(args),
              "prediction": prediction(model, ds, args),
              "kernel_product": kernel_product(ds, args),
              "float32": float32_error(model, ds, args),
              "fused_agreement": fused_agreement(model, ds, args),
              "md": md(model, ds, args)}
    with open(args.out, "w") as f:
        json.dump(result, f, indent=1)


if __name__ == "__main__":
    main()
