"""Bad values given to the commands' options and the Python API: each refused with an error
that names the input and what is wrong, before any work, file or traceback."""

import numpy as np
import pytest

import gdmlx
from gdmlx.cli.main import main


@pytest.mark.parametrize("sigma", [1e300, 1e-300, 1e7])
def test_a_sigma_no_model_file_holds_is_refused_before_the_fit(toy_data, sigma):
    """sigma=1e300 raised OverflowError from the kernel, 1e-300 a SystemError from numba, and
    1e7 fitted a model whose file gdmlx then refused to read ('expansion sigma 1e+07 is
    outside (1e-06, 1000000.0)')."""
    R, F, E, z = toy_data
    with pytest.raises(gdmlx.InputError, match=r"sigma must be between 1e-06 and 1e\+06 .*got"):
        gdmlx.GDMLRegressor(sigma=sigma).fit(R[:10], F[:10], E[:10], z)


def test_the_largest_sigma_allowed_fits_a_model_that_loads(toy_data, tmp_path):
    R, F, E, z = toy_data
    model = gdmlx.GDMLRegressor(sigma=1e6).fit(R[:10], F[:10], E[:10], z)
    model.save(tmp_path / "m.h5")
    assert gdmlx.load_model(tmp_path / "m.h5").sigma == 1e6


@pytest.mark.parametrize("name, scale", [("R", 1e300), ("R", 1e160), ("F", 1e300)])
def test_training_data_whose_squares_overflow_are_refused(toy_data, name, scale):
    """R x 1e160 fitted a model of zero descriptors that could not be saved; F x 1e300 one
    that predicted NaN: both without a word."""
    R, F, E, z = toy_data
    data = {"R": R[:10], "F": F[:10]}
    data[name] = data[name] * scale
    with pytest.raises(gdmlx.InputError, match=f"^{name} holds values up to .* where their squares overflow"):
        gdmlx.GDMLRegressor(sigma=2.0).fit(data["R"], data["F"], E[:10], z)
