"""How accurate is a model where its own MD goes? Reference (GFN2-xTB via tblite) forces on
frames of a gdmlx trajectory, against the model's, split into frames inside and outside the
training domain (a pair, in the descriptor or not, below 0.8 x its shortest training
distance: gdmlx.md.domain), next to the model's error on held-out reference data.

    OMP_NUM_THREADS=2 OPENBLAS_NUM_THREADS=2 NUMBA_NUM_THREADS=2 python benchmarks/accuracy_on_trajectory.py \\
        --model MODEL.h5 --trajectory TRAJ.h5 --data ../shared/data/oleic-acid.npz --frames 200

Needs tblite (pip install tblite); the shared datasets were made with GFN2-xTB from tblite.
"""

import argparse
import json
import warnings

import numpy as np

import gdmlx
from gdmlx.md import read_trajectory
from gdmlx.md.domain import OUTSIDE_FACTOR, outside_frames
from gdmlx.units import energy_in_ev


def reference_labels(z, R):
    """GFN2-xTB energies (n,) [kcal/mol] and forces (n, N, 3) [kcal/mol/A] of geometries R [A]."""
    from ase import Atoms
    from tblite.ase import TBLite
    kcal = energy_in_ev("kcal/mol")
    atoms = Atoms(numbers=z, positions=R[0])
    atoms.calc = TBLite(method="GFN2-xTB", verbosity=0)
    E, F = np.empty(len(R)), np.empty(R.shape)
    for k, r in enumerate(R):
        atoms.positions = r
        E[k] = atoms.get_potential_energy() / kcal
        F[k] = atoms.get_forces() / kcal
    return E, F


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True)
    p.add_argument("--trajectory", required=True, help="gdmlx .h5 trajectory of that model")
    p.add_argument("--data", required=True, help="the reference dataset (for the held-out error)")
    p.add_argument("--frames", type=int, default=200, help="frames to label, evenly spaced")
    p.add_argument("--label", default="", help="a name for the output row")
    args = p.parse_args()
    warnings.simplefilter("ignore", gdmlx.EnergyConsistencyWarning)
    model = gdmlx.load_model(args.model)
    q = read_trajectory(args.trajectory)["positions"]
    q = q[np.linspace(len(q) // 10, len(q) - 1, args.frames).round().astype(int)]   # skip the first 10 %
    i, j = np.tril_indices(q.shape[1], -1)
    pairs = np.stack([i, j], axis=1)
    R_train = model.R_train_
    floors = np.linalg.norm(R_train[:, i] - R_train[:, j], axis=-1).min(axis=0)
    outside = outside_frames(q, pairs, floors, OUTSIDE_FACTOR)
    E_ref, F_ref = reference_labels(model.z_, q)
    E, F = model.predict_energy_forces(q)
    f_err = np.abs(F - F_ref).mean(axis=(1, 2))
    e_err = E - E_ref
    ds = gdmlx.load_dataset(args.data)
    seen = {r.tobytes() for r in R_train}
    held = np.array([k for k in range(len(ds)) if ds.R[k].tobytes() not in seen])
    held = held[np.linspace(0, len(held) - 1, min(500, len(held))).round().astype(int)]
    E_d, F_d = model.predict_energy_forces(ds.R[held])
    offset = np.median(e_err)          # energies are compared up to the model's constant
    row = {"label": args.label, "model": args.model, "trajectory": args.trajectory, "frames": len(q),
           "outside_frames": int(outside.sum()),
           "f_mae_inside": float(f_err[~outside].mean()) if (~outside).any() else None,
           "f_mae_outside": float(f_err[outside].mean()) if outside.any() else None,
           "f_mae_held_out_data": float(np.abs(F_d - ds.F[held]).mean()),
           "e_mae_inside": float(np.abs(e_err[~outside] - offset).mean()) if (~outside).any() else None,
           "e_mae_outside": float(np.abs(e_err[outside] - offset).mean()) if outside.any() else None,
           "e_mae_held_out_data": float(np.abs(E_d - ds.E[held] - np.median(E_d - ds.E[held])).mean()),
           "max_frame_f_mae": float(f_err.max())}
    print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
