"""Matching a geometry's atom order to a model's (gdmlx.match_atom_order)."""

from pathlib import Path

import ase
import ase.io
import numpy as np
import pytest
from ase.build import molecule

import gdmlx
from gdmlx.atom_order import distance_to_training
from gdmlx.md import Simulation

DATA = Path(__file__).parent / "data"


@pytest.mark.parametrize("model_name", ["toy_model", "ethanol_model"])
def test_shuffled_training_geometries_get_their_order_back(model_name, request):
    model = request.getfixturevalue(model_name)
    rng = np.random.default_rng(0)
    for R in model.R_train_[:3]:
        p = rng.permutation(len(model.z_))
        shuffled = ase.Atoms(numbers=model.z_[p], positions=R[p], velocities=R[p] * 0.01)
        back = gdmlx.match_atom_order(shuffled, model)
        np.testing.assert_array_equal(back.numbers, model.z_)
        np.testing.assert_array_equal(back.positions, R)
        np.testing.assert_allclose(back.get_velocities(), R * 0.01)       # per-atom arrays go along


def test_ase_molecule_runs_after_reordering(ethanol_model):
    """ASE's ethanol lists O third as the dataset does, but its hydrogens in another order:
    the engine refuses it as it is and runs it reordered."""
    atoms = molecule("CH3CH2OH")
    with pytest.raises(gdmlx.GeometryError, match="match_atom_order"):
        Simulation(ethanol_model, atoms)
    summary = Simulation(ethanol_model, gdmlx.match_atom_order(atoms, ethanol_model), temperature_K=300,
                         seed=0).run(200, progress=False)
    assert summary["outside_fraction"] == 0.0


def test_model_without_training_geometries_matches_by_its_descriptors():
    model = gdmlx.import_sgdml_model(DATA / "sgdml_ethanol20_model.npz")
    ref = np.load(DATA / "sgdml_ethanol20_pred.npz")["R"][0]
    p = np.array([0, 2, 1, 8, 7, 6, 5, 4, 3])
    back = gdmlx.match_atom_order(ase.Atoms(numbers=model.z_[p], positions=ref[p]), model)
    np.testing.assert_array_equal(back.numbers, model.z_)
    # of the equivalent labellings, the one nearest a training descriptor: no further than the original's
    nearest = distance_to_training(back.positions, np.arange(9)[None], model)[0]
    assert nearest <= distance_to_training(ref, np.arange(9)[None], model)[0] + 1e-12
    assert abs(gdmlx.GDMLCalculator(model).get_potential_energy(back)
               - gdmlx.GDMLCalculator(model).get_potential_energy(ase.Atoms(numbers=model.z_, positions=ref))) < 0.05


def test_atoms_already_in_order_keep_it(ethanol_model):
    """Every labelling that matches the bond graph is a valid answer; a geometry already in
    one keeps its order, even where another is nearer the training data."""
    from gdmlx.cli.demo import bundled_dataset_path
    for q in gdmlx.load_dataset(bundled_dataset_path()).R[40:60]:        # not training geometries
        back = gdmlx.match_atom_order(ase.Atoms(numbers=ethanol_model.z_, positions=q), ethanol_model)
        np.testing.assert_array_equal(back.positions, q)


def test_other_molecules_and_broken_bonds_are_named(ethanol_model):
    with pytest.raises(gdmlx.InputError, match=r"\(CH4\) are not the model's molecule \(C2H6O\)"):
        gdmlx.match_atom_order(molecule("CH4"), ethanol_model)
    dimethyl_ether = molecule("CH3OCH3")                       # same elements, other bonds
    with pytest.raises(gdmlx.InputError, match="no order of these atoms gives the model's bond graph"):
        gdmlx.match_atom_order(dimethyl_ether, ethanol_model)


def test_md_reorder_option(ethanol_model, tmp_path, capsys):
    from gdmlx.cli.main import main
    ethanol_model.save(tmp_path / "m.h5")
    ase.io.write(tmp_path / "ase.xyz", molecule("CH3CH2OH"))
    argv = ["md", str(tmp_path / "m.h5"), "--xyz", str(tmp_path / "ase.xyz"), "--steps", "100", "--json"]
    assert main(argv) == 2 and "--reorder" in capsys.readouterr().err
    assert main(argv + ["--reorder"]) == 0
    assert main(["md", str(tmp_path / "m.h5"), "--steps", "100", "--reorder"]) == 2
    assert "--reorder applies to a start geometry given with --xyz" in capsys.readouterr().err


def test_an_unfitted_model_or_a_path_is_named(toy_model):
    """They failed with AttributeError 'z_'."""
    from sklearn.exceptions import NotFittedError
    atoms = ase.Atoms(numbers=toy_model.z_, positions=toy_model.R_train_[0])
    with pytest.raises(NotFittedError):
        gdmlx.match_atom_order(atoms, gdmlx.GDMLRegressor())
    with pytest.raises(gdmlx.InputError, match="model must be a fitted gdmlx model .* got str"):
        gdmlx.match_atom_order(atoms, "model.h5")
