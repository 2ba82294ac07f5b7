"""Quality-assurance checks of multiscale models (gdmlx.multiscale, gdmlx split) and
multiple-time-step MD: each test failed before the fix it names."""

import numpy as np
import pytest

import gdmlx
from conftest import edited_file


@pytest.mark.parametrize("setting, value", [("max_hops", 2.5), ("max_hops", 0), ("n_fast", np.nan),
                                            ("n_fast", -1)])
def test_from_parts_checks_the_split_settings(ms_model, setting, value):
    """from_parts recorded any max_hops and n_fast: 2.5 was saved as 2, 0 and -1 were saved
    (a clone of the loaded model failed to fit), NaN failed at save with 'cannot convert
    float NaN to integer'."""
    with pytest.raises(gdmlx.InputError, match=setting):
        gdmlx.MultiscaleModel.from_parts(ms_model.fast_, ms_model.slow_, **{setting: value})


def test_model_file_with_bad_split_settings_is_refused(ms_model, tmp_path):
    """A file recording max_hops 0 loaded as a model that no refit could reproduce."""
    path = tmp_path / "ms.h5"
    ms_model.save(path)
    with edited_file(path) as f:
        f.attrs["max_hops"] = 0
    with pytest.raises(gdmlx.ModelFileError, match="ms.h5: max_hops must be at least 1"):
        gdmlx.load_model(path)


@pytest.mark.parametrize("part", ["fast", "slow"])
def test_parameters_of_a_part_set_to_none_need_a_template(part):
    """set_params(fast=None, fast__sigma=3) (a grid over both) raised AttributeError
    "'NoneType' object has no attribute 'set_params'"."""
    ms = gdmlx.MultiscaleModel(fast=gdmlx.GDMLRegressor(), slow=gdmlx.GDMLRegressor())
    with pytest.raises(gdmlx.InputError, match=f"{part} is None .* give a template"):
        ms.set_params(**{part: None, f"{part}__sigma": 3.0})
    template = gdmlx.GDMLRegressor(sigma=5.0)
    assert getattr(ms.set_params(**{part: template, f"{part}__sigma": 3.0}), part).sigma == 3.0


@pytest.mark.parametrize("part, template, error, message", [
    ("fast", gdmlx.GDMLRegressor(sigma=-1.0), gdmlx.InputError, "sigma must be"),
    ("slow", gdmlx.GDMLRegressor(use_energy_labels=True), gdmlx.InputError, "use_energy_labels=True fits"),
    ("slow", gdmlx.GDMLRegressor(sigma=3.0, lam=0.0), np.linalg.LinAlgError,
     "the kernel matrix is not positive definite at lam=0")])
def test_a_part_that_cannot_be_fitted_is_named(chain, part, template, error, message):
    """A bad part's error did not say which part: 'sigma must be a finite number > 0, got
    -1', 'the kernel matrix is not positive definite at lam=0: increase lam' (gdmlx split
    --fast-lam 0 said the latter too)."""
    R, F, E, z = chain
    R2, F2 = np.r_[R[:20], R[:20]], np.r_[F[:20], F[:20] + 1.0]     # duplicates: singular at lam 0
    with pytest.raises(error, match=f"^the {part} part: {message}"):
        gdmlx.MultiscaleModel(max_hops=1, n_fast=20, **{part: template}).fit(R2, F2, z=z)


def test_wall_onsets_of_elements_without_a_van_der_waals_radius():
    """ASE's Alvarez radii end at z = 103: the wall of a pair with a heavier atom (gdmlx
    accepts z up to 118) raised IndexError 'index 104 is out of bounds' instead of taking
    0.8 x the shortest training distance, as for the elements whose radius is NaN (Rn)."""
    from gdmlx.md.contact import wall_onsets
    pairs = np.array([[1, 0], [2, 0], [2, 1]])
    np.testing.assert_allclose(wall_onsets(np.array([104, 1, 86]), pairs, [2.0, 3.0, 3.0]), [1.6, 2.4, 2.4])
    np.testing.assert_allclose(wall_onsets(np.array([118, 1, 1]), pairs, [2.0, 3.0, 3.0])[2], 0.75 * 2 * 1.2)


def test_split_sets_the_slow_parts_lam_from_a_dataset_only(toy_npz, tmp_path, capsys):
    """gdmlx split had --sigma for the slow part but no --lam: a slow solve that failed
    ('the slow part: ... increase lam') could not be mended from the command line."""
    from gdmlx.cli.main import main
    out = tmp_path / "ms.h5"
    assert main(["split", str(toy_npz), "--n-train", "30", "--lam", "1e-6", "--n-fast", "10", "-o", str(out)]) == 0
    assert gdmlx.load_model(out).slow_.lam == 1e-6
    model = tmp_path / "m.h5"
    gdmlx.load_model(out).slow_.save(model)
    capsys.readouterr()
    assert main(["split", str(model), "--lam", "1e-6", "-o", str(tmp_path / "x.h5")]) == 2
    assert "--lam: for a dataset source only" in capsys.readouterr().err


def test_given_permutations_close_the_fast_parts_local_pairs(chain):
    """Permutations that do not map bonds to bonds (atoms 0 and 2 of the chain swapped) left
    the fast part's local pairs unclosed, and fit refused with advice (close_pairs) that
    cannot be followed for the fast part, whose pairs are not the user's to set."""
    from gdmlx.symmetry import pairs_closed
    R, F, E, z = chain
    perms = np.array([[0, 1, 2, 3, 4, 5, 6, 7], [2, 1, 0, 3, 4, 5, 6, 7]])
    ms = gdmlx.MultiscaleModel(fast=gdmlx.GDMLRegressor(sigma=2.0, lam=1e-6, perms=perms),
                               slow=gdmlx.GDMLRegressor(sigma=3.0, lam=1e-8, perms=perms),
                               max_hops=1, n_fast=20).fit(R[:40], F[:40], E[:40], z=z)
    assert pairs_closed(ms.fast_.pairs_, perms) and len(ms.fast_.pairs_) > 7   # a chain has 7 bonds
    F_pred = ms.predict(R[45])[0]
    np.testing.assert_allclose(ms.predict(R[45][perms[1]])[0], F_pred[perms[1]], rtol=1e-8,
                               atol=1e-8 * np.abs(F_pred).max())


def test_prediction_is_refused_only_outside_the_whole_training_sets_domain(ms_model):
    """The fast part checked a geometry against the shortest distances of its own n_fast
    training geometries: a geometry the whole model (and its MD) accepts was refused."""
    from gdmlx.kernels.descriptor import closest_pairs
    r_full = closest_pairs(ms_model.slow_.R_train_)[0].min()
    r_fast = closest_pairs(ms_model.fast_.R_train_)[0].min()
    assert r_fast > r_full                                 # the fixture's subset lacks the closest pair
    R = ms_model.slow_.R_train_[0]
    d0 = closest_pairs(R[None])[0].min()
    R = R * (0.25 * (r_full + r_fast) / d0)                # shortest distance between the two halves
    E, F = ms_model.predict_energy_forces(R)
    E_ref = ms_model.fast_.expansion_.predict(R[None])[0] + ms_model.slow_.predict_energy(R)
    np.testing.assert_allclose(E, E_ref, rtol=1e-12)
    with pytest.raises(gdmlx.InputError, match="outside the model's domain"):
        ms_model.predict(R * 0.4 * r_full / (0.25 * (r_full + r_fast)))


def test_parts_fitted_on_other_geometries_share_one_domain(chain):
    """A from_parts model whose fast part saw a closer pair than its slow part refused, in
    predict, geometries the calculator and MD accept (each part checked its own data)."""
    from gdmlx.kernels.descriptor import closest_pairs
    R, F, E, z = chain
    closest = closest_pairs(R[:80])[0]
    k = int(np.argmin(closest))
    others = np.setdiff1d(np.arange(80), [k])
    fast = gdmlx.MultiscaleModel(max_hops=1, n_fast=20, fast=gdmlx.GDMLRegressor(sigma=2.0, lam=1e-6)).fit(
        R[[k, *others[:19]]], F[[k, *others[:19]]], z=z).fast_
    slow = gdmlx.GDMLRegressor(sigma=3.0, lam=1e-8).fit(R[others], F[others], z=z)
    ms = gdmlx.MultiscaleModel.from_parts(fast, slow, max_hops=1, n_fast=20)
    r_all, r_slow = closest[k], closest[others].min()
    assert r_all < r_slow and gdmlx.GDMLCalculator(ms).r_min == pytest.approx(0.5 * r_all)
    g = R[k] * (0.25 * (r_all + r_slow) / r_all)          # between the two halves
    F_parts = fast.expansion_.predict(g[None])[1] + slow.expansion_.predict(g[None])[1]
    np.testing.assert_allclose(ms.predict(g), F_parts, rtol=1e-12, atol=1e-12)
