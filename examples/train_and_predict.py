"""Train a GDML force field on the bundled ethanol data, test it, save and reload it.

Run: python examples/train_and_predict.py
"""

import numpy as np

import gdmlx
from gdmlx.cli.demo import bundled_dataset_path

ds = gdmlx.load_dataset(bundled_dataset_path())        # or gdmlx.load_dataset("your_data.npz")
rng = np.random.default_rng(0)
idx = rng.permutation(len(ds))
train, test = idx[:300], idx[300:]

model = gdmlx.GDMLRegressor(sigma=20.0)                 # sigma in 1/Angstrom (inverse distances)
model.fit(ds.R[train], ds.F[train], energies=ds.E[train], z=ds.z,
          energy_unit=ds.energy_unit, length_unit=ds.length_unit)   # recorded in the model file

F = model.predict(ds.R[test])                           # (n, N, 3) kcal/mol/A
E = model.predict_energy(ds.R[test])                    # (n,) kcal/mol
print(f"force MAE  {np.abs(F - ds.F[test]).mean():.3f} kcal/mol/A")
print(f"energy MAE {np.abs(E - ds.E[test]).mean():.3f} kcal/mol")

model.save("ethanol.h5")
same = gdmlx.load_model("ethanol.h5")
assert np.array_equal(same.predict(ds.R[test]), F)      # the file round trip is exact
