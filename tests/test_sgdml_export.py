"""Export to sGDML's model format: what sGDML predicts from an exported file, and exact
round trips through :func:`gdmlx.import_sgdml_model`.

tests/data/gdmlx_ethanol20_elabels_sgdml.npz is a gdmlx model (20 ethanol geometries, sigma
7.5, lam 1e-6, energy labels) written by ``export_sgdml_model``; ..._pred.npz holds what sGDML 1.0.3's
``GDMLPredict`` predicts with it for 5 other geometries (``benchmarks/sgdml_export_check.py``
made both).
"""

from pathlib import Path

import numpy as np
import pytest

import gdmlx

DATA = Path(__file__).parent / "data"


def _round_trip(model, R, tmp_path):
    """Predictions of ``model`` and of its export read back, for geometries R."""
    path = gdmlx.export_sgdml_model(model, tmp_path / "m.npz")
    back = gdmlx.import_sgdml_model(path)
    assert back.energy_unit_ == model.energy_unit_ and back.length_unit_ == model.length_unit_
    return model.predict_energy_forces(R), back.predict_energy_forces(R), back


def test_sgdml_predicts_what_the_exported_model_predicts():
    """The energy-label coefficients (sGDML's alphas_E) included: sGDML's numbers were made
    from the file, so reading it back must give them."""
    ref = np.load(DATA / "gdmlx_ethanol20_elabels_pred.npz")
    model = gdmlx.import_sgdml_model(DATA / "gdmlx_ethanol20_elabels_sgdml.npz")
    assert np.any(model.expansion_.a != 0) and model.use_energy_labels
    E, F = model.predict_energy_forces(ref["R"])
    np.testing.assert_allclose(E, ref["E"], rtol=1e-12)
    np.testing.assert_allclose(F, ref["F"], rtol=0, atol=1e-9 * np.abs(ref["F"]).max())


@pytest.mark.parametrize("kwargs", [{}, {"use_energy_labels": True},
                                    {"perms": np.array([[0, 1, 2, 3, 4], [3, 1, 2, 0, 4]])}])
def test_export_then_import_predicts_the_same(toy_data, tmp_path, kwargs):
    R, F, E, z = toy_data
    model = gdmlx.GDMLRegressor(sigma=2.0, lam=1e-8, **kwargs).fit(R[:20], F[:20], E[:20], z=z)
    (E0, F0), (E1, F1), back = _round_trip(model, R[40:45], tmp_path)
    np.testing.assert_allclose(E1, E0, rtol=1e-13)
    np.testing.assert_allclose(F1, F0, rtol=0, atol=1e-12 * np.abs(F0).max())
    assert back.expansion_.n_train == model.expansion_.n_train and len(back.perms_) == 1


def test_a_sigma_sgdml_torch_would_truncate_is_warned_about(toy_data, tmp_path):
    R, F, E, z = toy_data
    model = gdmlx.GDMLRegressor(sigma=2.5).fit(R[:10], F[:10], z=z)
    with pytest.warns(UserWarning, match="sigma 2.5 is not a whole number.*PyTorch predictor.*as 2,"):
        gdmlx.export_sgdml_model(model, tmp_path / "m.npz")
    assert gdmlx.import_sgdml_model(tmp_path / "m.npz").sigma == 2.5


def test_the_training_split_goes_along(toy_data, tmp_path):
    R, F, E, z = toy_data
    model = gdmlx.GDMLRegressor(sigma=2.0).fit(R[:10], F[:10], E[:10], z=z)
    model.dataset_md5_, model.indices_ = "0123abcd", {"train": np.arange(10), "valid": np.arange(10, 15)}
    back = gdmlx.import_sgdml_model(gdmlx.export_sgdml_model(model, tmp_path / "m.npz"))
    assert back.dataset_md5_ == "0123abcd"
    np.testing.assert_array_equal(back.indices_["train"], np.arange(10))
    np.testing.assert_array_equal(back.indices_["valid"], np.arange(10, 15))


def test_models_sgdml_cannot_hold_are_refused(toy_data, tmp_path):
    R, F, E, z = toy_data
    reduced = gdmlx.GDMLRegressor(sigma=2.0, pairs=[[1, 0], [2, 0], [3, 2]]).fit(R[:10], F[:10], z=z)
    with pytest.raises(gdmlx.InputError, match="use all 10 atom pairs; this model's descriptor has 3"):
        gdmlx.export_sgdml_model(reduced, tmp_path / "r.npz")
    with pytest.raises(gdmlx.InputError, match="fitted GDMLRegressor, got GDMLRegressor \\(unfitted\\)"):
        gdmlx.export_sgdml_model(gdmlx.GDMLRegressor(), tmp_path / "u.npz")
    with pytest.raises(gdmlx.InputError, match="got MultiscaleModel"):
        gdmlx.export_sgdml_model(gdmlx.MultiscaleModel(), tmp_path / "m.npz")
    assert not list(tmp_path.iterdir())                 # nothing written, not even a temporary file


def test_alphas_e_of_the_wrong_length_is_refused(tmp_path):
    data = dict(np.load(DATA / "gdmlx_ethanol20_elabels_sgdml.npz"))
    np.savez(tmp_path / "bad.npz", **{**data, "alphas_E": data["alphas_E"][:-1]})
    with pytest.raises(gdmlx.ModelFileError, match="'alphas_E' has shape \\(19,\\), expected \\(20,\\)"):
        gdmlx.import_sgdml_model(tmp_path / "bad.npz")


def test_a_grid_search_or_an_unfitted_model_is_refused_with_what_to_export(toy_data, tmp_path):
    """Both were told that sGDML has no multiscale or action models, which they are not."""
    from sklearn.model_selection import GridSearchCV
    R, F, E, z = toy_data
    search = GridSearchCV(gdmlx.GDMLRegressor(), {"sigma": [2.0, 3.0]}, scoring=gdmlx.force_mae_scorer,
                          cv=2).fit(R[:12], F[:12], z=z)
    with pytest.raises(gdmlx.InputError, match="got GridSearchCV: export its best_estimator_") as err:
        gdmlx.export_sgdml_model(search, tmp_path / "s.npz")
    assert "multiscale" not in str(err.value)
    with pytest.raises(gdmlx.InputError, match="\\(unfitted\\): fit it, or load a fitted one") as err:
        gdmlx.export_sgdml_model(gdmlx.GDMLRegressor(), tmp_path / "u.npz")
    assert "multiscale" not in str(err.value)
    gdmlx.export_sgdml_model(search.best_estimator_, tmp_path / "b.npz")
    assert gdmlx.import_sgdml_model(tmp_path / "b.npz").sigma == search.best_params_["sigma"]


def test_units_sgdml_ase_calculator_would_get_wrong_are_warned_about(toy_data, tmp_path):
    """sGDML's SGDMLCalculator assumes kcal/mol unless given E_to_eV and F_to_eV_Ang, and
    hands the model ASE's positions in Angstrom unconverted: a model in bohr, exported
    silently, predicted wrong forces there."""
    import warnings
    R, F, E, z = toy_data
    bohr = gdmlx.GDMLRegressor(sigma=4.0).fit(R[:10] / 0.529177, F[:10], z=z, length_unit="bohr")
    with pytest.warns(UserWarning, match="the model is in bohr: .*SGDMLCalculator.* passes ASE's positions "
                                         "in Angstrom unconverted"):
        gdmlx.export_sgdml_model(bohr, tmp_path / "b.npz")
    ev = gdmlx.GDMLRegressor(sigma=2.0).fit(R[:10], F[:10], z=z, energy_unit="eV")
    with pytest.warns(UserWarning, match=r"the model is in eV: .*SGDMLCalculator\(path, E_to_eV=1, F_to_eV_Ang=1\)"):
        gdmlx.export_sgdml_model(ev, tmp_path / "e.npz")
    kj = gdmlx.GDMLRegressor(sigma=2.0).fit(R[:10], F[:10], z=z, energy_unit="kJ/mol")
    with pytest.warns(UserWarning, match=r"E_to_eV=0.01036426\d*, F_to_eV_Ang=0.01036426"):
        gdmlx.export_sgdml_model(kj, tmp_path / "k.npz")
    kcal = gdmlx.GDMLRegressor(sigma=2.0).fit(R[:10], F[:10], z=z, energy_unit="kcal mol-1", length_unit="Å")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        gdmlx.export_sgdml_model(kcal, tmp_path / "c.npz")


def test_a_model_fitted_without_energies_stays_relative_through_export(toy_data, tmp_path):
    """An exported model fitted on forces only lost that fact: imported, its energies (offset
    c = 0) were taken as absolute, and gdmlx test reported an energy MAE of the data's zero
    (1.2e4 kcal/mol on malonaldehyde). sGDML's use_E key now carries it both ways."""
    from gdmlx.calculator import energies_are_relative
    from gdmlx.cli.common import force_energy_errors
    R, F, E, z = toy_data
    for energies, relative in ((None, True), (E[:30], False)):
        model = gdmlx.GDMLRegressor(sigma=2.0).fit(R[:30], F[:30], energies, z=z)
        gdmlx.export_sgdml_model(model, tmp_path / "m.npz")
        assert bool(np.load(tmp_path / "m.npz")["use_E"]) is not relative
        imported = gdmlx.import_sgdml_model(tmp_path / "m.npz")
        assert energies_are_relative(imported) is relative is energies_are_relative(model)
        mine, theirs = (force_energy_errors(m, R[30:], F[30:], E[30:] + 1e4) for m in (model, imported))
        assert theirs["e_mae"] == pytest.approx(mine["e_mae"], rel=1e-6)
