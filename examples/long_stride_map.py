"""Learn a long-stride map for ethanol and compare it with velocity Verlet at the same step.

Run after examples/train_and_predict.py (it reads ethanol.h5). Takes a few minutes.
"""

import gdmlx
from gdmlx.action import ActionModel
from gdmlx.md import Simulation
from gdmlx.md.action_map import ActionSimulation

model = gdmlx.load_model("ethanol.h5")
start, stride = model.R_train_[0], 1.0                  # Angstrom, fs

# short-step reference MD with the force field: the action model's training data
paths = []
for seed in range(3):
    path = f"ref{seed}.h5"
    Simulation(model, model.R_train_[seed], dt_fs=0.25, temperature_K=500, seed=seed).run(
        20_000, trajectory=path, save_every=2, report_every=2_000)
    paths.append(path)

action = ActionModel(stride_fs=stride, sigma=5.0, n_train=150).fit(paths, model)
print("held-out error removed:", {k: round(v, 6) for k, v in action.fit_info_.items() if "rms" in k})
action.save("ethanol_action.h5")

learned = ActionSimulation(model, action, start, temperature_K=500, seed=7).run(5_000, save_every=2)
verlet = Simulation(model, start, dt_fs=stride, temperature_K=500, seed=7).run(
    5_000, save_every=2, report_every=1_000)
for name, s in (("learned map", learned), ("velocity Verlet", verlet)):
    print(f"{name:16s} stride {stride} fs: E_tot std {s['etot_std_eV']:.2e} eV, "
          f"mean T {s['mean_temperature_K']:.0f} K, wall {s['wall_s']:.1f} s")
