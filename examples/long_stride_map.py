"""Learn a long-stride map for ethanol and compare it with velocity Verlet at the same step.

Run after examples/train_and_predict.py (it reads ethanol.h5). Took 28 s on one thread of
this project's 2-core machines with numba compiling the map on first use, 42 s on a busy one.

The map's correction is learned from short-step trajectories and is only good where they
went: ethanol's methyl group has three equivalent orientations, and a map trained in one
of them does worse than no correction in the others (a test session measured E_tot std
1-2e-2 eV, against 4e-4 eV inside, when the reference runs all started from one geometry).
So the reference runs start from four different held-out geometries of the data.
"""

import numpy as np

import gdmlx
from gdmlx.action import ActionModel
from gdmlx.cli.demo import bundled_dataset_path
from gdmlx.md import Simulation
from gdmlx.md.action_map import ActionSimulation

model = gdmlx.load_model("ethanol.h5")
ds = gdmlx.load_dataset(bundled_dataset_path())
held_out = np.random.default_rng(0).permutation(len(ds))[300:]   # train_and_predict.py's test set
stride = 1.0                                                     # fs

# short-step reference MD with the force field: the action model's training data
paths = []
for k in range(4):
    path = f"ref{k}.h5"
    Simulation(model, ds.R[held_out[k]], dt_fs=0.25, temperature_K=500, seed=k).run(
        20_000, trajectory=path, save_every=2, report_every=5_000)
    paths.append(path)

action = ActionModel(stride_fs=stride, sigma=5.0, n_train=150).fit(paths, model)
print("held-out error removed:", {k: round(v, 6) for k, v in action.fit_info_.items() if "rms" in k})
action.save("ethanol_action.h5")

start = ds.R[held_out[10]]
learned = ActionSimulation(model, action, start, temperature_K=500, seed=7).run(5_000, save_every=2)
verlet = Simulation(model, start, dt_fs=stride, temperature_K=500, seed=7).run(
    5_000, save_every=2, report_every=1_000)
for name, s in (("learned map", learned), ("velocity Verlet", verlet)):
    print(f"{name:16s} stride {stride} fs: E_tot std {s['etot_std_eV']:.2e} eV, "
          f"mean T {s['mean_temperature_K']:.0f} K, wall {s['wall_s']:.1f} s")
