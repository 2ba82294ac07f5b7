"""Action maps, checked as a user meets them: what bad trajectories and solver settings say."""

import numpy as np
import pytest

from gdmlx.action import ActionModel
from gdmlx.errors import InputError
from gdmlx.md import Simulation, read_trajectory
from gdmlx.md.action_map import ActionMapError, ActionSimulation


@pytest.fixture(scope="module")
def ref_run(toy_model, toy_data, tmp_path_factory):
    """A 125-fs NVE run of the toy model, frames every 0.25 fs, as read back from its file."""
    path = tmp_path_factory.mktemp("qa") / "ref.h5"
    Simulation(toy_model, toy_data[0][0], dt_fs=0.125, temperature_K=300, seed=0).run(
        1000, trajectory=path, save_every=2, progress=False)
    return read_trajectory(path)


@pytest.fixture(scope="module")
def action(toy_model, ref_run):
    return ActionModel(stride_fs=1.0, sigma=1.0, lam=1e-10, n_train=20, n_valid=20).fit(
        ref_run, toy_model, verbose=False)


def test_time_axis_that_is_not_increasing_or_finite_is_named(toy_model, ref_run):
    """Frames at one time (time_fs all 0, as a dict built without times has them) gave an
    OverflowError, infinite times a ValueError 'cannot convert float NaN to integer', and a
    NaN time was taken as if it were right."""
    fit = lambda times: ActionModel(stride_fs=1.0, n_train=5).fit(dict(ref_run, time_fs=times), toy_model,
                                                                  verbose=False)
    t = ref_run["time_fs"]
    with pytest.raises(InputError, match=r"evenly spaced in time, one after another \(time_fs has spacings "
                                         "from 0 to 0 fs"):
        fit(np.zeros_like(t))
    with pytest.raises(InputError, match="evenly spaced in time, one after another"):
        fit(t[::-1].copy())
    nan_time = t.copy()
    nan_time[3] = np.nan
    for times in (np.full_like(t, np.inf), nan_time):
        with pytest.raises(InputError, match="time_fs contains NaN or infinity"):
            fit(times)


def test_no_trajectories_is_named(toy_model):
    """An empty list gave numpy's 'need at least one array to concatenate'."""
    with pytest.raises(InputError, match="no trajectories given"):
        ActionModel(stride_fs=1.0, n_train=5).fit([], toy_model, verbose=False)


def test_an_unfitted_force_model_is_named(ref_run):
    """fit with an unfitted force model gave AttributeError: 'GDMLRegressor' object has no
    attribute 'z_' (ActionSimulation already said NotFittedError); an unfitted action model's
    correction_gradient and data_distance an AttributeError too."""
    from sklearn.exceptions import NotFittedError
    from gdmlx.regressor import GDMLRegressor
    with pytest.raises(NotFittedError, match="not fitted"):
        ActionModel(stride_fs=1.0, n_train=5).fit(ref_run, GDMLRegressor(), verbose=False)
    q = ref_run["positions"][:1]                 # nor did an unfitted ActionModel's methods say so
    for method in (ActionModel().correction_gradient, ActionModel().data_distance):
        with pytest.raises(NotFittedError, match="ActionModel is not fitted"):
            method(q, 0 * q)


def test_a_bad_seed_is_named(toy_model, ref_run):
    """seed=-1, 1.5 or 2.0 failed in numpy's random generator ('expected non-negative
    integer', a TypeError), after the trajectories were read, without naming the parameter."""
    for seed in (-1, 1.5):
        with pytest.raises(InputError, match="seed must be"):
            ActionModel(stride_fs=1.0, n_train=5, seed=seed).fit(ref_run, toy_model, verbose=False)
    fit = lambda seed: ActionModel(stride_fs=1.0, sigma=1.0, n_train=5, n_valid=0, seed=seed).fit(
        ref_run, toy_model, verbose=False)
    np.testing.assert_array_equal(fit(2.0).expansion_.X, fit(2).expansion_.X)    # a whole float is the int


def test_a_tolerance_below_rounding_is_blamed_not_the_stride(toy_model, toy_data, action):
    """A tol below what double precision resolves never converges; the error said the
    stride was too long or the run left the data, and told the user to shorten the stride."""
    sim = ActionSimulation(toy_model, action, toy_data[0][0], temperature_K=300, seed=1, tol=1e-18)
    with pytest.raises(ActionMapError, match="tol is too small for double precision; use a larger tol"):
        sim.run(50, progress=False)
    capped = ActionSimulation(toy_model, action, toy_data[0][0], temperature_K=300, seed=1, max_iter=1)
    with pytest.raises(ActionMapError, match="use a shorter stride or raise max_iter"):
        capped.run(5, progress=False)


def test_a_map_that_turns_nan_is_not_reported_as_converged(toy_model, toy_data, action):
    """The compiled solve's residual skipped NaN entries: a map that gave NaN everywhere
    returned after one evaluation with residual 0, and the stride then failed with 'did not
    converge in 100 iterations (residual 0.00e+00 A > tol 1e-10 A)'."""
    from gdmlx.md.action_map import _max_abs
    assert np.isnan(_max_abs(np.array([1.0, np.nan]))) and np.isnan(_max_abs(np.array([np.nan, 1.0])))
    sim = ActionSimulation(toy_model, action, toy_data[0][0], temperature_K=300, seed=1)
    sim.v[4, 2] = np.nan                   # stands in for a force field or correction that gave NaN
    with pytest.raises(ActionMapError, match="did not converge in 100 iterations \\(residual nan A"):
        sim.stride()


def test_a_second_run_reports_its_own_iterations(toy_model, toy_data, action):
    """run() reported the mean and largest iteration count and the Jacobian renewals of
    every stride the simulation ever took, earlier runs' included."""
    sim = ActionSimulation(toy_model, action, toy_data[0][0], temperature_K=300, seed=1, jacobian_every=5)
    sim.run(10, progress=False)
    second = sim.run(10, progress=False)
    assert second["mean_iterations"] == pytest.approx(np.mean(sim.iterations[10:]))
    assert second["max_iterations"] == max(sim.iterations[10:]) and second["jacobian_refreshes"] == 2


def test_the_force_model_fingerprint_tells_units_apart(toy_model, toy_data):
    """The same numbers in eV are another force model than in kcal/mol: an action model
    learned with one was accepted with the other (and the run blew up at stride 1)."""
    import gdmlx
    from gdmlx.expansion import force_model_fingerprint
    R, F, E, z = toy_data
    in_ev = gdmlx.GDMLRegressor(sigma=2.0, lam=1e-8).fit(R[:30], F[:30], E[:30], z=z, energy_unit="eV")
    assert np.array_equal(in_ev.expansion_.B, toy_model.expansion_.B)
    assert force_model_fingerprint(in_ev) != force_model_fingerprint(toy_model)


def test_a_warning_of_a_run_points_at_the_callers_line():
    """Warnings of ActionSimulation.run (and other runs behind the SIGTERM decorator)
    pointed at contextlib.py, the decorator's frame, not at the line that called run: here
    a function of a gdmlx module, so decorated, warns as run does."""
    import warnings
    from gdmlx.errors import user_stacklevel
    from gdmlx.interrupts import terminate_as_interrupt
    module = {"__name__": "gdmlx.md.example", "warnings": warnings, "user_stacklevel": user_stacklevel,
              "terminate_as_interrupt": terminate_as_interrupt}
    exec("@terminate_as_interrupt()\ndef run():\n"
         "    warnings.warn('beyond the data', UserWarning, stacklevel=user_stacklevel())", module)
    with pytest.warns(UserWarning, match="beyond the data") as record:
        module["run"]()
    assert record[0].filename == __file__


def test_reference_runs_with_a_step_as_long_as_the_stride_are_refused(toy_model, ref_run):
    """A reference run at a step as long as the stride was accepted: the map then learned
    velocity Verlet at the stride, not the force field's own flow."""
    with pytest.raises(InputError, match="time step 1 fs, not shorter than the stride"):
        ActionModel(stride_fs=1.0, sigma=1.0, n_train=20, n_valid=20).fit(
            [dict(ref_run, dt_fs=1.0)], toy_model, verbose=False)
    ActionModel(stride_fs=1.0, sigma=1.0, n_train=20, n_valid=20).fit(    # its own 0.125 fs: fine
        [dict(ref_run)], toy_model, verbose=False)
