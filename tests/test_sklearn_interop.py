"""scikit-learn conventions and persistence of the estimators: what a fitted model records
is what it was fitted with, whatever set_params changed since."""

import numpy as np
import pytest
from sklearn.base import clone

import gdmlx
from conftest import toy_energy_forces, toy_geometries


@pytest.fixture(scope="module")
def chain():
    """(R, F, E, z) of 60 geometries of an 8-atom toy chain."""
    R = toy_geometries(60, n_atoms=8, seed=4, noise=0.06)
    E, F = toy_energy_forces(R)
    return R, F, E, np.array([6] * 8)


def _multiscale(max_hops=1, n_fast=10):
    return gdmlx.MultiscaleModel(fast=gdmlx.GDMLRegressor(sigma=2.0, lam=1e-6),
                                 slow=gdmlx.GDMLRegressor(sigma=3.0, lam=1e-8), max_hops=max_hops, n_fast=n_fast)


@pytest.mark.filterwarnings("ignore::gdmlx.EnergyConsistencyWarning")
def test_multiscale_file_records_the_split_it_was_fitted_with(chain, tmp_path):
    """set_params(max_hops=2, n_fast=None) after a fit with 1 and 10 was saved as 2 and None:
    the loaded model claimed a split its fast part (7 bond pairs) was not made with, and its
    clone refitted another model."""
    R, F, E, z = chain
    ms = _multiscale().fit(R[:30], F[:30], E[:30], z=z)
    ms.set_params(max_hops=2, n_fast=None)
    ms.save(tmp_path / "ms.h5")
    loaded = gdmlx.load_model(tmp_path / "ms.h5")
    assert (loaded.max_hops, loaded.n_fast) == (1, 10) and len(loaded.fast_.pairs_) == 7
    refit = clone(loaded).fit(R[:30], F[:30], E[:30], z=z)
    np.testing.assert_array_equal(refit.predict(R[40:45]), loaded.predict(R[40:45]))
    gdmlx.save_model(ms, tmp_path / "direct.h5")           # the function records the same
    direct = gdmlx.load_model(tmp_path / "direct.h5")
    assert (direct.max_hops, direct.n_fast) == (1, 10)
    # with_slow (gdmlx.reduce) keeps the fitted split too
    assert (ms.with_slow(ms.slow_).max_hops, ms.with_slow(ms.slow_).n_fast) == (1, 10)
    # the next fit takes the new settings, and records them
    ms.fit(R[:30], F[:30], E[:30], z=z).save(tmp_path / "ms2.h5")
    again = gdmlx.load_model(tmp_path / "ms2.h5")
    assert (again.max_hops, again.n_fast) == (2, None) and len(again.fast_.pairs_) == 7 + 6


@pytest.mark.filterwarnings("ignore::gdmlx.EnergyConsistencyWarning")
def test_refit_changes_only_the_parameters_it_is_given(toy_model, toy_data):
    """refit cloned the current parameters: after set_params(sigma=40) it refitted a sigma-40
    model, and gdmlx.reduce (which refits on fewer pairs) validated it against the sigma-2 one."""
    R, F, E, z = toy_data
    model = clone(toy_model).fit(R[:30], F[:30], E[:30], z=z)
    model.set_params(sigma=40.0, lam=1e-3)
    again = model.refit()
    assert (again.sigma, again.lam) == (2.0, 1e-8)
    np.testing.assert_array_equal(again.predict(R[40:45]), toy_model.predict(R[40:45]))
    fewer = model.refit(pairs=toy_model.pairs_[::2])
    assert fewer.sigma == 2.0 and len(fewer.pairs_) == 5
    # the next fit takes set_params' changes, as before
    assert model.fit(R[:30], F[:30], E[:30], z=z).expansion_.sigma == 40.0


def test_model_keeps_its_own_copy_of_the_training_data(toy_data, tmp_path):
    """fit kept the caller's R, F and E arrays: changing them afterwards changed what refit and
    model files used (another model, a train_hash that no longer matched the stored data)."""
    R, F, E, z = (a[:20].copy() for a in toy_data)
    model = gdmlx.GDMLRegressor(sigma=2.0, lam=1e-8).fit(R, F, E, z=z)
    expected = model.predict(toy_data[0][40:45])
    ms = _multiscale(n_fast=5).fit(R, F, E, z=np.full(5, 6))
    R *= 1.5
    F[:] = 0.0
    E[:] = 0.0
    refit = model.refit()
    assert refit.train_hash_ == model.train_hash_
    np.testing.assert_array_equal(refit.predict(toy_data[0][40:45]), expected)
    np.testing.assert_array_equal(ms.R_train_, toy_data[0][:20])
    model.save(tmp_path / "m.h5")
    np.testing.assert_array_equal(gdmlx.load_model(tmp_path / "m.h5").R_train_, toy_data[0][:20])


def test_changing_the_pairs_array_after_the_fit_leaves_the_model(toy_data):
    """The fitted expansion held the very pairs array given as the hyperparameter: reordering
    it in place afterwards changed the predictions silently (forces off by tens)."""
    from gdmlx.descriptor import all_pairs
    R, F, E, z = toy_data
    pairs = all_pairs(5)
    model = gdmlx.GDMLRegressor(sigma=2.0, lam=1e-8, pairs=pairs).fit(R[:30], F[:30], E[:30], z=z)
    batch, one = model.predict(R[40:45]), model.predict(R[40])
    pairs[:] = pairs[::-1].copy()
    np.testing.assert_array_equal(model.predict(R[40:45]), batch)
    np.testing.assert_array_equal(model.predict(R[40]), one)
    np.testing.assert_array_equal(model.refit().predict(R[40:45]), batch)


def test_unpickled_model_sizes_its_work_arrays_for_this_process(toy_model):
    """A model made where numba had fewer threads (a joblib worker) and pickled kept work
    arrays for that many, and its one-geometry prediction then used fewer threads than it could."""
    import pickle

    import numba
    from gdmlx.expansion import KernelExpansion
    if numba.config.NUMBA_NUM_THREADS < 2:
        pytest.skip("needs numba with 2 threads or more")
    e, before = toy_model.expansion_, numba.get_num_threads()
    numba.set_num_threads(1)
    try:                                                   # made and pickled with one thread
        blob = pickle.dumps(KernelExpansion(e.pairs, e.n_atoms, e.sigma, e.X, e.B, e.a, e.c))
    finally:
        numba.set_num_threads(before)
    loaded = pickle.loads(blob)
    assert loaded._work.shape == ((5 + before) * len(e.pairs),)
    R = toy_model.R_train_[0]
    assert loaded.predict_one(R)[0] == e.predict_one(R)[0]


def test_estimators_are_regressors_with_their_own_score(toy_model, toy_data):
    """sklearn.base.is_regressor was False (no RegressorMixin); the mixin's r2_score on the
    flat predictions must not replace gdmlx's force R^2."""
    from sklearn.base import is_regressor
    assert is_regressor(gdmlx.GDMLRegressor()) and is_regressor(gdmlx.MultiscaleModel())
    R, F, E, z = toy_data
    pred = toy_model.predict(R[30:40])
    expected = 1.0 - ((pred - F[30:40]) ** 2).sum() / ((F[30:40] - F[30:40].mean()) ** 2).sum()
    assert toy_model.score(R[30:40], F[30:40]) == pytest.approx(expected, rel=1e-12)


def test_score_of_constant_forces_is_finite(toy_model, toy_data):
    """Forces without variance (e.g. all zero) gave -inf and a RuntimeWarning; sklearn's
    r2_score gives 0 unless the prediction is exact."""
    import warnings
    R = toy_data[0][30:32]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert toy_model.score(R, np.zeros_like(R)) == 0.0
        assert toy_model.score(R, toy_model.predict(R)) == 1.0
