"""Shared fixtures: a small analytic molecule, so tests need no external data."""

from contextlib import contextmanager

import h5py
import numpy as np
import pytest

import gdmlx
from gdmlx.hdf5_files import DIGEST_ATTR


def toy_energy_forces(R):
    """Energy (n,) and forces (n, N, 3) of a toy potential: Morse bonds along a chain plus a
    weak 1/r repulsion between all pairs. Exact forces; units arbitrary ("kcal/mol", "Ang")."""
    R = np.atleast_3d(R) if R.ndim == 3 else R[None]
    n, N, _ = R.shape
    E = np.zeros(n)
    F = np.zeros_like(R)
    for i in range(N):
        for j in range(i):
            r_vec = R[:, i] - R[:, j]
            r = np.linalg.norm(r_vec, axis=1)
            if i == j + 1:
                e = np.exp(-1.8 * (r - 1.2))
                E += 40.0 * (1 - e) ** 2
                dEdr = 40.0 * 2 * (1 - e) * 1.8 * e
            else:
                E += 5.0 / r
                dEdr = -5.0 / r**2
            f = -(dEdr / r)[:, None] * r_vec
            F[:, i] += f
            F[:, j] -= f
    return E, F


@contextmanager
def edited_file(path):
    """A model file written by gdmlx, open for changes and left without its content
    checksum, as older versions wrote files and as anyone crafting one can: the readers'
    own checks, not the checksum, must catch what a test changes."""
    with h5py.File(path, "a") as f:
        if DIGEST_ATTR in f.attrs:
            del f.attrs[DIGEST_ATTR]
        yield f


def toy_geometries(n, n_atoms=5, seed=0, noise=0.12):
    """Perturbed zig-zag chains, (n, N, 3)."""
    rng = np.random.default_rng(seed)
    base = np.array([[1.2 * k * np.cos(0.5), 0.6 * (k % 2), 0.1 * k] for k in range(n_atoms)])
    return base + noise * rng.standard_normal((n, n_atoms, 3))


@pytest.fixture(scope="session")
def toy_data():
    """(R, F, E, z) for 60 geometries of a 5-atom toy molecule."""
    R = toy_geometries(60)
    E, F = toy_energy_forces(R)
    z = np.array([6, 6, 8, 6, 1])
    return R, F, E, z


@pytest.fixture(scope="session")
def toy_model(toy_data):
    R, F, E, z = toy_data
    return gdmlx.GDMLRegressor(sigma=2.0, lam=1e-8).fit(R[:30], F[:30], E[:30], z=z)


@pytest.fixture(scope="session")
def ethanol_model():
    """A small model of the bundled ethanol data (40 geometries, sigma 10)."""
    from gdmlx.cli.demo import bundled_dataset_path
    ds = gdmlx.load_dataset(bundled_dataset_path())
    return gdmlx.GDMLRegressor(sigma=10.0).fit(ds.R[:40], ds.F[:40], ds.E[:40], z=ds.z)


@pytest.fixture(scope="session")
def toy_npz(tmp_path_factory, toy_data):
    """The toy data as an sGDML-style .npz file (the commands' input)."""
    R, F, E, z = toy_data
    path = tmp_path_factory.mktemp("toy") / "toy.npz"
    gdmlx.Dataset(R=R, z=z, F=F, E=E, name="toy").save_npz(path)
    return path


@pytest.fixture(scope="session")
def chain():
    """(R, F, E, z) of 140 geometries of an 8-carbon toy chain (multiscale tests)."""
    R = toy_geometries(140, n_atoms=8, seed=4, noise=0.06)
    E, F = toy_energy_forces(R)
    return R, F, E, np.array([6] * 8)


@pytest.fixture(scope="session")
def ms_model(chain):
    """A multiscale model of the chain: bonded pairs fast (40 points), the rest slow (80)."""
    R, F, E, z = chain
    return gdmlx.MultiscaleModel(fast=gdmlx.GDMLRegressor(sigma=2.0, lam=1e-6),
                                 slow=gdmlx.GDMLRegressor(sigma=3.0, lam=1e-8),
                                 max_hops=1, n_fast=40).fit(R[:80], F[:80], E[:80], z=z)
