"""Getting data in and out: load_dataset on every format, Dataset's API, units."""

import h5py
import numpy as np
import pytest

import gdmlx
from gdmlx import Dataset, load_dataset
from gdmlx.errors import InputError


def _water(n=6, seed=0, **kw):
    rng = np.random.default_rng(seed)
    R = np.array([[0.0, 0.0, 0.0], [0.96, 0.0, 0.0], [-0.24, 0.93, 0.0]]) + rng.normal(0, 0.02, (n, 3, 3))
    return Dataset(R=R, z=np.array([8, 1, 1]), F=rng.normal(0, 1, (n, 3, 3)), E=rng.normal(0, 1, n), **kw)


def _same(a, b):
    for k in ("R", "z", "F", "E", "lattice"):
        x, y = getattr(a, k), getattr(b, k)
        assert (x is None) == (y is None), k
        if x is not None:
            assert x.dtype == y.dtype and np.array_equal(x, y), k
    for k in ("energy_unit", "length_unit", "name", "theory"):
        assert getattr(a, k) == getattr(b, k), k


def test_dataset_archives_are_read_by_their_contents_not_their_suffix(tmp_path):
    ds = _water(energy_unit="Ha", length_unit="bohr", name="w", theory="DFT", lattice=4.0 * np.eye(3))
    ds.save_npz(tmp_path / "data")                     # np.savez to a file: no .npz is appended
    assert (tmp_path / "data").exists()
    _same(load_dataset(tmp_path / "data"), ds)
    with h5py.File(tmp_path / "data.hdf", "w") as f:
        for k in ("R", "z", "F", "E"):
            f[k] = getattr(ds, k)
        f.attrs.update(e_unit="eV", r_unit="Ang", name="h")
    got = load_dataset(tmp_path / "data.hdf")
    assert np.array_equal(got.R, ds.R) and got.energy_unit == "eV" and got.name == "h"
    with pytest.raises(InputError, match="energy_key and forces_key"):
        load_dataset(tmp_path / "data", energy_key="REF_energy")
