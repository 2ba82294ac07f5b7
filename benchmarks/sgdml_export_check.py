"""Check gdmlx.export_sgdml_model against sGDML itself, and make the test files that hold it.

Two stages, in two environments (sGDML needs numpy < 2.4 and torch; benchmarks/README.md):

    python benchmarks/sgdml_export_check.py export                      # gdmlx's venv
    /work/sgdml-venv/bin/python benchmarks/sgdml_export_check.py predict   # sGDML's venv

``export`` fits two gdmlx models on 20 geometries of the bundled ethanol data (sigma 7.5)
and exports them: one with energy labels (sGDML's ``alphas_E``; lam 1e-6, as at lam 1e-10
its coefficients reach 1e8 and the energies round off at 1e-7 kcal/mol), to
``tests/data/gdmlx_ethanol20_elabels_sgdml.npz``; one with the molecule's permutations
(``perms="auto"``, written with its permuted copies as training points), to the temporary
folder. Next to each: gdmlx's own predictions for 5 other geometries (``..._gdmlx_pred.npz``).
``predict`` loads each file with ``np.load`` as sGDML's tools do, predicts the 5 geometries
with ``sgdml.predict.GDMLPredict`` (NumPy path, one process) and through sGDML's ASE
calculator, writes ``..._pred.npz`` (what tests/test_sgdml_export.py compares with) and
prints the largest differences from gdmlx's predictions.
"""

import argparse
import tempfile
from pathlib import Path

import numpy as np

TESTS = Path(__file__).resolve().parent.parent / "tests" / "data"
# where each model's files go: the energy-label model's are test data; the permutation
# model's (240 expansion points, 140 kB) are checked here only
FOLDERS = {"gdmlx_ethanol20_elabels": TESTS, "gdmlx_ethanol20_perms": Path(tempfile.gettempdir())}


def export():
    import gdmlx
    from gdmlx.cli.demo import bundled_dataset_path
    ds = gdmlx.load_dataset(bundled_dataset_path())
    train, test = np.arange(0, 200, 10), np.arange(300, 305)
    z = np.asarray(ds.z)
    models = {
        "gdmlx_ethanol20_elabels": gdmlx.GDMLRegressor(sigma=7.5, lam=1e-6, use_energy_labels=True),
        "gdmlx_ethanol20_perms": gdmlx.GDMLRegressor(sigma=7.5, lam=1e-10, perms="auto"),
    }
    for name, model in models.items():
        model.fit(ds.R[train], ds.F[train], energies=ds.E[train], z=z)
        gdmlx.export_sgdml_model(model, FOLDERS[name] / f"{name}_sgdml.npz")
        E, F = model.predict_energy_forces(ds.R[test])
        np.savez(FOLDERS[name] / f"{name}_gdmlx_pred.npz", R=ds.R[test], E=E, F=F)
        print(f"{name}: exported, {model.expansion_.n_train} expansion points")


def predict():
    import ase
    from ase.units import kcal, mol
    from sgdml.intf.ase_calc import SGDMLCalculator
    from sgdml.predict import GDMLPredict
    for name, folder in FOLDERS.items():
        model = dict(np.load(folder / f"{name}_sgdml.npz", allow_pickle=True))
        ours = np.load(folder / f"{name}_gdmlx_pred.npz")
        R = ours["R"]
        E, F = GDMLPredict(model, max_processes=1).predict(R.reshape(len(R), -1))
        F = F.reshape(R.shape)
        atoms = ase.Atoms(numbers=model["z"], positions=R[0],
                          calculator=SGDMLCalculator(str(folder / f"{name}_sgdml.npz")))
        e_ase, f_ase = atoms.get_potential_energy() / (kcal / mol), atoms.get_forces() / (kcal / mol)
        np.savez(folder / f"{name}_pred.npz", R=R, E=E, F=F)
        print(f"{name}: sGDML vs gdmlx, max |dE| {np.abs(E - ours['E']).max():.2e} kcal/mol, "
              f"max |dF| {np.abs(F - ours['F']).max():.2e} kcal/mol/A (largest |F| {np.abs(F).max():.1f}); "
              f"sGDML's ASE calculator vs GDMLPredict: {np.abs(e_ase - E[0]).max():.2e}, "
              f"{np.abs(f_ase - F[0]).max():.2e}")


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("stage", choices=["export", "predict"])
    {"export": export, "predict": predict}[p.parse_args().stage]()
