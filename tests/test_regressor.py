import copy
import warnings

import ase
import numpy as np
import pytest
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV
from sklearn.utils.estimator_checks import (check_no_attributes_set_in_init,
                                            check_parameters_default_constructible)

import gdmlx
from conftest import toy_energy_forces, toy_geometries
from gdmlx import reference


def test_fit_reproduces_training_forces_with_tiny_lam(toy_data):
    R, F, E, z = toy_data
    model = gdmlx.GDMLRegressor(sigma=2.0, lam=1e-12).fit(R[:15], F[:15], E[:15], z=z)
    np.testing.assert_allclose(model.predict(R[:15]), F[:15], atol=1e-4 * np.abs(F).max())


def test_fit_matches_reference_solution(toy_data):
    """Assembly + solve + scaling against a dense numpy solve of the same system."""
    R, F, E, z = toy_data
    model = gdmlx.GDMLRegressor(sigma=2.0, lam=1e-6).fit(R[:8], F[:8], E[:8], z=z)
    K = reference.kernel_matrix(R[:8], model.pairs_, 2.0)
    std = F[:8].std()
    alphas = np.linalg.solve(K + 1e-6 * np.eye(len(K)), F[:8].ravel() / std) * std
    np.testing.assert_allclose(model.alphas_.ravel(), alphas, rtol=1e-6, atol=1e-8 * np.abs(alphas).max())


def test_generalises_and_energy_constant_is_set(toy_model, toy_data):
    R, F, E, z = toy_data
    F_err = np.abs(toy_model.predict(R[30:]) - F[30:]).mean()
    E_err = np.abs(toy_model.predict_energy(R[30:]) - E[30:]).mean()
    assert F_err < 0.1 * np.abs(F).mean()
    assert E_err < 0.1 * E.std()
    assert abs(toy_model.energy_fit_["slope"] - 1) < 0.1


def test_energy_labels_fit_training_energies(toy_data):
    R, F, E, z = toy_data
    model = gdmlx.GDMLRegressor(sigma=2.0, lam=1e-10, use_energy_labels=True).fit(R[:20], F[:20], E[:20], z=z)
    np.testing.assert_allclose(model.predict_energy(R[:20]), E[:20], atol=1e-3 * E.std())
    E_pred, F_pred = model.predict_energy_forces(R[20:22])
    np.testing.assert_allclose(E_pred, model.predict_energy(R[20:22]))


@pytest.mark.parametrize("use_energy_labels", [False, True])
def test_data_in_bohr_give_the_same_model(toy_data, use_energy_labels):
    """The same data in bohr with sigma and lam converted (gdmlx.units.hyperparameters_in)
    give the model fitted in Angstrom; energy rows too (their regularisation does not
    scale with the length unit as the force rows' does)."""
    R, F, E, z = toy_data
    a = gdmlx.units.length_in_ang("bohr")
    sigma, lam = gdmlx.units.hyperparameters_in("bohr", 2.0, 1e-6)
    ang = gdmlx.GDMLRegressor(sigma=2.0, lam=1e-6, use_energy_labels=use_energy_labels).fit(R[:20], F[:20], E[:20], z=z)
    bohr = gdmlx.GDMLRegressor(sigma=sigma, lam=lam, use_energy_labels=use_energy_labels).fit(
        R[:20] / a, F[:20] * a, E[:20], z=z, length_unit="bohr")
    E_ang, F_ang = ang.predict_energy_forces(R[30:40])
    E_bohr, F_bohr = bohr.predict_energy_forces(R[30:40] / a)
    np.testing.assert_allclose(E_bohr, E_ang, atol=1e-8 * np.abs(E).max())
    np.testing.assert_allclose(F_bohr / a, F_ang, atol=1e-7 * np.abs(F).max())


def test_inconsistent_energies_warn(toy_data):
    R, F, E, z = toy_data
    with pytest.warns(gdmlx.EnergyConsistencyWarning, match="slope"):
        gdmlx.GDMLRegressor(sigma=2.0).fit(R[:20], F[:20], -E[:20], z=z)


def test_energy_check_waits_for_enough_geometries():
    """The slope check failed on consistent data in a quarter to two thirds of fits of 3-15
    geometries (benchmarks/energy_check_small_n.py): from 20 on it is made, and catches
    energies in eV beside forces in kcal/mol/A."""
    from gdmlx.cli.demo import bundled_dataset_path
    ds = gdmlx.load_dataset(bundled_dataset_path())
    idx = np.random.default_rng(7).permutation(len(ds))[:10]       # slope 0.41, correlation 0.47
    with warnings.catch_warnings():
        warnings.simplefilter("error", gdmlx.EnergyConsistencyWarning)
        small = gdmlx.GDMLRegressor(sigma=10.0).fit(ds.R[idx], ds.F[idx], ds.E[idx], z=ds.z)
    assert small.energy_fit_["slope"] < 0.5                         # reported, not warned about
    with pytest.warns(gdmlx.EnergyConsistencyWarning, match="slope"):
        gdmlx.GDMLRegressor(sigma=10.0).fit(ds.R[:20], ds.F[:20], ds.E[:20] / 23.06, z=ds.z)


def test_sklearn_conventions(toy_model, toy_data):
    check_no_attributes_set_in_init("GDMLRegressor", gdmlx.GDMLRegressor())
    check_parameters_default_constructible("GDMLRegressor", gdmlx.GDMLRegressor())
    est = gdmlx.GDMLRegressor(sigma=3.5, lam=1e-9)
    assert est.get_params()["sigma"] == 3.5
    c = clone(toy_model)
    assert not hasattr(c, "expansion_") and c.get_params() == toy_model.get_params()
    assert est.set_params(sigma=7.25).sigma == 7.25


def test_grid_search_picks_a_sigma(toy_data):
    R, F, E, z = toy_data
    search = GridSearchCV(gdmlx.GDMLRegressor(lam=1e-8), {"sigma": [0.05, 2.0]}, cv=2,
                          scoring=gdmlx.force_mae_scorer)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", gdmlx.EnergyConsistencyWarning)
        search.fit(R[:24], F[:24], z=z)
    assert search.best_params_["sigma"] == 2.0
    assert search.best_estimator_.predict(R[30:31]).shape == (1, 5, 3)
    # as many geometries as atoms (5): scikit-learn slices z as well, and the error says so
    with pytest.raises(gdmlx.InputError, match="as many geometries as atoms"):
        GridSearchCV(gdmlx.GDMLRegressor(), {"sigma": [2.0]}, cv=5, error_score="raise",
                     scoring=gdmlx.force_mae_scorer).fit(R[:5], F[:5], z=z)


def test_force_scorer_refuses_forces_of_another_shape(toy_model):
    """One geometry's forces against three geometries broadcast to a number before."""
    R = toy_geometries(3, seed=4)
    E, F = toy_energy_forces(R)
    assert gdmlx.force_mae_scorer(toy_model, R[0], F[0]) == gdmlx.force_mae_scorer(toy_model, R[:1], F[:1])
    for bad in (F[0], F[:, None], F[:, :4]):
        with pytest.raises(gdmlx.InputError, match=r"F must have shape \(3, 5, 3\)"):
            gdmlx.force_mae_scorer(toy_model, R, bad)


def test_refit_on_fewer_pairs_uses_stored_data(toy_model, toy_data):
    R, F, E, z = toy_data
    pairs = toy_model.pairs_[::2]
    small = toy_model.refit(pairs=pairs)
    direct = gdmlx.GDMLRegressor(sigma=2.0, lam=1e-8, pairs=pairs).fit(R[:30], F[:30], E[:30], z=z)
    np.testing.assert_array_equal(small.predict(R[40:42]), direct.predict(R[40:42]))
    assert small.expansion_.X.shape == (30, len(pairs))


def test_fit_forgets_the_split_a_file_recorded(toy_data, tmp_path):
    """A model loaded from gdmlx train's file and fitted to other geometries keeps no record
    of the old split: gdmlx.reduce would validate on it, now training data."""
    R, F, E, z = toy_data
    model = gdmlx.GDMLRegressor(sigma=2.0).fit(R[:20], F[:20], E[:20], z=z)
    model.indices_, model.dataset_md5_ = {"train": np.arange(20), "valid": np.arange(20, 40)}, "abc"
    model.save(tmp_path / "m.h5")
    loaded = gdmlx.load_model(tmp_path / "m.h5").fit(R[20:40], F[20:40], E[20:40], z=z)
    assert not hasattr(loaded, "indices_") and not hasattr(loaded, "dataset_md5_")
    loaded.save(tmp_path / "refitted.h5")
    again = gdmlx.load_model(tmp_path / "refitted.h5")
    assert again.indices_ == {} and again.dataset_md5_ == ""


@pytest.mark.parametrize("mutate, err, msg", [
    (lambda R, F, E, z: (R[:, :4], F, E, z), gdmlx.InputError, "shape"),
    (lambda R, F, E, z: (R.reshape(len(R), -1), F, E, z), gdmlx.InputError, r"\(n, N, 3\)"),
    (lambda R, F, E, z: (np.where(np.arange(R.size).reshape(R.shape) == 7, np.nan, R), F, E, z),
     gdmlx.InputError, "NaN"),
    (lambda R, F, E, z: (R, F, E[:-1], z), gdmlx.InputError, "energies"),
    (lambda R, F, E, z: (R, F, E, z[:3]), gdmlx.InputError, "atomic numbers"),
    (lambda R, F, E, z: (R, F, E, np.array([6, 6, 8, 6, 0])), gdmlx.InputError, "1..118"),
    (lambda R, F, E, z: (np.concatenate([R[:, :1], R[:, :4]], axis=1), F, E, z), gdmlx.GeometryError,
     "atoms 0 and 1"),
])
def test_bad_training_input_is_refused(toy_data, mutate, err, msg):
    R, F, E, z = mutate(*(a[:10] if a.ndim and len(a) == 60 else a for a in toy_data))
    with pytest.raises(err, match=msg):
        gdmlx.GDMLRegressor(sigma=2.0).fit(R, F, E, z=z)


def test_bad_prediction_input_is_refused(toy_model):
    R = toy_geometries(2)
    with pytest.raises(gdmlx.InputError, match="model has 5"):
        toy_model.predict(R[:, :4])
    R_close = R.copy()
    R_close[1, 3] = R_close[1, 2] + 0.01
    with pytest.raises(gdmlx.GeometryError, match="R\\[1\\]: atoms 2 and 3"):
        toy_model.predict(R_close)
    with pytest.raises(gdmlx.InputError, match=r"contains NaN or inf \(first at index \(0, 0, 0\)\)"):
        toy_model.predict(np.full((5, 3), np.nan))
    atoms = ase.Atoms(numbers=toy_model.z_, positions=R[0])     # TypeError 'Atom' before
    for given in (atoms, [atoms, atoms]):
        with pytest.raises(gdmlx.InputError, match="R must be numbers.*ASE Atoms give atoms.positions"):
            toy_model.predict(given)


def test_unfitted_and_bad_hyperparameters():
    from sklearn.exceptions import NotFittedError
    with pytest.raises(NotFittedError):
        gdmlx.GDMLRegressor().predict(toy_geometries(1))
    R = toy_geometries(3)
    E, F = toy_energy_forces(R)
    for bad in ({"sigma": -1.0}, {"sigma": "wide"}, {"lam": np.nan}, {"solver": "magic"},
                {"use_energy_labels": "no"}):
        with pytest.raises(ValueError, match=next(iter(bad))):
            gdmlx.GDMLRegressor(**bad).fit(R, F, E, z=np.ones(5, int))
    # a dict for ComputeOptions failed deep inside (AttributeError: 'memory_limit_gb')
    with pytest.raises(gdmlx.InputError, match="options must be a gdmlx.ComputeOptions"):
        gdmlx.GDMLRegressor(options={"verbose": True}).fit(R, F, E, z=np.ones(5, int))


def test_placeholder_energies_are_warned_about(toy_data):
    R, F, E, z = toy_data
    with pytest.warns(gdmlx.EnergyConsistencyWarning, match="training energies are all 0: placeholders"):
        gdmlx.GDMLRegressor(sigma=2.0).fit(R[:20], F[:20], np.zeros(20), z=z)


def test_refuses_matrix_larger_than_memory_budget(toy_data):
    R, F, E, z = toy_data
    opts = gdmlx.ComputeOptions(memory_limit_gb=1e-5)   # 10 kB
    with pytest.raises(gdmlx.InsufficientMemoryError, match="fewer points"):
        gdmlx.GDMLRegressor(options=opts).fit(R[:20], F[:20], E[:20], z=z)


def test_auto_counts_only_the_lower_triangle_the_analytic_solver_writes():
    """5040 rows: the whole matrix (203 MB) is over a 200 MB budget, what the solver writes
    (the lower triangle and the diagonal blocks: 129 MB) is not, so "auto" solves
    analytically."""
    from gdmlx.solvers import analytic_memory_bytes
    R = toy_geometries(560, seed=9)
    E, F = toy_energy_forces(R)
    assert analytic_memory_bytes(5040) > 200e6 > analytic_memory_bytes(5040, 9, triangle=True)
    opts = gdmlx.ComputeOptions(memory_limit_gb=0.2)
    model = gdmlx.GDMLRegressor(sigma=2.0, lam=1e-8, solver="auto", options=opts).fit(
        R, F, E, z=np.array([6, 6, 8, 6, 1]))
    assert model.fit_info_["solver"] == "analytic" and model.fit_info_["system_rows"] == 5040


def test_cg_solver_agrees_with_analytic(toy_data, tmp_path):
    R, F, E, z = toy_data
    exact = gdmlx.GDMLRegressor(sigma=2.0, lam=1e-8).fit(R[:30], F[:30], E[:30], z=z)
    opts = gdmlx.ComputeOptions(cg_tol=1e-10, preconditioner_points=10)
    cg = gdmlx.GDMLRegressor(sigma=2.0, lam=1e-8, solver="cg", options=opts).fit(R[:30], F[:30], E[:30], z=z)
    assert cg.fit_info_["solver"] == "cg" and cg.fit_info_["cg_products"] > 1
    np.testing.assert_allclose(cg.predict(R[30:]), exact.predict(R[30:]), atol=1e-6 * np.abs(F).max())
    np.testing.assert_allclose(cg.predict_energy(R[30:]), exact.predict_energy(R[30:]), atol=1e-6 * E.std())


def test_auto_solver_falls_back_to_cg_when_matrix_does_not_fit(toy_data):
    R, F, E, z = toy_data
    opts = gdmlx.ComputeOptions(memory_limit_gb=1e-3, cg_tol=1e-6, preconditioner_points=10)  # 1 MB
    model = gdmlx.GDMLRegressor(sigma=2.0, lam=1e-8, solver="auto", options=opts).fit(R[:30], F[:30], E[:30], z=z)
    assert model.fit_info_["solver"] == "cg"


def test_cg_refuses_before_allocating_beyond_the_memory_budget(toy_data):
    R, F, E, z = toy_data
    opts = gdmlx.ComputeOptions(memory_limit_gb=5e-5, preconditioner_points=1)      # 50 kB
    with pytest.raises(gdmlx.InsufficientMemoryError, match="kernel operator's 30 x 30 coefficient") as err:
        gdmlx.GDMLRegressor(sigma=2.0, lam=1e-8, solver="cg", options=opts).fit(R[:30], F[:30], z=z)
    assert "preconditioner's factor (1 point)" in str(err.value)


def test_cg_resumes_from_checkpoint(toy_data, tmp_path, capsys):
    from gdmlx.cg import NotConvergedError
    R, F, E, z = toy_data
    ck = str(tmp_path / "cg.npz")
    stopped = gdmlx.ComputeOptions(cg_tol=1e-10, cg_max_iter=40, preconditioner_points=5, cg_checkpoint=ck)
    with pytest.raises(NotConvergedError, match="did not reach"):
        gdmlx.GDMLRegressor(sigma=2.0, lam=1e-8, solver="cg", options=stopped).fit(R[:30], F[:30], z=z)
    resumed_opts = gdmlx.ComputeOptions(cg_tol=1e-10, preconditioner_points=5, cg_checkpoint=ck)
    resumed = gdmlx.GDMLRegressor(sigma=2.0, lam=1e-8, solver="cg", options=resumed_opts).fit(R[:30], F[:30], z=z)
    fresh_opts = gdmlx.ComputeOptions(cg_tol=1e-10, preconditioner_points=5)
    fresh = gdmlx.GDMLRegressor(sigma=2.0, lam=1e-8, solver="cg", options=fresh_opts).fit(R[:30], F[:30], z=z)
    assert resumed.fit_info_["cg_products"] < fresh.fit_info_["cg_products"]
    np.testing.assert_allclose(resumed.alphas_, fresh.alphas_, rtol=1e-9, atol=1e-12 * np.abs(fresh.alphas_).max())
    # another preconditioner (the command line sizes it from the free memory, which changes
    # between runs): the solve restarts from the saved solution instead of being refused
    with pytest.raises(NotConvergedError):
        gdmlx.GDMLRegressor(sigma=2.0, lam=1e-8, solver="cg", options=stopped).fit(R[:30], F[:30], z=z)
    other_opts = gdmlx.ComputeOptions(cg_tol=1e-10, preconditioner_points=7, cg_checkpoint=ck, verbose=True)
    other = gdmlx.GDMLRegressor(sigma=2.0, lam=1e-8, solver="cg", options=other_opts).fit(R[:30], F[:30], z=z)
    assert "starting from the solution in" in capsys.readouterr().err
    # the two preconditioners stop at different points within the tolerance (small coefficients
    # differ by up to 1e-5 relative with one thread); the forces agree to 2e-10 of the largest,
    # where a solve to cg_tol 1e-6 is 1e-6 off
    F_fresh = fresh.predict(R[30:40])
    np.testing.assert_allclose(other.predict(R[30:40]), F_fresh, rtol=0, atol=1e-8 * np.abs(F_fresh).max())


def test_cg_stops_at_once_on_a_singular_system(toy_data):
    """A duplicated geometry with lam 0 makes the kernel matrix singular: CG ran its 10,000
    iterations on NaN residuals before failing; it stops at the breakdown."""
    from gdmlx.cg import NotConvergedError, conjugate_gradient
    A = np.diag([1.0, 0.0])                             # b is not in A's range
    with pytest.raises(NotConvergedError, match=r"broke down at iteration 2 \(p.Ap = 0\): .*singular"):
        conjugate_gradient(lambda v: A @ v, np.ones(2), tol=1e-12, max_iter=10_000)
    # lam 0 never reaches it: the preconditioner divides by lam (it printed divide-by-zero
    # warnings, then broke down)
    R, F, E, z = toy_data
    R2, F2 = np.concatenate([R[:10], R[:1]]), np.concatenate([F[:10], F[:1]])
    opts = gdmlx.ComputeOptions(preconditioner_points=3, cg_max_iter=10_000)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(gdmlx.InputError, match=r"iterative solver needs lam > 0 .* got lam=0.0"):
            gdmlx.GDMLRegressor(sigma=2.0, lam=0.0, solver="cg", options=opts).fit(R2, F2, z=z)


def test_checkpoint_of_another_problem_is_refused(toy_data, tmp_path):
    from gdmlx.cg import NotConvergedError
    R, F, E, z = toy_data
    ck = str(tmp_path / "cg.npz")
    opts = gdmlx.ComputeOptions(cg_tol=1e-12, cg_max_iter=25, preconditioner_points=5, cg_checkpoint=ck)
    with pytest.raises(NotConvergedError):
        gdmlx.GDMLRegressor(sigma=2.0, lam=1e-8, solver="cg", options=opts).fit(R[:30], F[:30], z=z)
    with pytest.raises(ValueError, match="another problem"):
        gdmlx.GDMLRegressor(sigma=2.0, lam=1e-8, solver="cg", options=opts).fit(R[:30], -F[:30], z=z)
    # another sigma (or lam, symmetries, preconditioner) after a solve that ran out of
    # iterations: it starts from the saved solution with a fresh count, as the error advises
    longer = gdmlx.ComputeOptions(cg_tol=1e-8, cg_max_iter=2000, preconditioner_points=5, cg_checkpoint=ck)
    gdmlx.GDMLRegressor(sigma=3.0, lam=1e-6, solver="cg", options=longer).fit(R[:30], F[:30], z=z)


def test_blocked_cholesky_matches_lapack(monkeypatch):
    """The in-place block factorisation (blocks of 16 rows, the last one ragged) gives
    LAPACK's factor and solution, and a matrix that is not positive definite is refused."""
    from gdmlx import solvers
    rng = np.random.default_rng(3)
    A = rng.standard_normal((50, 50))
    K = A @ A.T + 50 * np.eye(50)
    y = rng.standard_normal(50)
    L = np.tril(K).copy()
    done = []
    solvers.blocked_cholesky_lower(L, 16, done.append)
    np.testing.assert_allclose(np.tril(L), np.linalg.cholesky(K), rtol=1e-12, atol=1e-12)
    assert len(done) == 4 and np.all(np.diff(done) > 0) and done[-1] == 1.0
    expected = np.linalg.solve(K + 1e-3 * np.eye(50), y)
    monkeypatch.setattr(solvers, "_BLOCK", 16)
    np.testing.assert_allclose(solvers.solve_cholesky_lower(np.tril(K).copy(), y, 1e-3), expected, rtol=1e-10)
    K[40, 40] = -1.0
    with pytest.raises(np.linalg.LinAlgError, match=r"positive definite at lam=0\.001: increase lam \(e\.g\. to 0\.01\)"):
        solvers.solve_cholesky_lower(np.tril(K).copy(), y, 1e-3)


def test_inplace_blas_refuses_c_ordered_blocks():
    """The in-place BLAS calls take Fortran-ordered blocks only; a C-ordered one is refused
    instead of being read with the wrong layout."""
    from gdmlx.blas import potrf_upper
    with pytest.raises(ValueError, match="Fortran-ordered"):
        potrf_upper(np.eye(4)[:, :3].copy()[:3])


def test_nystrom_preconditioner_algebra(toy_data):
    """With every training point inducing, B B^T = K (K + lam' I)^-1 K (lam' = lam plus the
    jitter), the preconditioner applies (B B^T + lam I)^-1 exactly (Woodbury), and its
    Gram matrix by panels equals B^T B."""
    from gdmlx.descriptor import all_pairs
    from gdmlx.kernel_data import KernelData
    from gdmlx.nystrom import NystromPreconditioner
    from gdmlx.solvers import lower_gram
    from gdmlx.training import assemble_kernel_matrix
    R, _, _, _ = toy_data
    data = KernelData(R[:8], all_pairs(R.shape[1]), None)
    lam = 1e-3
    pc = NystromPreconditioner(data, 2.0, lam, n_points=8)
    K = assemble_kernel_matrix(data, 2.0, False)
    K = np.tril(K) + np.tril(K, -1).T
    I = np.eye(len(K))
    lam_s = lam + 1e-12 * np.trace(K) / len(K)
    BBt = pc.B @ pc.B.T
    np.testing.assert_allclose(BBt, K @ np.linalg.solve(K + lam_s * I, K), atol=1e-10)
    r = np.random.default_rng(0).standard_normal(len(K))
    np.testing.assert_allclose(pc.apply(r), np.linalg.solve(BBt + lam * I, r), rtol=1e-8)
    G = lower_gram(pc.B.T, np.empty((pc.B.shape[1],) * 2), panel=7)
    np.testing.assert_allclose(np.tril(G), np.tril(pc.B.T @ pc.B), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("setting, value", [
    ("cg_tol", 0.0), ("memory_limit_gb", -1.0), ("batch_size", 0), ("cg_max_iter", 2.5),
    ("preconditioner_points", True), ("memory_limit_gb", float("inf"))])
def test_bad_compute_options_are_refused(setting, value):
    with pytest.raises(gdmlx.InputError, match=setting):
        gdmlx.ComputeOptions(**{setting: value})
    assert gdmlx.ComputeOptions(batch_size=np.int64(5), cg_max_iter=100.0).batch_size == 5


def test_unknown_units_and_missing_training_data_are_named(toy_model, toy_data):
    R, F, E, z = toy_data
    with pytest.raises(ValueError, match="unknown energy unit"):
        gdmlx.GDMLRegressor(sigma=2.0).fit(R[:5], F[:5], E[:5], z=z, energy_unit="kcal")
    from sklearn.exceptions import NotFittedError
    with pytest.raises(NotFittedError):
        gdmlx.GDMLCalculator(gdmlx.GDMLRegressor())
    bare = copy.copy(toy_model)
    bare.R_train_ = None                                  # as imported from sGDML
    with pytest.raises(ValueError, match="refit needs the training data"):
        bare.refit(sigma=3.0)


def test_solver_choices_are_explained_and_progress_is_one_line_per_report(toy_data, capsys):
    """'auto' says when it turns to cg; energy labels, which need the dense solver, get the
    memory error rather than a complaint about a solver the user never chose; a cg
    tolerance of 1 or more (met by a zero solution) is refused; in a log file every
    progress report is a line of its own."""
    R, F, E, z = toy_data
    small = gdmlx.ComputeOptions(memory_limit_gb=5e-4, verbose=True)         # 500 kB
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", gdmlx.EnergyConsistencyWarning)
        gdmlx.GDMLRegressor(sigma=2.0, lam=1e-8, solver="auto", options=small).fit(R[:20], F[:20], E[:20], z=z)
    err = capsys.readouterr().err.splitlines()
    assert any("more than the" in line and "solving with conjugate gradient" in line for line in err)
    assert all(line.startswith("gdmlx:") for line in err) and err[-1].endswith(" s")
    with pytest.raises(gdmlx.InsufficientMemoryError, match="fit without energy labels .*--memory-limit-gb"):
        gdmlx.GDMLRegressor(sigma=2.0, solver="auto", use_energy_labels=True,
                            options=small).fit(R[:20], F[:20], E[:20], z=z)
    with pytest.raises(gdmlx.InputError, match="below 1"):
        gdmlx.ComputeOptions(cg_tol=1.0)


def test_default_preconditioner_balances_its_cost_within_the_caps():
    """k = 0.6 M D P / (3N)^2 (ethanol, 1000 points: 30, the measured best 31), at most M / 4
    and a factor within a sixth of the budget."""
    from gdmlx.nystrom import NystromPreconditioner
    from gdmlx.training import preconditioner_points
    assert preconditioner_points(1000, 9, 36, 1, 1e12) == 30
    assert preconditioner_points(300, 54, 1431, 1, 1e12) == 10
    assert preconditioner_points(100, 9, 36, 12, 1e12) == 25                       # M / 4
    budget = 6 * NystromPreconditioner.memory_bytes(1000, 9, 7)
    assert preconditioner_points(1000, 9, 36, 1, budget) == 7
