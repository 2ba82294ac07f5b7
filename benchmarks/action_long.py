#!/usr/bin/env python3
"""Long NVE runs of the learned action map against velocity Verlet: energy conservation,
equipartition, bond lengths, a dihedral and the vibrational spectrum (issue 7's evidence).

    cd benchmarks && OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 NUMBA_NUM_THREADS=1 \\
    python action_long.py --data ../../shared/data/aspirin.npz --name aspirin --strides 1,2 --run-ps 100

Force field, reference trajectories and start as bench_action.py (same options); one action
model per stride (the first of --action-sigmas). From the same start and 500 K velocities,
NVE for --run-ps: velocity Verlet at 0.25 fs (the reference) and at each stride, and the
action map at each stride, frames every 2 fs. Each run against the reference:
E_tot drift and fluctuation, kinetic temperature per element, and
``bench_multiscale.compare_nvt`` (bond-length means and spreads, the histogram of the first
dihedral along a bond, the spectrum from the velocity autocorrelation; with the
reference's two halves against each other as the noise scale). Writes
``benchmarks/results/action_long_<name>.json``.
"""

import os
import time

import ase.units
import numpy as np

from bench_action import force_field_and_data, log, parser, write_result
from bench_multiscale import compare_nvt, first_dihedral
from gdmlx.action import ActionModel
from gdmlx.md import MDInstabilityError, Simulation, read_trajectory
from gdmlx.md.action_map import ActionMapError, ActionSimulation
from gdmlx.multiscale import bond_graph_pairs

SAVE_FS = 2.0


def element_temperatures(traj):
    """Mean kinetic temperature (K) of each element's atoms over the frames of ``traj``."""
    v, m, z = traj["velocities"] / ase.units.fs, traj["masses"], traj["z"]   # A per ASE time unit
    ekin = 0.5 * m[None, :] * (v ** 2).sum(axis=2)                              # (frames, N) eV
    return {int(e): float(2 * ekin[:, z == e].mean() / (3 * ase.units.kB)) for e in np.unique(z)}


def run(make_sim, n, every, path):
    """Run a simulation of ``n`` steps with frames every ``every`` steps; summary and frames."""
    sim = make_sim()
    t0 = time.perf_counter()
    s = sim.run(n, trajectory=path, save_every=every, report_every=every * 500, progress=False)
    s["wall_per_ps_s"] = (time.perf_counter() - t0) / s["simulated_ps"]
    return s, read_trajectory(path)


def main():
    args = parser(__doc__).parse_args()
    os.makedirs(args.workdir, exist_ok=True)
    model, paths, start = force_field_and_data(args)
    sigma = float(args.action_sigmas.split(",")[0])
    bonds = bond_graph_pairs(model.z_, read_trajectory(paths[0])["positions"][:300], 1)
    dih = first_dihedral([tuple(b) for b in bonds], len(model.z_))
    res = {"args": vars(args), "threads": {k: os.environ.get(k) for k in ("OMP_NUM_THREADS", "NUMBA_NUM_THREADS")},
           "dihedral_atoms": None if dih is None else [int(a) for a in dih]}

    def verlet(dt):
        return lambda: Simulation(model, start, dt_fs=dt, temperature_K=500, seed=99)

    path = os.path.join(args.workdir, f"{args.name}_long_ref.h5")
    n_ref = round(args.run_ps * 1000 / 0.25)
    ref_summary, ref = run(verlet(0.25), n_ref - n_ref % 8, 8, path)
    res["verlet_0.25"] = {"summary": ref_summary, "T_element_K": element_temperatures(ref)}
    log(f"reference: E_tot std {ref_summary['etot_std_eV']:.2e} eV, drift "
        f"{ref_summary['etot_drift_eV_per_ps']:.2e} eV/ps, {res['verlet_0.25']['T_element_K']}")
    for stride in map(float, args.strides.split(",")):
        act = ActionModel(stride_fs=stride, sigma=sigma, lam=1e-8, n_train=args.action_n_train,
                          n_valid=300).fit(paths, model, verbose=False)
        every = max(1, round(SAVE_FS / stride))
        n = round(args.run_ps * 1000 / stride)
        n -= n % every
        makers = {"verlet": verlet(stride),
                  "action": lambda: ActionSimulation(model, act, start, temperature_K=500, seed=99)}
        for label, make in makers.items():
            key = f"{label}_{stride:g}"
            try:
                s, traj = run(make, n, every, os.path.join(args.workdir, f"{args.name}_long_{key}.h5"))
            except (MDInstabilityError, ActionMapError) as exc:
                res[key] = {"error": str(exc)[:300]}
                log(f"{key}: {exc}")
                continue
            res[key] = {"summary": s, "T_element_K": element_temperatures(traj),
                        "vs_reference": compare_nvt(ref, traj, bonds, dih, SAVE_FS)}
            c = res[key]["vs_reference"]
            log(f"{key}: E_tot std {s['etot_std_eV']:.2e} eV, drift {s['etot_drift_eV_per_ps']:.2e} +- "
                f"{s['etot_drift_se_eV_per_ps']:.1e} eV/ps, T {res[key]['T_element_K']}, bond z rms "
                f"{c['bond_mean_diff_over_stderr_rms']:.2f}, dihedral TVD {c.get('dihedral_tvd', float('nan')):.3f} "
                f"(ref halves {c.get('dihedral_tvd_ref_halves', float('nan')):.3f}), spectrum cos "
                f"{c['spectrum_cosine']:.3f} (ref halves {c['spectrum_cosine_ref_halves']:.3f}), "
                f"{s['wall_per_ps_s']:.2f} s/ps")
    write_result(f"action_long_{args.name}.json", res)


if __name__ == "__main__":
    main()
