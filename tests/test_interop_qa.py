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
