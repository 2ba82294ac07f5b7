#!/usr/bin/env python3
"""How long a stride the midpoint generating function allows at all (issue 7).

    OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 NUMBA_NUM_THREADS=1 \\
    python benchmarks/action_stride_limit.py

An action map writes the stride as ``q' - q = dS/dp``, ``p' - p = -dS/dq`` at the midpoint
``((q + q')/2, (p + p')/2)``. For the exact flow this S exists only while the
midpoint, as a function of the start, can be inverted: while ``I + Phi`` is invertible,
``Phi`` the Jacobian of the exact stride map. For a harmonic mode of angular frequency w,
``Phi`` rotates by ``w h``; the exact S is ``(2/w) tan(w h / 2) H`` (singular at
``h = T/2``), and the fixed-point iteration of its implicit equation contracts by
``|tan(w h / 2)|`` per iteration (by ``w h / 2`` for the plain midpoint rule, S = h H).
For the real, anharmonic molecule the same two numbers come from the flow's Jacobian:
``rho``, the spectral radius of the Cayley transform ``(Phi - I)(Phi + I)^-1`` (the
linearised contraction factor of the exact map's fixed-point iteration; infinite where S
does not exist), and ``s_min``, the smallest singular value of ``(I + Phi)/2`` (zero where
S does not exist).

For each molecule: the force field of the action benchmarks (ethanol: the bundled data,
300 points, sigma 20, as ``action_seeds.py``; aspirin: 300 points, sigma 10, as
``bench_action.py``); its harmonic frequencies at a minimum (BFGS, then a
central-difference Hessian); and ``Phi`` at ``--n-states`` dataset geometries with 500 K
velocities, by central differences of velocity-Verlet flows at 0.05 fs, for every stride
of ``--strides``. Writes ``benchmarks/results/action_stride_limit.json``.
"""

import argparse
import json
import os

import ase
import ase.optimize
import ase.units
import numpy as np

import gdmlx
from bench_action import log, write_result
from gdmlx.cli.demo import bundled_dataset_path

# 1 kcal/mol/A/amu in A/fs^2 (ASE's eV/A/amu times fs^2 in ASE time units)
KCAL_PER_A_AMU = ase.units.kcal / ase.units.mol * ase.units.fs ** 2
C_CM_PER_FS = 2.99792458e-5
HERE = os.path.dirname(os.path.abspath(__file__))


def force_field(name, data):
    """The action benchmarks' force field for ``name`` and its dataset."""
    ds = gdmlx.load_dataset(data)
    if name == "ethanol":
        train = np.random.default_rng(0).permutation(len(ds))[:300]
        model = gdmlx.GDMLRegressor(sigma=20.0)
    else:
        train = np.arange(300)
        model = gdmlx.GDMLRegressor(sigma=10.0)
    return model.fit(ds.R[train], ds.F[train], energies=ds.E[train], z=ds.z), ds


def harmonic_frequencies(model, R0, masses):
    """Wavenumbers (cm^-1, ascending, the six rigid motions left out) at the minimum nearest ``R0``."""
    atoms = ase.Atoms(numbers=model.z_, positions=R0, calculator=gdmlx.GDMLCalculator(model))
    ase.optimize.BFGS(atoms, logfile=None).run(fmax=1e-4, steps=2000)
    q0 = atoms.positions.ravel()
    n, eps = q0.size, 1e-4
    H = np.empty((n, n))
    for k in range(n):
        dq = np.zeros(n)
        dq[k] = eps
        f_plus = model.predict((q0 + dq).reshape(-1, 3)).ravel()
        f_minus = model.predict((q0 - dq).reshape(-1, 3)).ravel()
        H[k] = -(f_plus - f_minus) / (2 * eps)                    # kcal/mol/A^2
    H = 0.5 * (H + H.T)
    w = 1.0 / np.sqrt(np.repeat(masses, 3))
    lam = np.linalg.eigvalsh(w[:, None] * H * w[None, :]) * KCAL_PER_A_AMU    # (rad/fs)^2
    omega = np.sqrt(np.abs(np.sort(lam)[6:]))
    return omega / (2 * np.pi * C_CM_PER_FS)


def flow_jacobians(model, q, v, masses, strides_fs, dt_fs=0.05):
    """Jacobians (len(strides), 6N, 6N) of the velocity-Verlet flow of ``model`` from state
    ``q`` [A], ``v`` [A/fs] over each stride, in (q, v) coordinates, by central differences."""
    n = q.size
    scale = np.r_[np.full(n, 1e-5), np.full(n, 1e-6)]               # A, A/fs
    x0 = np.r_[q.ravel(), v.ravel()]
    X = np.concatenate([x0 + np.diag(scale), x0 - np.diag(scale)])   # (2 * 2n, 2n)
    Q, V = X[:, :n].reshape(len(X), -1, 3), X[:, n:].reshape(len(X), -1, 3)
    inv_m = (KCAL_PER_A_AMU / masses)[None, :, None]
    A = model.predict(Q) * inv_m
    steps = {int(round(h / dt_fs)): h for h in strides_fs}
    out = {}
    for step in range(1, max(steps) + 1):
        V = V + 0.5 * dt_fs * A
        Q = Q + dt_fs * V
        A = model.predict(Q) * inv_m
        V = V + 0.5 * dt_fs * A
        if step in steps:
            Y = np.concatenate([Q.reshape(len(X), -1), V.reshape(len(X), -1)], axis=1)
            out[steps[step]] = ((Y[:2 * n] - Y[2 * n:]) / (2 * scale[:, None])).T
    return np.array([out[h] for h in strides_fs])


def stride_numbers(Phi):
    """(rho, s_min) of one flow Jacobian (see the module docstring)."""
    eye = np.eye(len(Phi))
    s_min = np.linalg.svd(0.5 * (eye + Phi), compute_uv=False)[-1]
    cayley = np.linalg.solve((eye + Phi).T, (Phi - eye).T).T
    return float(np.abs(np.linalg.eigvals(cayley)).max()), float(s_min)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--aspirin", default=os.path.join(HERE, "..", "..", "shared", "data", "aspirin.npz"))
    p.add_argument("--strides", default="0.5,1,1.5,2,2.5,3,3.5,4,4.5,5,5.5,6,7,8,9,10,11,12")
    p.add_argument("--n-states", type=int, default=3)
    args = p.parse_args()
    strides = [float(s) for s in args.strides.split(",")]
    res = {"strides_fs": strides, "molecules": {}}
    for name, data in (("ethanol", bundled_dataset_path()), ("aspirin", args.aspirin)):
        model, ds = force_field(name, data)
        masses = ase.Atoms(numbers=ds.z).get_masses()
        wn = harmonic_frequencies(model, ds.R[0], masses)
        T_min = 1.0 / (wn.max() * C_CM_PER_FS)
        log(f"{name}: highest harmonic wavenumbers {np.round(wn[-5:]).tolist()} cm^-1; shortest period "
            f"{T_min:.2f} fs, T/4 {T_min / 4:.2f} fs, T/pi {T_min / np.pi:.2f} fs, T/2 {T_min / 2:.2f} fs")
        rng = np.random.default_rng(1)
        states = []
        for k in rng.choice(np.arange(300, len(ds)), args.n_states, replace=False):
            v = rng.standard_normal(ds.R[k].shape) * np.sqrt(ase.units.kB * 500 / masses)[:, None] * ase.units.fs
            v -= (masses[:, None] * v).sum(0) / masses.sum()
            nums = [stride_numbers(P) for P in flow_jacobians(model, ds.R[k], v, masses, strides)]
            states.append({"index": int(k), "rho": [r for r, _ in nums], "s_min": [s for _, s in nums]})
            log(f"  state {k}: " + ", ".join(f"{h:g} fs: rho {r:.2g} s_min {s:.2g}"
                                             for h, (r, s) in zip(strides, nums)))
        res["molecules"][name] = {"wavenumbers_cm": wn.tolist(), "shortest_period_fs": T_min, "states": states,
                                  "median_rho": np.median([s["rho"] for s in states], axis=0).tolist(),
                                  "median_s_min": np.median([s["s_min"] for s in states], axis=0).tolist()}
    write_result("action_stride_limit.json", res)
    print(json.dumps({n: {"T_min": m["shortest_period_fs"], "median_rho": np.round(m["median_rho"], 3).tolist(),
                          "median_s_min": np.round(m["median_s_min"], 4).tolist()}
                      for n, m in res["molecules"].items()}))


if __name__ == "__main__":
    main()
