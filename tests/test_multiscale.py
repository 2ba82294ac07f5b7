import warnings

import ase.units
import numpy as np
import pytest
from sklearn.base import clone

import gdmlx
from conftest import edited_file, toy_geometries
from gdmlx.md import Simulation
from gdmlx.multiscale import bond_graph_pairs


def test_bond_graph_pairs_of_a_chain(chain):
    R, F, E, z = chain
    np.testing.assert_array_equal(bond_graph_pairs(z, R, 1), [[k + 1, k] for k in range(7)])
    assert len(bond_graph_pairs(z, R, 2)) == 7 + 6


class _WarnsOnFit(gdmlx.GDMLRegressor):
    """A regressor whose energies always look inconsistent with its forces."""

    def fit(self, *args, **kwargs):
        warnings.warn("inconsistent", gdmlx.EnergyConsistencyWarning)
        return super().fit(*args, **kwargs)


def test_energy_consistency_is_checked_on_the_slow_part_only(chain):
    """A local fast part cannot follow the total energy; its check would be a false alarm."""
    R, F, E, z = chain
    with warnings.catch_warnings():
        warnings.simplefilter("error", gdmlx.EnergyConsistencyWarning)
        gdmlx.MultiscaleModel(fast=_WarnsOnFit(sigma=2.0), max_hops=1, n_fast=20).fit(R[:40], F[:40], E[:40], z=z)
    with pytest.warns(gdmlx.EnergyConsistencyWarning):
        gdmlx.MultiscaleModel(slow=_WarnsOnFit(sigma=3.0), max_hops=1, n_fast=20).fit(R[:40], F[:40], E[:40], z=z)


def test_training_input_is_checked_like_the_regressors(chain):
    R, F, E, z = chain
    with pytest.raises(gdmlx.InputError, match="F must have shape"):
        gdmlx.MultiscaleModel(max_hops=1).fit(R[:40], F[:39], E[:40], z=z)
    with pytest.raises(gdmlx.InputError, match="atomic numbers"):
        gdmlx.MultiscaleModel(max_hops=1).fit(R[:40], F[:40], E[:40])
    ms = gdmlx.MultiscaleModel(max_hops=1, n_fast=20).fit(R[:40], F[:40].tolist(), list(E[:40]), z=z)
    assert ms.predict(R[:1]).shape == (1, 8, 3)


def test_unfitted_model_says_so(chain):
    from sklearn.exceptions import NotFittedError
    with pytest.raises(NotFittedError, match="MultiscaleModel is not fitted"):
        gdmlx.MultiscaleModel().predict(chain[0][:2])


def test_parameters_of_default_parts_need_a_template(chain):
    """GridSearchCV over fast__sigma with the default (None) part failed with AttributeError
    'NoneType' object has no attribute 'set_params'."""
    with pytest.raises(gdmlx.InputError, match=r"fast is None .* MultiscaleModel\(fast=GDMLRegressor\(sigma=4, lam=0.001\)\)"):
        gdmlx.MultiscaleModel().set_params(fast__sigma=3.0)
    ms = gdmlx.MultiscaleModel().set_params(slow=gdmlx.GDMLRegressor(), slow__sigma=7.0, max_hops=1)
    assert ms.slow.sigma == 7.0 and ms.max_hops == 1


def test_from_parts_needs_fitted_regressors(ms_model):
    """Unfitted parts gave an AttributeError ('z_')."""
    from sklearn.exceptions import NotFittedError
    with pytest.raises(NotFittedError, match="the slow part is not fitted"):
        gdmlx.MultiscaleModel.from_parts(ms_model.fast_, gdmlx.GDMLRegressor())
    with pytest.raises(gdmlx.InputError, match="slow must be a fitted GDMLRegressor, got MultiscaleModel"):
        gdmlx.MultiscaleModel.from_parts(ms_model.fast_, ms_model)


@pytest.mark.parametrize("setting, value", [("max_hops", 0), ("n_fast", 0), ("n_fast", 2.5)])
def test_bad_split_settings_are_refused(chain, setting, value):
    R, F, E, z = chain
    with pytest.raises(gdmlx.InputError, match=setting):
        gdmlx.MultiscaleModel(**{setting: value}).fit(R[:20], F[:20], E[:20], z=z)


def test_sum_of_parts_is_accurate_and_conservative(ms_model, chain):
    R, F, E, z = chain
    assert len(ms_model.fast_.pairs_) == 7 and len(ms_model.slow_.pairs_) == 28
    F_pred = ms_model.predict(R[80:])
    full = gdmlx.GDMLRegressor(sigma=3.0, lam=1e-8).fit(R[:80], F[:80], E[:80], z=z)
    assert np.abs(F_pred - F[80:]).mean() < 1.5 * np.abs(full.predict(R[80:]) - F[80:]).mean()
    E_f, F_f = ms_model.fast_.predict_energy_forces(R[80:82])
    E_s, F_s = ms_model.slow_.predict_energy_forces(R[80:82])
    np.testing.assert_allclose(ms_model.predict_energy(R[80:82]), E_f + E_s)
    np.testing.assert_allclose(F_pred[:2], F_f + F_s)


def test_multiscale_file_round_trip(ms_model, chain, tmp_path):
    ms_model.save(tmp_path / "ms.h5")
    loaded = gdmlx.load_model(tmp_path / "ms.h5")
    assert isinstance(loaded, gdmlx.MultiscaleModel)
    R = chain[0][100:105]
    np.testing.assert_array_equal(loaded.predict(R), ms_model.predict(R))
    # the split's settings come back, so that a clone refits the same model
    assert (loaded.max_hops, loaded.n_fast) == (1, 40)
    R, F, E, z = chain
    refit = clone(loaded).fit(R[:80], F[:80], E[:80], z=z)
    np.testing.assert_allclose(refit.predict(R[100:105]), ms_model.predict(R[100:105]), rtol=1e-9, atol=1e-9)
    assert refit.score(R[100:120], F[100:120]) == pytest.approx(ms_model.score(R[100:120], F[100:120]))
    assert 0.5 < ms_model.score(R[100:120], F[100:120]) <= 1.0


def test_parts_in_other_units_and_bad_templates_are_refused(ms_model, chain, tmp_path):
    R, F, E, z = chain
    ms_model.save(tmp_path / "ms.h5")
    with edited_file(tmp_path / "ms.h5") as f:
        f["fast"].attrs["energy_unit"] = "eV"
    with pytest.raises(gdmlx.ModelFileError, match="ms.h5: .*fit both on data in the same units"):
        gdmlx.load_model(tmp_path / "ms.h5")
    in_bohr = gdmlx.GDMLRegressor(sigma=3.0).fit(R[:20] / ase.units.Bohr, F[:20] * ase.units.Bohr, z=z,
                                                 length_unit="bohr")
    with pytest.raises(gdmlx.InputError, match="fit both on data in the same units"):
        gdmlx.MultiscaleModel.from_parts(ms_model.fast_, in_bohr)
    with pytest.raises(gdmlx.InputError, match="fast.pairs is set"):
        gdmlx.MultiscaleModel(fast=gdmlx.GDMLRegressor(pairs=[[1, 0]])).fit(R[:20], F[:20], z=z)
    with pytest.raises(gdmlx.InputError, match="no two atoms are bonded"):
        gdmlx.MultiscaleModel().fit(R[:20] * 3.0, F[:20], z=z)


def test_respa_with_period_one_equals_single_step_sum(ms_model, chain):
    """Impulse r-RESPA with the slow force every step is velocity Verlet on the summed force."""
    R = chain[0]
    a = Simulation(ms_model, R[0], temperature_K=200, seed=5, slow_every=1)
    v0 = a.v.copy()
    a.run(200, save_every=10, report_every=200, progress=False)
    atoms_q = _verlet_on_sum(ms_model, R[0], v0, a.masses, 0.5, 200)
    np.testing.assert_allclose(a.q, atoms_q, atol=1e-9)


def _verlet_on_sum(model, q, v, masses, dt_fs, n):
    from ase import Atoms
    from ase.md.verlet import VelocityVerlet
    import ase.units
    atoms = Atoms(numbers=model.z_, positions=q, masses=masses)
    atoms.set_velocities(v)
    atoms.calc = gdmlx.GDMLCalculator(model)
    VelocityVerlet(atoms, timestep=dt_fs * ase.units.fs).run(n)
    return atoms.positions


def test_mts_energy_conservation_degrades_gracefully(ms_model):
    stds = {}
    for n in (1, 2):
        sim = Simulation(ms_model, toy_geometries(1, n_atoms=8, noise=0.0)[0], dt_fs=0.25,
                         temperature_K=150, seed=2, slow_every=n)
        s = sim.run(4000, save_every=20, report_every=2000, progress=False)
        stds[n] = s["etot_std_eV"]
        assert abs(s["etot_drift_eV_per_ps"]) * s["simulated_ps"] < 3 * s["etot_std_eV"]
    assert stds[2] < 10 * stds[1]


def test_engine_follows_the_impulse_respa_recipe(ms_model, chain):
    """The compiled loop against a plain transcription of impulse r-RESPA (DESIGN.md, sec. 4)."""
    import ase.units
    n, outer = 3, 30
    sim = Simulation(ms_model, chain[0][0], dt_fs=0.5, temperature_K=200, seed=4, slow_every=n)
    q, v = sim.q.copy(), sim.v.copy()
    sim.run(n * outer, save_every=n, report_every=n * outer, progress=False)
    fast, slow = ms_model.force_parts()
    to_ev = ase.units.kcal / ase.units.mol
    dt = 0.5 * ase.units.fs
    inv_m = 1.0 / sim.masses[:, None]
    force = lambda part, x: part.predict_one(x)[1] * to_ev
    for _ in range(outer):
        v += 0.5 * n * dt * force(slow, q) * inv_m
        for _ in range(n):
            v += 0.5 * dt * force(fast, q) * inv_m
            q = q + dt * v
            v += 0.5 * dt * force(fast, q) * inv_m
        v += 0.5 * n * dt * force(slow, q) * inv_m
    np.testing.assert_allclose(sim.q, q, atol=1e-9)
    np.testing.assert_allclose(sim.v, v, atol=1e-9)


def test_reducing_the_slow_part_bounds_the_whole_models_error(ms_model, chain):
    """The slow part is reduced against the residual forces, so the tolerance bounds the
    validation error of the sum; the fast part is untouched."""
    from gdmlx.reduction import reduce_slow_part
    R, F = chain[:2]
    reduced, report = reduce_slow_part(ms_model, R[80:110], F[80:110], tol=0.1, progress=False)
    whole_mae = lambda m: np.abs(m.predict(R[80:110]) - F[80:110]).mean()
    assert report.full_valid_f_mae == pytest.approx(whole_mae(ms_model), rel=1e-12)
    assert len(reduced.slow_.pairs_) < len(ms_model.slow_.pairs_)
    assert whole_mae(reduced) <= 1.1 * whole_mae(ms_model)
    np.testing.assert_array_equal(reduced.fast_.predict(R[110:]), ms_model.fast_.predict(R[110:]))


@pytest.fixture(scope="module")
def ethanol():
    from gdmlx.cli.demo import bundled_dataset_path
    ds = gdmlx.load_dataset(bundled_dataset_path())
    return ds.R[:40], ds.F[:40], ds.E[:40], ds.z


def test_fast_part_takes_a_symmetric_slow_parts_permutations(ethanol):
    """A symmetric slow part needs a symmetric residual: with an asymmetric fast part, the
    sum was not invariant (4.9 kcal/mol/A between methyl H swaps) and lost the symmetry's
    accuracy."""
    R, F, E, z = ethanol
    ms = gdmlx.MultiscaleModel(slow=gdmlx.GDMLRegressor(sigma=10.0, perms="auto"), n_fast=20).fit(R, F, E, z)
    assert len(ms.fast_.perms_) == len(ms.slow_.perms_) == 12
    perm = ms.slow_.perms_[1]
    np.testing.assert_allclose(ms.predict(R[:3][:, perm]), ms.predict(R[:3])[:, perm], atol=1e-8)


def test_default_parts_are_the_same_model_in_bohr(ethanol):
    """The fast and slow defaults are given for data in Angstrom and converted: the same
    data in bohr give the same forces."""
    import ase.units
    R, F, E, z = ethanol
    ang = gdmlx.MultiscaleModel(n_fast=20).fit(R, F, E, z)
    bohr = gdmlx.MultiscaleModel(n_fast=20).fit(R / ase.units.Bohr, F * ase.units.Bohr, E, z, length_unit="bohr")
    assert bohr.fast_.sigma == pytest.approx(4.0 * ase.units.Bohr)
    F_ang = ang.fast_.predict(R[:5])
    np.testing.assert_allclose(bohr.fast_.predict(R[:5] / ase.units.Bohr) / ase.units.Bohr, F_ang,
                               atol=1e-6 * np.abs(F_ang).max())
    np.testing.assert_allclose(bohr.predict(R[:5] / ase.units.Bohr) / ase.units.Bohr, ang.predict(R[:5]),
                               atol=1e-6 * np.abs(F_ang).max())


@pytest.mark.parametrize("part", ["fast", "slow"])
def test_parts_that_are_not_gdml_templates_are_named(chain, part):
    """A MultiscaleModel as a part gave "'MultiscaleModel' object has no attribute 'pairs'",
    a string scikit-learn's 'Cannot clone object'."""
    R, F, E, z = chain
    for template, kind in ((gdmlx.MultiscaleModel(), "MultiscaleModel"), ("sigma=4", "str")):
        with pytest.raises(gdmlx.InputError, match=f"{part} must be a GDMLRegressor template .* got {kind}"):
            gdmlx.MultiscaleModel(**{part: template}).fit(R[:20], F[:20], E[:20], z=z)
