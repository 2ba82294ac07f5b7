"""The replica engine (gdmlx.md.replicas) against the single-molecule compiled engine."""

import numpy as np
import pytest

import gdmlx
from gdmlx.backend import to_host
from conftest import toy_geometries
from gdmlx.kernels.pair_arrays import incidence
from gdmlx.md import MDInstabilityError, ReplicaSimulation, Simulation, read_trajectory
from gdmlx.md.contact import wall_energy_forces, wall_energy_forces_batch
from test_backend import _cupy_or_skip
from test_contact import folding_velocities, random_wall


@pytest.fixture(scope="module")
def start():
    return toy_geometries(1, noise=0.0)[0]


def single_runs(model, start, velocities, n_steps, save_every=10, **kw):
    """Final positions (n, N, 3) of one single-engine run per row of ``velocities`` [A/fs]."""
    out = []
    for v in velocities:
        sim = Simulation(model, start, velocities=v, **kw)
        sim.run(n_steps, save_every=save_every, report_every=n_steps, progress=False)
        out.append(sim.q)
    return np.array(out)


def test_nve_replicas_follow_the_single_engine(toy_model, start, tmp_path):
    rng = np.random.default_rng(5)
    v = 0.004 * rng.standard_normal((3, 5, 3))
    reps = ReplicaSimulation(toy_model, start, 3, velocities=v, dt_fs=0.5)
    s = reps.run(60, trajectory=tmp_path / "reps.h5", save_every=10, report_every=60, progress=False)
    np.testing.assert_allclose(reps.positions, single_runs(toy_model, start, v, 60, dt_fs=0.5),
                               rtol=0, atol=1e-10)
    assert s["frames"]["epot"].shape == (6, 3) and len(s["replicas"]) == 3
    assert s["replica_steps_per_s"] == pytest.approx(3 * s["steps_per_s"])
    traj = read_trajectory(tmp_path / "reps.h5")
    assert traj["complete"] and traj["positions"].shape == (6, 3, 5, 3)
    np.testing.assert_array_equal(traj["positions"][-1], reps.positions)
    # every frame is its own state (buffered frames once aliased the engine's live positions)
    np.testing.assert_allclose(traj["positions"][2], single_runs(toy_model, start, v, 30, dt_fs=0.5),
                               rtol=0, atol=1e-10)
    np.testing.assert_array_equal(traj["epot"], s["frames"]["epot"])
    with pytest.raises(ValueError, match="written as HDF5"):
        reps.run(10, trajectory=tmp_path / "reps.xyz", progress=False)


def test_one_langevin_replica_is_the_single_engine_with_the_same_seed(toy_model, start):
    kw = dict(dt_fs=0.5, thermostat="langevin", temperature_K=400, friction_per_fs=0.05, seed=21)
    reps = ReplicaSimulation(toy_model, start, 1, **kw)
    sim = Simulation(toy_model, start, **kw)
    np.testing.assert_array_equal(reps.velocities[0], sim.v * __import__("ase").units.fs)
    reps.run(80, save_every=10, report_every=40, progress=False)
    sim.run(80, save_every=10, report_every=40, progress=False)
    np.testing.assert_allclose(reps.positions[0], sim.q, rtol=0, atol=1e-10)
    com = (reps.masses[:, 0] @ reps.v[0])
    assert np.abs(com).max() < 1e-12


def test_reused_work_arrays_carry_no_state(toy_model, start):
    """Each step computes its forces in the run's work arrays, reused from step to step: the
    forces after two steps equal a fresh run's at the same positions, and a smaller batch
    in work arrays that held a larger one gives what it gives in its own."""
    v = 0.004 * np.random.default_rng(7).standard_normal((4, 5, 3))
    reps = ReplicaSimulation(toy_model, start, velocities=v, dt_fs=0.5)
    reps.advance(2)
    fresh = ReplicaSimulation(toy_model, reps.positions, velocities=reps.velocities, dt_fs=0.5)
    np.testing.assert_array_equal(fresh.E[0], reps.E[0])
    np.testing.assert_array_equal(fresh.F[0], reps.F[0])
    dev = toy_model.force_parts()[0].on_device(np)
    work = dev.work(4)
    dev.energy_forces(reps.positions, work)
    for got, want in zip(dev.energy_forces(start[None], work), dev.energy_forces(start[None])):
        np.testing.assert_array_equal(got, want)


@pytest.mark.filterwarnings("ignore::gdmlx.errors.EnergyConsistencyWarning")
def test_multiple_time_steps_and_contact_wall_follow_the_single_engine(toy_data, start):
    """A multiscale model (fast part every step, slow part every 3rd) folding atoms 0 and 2
    into the contact wall of the pair no descriptor covers."""
    R, F, E, z = toy_data
    bonds = np.array([[1, 0], [2, 1], [3, 2], [4, 3]])
    fast = gdmlx.GDMLRegressor(sigma=2.0, lam=1e-8, pairs=bonds).fit(R[:30], F[:30], E[:30], z=z)
    slow = gdmlx.GDMLRegressor(sigma=2.0, lam=1e-8, pairs=np.array([[3, 1], [4, 2]])).fit(
        R[:30], F[:30] - fast.predict(R[:30]), E[:30] - fast.predict_energy(R[:30]), z=z)
    model = gdmlx.MultiscaleModel.from_parts(fast, slow)
    v = folding_velocities(start)[None]
    reps = ReplicaSimulation(model, start, velocities=v, dt_fs=0.25, slow_every=3)
    assert reps.wall is not None
    closest = np.inf
    for _ in range(20):
        reps.run(30, save_every=30, report_every=30, progress=False)
        closest = min(closest, np.linalg.norm(reps.positions[0, 0] - reps.positions[0, 2]))
    assert closest < to_host(reps.wall[1]).max()          # inside the wall of pair (2, 0)
    ref = single_runs(model, start, v, 600, save_every=30, dt_fs=0.25, slow_every=3)
    np.testing.assert_allclose(reps.positions, ref, rtol=0, atol=1e-9)


def test_batched_wall_matches_reference():
    R, pairs, r0 = random_wall(seed=2)
    Rs = np.stack([R, R + 0.05, 1.1 * R])
    E, F = wall_energy_forces_batch(Rs, incidence(pairs, len(R)), r0, 1.5)
    for t in range(3):
        E_ref, F_ref = wall_energy_forces(Rs[t], pairs, r0, 1.5)
        assert E[t] == pytest.approx(E_ref, rel=1e-12)
        np.testing.assert_allclose(F[t], F_ref, rtol=0, atol=1e-12 * np.abs(F_ref).max())


def test_a_replica_leaving_the_domain_stops_the_run_and_is_named(toy_model, start):
    v = np.zeros((3, 5, 3))
    v[1] = 30 * folding_velocities(start)          # replica 1 folds hard into atoms 0 and 2
    reps = ReplicaSimulation(toy_model, start, velocities=v, dt_fs=0.25)
    with pytest.raises(MDInstabilityError, match=r"replica\(s\) \[1\].* frames were kept in the summary") as err:
        reps.run(2000, save_every=10, report_every=1000, progress=False)
    assert err.value.summary["steps"] < 2000
    with pytest.raises(ValueError, match="positions hold 2 geometries and velocities none for 3"):
        ReplicaSimulation(toy_model, toy_geometries(2), 3)


def test_gpu_replicas_match_cpu(toy_model, start):
    _cupy_or_skip()
    v = 0.004 * np.random.default_rng(5).standard_normal((4, 5, 3))
    runs = []
    for backend in ("cpu", "gpu"):
        reps = ReplicaSimulation(toy_model, start, velocities=v, dt_fs=0.5, backend=backend)
        reps.run(60, save_every=10, report_every=60, progress=False)
        runs.append(reps.positions)
    np.testing.assert_allclose(runs[1], runs[0], rtol=0, atol=1e-9)


@pytest.mark.parametrize("n", [0, 2.5])
def test_bad_replica_count_is_refused(toy_model, start, n):
    with pytest.raises(gdmlx.InputError, match="n_replicas"):
        ReplicaSimulation(toy_model, start, n)


def test_model_pickles_after_running_replicas(toy_model, start):
    """The replica engine caches device copies on the model's expansion; pickling (joblib,
    GridSearchCV with n_jobs) and deepcopy must still work and give the same model."""
    import copy
    import pickle
    model = copy.copy(toy_model)
    ReplicaSimulation(model, start, 2)
    again = pickle.loads(pickle.dumps(model))
    np.testing.assert_array_equal(again.predict(start), toy_model.predict(start))
    copy.deepcopy(model)


def test_auto_backend_takes_the_gpu_only_where_it_was_measured_to_pay(monkeypatch):
    from gdmlx import backend
    from gdmlx.md.replicas import GPU_FROM_REPLICAS, md_backend
    monkeypatch.setattr(backend, "_cupy", lambda: object())            # as if CuPy saw a GPU
    assert md_backend("auto", GPU_FROM_REPLICAS - 1) == "cpu" and md_backend("auto", GPU_FROM_REPLICAS) == "gpu"
    assert md_backend("gpu", 1) == "gpu" and md_backend("cpu", 1000) == "cpu"
    monkeypatch.setattr(backend, "_cupy", lambda: None)
    assert md_backend("auto", 1000) == "cpu"


def test_frames_further_apart_than_a_chunk_still_advance_in_bounded_pieces(toy_model, start, monkeypatch):
    """save_every above MAX_CHUNK_STEPS: Ctrl-C waits for at most MAX_CHUNK_STEPS steps (it
    waited for a whole save interval), and the run is the same."""
    from gdmlx.md import simulation
    finals = []
    for limit in (40, 1000):
        monkeypatch.setattr(simulation, "MAX_CHUNK_STEPS", limit)
        reps = ReplicaSimulation(toy_model, start, 2, seed=0, thermostat="langevin")
        sizes, original = [], reps.advance
        monkeypatch.setattr(reps, "advance", lambda n: sizes.append(n) or original(n))
        s = reps.run(200, save_every=100, report_every=200, progress=False)
        assert s["steps"] == 200 and sum(sizes) == 200 and max(sizes) <= limit
        finals.append(reps.positions)
    np.testing.assert_array_equal(finals[0], finals[1])
