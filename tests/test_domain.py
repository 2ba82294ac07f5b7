"""Training-domain measures of MD runs, the stability probe, and reduction guarded by it."""

import numpy as np
import pytest

import gdmlx
from conftest import toy_energy_forces, toy_geometries
from gdmlx.md import MDInstabilityError, Simulation, read_trajectory
from gdmlx.md.domain import frame_outside, outside_frames, outside_limits_sq, pair_floors
from gdmlx.md.probe import StabilityProbe
from gdmlx.reduction import md_check, reduce_pairs


def shortest_distances(R, pairs):
    """Brute force: each pair's shortest distance over geometries R (n, N, 3)."""
    return np.array([min(np.linalg.norm(r[i] - r[j]) for r in R) for i, j in pairs])


@pytest.mark.filterwarnings("ignore::gdmlx.errors.EnergyConsistencyWarning")
def test_pair_floors_are_shortest_training_distances(toy_data):
    R, F, E, z = toy_data
    ms = gdmlx.MultiscaleModel(fast=gdmlx.GDMLRegressor(sigma=1.5, lam=1e-6), max_hops=1,
                               n_fast=10).fit(R[:30], F[:30], E[:30], z)
    pairs, floors = pair_floors(ms.force_parts())
    assert len(pairs) == 10 and np.all(pairs[:, 0] < pairs[:, 1])
    # the fast part saw 10 of the 30 geometries, the slow part all 30: the union's floor is the slow part's
    np.testing.assert_allclose(floors, shortest_distances(R[:30], pairs), rtol=1e-12)
    fast_pairs, fast_floors = pair_floors(ms.force_parts()[:1], r_scale=2.0)
    assert len(fast_pairs) == 4
    np.testing.assert_allclose(fast_floors, shortest_distances(ms.fast_.R_train_, fast_pairs) / 2.0, rtol=1e-12)


def test_outside_frames_uses_each_pairs_own_floor():
    pairs = np.array([[0, 1], [1, 2]])
    floors = np.array([1.0, 2.0])
    frames = np.zeros((3, 3, 3))
    frames[:, 1, 0] = [0.81, 0.79, 1.0]        # pair (0,1): inside, outside, inside
    frames[:, 2, 0] = frames[:, 1, 0] + [2.0, 2.0, 1.59]   # pair (1,2): inside, inside, outside
    np.testing.assert_array_equal(outside_frames(frames, pairs, floors), [False, True, True])


def test_compiled_check_matches_numpy_reference():
    """Random 6-atom frames whose distances straddle the limits: the loop's check agrees."""
    rng = np.random.default_rng(3)
    frames = rng.uniform(0, 4.0, (400, 6, 3))
    pairs = np.stack(np.triu_indices(6, 1), axis=1)
    floors = rng.uniform(0.8, 1.6, len(pairs))
    expected = outside_frames(frames, pairs, floors)
    assert 0.2 < expected.mean() < 0.8
    limits = outside_limits_sq(floors)
    np.testing.assert_array_equal([frame_outside(f, pairs, limits) for f in frames], expected)


def test_run_summary_counts_frames_outside(toy_model, tmp_path):
    """The summary's fraction is the one measured on the written frames, and a cold run stays inside."""
    start = toy_geometries(1, noise=0.0)[0]
    hot = Simulation(toy_model, start, temperature_K=2000, thermostat="langevin", seed=2)
    s = hot.run(2000, trajectory=tmp_path / "t.h5", save_every=10, report_every=1000, progress=False)
    frames = read_trajectory(tmp_path / "t.h5")["positions"]
    expected = outside_frames(frames, *pair_floors(toy_model.force_parts()))
    assert 0 < s["outside_fraction"] == pytest.approx(expected.mean())
    cold = Simulation(toy_model, start, temperature_K=50, seed=2)
    assert cold.run(1000, save_every=10, report_every=1000, progress=False)["outside_fraction"] == 0.0


def test_stopped_run_keeps_its_summary(toy_model):
    sim = Simulation(toy_model, toy_geometries(1, noise=0.0)[0], temperature_K=3000, seed=0,
                     max_bond_stretch=1.2)
    with pytest.raises(MDInstabilityError) as info:
        sim.run(5000, save_every=1, report_every=10, progress=False)
    assert info.value.summary["steps"] == sim.step < 5000


def test_probe_counts_stopped_time_as_outside(toy_model, toy_data):
    starts = toy_data[0][30:40]
    calm = StabilityProbe(temperature_K=300, ps=1, n_runs=2).measure(toy_model, starts)
    assert calm == {"outside": [0.0, 0.0], "stopped_ps": [None, None]}
    wild = StabilityProbe(temperature_K=30000, ps=1, n_runs=2).measure(toy_model, starts)
    assert all(0 < t < 1 for t in wild["stopped_ps"])
    assert all(f >= 1 - t for f, t in zip(wild["outside"], wild["stopped_ps"]))
    probe = StabilityProbe(tolerance=0.05)
    assert probe.passes(calm, calm) and probe.passes(calm, wild) and not probe.passes(wild, calm)
    assert not probe.passes({"outside": [0.12, 0.0], "stopped_ps": [None, None]}, calm)  # 0.06 over
    assert probe.passes({"outside": [0.1, 0.0], "stopped_ps": [None, None]},
                        {"outside": [0.0, 0.02], "stopped_ps": [None, None]})


def test_md_check_gates_reduction():
    """The same probe on the same model reproduces the baseline (seeded runs), so an md_check
    of the unreduced model passes it; a check that fails everything keeps the model whole."""
    R = toy_geometries(90, n_atoms=8, seed=4, noise=0.08)
    E, F = toy_energy_forces(R)
    model = gdmlx.GDMLRegressor(sigma=3.0, lam=1e-8).fit(R[:60], F[:60], E[:60], z=np.full(8, 6))
    probe = StabilityProbe(temperature_K=300, ps=0.5, n_runs=2)
    check = md_check(probe, model, R[60:90], progress=False)
    ok, info = check(model)
    assert ok and info["md"] == info["md_baseline"]
    reduced, report = reduce_pairs(model, R[60:90], F[60:90], tol=0.05, progress=False, check=check)
    assert len(reduced.pairs_) < len(model.pairs_)
    assert all("check" in r for r in report.rounds if r["accepted"])
    refused, report = reduce_pairs(model, R[60:90], F[60:90], tol=0.05, progress=False,
                                   check=lambda trial: (False, {}))
    assert refused is model and not any(r["accepted"] for r in report.rounds)


def test_a_descriptor_without_the_short_pairs_takes_the_short_distances_from_its_data(toy_data):
    """Pairs at least two bonds apart (about 2 A and more) describe the toy chain; its bonds
    (about 1.2 A in the data) are in no descriptor. A geometry with one bond at 0.8 A is
    within half the data's shortest distance of nothing: prediction and calculator take it,
    and MD stops only at half the data's shortest distance (they all went by the shortest
    *described* distance before)."""
    from ase import Atoms
    from gdmlx.md import Simulation
    R, F, E, z = toy_data
    i, j = np.tril_indices(5, -2)
    model = gdmlx.GDMLRegressor(sigma=2.0, pairs=np.stack([i, j], axis=1)).fit(R[:30], F[:30], E[:30], z=z)
    from gdmlx.kernels.descriptor import closest_pairs
    assert 0.5 / model.expansion_.X.max() > 0.8 > 0.5 * closest_pairs(R[:30])[0].min()
    q = R[40].copy()
    d = q[0] - q[1]
    q[0] = q[1] + 0.8 * d / np.linalg.norm(d)
    assert np.isfinite(model.predict_energy(q[None])).all()
    atoms = Atoms(numbers=z, positions=q, calculator=gdmlx.GDMLCalculator(model))
    assert np.isfinite(atoms.get_potential_energy())
    assert Simulation(model, R[40], seed=0).r_min == pytest.approx(0.5 * closest_pairs(R[:30])[0].min())


def test_a_run_given_its_velocities_goes_on_from_a_little_outside(toy_model):
    """A run that ended a little outside (below 0.8 x a pair's shortest training distance)
    can be continued; a fresh start there is refused (it looks like atoms out of order),
    and so is a continuation below 0.5 x, where the engines stop."""
    from gdmlx.md.domain import model_floors
    pairs, floors, _ = model_floors(toy_model)
    k = int(np.argmin(floors))
    i, j = pairs[k]

    def squeezed(ratio):
        q = toy_geometries(1, noise=0.0)[0]
        d = q[i] - q[j]
        q[i] = q[j] + ratio * floors[k] * d / np.linalg.norm(d)
        return q

    v = np.zeros((5, 3))
    with pytest.raises(gdmlx.GeometryError, match="Are its atoms in the model's order"):
        Simulation(toy_model, squeezed(0.7))
    Simulation(toy_model, squeezed(0.7), velocities=v)
    with pytest.raises(gdmlx.GeometryError, match="too far outside the model's domain to go on from"):
        Simulation(toy_model, squeezed(0.45), velocities=v)
