"""Import of sGDML model files, against predictions made by sGDML 1.0.3 itself.

tests/data/sgdml_ethanol20_model.npz was trained by sGDML (GDMLTrain, use_sym=False,
sigma 7.5, 20 ethanol geometries); sgdml_ethanol20_pred.npz holds GDMLPredict's energies and
forces for 5 other geometries. The ``_sym`` files: the same with use_sym=True (sGDML found
6 permutations).
"""

from pathlib import Path

import ase
import ase.units
import numpy as np
import pytest

import gdmlx

DATA = Path(__file__).parent / "data"


def _imported_matches_sgdml(model_file, pred_file):
    model = gdmlx.import_sgdml_model(DATA / model_file)
    ref = np.load(DATA / pred_file)
    E, F = model.predict_energy_forces(ref["R"])
    np.testing.assert_allclose(E, ref["E"], rtol=1e-12)
    np.testing.assert_allclose(F, ref["F"], rtol=0, atol=1e-9 * np.abs(ref["F"]).max())
    return model


def test_imported_model_predicts_what_sgdml_predicts():
    model = _imported_matches_sgdml("sgdml_ethanol20_model.npz", "sgdml_ethanol20_pred.npz")
    assert model.energy_unit_ == "kcal/mol" and model.sigma == 7.5


def test_imported_symmetric_model_predicts_what_sgdml_predicts():
    model = _imported_matches_sgdml("sgdml_ethanol20_sym_model.npz", "sgdml_ethanol20_sym_pred.npz")
    assert len(model.perms_) == 6 and model.expansion_.n_train == 6 * 20


def test_bad_and_foreign_files_are_refused(tmp_path):
    data = dict(np.load(DATA / "sgdml_ethanol20_model.npz", allow_pickle=True))
    data["perms"] = np.stack([np.arange(9), np.r_[2, 1, 0, 3, 4, 5, 6, 7, 8]])    # swaps C and O
    np.savez(tmp_path / "sym.npz", **data)
    with pytest.raises(gdmlx.ModelFileError, match="permutations are invalid"):
        gdmlx.import_sgdml_model(tmp_path / "sym.npz")
    np.savez(tmp_path / "other.npz", R=np.zeros((2, 3, 3)))
    with pytest.raises(gdmlx.ModelFileError, match="not an sGDML model"):
        gdmlx.import_sgdml_model(tmp_path / "other.npz")
    (tmp_path / "junk.npz").write_bytes(b"junk")
    with pytest.raises(gdmlx.ModelFileError, match="not an .npz archive"):
        gdmlx.import_sgdml_model(tmp_path / "junk.npz")
    (tmp_path / "torn.npz").write_bytes(b"PK\x03\x04" + b"torn zip archive")   # a zip's magic, no zip
    with pytest.raises(gdmlx.ModelFileError, match="not a readable"):
        gdmlx.import_sgdml_model(tmp_path / "torn.npz")


def test_units_of_a_file_that_says_unknown_can_be_given(tmp_path):
    data = dict(np.load(DATA / "sgdml_ethanol20_model.npz", allow_pickle=True))
    data["e_unit"], data["r_unit"] = np.array("u"), np.array("u")
    np.savez(tmp_path / "u.npz", **data)
    with pytest.raises(gdmlx.InputError, match="import_sgdml_model.*energy_unit"):
        gdmlx.GDMLCalculator(gdmlx.import_sgdml_model(tmp_path / "u.npz"))
    with pytest.raises(gdmlx.InputError, match="unknown energy unit 'kcal'"):
        gdmlx.import_sgdml_model(tmp_path / "u.npz", energy_unit="kcal")
    model = gdmlx.import_sgdml_model(tmp_path / "u.npz", energy_unit="eV", length_unit="bohr")
    ref = np.load(DATA / "sgdml_ethanol20_pred.npz")
    atoms = ase.Atoms(numbers=model.z_, positions=ref["R"][0] * ase.units.Bohr,
                      calculator=gdmlx.GDMLCalculator(model))
    np.testing.assert_allclose(atoms.get_potential_energy(), ref["E"][0], rtol=1e-12)
    np.testing.assert_allclose(atoms.get_forces(), ref["F"][0] / ase.units.Bohr, rtol=1e-9, atol=1e-9)


def test_the_recorded_training_split_comes_along():
    """sGDML records its training indices and the dataset's md5: testing on that dataset
    must leave them out as it does for gdmlx's own models."""
    model = gdmlx.import_sgdml_model(DATA / "sgdml_ethanol20_model.npz")
    f = np.load(DATA / "sgdml_ethanol20_model.npz")
    assert model.dataset_md5_ == f["md5_train"].item().decode()
    np.testing.assert_array_equal(model.indices_["train"], f["idxs_train"])



@pytest.mark.parametrize("perms", [np.arange(9)[None] + 0.5, np.arange(9.0)[None], np.arange(9)[None] + 0j])
def test_permutations_that_are_not_integers_are_refused(tmp_path, perms):
    """perms of 0.5, 1.5, ... were cut to the identity and loaded."""
    data = dict(np.load(DATA / "sgdml_ethanol20_model.npz", allow_pickle=True))
    np.savez(tmp_path / "m.npz", **{**data, "perms": perms})
    message = f"m.npz: 'perms' must be integer atom indices, got {perms.dtype}"
    with pytest.raises(gdmlx.ModelFileError, match=message):
        gdmlx.import_sgdml_model(tmp_path / "m.npz")
