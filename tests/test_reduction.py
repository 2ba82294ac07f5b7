import numpy as np
import pytest

import gdmlx
from conftest import toy_energy_forces, toy_geometries
from gdmlx.expansion import KernelExpansion
from gdmlx.reduction import masking_importance, own_term_importance, reduce_pairs


def brute_force_masking(exp, R, groups=None):
    """Remove each feature (or group of features) from the expansion and re-predict: the
    published procedure. Returns one value per feature (its group's)."""
    groups = np.arange(len(exp.pairs)) if groups is None else groups
    F_full = exp.predict(R)[1]
    out = []
    for g in range(groups.max() + 1):
        keep = np.flatnonzero(groups != g)
        masked = KernelExpansion(exp.pairs[keep], exp.n_atoms, exp.sigma, exp.X[:, keep],
                                 exp.B[:, keep], exp.a, exp.c)
        out.append(np.sqrt(((masked.predict(R)[1] - F_full) ** 2).mean()))
    return np.array(out)[groups]


def test_fast_masking_equals_brute_force(toy_model, toy_data):
    R = toy_data[0][30:36]
    np.testing.assert_allclose(masking_importance(toy_model.expansion_, R),
                               brute_force_masking(toy_model.expansion_, R), rtol=1e-10)
    groups = np.array([0, 1, 0, 2, 3, 1, 4, 4, 4, 5])             # features masked together
    np.testing.assert_allclose(masking_importance(toy_model.expansion_, R, groups),
                               brute_force_masking(toy_model.expansion_, R, groups), rtol=1e-10)


def test_pair_orbits_under_a_reversal():
    from gdmlx.descriptor import all_pairs
    from gdmlx.symmetry import pair_orbits
    pairs = all_pairs(5)
    orbits = pair_orbits(pairs, np.array([[0, 1, 2, 3, 4], [4, 3, 2, 1, 0]]))
    for k, (i, j) in enumerate(pairs):
        mirror = sorted((4 - i, 4 - j), reverse=True)
        assert orbits[k] == orbits[[tuple(p) for p in pairs.tolist()].index(tuple(mirror))]
    assert orbits.max() + 1 == 6 and np.array_equal(pair_orbits(pairs, None), np.arange(10))


def test_own_term_importance_is_a_force_scale(toy_model, toy_data):
    imp = own_term_importance(toy_model.expansion_, toy_data[0][30:36])
    assert imp.shape == (10,) and np.all(imp > 0)


@pytest.fixture(scope="module")
def chain_model():
    """An 8-atom chain whose potential has bonds only between neighbours: far pairs matter little."""
    R = toy_geometries(120, n_atoms=8, seed=4, noise=0.08)
    E, F = toy_energy_forces(R)
    z = np.array([6] * 8)
    model = gdmlx.GDMLRegressor(sigma=3.0, lam=1e-8).fit(R[:60], F[:60], E[:60], z=z)
    return model, R, F


@pytest.mark.parametrize("importance", ["masking", "own-term"])
def test_reduce_drops_pairs_within_tolerance(chain_model, importance):
    model, R, F = chain_model
    seen = []
    reduced, report = reduce_pairs(model, R[60:90], F[60:90], tol=0.05, importance=importance,
                                   progress=False, on_round=lambda m, rd: seen.append((len(m.pairs_), rd)))
    assert [n for n, _ in seen] == [rd["n_pairs"] for rd in report.rounds]   # every model tried
    assert all(rd is report_rd for (_, rd), report_rd in zip(seen, report.rounds))
    assert len(reduced.pairs_) < len(model.pairs_)
    valid_mae = np.abs(reduced.predict(R[60:90]) - F[60:90]).mean()
    assert valid_mae <= 1.05 * report.full_valid_f_mae + 1e-12
    assert report.n_local + report.n_nonlocal == len(reduced.pairs_)
    assert any(not r["accepted"] for r in report.rounds)       # it searched until it had to stop
    assert reduced.expansion_.X.shape[1] == len(reduced.pairs_)


def test_reduced_model_is_an_ordinary_model(chain_model, tmp_path):
    model, R, F = chain_model
    reduced, _ = reduce_pairs(model, R[60:90], F[60:90], tol=0.05, progress=False)
    reduced.save(tmp_path / "r.h5")
    loaded = gdmlx.load_model(tmp_path / "r.h5")
    np.testing.assert_array_equal(loaded.pairs_, reduced.pairs_)
    np.testing.assert_array_equal(loaded.predict(R[100:]), reduced.predict(R[100:]))
    from gdmlx.md import Simulation
    s = Simulation(loaded, R[0], temperature_K=100, seed=0).run(200, save_every=10, report_every=200,
                                                                progress=False)
    assert s["steps"] == 200


def test_reduce_refuses_data_of_another_molecule(toy_model, toy_data):
    R, F, E, z = toy_data
    with pytest.raises(gdmlx.InputError, match="do not match the model"):
        gdmlx.reduce(toy_model, gdmlx.Dataset(R=R, z=z[::-1].copy(), F=F, E=E), progress=False)
    with pytest.raises(gdmlx.InputError, match="must be a gdmlx.Dataset"):
        gdmlx.reduce(toy_model, R, progress=False)


def test_reduce_validates_on_geometries_the_model_was_not_trained_on(toy_model, toy_data):
    """A model fitted in Python records no split; its training geometries are still left out
    of the validation draw, and the caller's model is not changed."""
    R, F, E, z = toy_data
    reduced = gdmlx.reduce(toy_model, gdmlx.Dataset(R=R, z=z, F=F, E=E), tol=0.0, progress=False)
    assert np.all(reduced.indices_["valid"] >= 30)             # toy_model was fitted on R[:30]
    assert reduced is not toy_model and not hasattr(toy_model, "reduction_")
    assert getattr(toy_model, "indices_", {}).get("valid") is None
    with pytest.raises(ValueError, match="importance must be one of"):
        gdmlx.reduce(toy_model, gdmlx.Dataset(R=R, z=z, F=F, E=E), importance="bogus", progress=False)


def test_reduction_functions_name_the_model_kind_and_shapes_they_take(toy_model, toy_data):
    from gdmlx.reduction import reduce_pairs, reduce_slow_part
    R, F, E, z = toy_data
    with pytest.raises(gdmlx.InputError, match="reduce_slow_part reduces a MultiscaleModel's slow part, not a GDMLRegressor"):
        reduce_slow_part(toy_model, R[40:], F[40:])
    with pytest.raises(gdmlx.InputError, match="F_valid must have shape"):
        reduce_pairs(toy_model, R[40:], F[40:50])
    ms = gdmlx.MultiscaleModel.from_parts(toy_model, toy_model)
    with pytest.raises(gdmlx.InputError, match="reduce_pairs reduces a GDMLRegressor"):
        reduce_pairs(ms, R[40:], F[40:])


def test_counts_and_fractions_that_would_reduce_nothing_or_never_stop_are_refused(toy_model, toy_data):
    """n_valid -3 validated on all but 3 held-out geometries and n_valid 0 blamed R_valid;
    drop_fraction 0 (or below min_drop_fraction) returned the model unreduced without a word,
    1.5 was taken as 'keep one pair', and min_drop_fraction 0 halved the fraction forever."""
    from gdmlx.reduction import reduce_pairs
    R, F, E, z = toy_data
    ds = gdmlx.Dataset(R=R, z=z, F=F, E=E)
    for n_valid in (-3, 0):
        with pytest.raises(gdmlx.InputError, match="n_valid must be at least 1"):
            gdmlx.reduce(toy_model, ds, n_valid=n_valid, progress=False)
    for setting, value in (("drop_fraction", 0.0), ("drop_fraction", 1.5), ("min_drop_fraction", 0.0)):
        with pytest.raises(gdmlx.InputError, match=f"{setting} must be a fraction of the pairs"):
            reduce_pairs(toy_model, R[40:], F[40:], progress=False, **{setting: value})
    with pytest.raises(gdmlx.InputError, match="min_drop_fraction .* is larger than drop_fraction"):
        reduce_pairs(toy_model, R[40:], F[40:], drop_fraction=0.1, min_drop_fraction=0.2, progress=False)
