"""How often the energy-consistency check (slope and correlation of the training energies
against the model's, :func:`gdmlx.training.integration_constant`) fails on consistent data,
by training-set size: the measurement behind ``MIN_CHECKED_ENERGIES``.

    NUMBA_NUM_THREADS=1 OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 \\
        python benchmarks/energy_check_small_n.py --sizes 3 4 5 6 8 10 15 --draws 20
    ... --sizes 20 30 50 100 --draws 10

Data: the bundled ethanol set (GFN2-xTB, 500 K); sigma 10, the default lam; random draws.
"""
import argparse
import warnings

import numpy as np

import gdmlx
from gdmlx.cli.demo import bundled_dataset_path


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sizes", type=int, nargs="+", default=[3, 5, 10, 20, 50])
    p.add_argument("--draws", type=int, default=10)
    p.add_argument("--sigma", type=float, default=10.0)
    args = p.parse_args()
    ds = gdmlx.load_dataset(bundled_dataset_path())
    for n in args.sizes:
        fits = []
        for seed in range(args.draws):
            idx = np.random.default_rng(seed).permutation(len(ds))[:n]
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", gdmlx.EnergyConsistencyWarning)
                model = gdmlx.GDMLRegressor(sigma=args.sigma).fit(ds.R[idx], ds.F[idx], energies=ds.E[idx], z=ds.z)
            fits.append((model.energy_fit_["slope"], model.energy_fit_["r"]))
        slope, r = np.array(fits).T
        failed = int(np.sum((slope <= 0.5) | (slope >= 1.5) | (r < 0.8)))
        print(f"{n:4d} geometries: check failed in {failed} of {args.draws}; slope {slope.min():.3g} to "
              f"{slope.max():.3g}, correlation at least {r.min():.3g}")


if __name__ == "__main__":
    main()
