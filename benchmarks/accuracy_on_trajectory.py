"""How accurate is a model where its own MD goes? Reference (GFN2-xTB via tblite) forces on
frames of a gdmlx trajectory, against the model's, split into frames inside and outside the
training domain (a pair, in the descriptor or not, below 0.8 x its shortest training
distance: gdmlx.md.domain), next to the model's error on held-out reference data. The same
as ``gdmlx validate MODEL TRAJ --data DATA``, with a label and one JSON line per run.

    OMP_NUM_THREADS=2 OPENBLAS_NUM_THREADS=2 NUMBA_NUM_THREADS=2 python benchmarks/accuracy_on_trajectory.py \\
        --model MODEL.h5 --trajectory TRAJ.h5 --data ../shared/data/oleic-acid.npz --frames 200

Needs tblite (pip install tblite); the shared datasets were made with GFN2-xTB from tblite.
Held-out: up to 500 dataset geometries the model was not trained on.
"""

import argparse
import json
import warnings

import numpy as np
from tblite.ase import TBLite

import gdmlx
from gdmlx.md import read_trajectory
from gdmlx.md.reference_check import check_trajectory


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
    res = check_trajectory(model, read_trajectory(args.trajectory)["positions"],
                           TBLite(method="GFN2-xTB", verbosity=0), args.frames, skip=0.1)
    ds = gdmlx.load_dataset(args.data)
    seen = {r.tobytes() for r in model.R_train_}
    held = np.array([k for k in range(len(ds)) if ds.R[k].tobytes() not in seen])
    held = held[np.linspace(0, len(held) - 1, min(500, len(held))).round().astype(int)]
    E_d, F_d = model.predict_energy_forces(ds.R[held])
    row = {"label": args.label, "model": args.model, "trajectory": args.trajectory,
           "frames": res["n_frames"], "outside_frames": res["n_outside"],
           "f_mae_inside": res["f_mae_inside"], "f_mae_outside": res["f_mae_outside"],
           "f_mae_held_out_data": float(np.abs(F_d - ds.F[held]).mean()),
           "e_mae_inside": res["e_mae_inside"], "e_mae_outside": res["e_mae_outside"],
           "e_mae_held_out_data": float(np.abs(E_d - ds.E[held] - np.median(E_d - ds.E[held])).mean()),
           "max_frame_f_mae": float(res["f_mae"].max())}
    print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
