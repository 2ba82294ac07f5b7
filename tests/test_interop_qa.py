"""sGDML interoperability and model-file safety: what a QA session found (sGDML-format files
are written with numpy here; sGDML itself is not needed)."""

from pathlib import Path

import numpy as np
import pytest

import gdmlx
from gdmlx.dataset import fingerprint

DATA = Path(__file__).parent / "data"
SGDML_MODEL = DATA / "sgdml_ethanol20_model.npz"


def test_exported_split_fingerprint_is_bytes_as_sgdml_compares_it(toy_data, tmp_path):
    """sGDML's dataset fingerprints are bytes (``io.dataset_md5``), compared with ``==``: the
    exported md5_train was a str, which never equals a dataset's bytes md5, so sGDML's tools
    did not recognise the dataset the model was trained on."""
    R, F, E, z = toy_data
    model = gdmlx.GDMLRegressor(sigma=2.0).fit(R[:10], F[:10], E[:10], z=z)
    md5 = fingerprint(z, R, E, F)                        # bytes, as sGDML's dataset files hold it
    model.dataset_md5_, model.indices_ = md5.decode(), {"train": np.arange(10), "valid": np.arange(10, 15)}
    path = gdmlx.export_sgdml_model(model, tmp_path / "m.npz")
    with np.load(path) as f:
        for part in ("train", "valid"):
            assert f[f"md5_{part}"].dtype.kind == "S" and f[f"md5_{part}"] == np.array(md5)
    assert gdmlx.import_sgdml_model(path).dataset_md5_ == md5.decode()


def test_exported_lam_is_the_one_fitted_with(toy_data, tmp_path):
    """set_params after the fit changed the lam the exported file recorded (and the
    imported model's lam) though the coefficients were fitted with the first one."""
    R, F, E, z = toy_data
    model = gdmlx.GDMLRegressor(sigma=2.0, lam=1e-6).fit(R[:10], F[:10], E[:10], z=z)
    model.set_params(lam=0.5)
    path = gdmlx.export_sgdml_model(model, tmp_path / "m.npz")
    with np.load(path) as f:
        assert float(f["lam"]) == 1e-6
    assert gdmlx.import_sgdml_model(path).lam == 1e-6


def _sgdml_file(tmp_path, name="m.npz", **changes):
    """tests/data's sGDML model with ``changes`` (None: the key left out), without the
    object (pickled) arrays sGDML adds, which gdmlx never reads."""
    with np.load(SGDML_MODEL, allow_pickle=True) as f:
        arrays = {k: f[k] for k in f.files if f[k].dtype != object}
    for k, v in changes.items():
        arrays.pop(k) if v is None else arrays.__setitem__(k, v)
    np.savez(tmp_path / name, **arrays)
    return tmp_path / name


def test_sgdml_files_that_write_text_as_bytes_are_read(tmp_path):
    """sGDML accepts type b'm' (GDMLPredict checks both) and files of Python 2 era hold bytes:
    gdmlx said 'not an sGDML model file', and bytes units were 'unknown energy unit "b'...'"'."""
    path = _sgdml_file(tmp_path, type=np.array(b"m"), e_unit=np.array(b"kcal/mol"), r_unit=np.array(b"Ang"))
    model = gdmlx.load_any_model(path)
    assert (model.energy_unit_, model.length_unit_) == ("kcal/mol", "Ang")
    ref = gdmlx.import_sgdml_model(SGDML_MODEL)
    R = np.load(DATA / "sgdml_ethanol20_pred.npz")["R"][:2]
    np.testing.assert_array_equal(model.predict(R), ref.predict(R))


def test_one_element_arrays_for_sgdml_numbers_are_read(tmp_path):
    """sGDML reads c, sig, std, lam of shape (1,) as it reads scalars; gdmlx raised numpy's
    TypeError 'only 0-dimensional arrays can be converted to Python scalars'."""
    with np.load(SGDML_MODEL) as f:
        changes = {k: f[k].reshape(1) for k in ("c", "sig", "std", "lam")}
    model = gdmlx.import_sgdml_model(_sgdml_file(tmp_path, **changes))
    ref = gdmlx.import_sgdml_model(SGDML_MODEL)
    R = np.load(DATA / "sgdml_ethanol20_pred.npz")["R"][:2]
    np.testing.assert_array_equal(model.predict_energy_forces(R)[0], ref.predict_energy_forces(R)[0])
    assert model.lam == ref.lam and model.sigma == ref.sigma


@pytest.mark.parametrize("change, message", [
    (dict(type=np.array(["m", "m"])), "not an sGDML model file"),
    (dict(e_unit=np.array(["kcal/mol", "eV"])), "'e_unit' must be a unit name"),
    (dict(r_unit=np.array(3)), "'r_unit' must be a unit name"),
    (dict(md5_train=np.array([b"ab", b"cd"])), "'md5_train' must be a dataset fingerprint"),
    (dict(idxs_train=np.arange(20) + 0.5), "'idxs_train' must be dataset indices"),
    (dict(idxs_train=-np.arange(20)), "'idxs_train' must be dataset indices"),
    (dict(idxs_train=np.arange(20).reshape(4, 5)), "'idxs_train' must be dataset indices"),
    (dict(idxs_train=np.array(3)), "'idxs_train' must be dataset indices"),
    (dict(idxs_train=np.array(["a", "b"])), "'idxs_train' must be dataset indices"),
    (dict(R_desc=np.zeros((36, 0)), R_d_desc_alpha=np.zeros((0, 36))), "descriptor arrays do not fit"),
])
def test_malformed_sgdml_entries_are_named(tmp_path, change, message):
    """Each raised ValueError, IndexError or TypeError from deep in numpy (or, for float or
    negative indices, was silently taken, leaving out the wrong geometries in gdmlx test)."""
    path = _sgdml_file(tmp_path, **change)
    with pytest.raises(gdmlx.ModelFileError, match=message) as got:
        gdmlx.load_any_model(path)
    assert str(path) in str(got.value)


def test_a_file_without_units_says_what_is_assumed(tmp_path):
    """sGDML writes e_unit and r_unit only when its dataset had them: gdmlx took kcal/mol and
    Angstrom without a word, which silently scales forces and MD wrongly for data in eV or bohr."""
    path = _sgdml_file(tmp_path, e_unit=None, r_unit=None)
    with pytest.warns(UserWarning, match=r"records no e_unit or r_unit: assuming kcal/mol and Ang .*energy_unit="):
        model = gdmlx.import_sgdml_model(path)
    assert (model.energy_unit_, model.length_unit_) == ("kcal/mol", "Ang")
    with pytest.warns(UserWarning, match=r"records no r_unit: assuming Ang "):
        gdmlx.import_sgdml_model(path, energy_unit="eV")
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model = gdmlx.import_sgdml_model(path, energy_unit="eV", length_unit="bohr")
        gdmlx.import_sgdml_model(SGDML_MODEL)          # a file with units: no warning
    assert (model.energy_unit_, model.length_unit_) == ("eV", "bohr")


@pytest.mark.parametrize("version, message", [
    (None, "has no format_version attribute"),
    ("1", r"model format version '1' is not supported"),     # said 'version 1 is not supported (supports 1)'
    (2, r"model format version 2 is not supported"),
])
def test_a_missing_or_foreign_format_version_is_named(toy_model, tmp_path, version, message):
    import h5py
    path = tmp_path / "m.h5"
    toy_model.save(path)
    with h5py.File(path, "a") as f:
        if version is None:
            del f.attrs["format_version"]
        else:
            f.attrs["format_version"] = version
    with pytest.raises(gdmlx.ModelFileError, match=message) as got:
        gdmlx.load_any_model(path)
    assert str(path) in str(got.value)


@pytest.mark.parametrize("offset, value", [(6, 173), (10, 99)])   # version needed 17.3; compression 99
def test_a_garbled_zip_directory_entry_is_named(tmp_path, offset, value):
    """One flipped bit in an sGDML model's zip directory (found by flipping bits at random)
    raised zipfile's NotImplementedError ('zip file version 17.3', 'That compression method
    is not supported') out of import_sgdml_model and load_any_model."""
    raw = bytearray(_sgdml_file(tmp_path).read_bytes())
    at = raw.find(b"PK\x01\x02")                       # each central directory entry
    while at >= 0:
        raw[at + offset:at + offset + 2] = value.to_bytes(2, "little")
        at = raw.find(b"PK\x01\x02", at + 4)
    path = tmp_path / "garbled.npz"
    path.write_bytes(bytes(raw))
    for load in (gdmlx.import_sgdml_model, gdmlx.load_any_model):
        with pytest.raises(gdmlx.ModelFileError, match="garbled.npz: not a readable sGDML .npz model"):
            load(path)


def test_an_empty_output_name_is_refused_before_any_work(tmp_path, capsys):
    """-o "" (an unset variable in a script) trained first, then failed renaming a temporary
    file in the working directory's parent onto ''; the Python writers did the same."""
    from gdmlx.atomic_write import check_output_path
    from gdmlx.cli.main import main
    with pytest.raises(ValueError, match="an empty file name"):
        check_output_path("")
    assert main(["train", "no-such-data.npz", "--n-train", "10", "-o", ""]) == 2
    assert "-o was given an empty file name" in capsys.readouterr().err
