"""Learned long-stride maps: features, kernel, fit, and the map's symplectic/reversible structure."""

import re

import ase.units
import h5py
import numpy as np
import pytest
from scipy.spatial.transform import Rotation

import gdmlx
from conftest import edited_file
from gdmlx.action import ActionModel
from gdmlx.dense_kernel import assemble_dense
from gdmlx.descriptor import all_pairs
from gdmlx.errors import InputError, ModelFileError
from gdmlx.kernels.phase_features import (
    phase_features_dense,
    phase_features_one,
    phase_gradient_one,
)
from gdmlx.matern import matern_terms
from gdmlx.md import MDInstabilityError, Simulation
from gdmlx.md.action_map import ActionMapError, ActionSimulation, anderson_solve
from gdmlx.regressor import GDMLRegressor


def _state(seed=0, N=5):
    rng = np.random.default_rng(seed)
    q = np.array([[1.2 * k, 0.5 * (k % 2), 0.1 * k] for k in range(N)]) + 0.1 * rng.standard_normal((N, 3))
    return q, 0.05 * rng.standard_normal((N, 3))


def test_phase_features_numba_matches_dense_and_finite_differences():
    q, v = _state()
    pairs, tau = all_pairs(5), 0.7
    f_ref, J = phase_features_dense(q[None], v[None], pairs, tau)
    D = len(pairs)
    f, G, Hq = np.empty(2 * D), np.empty((D, 3)), np.empty((D, 3))
    phase_features_one(q, v, pairs, tau, f, G, Hq)
    np.testing.assert_allclose(f, f_ref[0], rtol=1e-13)
    gf = np.random.default_rng(1).standard_normal(2 * D)
    dq, dv = np.empty((5, 3)), np.empty((5, 3))
    phase_gradient_one(gf, G, Hq, pairs, tau, dq, dv)
    np.testing.assert_allclose(np.r_[dq.ravel(), dv.ravel()], gf @ J[0], rtol=1e-12, atol=1e-14)
    z, h = np.r_[q.ravel(), v.ravel()], 1e-6                    # Jacobian by central differences
    for c in range(30):
        e = np.zeros(30)
        e[c] = h
        fp = phase_features_dense((z + e)[:15].reshape(1, 5, 3), (z + e)[15:].reshape(1, 5, 3), pairs, tau)[0]
        fm = phase_features_dense((z - e)[:15].reshape(1, 5, 3), (z - e)[15:].reshape(1, 5, 3), pairs, tau)[0]
        np.testing.assert_allclose((fp - fm)[0] / (2 * h), J[0, :, c], rtol=1e-6, atol=1e-8)


def test_phase_features_invariances_and_momentum_parity():
    q, v = _state(2)
    pairs = all_pairs(5)
    rot = Rotation.from_euler("xyz", [0.3, -1.1, 2.0]).as_matrix()
    f = phase_features_dense(q[None], v[None], pairs, 1.0)[0][0]
    f_rot = phase_features_dense((q @ rot.T + [1.0, -2.0, 3.0])[None], (v @ rot.T + 0.3)[None], pairs, 1.0)[0][0]
    np.testing.assert_allclose(f_rot, f, rtol=1e-12)            # rotation, translation, uniform boost
    f_flip = phase_features_dense(q[None], -v[None], pairs, 1.0)[0][0]
    D = len(pairs)
    np.testing.assert_array_equal(f_flip[:D], f[:D])
    np.testing.assert_allclose(f_flip[D:], -f[D:], rtol=1e-14)


def test_dense_assembly_matches_brute_force():
    """A group of four transforms: identity, a sign flip, a feature permutation, both."""
    rng = np.random.default_rng(3)
    M, F, n = 3, 4, 5
    f, J = rng.standard_normal((M, F)), rng.standard_normal((M, F, n))
    swap = np.array([1, 0, 2, 3])
    index = np.array([np.arange(F), np.arange(F), swap, swap])
    signs = np.array([np.ones(F), [1, 1, -1, -1], np.ones(F), [1, 1, -1, -1]])
    K = assemble_dense(f, J, 1.7, index, signs)
    for a in range(M):
        for b in range(M):
            ref = np.zeros((n, n))
            for i, g in zip(index, signs):
                T = g[:, None] * np.eye(F)[i]                     # T f = g * f[i]
                d = f[a] - T @ f[b]
                _, c2, c1 = matern_terms(d @ d, 1.7)
                ref += J[a].T @ (c2 * np.eye(F) - c1 * np.outer(d, d)) @ (T @ J[b])
            np.testing.assert_allclose(K[a * n:(a + 1) * n, b * n:(b + 1) * n], ref, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(K, K.T, atol=1e-13)


@pytest.fixture(scope="module")
def trajectories(toy_model, toy_data, tmp_path_factory):
    """Three 1-ps NVE trajectories of the toy model, frames every 0.25 fs."""
    R = toy_data[0]
    paths = []
    for seed in (0, 1, 2):
        path = str(tmp_path_factory.mktemp("traj") / f"t{seed}.h5")
        Simulation(toy_model, R[seed], dt_fs=0.125, temperature_K=300, seed=seed).run(
            8000, trajectory=path, save_every=2, progress=False)
        paths.append(path)
    return paths


@pytest.fixture(scope="module")
def action(toy_model, trajectories):
    return ActionModel(stride_fs=1.0, sigma=1.0, lam=1e-10, n_train=80, n_valid=100).fit(
        trajectories, toy_model, verbose=False)


def test_fit_learns_what_the_midpoint_rule_misses(action, toy_model, trajectories):
    info = action.fit_info_
    assert info["valid_rms_dq_learned_A"] < 0.3 * info["valid_rms_dq_midpoint_A"]
    assert info["valid_rms_dp_learned"] < 0.6 * info["valid_rms_dp_midpoint"]
    # with labels the features can represent (the model's own gradients), a refit with tiny
    # lam reproduces them: checks the solve and the signs of the expansion
    from gdmlx.action import _pairs_from_trajectories
    q0, v0, q1, v1 = _pairs_from_trajectories(trajectories, 1.0, action.z_, action.force_model_)
    qm, vm = 0.5 * (q0[::400] + q1[::400]), 0.5 * (v0[::400] + v1[::400])
    gq, gp = action.correction_gradient(qm, vm * action.masses_[:, None])
    refit = ActionModel(stride_fs=1.0, sigma=1.0, lam=1e-12).fit_gradients(action.z_, qm, vm, gq, gp)
    cq, cp = refit.correction_gradient(qm, vm * action.masses_[:, None])
    np.testing.assert_allclose(cp, gp, atol=1e-5 * np.abs(gp).max())
    np.testing.assert_allclose(cq, gq, atol=1e-5 * np.abs(gq).max())


def test_correction_is_even_in_momentum(action):
    q, v = _state(4)
    p = v * action.masses_[:, None] / ase.units.fs * 0.01
    cq, cp = action.correction_gradient(q[None], p[None])
    cq_f, cp_f = action.correction_gradient(q[None], -p[None])
    np.testing.assert_allclose(cq_f, cq, rtol=1e-10, atol=1e-14)      # dC/dq even
    np.testing.assert_allclose(cp_f, -cp, rtol=1e-10, atol=1e-14)     # dC/dp odd


def _methyl_states(n, seed=0):
    """Midpoints (n, 5, 3) [A] and velocities of a CH3-X fragment (z 6, 1, 1, 1, 9)."""
    rng = np.random.default_rng(seed)
    h = [[1.03 * np.cos(a), 1.03 * np.sin(a), -0.36] for a in (0.0, 2.1, 4.2)]
    base = np.array([[0.0, 0.0, 0.0], *h, [0.0, 0.0, 1.4]])
    return base + 0.05 * rng.standard_normal((n, 5, 3)), 0.01 * rng.standard_normal((n, 5, 3))


@pytest.mark.parametrize("perms", [None, "auto"])
def test_correction_summed_over_permutations_is_invariant_under_them(perms, tmp_path):
    """With perms="auto" (the three methyl hydrogens: six permutations) the learned C is
    invariant: swapping the hydrogens of a state swaps its gradients. Without, it is not."""
    z = np.array([6, 1, 1, 1, 9])
    qm, vm = _methyl_states(6)
    rng = np.random.default_rng(1)
    gq, gp = 0.1 * rng.standard_normal((2, 6, 5, 3))
    action = ActionModel(sigma=2.0, lam=1e-8, perms=perms).fit_gradients(z, qm, vm, gq, gp)
    assert len(action.perms_) == (6 if perms else 1)
    assert action.expansion_.n_train == 6 * 2 * len(action.perms_)
    q, v = _methyl_states(1, seed=7)
    p = v * action.masses_[:, None]
    swap = np.array([0, 2, 3, 1, 4])                       # a methyl rotation
    cq, cp = action.correction_gradient(q, p)
    cq_s, cp_s = action.correction_gradient(q[:, swap], p[:, swap])
    differ = max(np.abs(cq_s - cq[:, swap]).max() / np.abs(cq).max(), np.abs(cp_s - cp[:, swap]).max() / np.abs(cp).max())
    assert (differ < 1e-8) if perms else (differ > 1e-3)
    action.save(tmp_path / "a.h5")
    back = ActionModel.load(tmp_path / "a.h5")
    np.testing.assert_array_equal(back.perms_, action.perms_)
    np.testing.assert_array_equal(back.correction_gradient(q, p)[0], cq)


def _map(sim, q, v):
    sim.q, sim.v = q.copy(), v.copy()
    sim.epot, sim.F = sim._forces(sim.q)
    sim.stride()
    return sim.q.copy(), sim.v.copy()


def test_map_is_symplectic_and_time_reversible(action, toy_model, toy_data):
    R = toy_data[0]
    sim = ActionSimulation(toy_model, action, R[3], temperature_K=300, seed=2, tol=1e-13, max_iter=200)
    q, v = sim.q.copy(), sim.v.copy()
    q1, v1 = _map(sim, q, v)
    # compiled correction gradient equals the dense one
    m = action.masses_[:, None]
    cq, cp = sim._correction(q, v * m)
    cq_ref, cp_ref = action.correction_gradient(q[None], (v * m)[None])
    np.testing.assert_allclose(cq, cq_ref[0], rtol=1e-9, atol=1e-14)
    np.testing.assert_allclose(cp, cp_ref[0], rtol=1e-9, atol=1e-16)
    # reversibility: flip the momenta, map, flip again
    q2, v2 = _map(sim, q1, -v1)
    np.testing.assert_allclose(q2, q, atol=1e-10)
    np.testing.assert_allclose(-v2, v, atol=1e-10 * np.abs(v).max())
    # symplecticity: Jacobian of (q, p) -> (q', p') by central differences, M^T W M = W
    n = q.size
    z0 = np.r_[q.ravel(), (v * m).ravel()]
    h = 1e-5
    Mj = np.empty((2 * n, 2 * n))
    for c in range(2 * n):
        cols = []
        for s in (1, -1):
            z = z0.copy()
            z[c] += s * h
            qa, va = _map(sim, z[:n].reshape(q.shape), z[n:].reshape(q.shape) / m)
            cols.append(np.r_[qa.ravel(), (va * m).ravel()])
        Mj[:, c] = (cols[0] - cols[1]) / (2 * h)
    W = np.block([[np.zeros((n, n)), np.eye(n)], [-np.eye(n), np.zeros((n, n))]])
    np.testing.assert_allclose(Mj.T @ W @ Mj, W, atol=1e-6)


def test_run_conserves_energy_better_than_verlet_at_the_same_step(action, toy_model, toy_data, tmp_path):
    start = toy_data[0][0]                      # a start inside the action model's training data
    path = str(tmp_path / "a.h5")
    s = ActionSimulation(toy_model, action, start, temperature_K=300, seed=5).run(
        400, trajectory=path, save_every=2, progress=False)
    assert s["steps"] == 400 and s["simulated_ps"] == pytest.approx(0.4)
    with h5py.File(path) as f:
        assert f["positions"].shape == (200, 5, 3) and f.attrs["complete"]
    verlet = Simulation(toy_model, start, dt_fs=1.0, temperature_K=300, seed=5).run(
        400, save_every=2, report_every=400, progress=False)
    assert s["etot_std_eV"] < 0.5 * verlet["etot_std_eV"]


def test_langevin_runs_and_errors_are_clear(action, toy_model, toy_data):
    sim = ActionSimulation(toy_model, action, toy_data[0][3], temperature_K=300, seed=5,
                           thermostat="langevin", friction_per_fs=0.05)
    assert sim.run(50, progress=False)["steps"] == 50
    capped = ActionSimulation(toy_model, action, toy_data[0][3], seed=5, max_iter=1)
    with pytest.raises(ActionMapError, match="did not converge") as failed:
        capped.run(1, progress=False)
    assert failed.value.summary["steps"] == 0                   # the run up to the failure
    with pytest.raises(MDInstabilityError, match="stopped earlier"):
        capped.run(1, progress=False)
    for bad in (dict(stride_fs=0.0), dict(sigma=-1.0), dict(n_train=0)):
        with pytest.raises(InputError, match=next(iter(bad))):
            ActionModel(**bad).fit([], toy_model, verbose=False)
    with pytest.raises(InputError, match="tol"):
        ActionSimulation(toy_model, action, toy_data[0][3], tol=0.0)
    with pytest.raises(InputError, match="report_every"):
        sim.run(10, report_every=0, progress=False)
    frames = {"z": action.z_, "time_fs": np.arange(10) * 0.25, "positions": np.zeros((10, 5, 3)),
              "velocities": np.zeros((10, 5, 3))}
    with pytest.raises(InputError, match="not a multiple"):
        ActionModel(stride_fs=0.3, n_train=5).fit([frames], toy_model, verbose=False)
    frozen = dict(frames, positions=np.repeat(toy_data[0][:1], 10, axis=0))   # nothing moves
    with pytest.raises(InputError, match="do not move"):
        ActionModel(stride_fs=0.5, n_train=5).fit([frozen], toy_model, verbose=False)
    with pytest.raises(InputError, match="NaN"):
        ActionModel(stride_fs=0.5, n_train=5).fit([dict(frames, velocities=np.full((10, 5, 3), np.nan))],
                                                  toy_model, verbose=False)


def test_save_load_round_trip_and_foreign_file(action, toy_model, tmp_path):
    path = str(tmp_path / "act.h5")
    action.save(path)
    back = ActionModel.load(path)
    q, v = _state(6)
    p = (v * action.masses_[:, None])[None]
    for a, b in zip(action.correction_gradient(q[None], p), back.correction_gradient(q[None], p)):
        np.testing.assert_array_equal(a, b)
    assert back.stride_fs == action.stride_fs and back.reach_ == action.reach_ > 0
    toy_model.save(str(tmp_path / "m.h5"))
    with pytest.raises(ModelFileError, match="not an action model"):
        ActionModel.load(str(tmp_path / "m.h5"))
    for attr, value, message in (("kappa", np.inf, "momentum scale"), ("stride_fs", -2.0, "stride_fs must be")):
        action.save(path)
        with edited_file(path) as f:
            f.attrs[attr] = value
        with pytest.raises(ModelFileError, match=message):
            ActionModel.load(path)


def test_runs_beyond_the_action_models_data_are_measured_and_warned_about(action, toy_model, toy_data,
                                                                          trajectories):
    """``reach_`` is the farthest held-out pair's distance to its nearest training pair; the
    training pairs themselves are at distance 0; a run whose states lie beyond 1.25 x the
    reach says so (here forced with a tiny reach) and one within it does not."""
    import copy
    import warnings
    from gdmlx.action import _pairs_from_trajectories
    from gdmlx.expansion import force_model_fingerprint
    q0, v0, q1, v1 = _pairs_from_trajectories(trajectories, 1.0, action.z_, force_model_fingerprint(toy_model))
    d = action.data_distance(0.5 * (q0 + q1), 0.5 * (v0 + v1))
    assert d.min() < 1e-6 and np.sort(d)[-10:].max() >= action.reach_ > 0
    start = toy_data[0][0]
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)    # gdmlx's warnings, not a library's deprecations
        inside = ActionSimulation(toy_model, action, start, temperature_K=300, seed=1).run(20, save_every=2,
                                                                                         progress=False)
    assert inside["beyond_action_data_fraction"] < 0.05
    sim = ActionSimulation(toy_model, action, start, temperature_K=300, seed=2)    # compiled = numpy distance
    assert sim._data_distance() == pytest.approx(action.data_distance(sim.q[None], sim.v[None])[0], rel=1e-9)
    narrow = copy.copy(action)
    narrow.reach_ = 1e-9
    with pytest.warns(UserWarning, match="100 % of the saved frames lay beyond the action model's data"):
        out = ActionSimulation(toy_model, narrow, start, temperature_K=300, seed=1).run(20, save_every=2,
                                                                                      progress=False)
    assert out["beyond_action_data_fraction"] == 1.0


def test_compiled_stride_matches_the_numpy_reference(action, toy_model, toy_data):
    """The compiled midpoint map equals :meth:`ActionSimulation.map_reference`, and the
    compiled Anderson solve reaches the fixed point that :func:`anderson_solve` finds on it,
    plain and preconditioned."""
    from gdmlx.md.action_map import anderson_midpoint, midpoint_jacobian, midpoint_map
    sim = ActionSimulation(toy_model, action, toy_data[0][5], temperature_K=300, seed=4, tol=1e-12)
    b, a, e = sim.base, action, action.expansion_
    m = sim.masses[:, None]
    q, p, tau = sim.q.copy(), sim.v * m, sim.tau
    args = (q, p, 1.0 / sim.masses, tau, b.groups, b.r_scale, b.e_scale, b.ws, b.wall, sim._F_groups,
            sim._E_groups, (a.pairs_, e.X, e.B, e.X_sq, e.XB, e.sigma, a.kappa_), sim._ws)
    w = np.stack([q + tau * p / m, p * tau / m]) + 1e-3 * np.random.default_rng(0).standard_normal((2,) + q.shape)
    out = np.empty_like(w)
    midpoint_map(w, *args, out)
    np.testing.assert_allclose(out, sim.map_reference(w), rtol=1e-12, atol=1e-14)
    z_ref, _, res_ref = anderson_solve(sim.map_reference, w, 1e-12, 200, 12)
    z = w.copy()
    it, res = anderson_midpoint(z, 1e-12, 200, 12, np.empty((0, 0)), *args)
    assert res < 1e-12 and res_ref < 1e-12
    np.testing.assert_allclose(z, z_ref, atol=1e-11)
    # preconditioned (simplified Newton): the same iterates as the numpy reference's
    A = np.empty((w.size, w.size))
    midpoint_jacobian(w.copy(), 1e-6, *args, A)
    K = np.linalg.inv(A)
    for max_iter in (3, 200):
        z_ref, it_ref, _ = anderson_solve(sim.map_reference, w, 1e-12, max_iter, 12, precond=K)
        z = w.copy()
        assert anderson_midpoint(z, 1e-12, max_iter, 12, K, *args)[0] == it_ref
        np.testing.assert_allclose(z, z_ref, atol=1e-11)


def test_newton_solve_reaches_the_old_fixed_point_in_fewer_iterations(action, toy_model, toy_data):
    """Strides by simplified Newton end where the plain Anderson solve ends (to the
    tolerance) and take fewer map evaluations, the Jacobians' own included; the Jacobian is
    reused and renewed (every stride with jacobian_every=1), and a run with a stale one that
    fails to converge retries with a fresh one."""
    start = toy_data[0][7]
    old = ActionSimulation(toy_model, action, start, temperature_K=300, seed=3, newton=False)
    new = ActionSimulation(toy_model, action, start, temperature_K=300, seed=3)
    every = ActionSimulation(toy_model, action, start, temperature_K=300, seed=3, jacobian_every=1)
    for _ in range(60):
        q, v = new.q.copy(), new.v.copy()
        old.q, old.v, old.epot, old.F = q.copy(), v.copy(), new.epot, new.F.copy()
        old.stride(), new.stride()
        np.testing.assert_allclose(new.q, old.q, atol=2e-10)
        np.testing.assert_allclose(new.v * action.tau, old.v * action.tau, atol=2e-10)
    jac = 2 * start.size + 1                            # map evaluations of one Jacobian
    assert sum(new.iterations) + jac * new.jacobian_refreshes < 0.8 * sum(old.iterations)
    assert new.jacobian_refreshes >= 1 and old.jacobian_refreshes == 0
    every.run(5, progress=False)
    assert every.jacobian_refreshes == 5
    stale = ActionSimulation(toy_model, action, start, temperature_K=300, seed=3, max_iter=3)
    stale._K = np.eye(2 * start.size)                   # a poor preconditioner from "earlier"
    stale._K_age, stale.iterations = 1, [3]
    assert stale.stride() > 3 and stale.jacobian_refreshes == 1       # 3 in vain, then converged
    with pytest.raises(InputError, match="jacobian_every"):
        ActionSimulation(toy_model, action, start, jacobian_every=0)


def test_anderson_solves_a_contraction_faster_than_plain_iteration():
    A = np.diag(np.linspace(-0.95, 0.95, 20))
    b = np.ones(20)
    z, it, res = anderson_solve(lambda z: A @ z + b, np.zeros(20), 1e-12, 100, 20)
    np.testing.assert_allclose(z, np.linalg.solve(np.eye(20) - A, b), atol=1e-10)
    assert it < 30 and res < 1e-12


def test_trajectories_of_another_force_model_are_refused(toy_data, trajectories):
    """The engines record the force model in their trajectories; an action model fitted to
    trajectories of one force field against another would learn the wrong correction."""
    R, F, E, z = toy_data
    other = GDMLRegressor(sigma=3.0, lam=1e-8).fit(R[:30], F[:30], E[:30], z=z)
    with pytest.raises(InputError, match="was run with another force model than the one given"):
        ActionModel(stride_fs=1.0, n_train=5).fit(trajectories[:1], other, verbose=False)


def test_only_nve_runs_of_the_force_field_are_learned_from(action, toy_model, toy_data, trajectories, tmp_path):
    """Paths as str or Path, one or a list; Langevin, multiple-time-step and action-map runs
    are not the flow the map learns, and are refused by name; unfitted models say so."""
    from pathlib import Path
    from sklearn.exceptions import NotFittedError
    from gdmlx.action import _pairs_from_trajectories
    one = _pairs_from_trajectories(trajectories[0], 1.0, action.z_, action.force_model_)
    for given in ([Path(trajectories[0])], Path(trajectories[0])):
        for a, b in zip(_pairs_from_trajectories(given, 1.0, action.z_, action.force_model_), one):
            np.testing.assert_array_equal(a, b)
    langevin = tmp_path / "langevin.h5"
    Simulation(toy_model, toy_data[0][0], dt_fs=0.125, thermostat="langevin", seed=0).run(
        400, trajectory=langevin, save_every=2, progress=False)
    mapped = tmp_path / "mapped.h5"
    ActionSimulation(toy_model, action, toy_data[0][0], seed=0).run(20, trajectory=mapped, progress=False)
    for path, recorded in ((langevin, "gamma_per_fs=0.01"), (mapped, "integrator='action map'")):
        with pytest.raises(InputError, match=f"not an NVE run .*{recorded}"):
            ActionModel(stride_fs=1.0, n_train=5).fit(path, toy_model, verbose=False)
    with pytest.raises(NotFittedError, match="ActionModel is not fitted"):
        ActionModel().save(tmp_path / "a.h5")
    with pytest.raises(NotFittedError, match="ActionModel is not fitted"):
        ActionSimulation(toy_model, ActionModel(), toy_data[0][0])


def test_fit_says_what_is_wrong_with_inputs_that_are_not_trajectories(toy_model, toy_data, tmp_path):
    """A dataset, a trajectory without velocities, an .xyz or .npz path or a model path where
    a force model object belongs: each is named, with what to give instead (they were a
    TypeError, a KeyError, an HDF5 signature error and an AttributeError)."""
    from gdmlx.md import ReplicaSimulation
    R, F, E, z = toy_data
    ds = gdmlx.Dataset(R=R, z=z, F=F, E=E)
    fit = lambda traj, model=toy_model: ActionModel(stride_fs=1.0, n_train=5).fit(traj, model, verbose=False)
    with pytest.raises(InputError, match="paths of gdmlx HDF5 trajectories .* got Dataset"):
        fit(ds)
    with pytest.raises(InputError, match=r"lacks \['velocities'\]"):
        fit({"positions": R, "z": z, "time_fs": np.arange(60.0)})
    ds.save_npz(tmp_path / "data.npz")
    with pytest.raises(InputError, match="data.npz is a dataset .*, not a gdmlx trajectory"):
        fit(str(tmp_path / "data.npz"))
    reps = tmp_path / "reps.h5"
    ReplicaSimulation(toy_model, R[0], 2, dt_fs=0.125, seed=0).run(40, trajectory=reps, save_every=2,
                                                                     progress=False)
    with pytest.raises(InputError, match="force model must be a fitted gdmlx model .* got str"):
        fit(str(reps), "m.h5")


def test_each_replica_of_a_replica_run_is_a_trajectory_of_its_own(toy_model, toy_data, tmp_path):
    """An NVE run of replicas (gdmlx md --replicas) gives the pairs of its replicas' runs:
    the same model as from the replicas given one by one (it was refused)."""
    from gdmlx.md import ReplicaSimulation, read_trajectory
    reps = tmp_path / "reps.h5"
    ReplicaSimulation(toy_model, toy_data[0][0], 3, dt_fs=0.125, seed=0).run(
        80, trajectory=reps, save_every=2, progress=False)
    t = read_trajectory(reps)
    assert t["positions"].ndim == 4
    singles = [{**t, "positions": t["positions"][:, r], "velocities": t["velocities"][:, r]} for r in range(3)]
    fit = lambda traj: ActionModel(stride_fs=1.0, sigma=1.0, n_train=20, n_valid=10).fit(
        traj, toy_model, verbose=False)
    together, apart = fit(str(reps)), fit(singles)
    assert together.fit_info_["n_pairs_available"] == 3 * (40 - 4)
    np.testing.assert_array_equal(together.expansion_.X, apart.expansion_.X)
    np.testing.assert_array_equal(together.expansion_.B, apart.expansion_.B)


def test_fit_warning_gives_momentum_errors_in_the_units_of_its_report(toy_model, toy_data):
    """The warning about a correction worse than none gave dp in ASE units, the command
    line's report the same numbers in amu A/fs (10x apart, unlabelled)."""
    R, _, _, z = toy_data
    rng = np.random.default_rng(0)        # velocities that are not the dynamics: nothing to learn
    traj = {"positions": R, "velocities": 0.01 * rng.standard_normal(R.shape), "time_fs": np.arange(60.0), "z": z}
    with pytest.warns(UserWarning, match="larger errors than the plain midpoint rule") as record:
        act = ActionModel(stride_fs=1.0, sigma=1.0, n_train=20, n_valid=30).fit(traj, toy_model, verbose=False)
    dp = f"dp {act.fit_info_['valid_rms_dp_learned'] * ase.units.fs:.2e} against " \
         f"{act.fit_info_['valid_rms_dp_midpoint'] * ase.units.fs:.2e} amu A/fs"
    assert dp in str(record[0].message)


def test_action_simulation_names_a_wrong_molecule_model_or_file(action, toy_model, toy_data, tmp_path):
    """An action model of another molecule: both formulas and what to do (it was a bare
    ValueError); arguments swapped or given as paths: which is wrong (an AttributeError);
    a force model or a dataset where an action model file belongs: what it is."""
    R, F, E, z = toy_data
    other = GDMLRegressor(sigma=2.0, lam=1e-8).fit(R[:10], F[:10], E[:10], z=np.array([6, 6, 7, 6, 1]))
    with pytest.raises(InputError, match=r"trained for C3HO \(atomic numbers \[6, 6, 8, 6, 1\]\), the force model "
                                         r"is C3HN .*gdmlx action train"):
        ActionSimulation(other, action, R[0])
    with pytest.raises(InputError, match="action must be an ActionModel .* got str"):
        ActionSimulation(toy_model, "act.h5", R[0])
    with pytest.raises(InputError, match="force model must be a fitted gdmlx model .* got ActionModel"):
        ActionSimulation(action, toy_model, R[0])
    toy_model.save(str(tmp_path / "m.h5"))
    with pytest.raises(ModelFileError, match=r"m.h5 is a gdmlx model \(a force field\), not an action model "
                                             r"\(written by gdmlx action train\)"):
        ActionModel.load(str(tmp_path / "m.h5"))
    gdmlx.Dataset(R=R, z=z, F=F, E=E).save_npz(tmp_path / "d.npz")
    with pytest.raises(ModelFileError, match=r"d.npz is a dataset .*, not an action model"):
        ActionModel.load(str(tmp_path / "d.npz"))


def test_an_interrupted_action_run_says_what_its_file_keeps(action, toy_model, toy_data, tmp_path, monkeypatch,
                                                            capsys):
    """Ctrl-C in an action-map run printed only 'gdmlx: interrupted' from the command line;
    the other engines say where they stopped and what the trajectory keeps."""
    sim = ActionSimulation(toy_model, action, toy_data[0][0], temperature_K=200, seed=0)
    real, calls = sim.stride, []

    def stride_then_ctrl_c():
        real()
        calls.append(1)
        if len(calls) == 7:
            raise KeyboardInterrupt
    monkeypatch.setattr(sim, "stride", stride_then_ctrl_c)
    with pytest.raises(KeyboardInterrupt):
        sim.run(20, trajectory=str(tmp_path / "a.h5"), save_every=2, progress=False)
    assert (f"MD interrupted after 7 strides (t = 0.0070 ps): {tmp_path / 'a.h5'} keeps the 3 frames saved so far"
            in capsys.readouterr().err)


def test_fitting_shows_its_stages(toy_model, trajectories, capsys):
    """An action fit printed the matrix size and then nothing through its assembly and
    Cholesky solve (32 s at 300 pairs, growing as the cube): it now shows both stages with
    their times, as the force-model fit does."""
    ActionModel(stride_fs=1.0, sigma=1.0, lam=1e-10, n_train=20, n_valid=10).fit(trajectories, toy_model,
                                                                                  verbose=True)
    err = capsys.readouterr().err
    assert re.search(r"gdmlx: action: 20 pairs, assembling the 600 x 600 kernel matrix( \.\.\.)? [0-9.]+ s", err)
    assert re.search(r"gdmlx: action: Cholesky solve( \.\.\.)? [0-9.]+ s", err)
