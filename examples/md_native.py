"""Molecular dynamics with gdmlx's compiled engine: NVE, then Langevin at 500 K.

Run after examples/train_and_predict.py (it reads ethanol.h5).
"""

import gdmlx
from gdmlx.md import Simulation, read_trajectory

model = gdmlx.load_model("ethanol.h5")
start = model.R_train_[0]                               # Angstrom

nve = Simulation(model, start, dt_fs=0.5, temperature_K=500, seed=1)
summary = nve.run(20_000, trajectory="nve.h5", save_every=10, report_every=5_000)
print(f"NVE: {summary['steps_per_s']:,.0f} steps/s, drift {summary['etot_drift_eV_per_ps']:.2e} eV/ps")

nvt = Simulation(model, start, dt_fs=0.5, temperature_K=500, thermostat="langevin",
                 friction_per_fs=0.01, seed=2)
summary = nvt.run(20_000, trajectory="nvt.xyz", save_every=100, report_every=5_000)
print(f"NVT: mean T {summary['mean_temperature_K']:.0f} K")

traj = read_trajectory("nve.h5")                        # positions (n, N, 3), epot, ekin (eV), ...
print(traj["positions"].shape)
