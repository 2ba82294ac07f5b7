"""ASE's Langevin with fixcm=True and fixcm=False on a gdmlx model, against gdmlx's engine:
mean kinetic temperature at a 500 K target (docs/guide.md, ASE calculator).

    OMP_NUM_THREADS=1 NUMBA_NUM_THREADS=1 python benchmarks/ase_langevin_fixcm.py

Model: 100 geometries of the bundled ethanol data, sigma 10. Each run: 10 ps at 0.5 fs,
friction 0.01/fs, the first 2 ps left out of the mean. ASE's temperature counts 3N degrees of
freedom, gdmlx's engine 3N - 3 (its Langevin removes the centre-of-mass velocity).
"""

import warnings
from pathlib import Path

import ase
import ase.units
import numpy as np
from ase.md.langevin import Langevin
from ase.md.velocitydistribution import thermalize_momenta

import gdmlx
from gdmlx.md import Simulation

DATA = Path(__file__).resolve().parents[1] / "gdmlx" / "data" / "ethanol_gfn2_500K.npz"
STEPS, TARGET_K = 20_000, 500.0


def ase_mean_temperature(model, fixcm, seed):
    atoms = ase.Atoms(numbers=model.z_, positions=model.R_train_[0], calculator=gdmlx.GDMLCalculator(model))
    thermalize_momenta(atoms, temperature_K=TARGET_K, rng=np.random.default_rng(seed))
    dyn = Langevin(atoms, 0.5 * ase.units.fs, temperature_K=TARGET_K, friction=0.01 / ase.units.fs,
                   fixcm=fixcm, rng=np.random.default_rng(seed))
    temps = []
    dyn.attach(lambda: temps.append(atoms.get_temperature()), interval=10)
    dyn.run(STEPS)
    return float(np.mean(temps[len(temps) // 5:]))


def main():
    ds = gdmlx.load_dataset(DATA)
    train = np.random.default_rng(0).permutation(len(ds))[:100]
    model = gdmlx.GDMLRegressor(sigma=10.0).fit(ds.R[train], ds.F[train], energies=ds.E[train], z=ds.z)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)          # ASE's notice about fixcm
        warnings.simplefilter("ignore", gdmlx.DomainWarning)    # 100 points: H-H pairs go below 0.8 x
        for fixcm in (True, False):
            temps = [ase_mean_temperature(model, fixcm, seed) for seed in (1, 2, 3)]
            print(f"ASE {ase.__version__} Langevin fixcm={fixcm}: mean T {np.round(temps, 1).tolist()} K")
    engine = [Simulation(model, model.R_train_[0], temperature_K=TARGET_K, thermostat="langevin", seed=seed)
              .run(STEPS, progress=False)["mean_temperature_K"] for seed in (1, 2, 3)]
    print(f"gdmlx engine: mean T {np.round(engine, 1).tolist()} K")


if __name__ == "__main__":
    main()
