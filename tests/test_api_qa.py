"""The Python API as a power user scripts it: Dataset, MD engines, trajectories."""

import numpy as np
import pytest

import gdmlx
from gdmlx.md import MDInstabilityError, ReplicaSimulation, Simulation
from conftest import toy_energy_forces, toy_geometries


@pytest.fixture(scope="module")
def start():
    """The unperturbed toy geometry, in the middle of the training data."""
    return toy_geometries(1, noise=0.0)[0]


def test_simulation_refuses_the_velocities_of_several_molecules(toy_model, start):
    """Velocities (n, N, 3), e.g. a ReplicaSimulation's, were taken silently: the run started
    from the first replica's velocities and dropped the others."""
    v = 0.004 * np.random.default_rng(0).standard_normal((3, 5, 3))
    with pytest.raises(gdmlx.InputError, match="velocities hold 3 molecules' states; Simulation starts from one"):
        Simulation(toy_model, start, velocities=v)
    one = Simulation(toy_model, start, velocities=v[:1])          # (1, N, 3) is one molecule
    np.testing.assert_array_equal(one.v, Simulation(toy_model, start, velocities=v[0]).v)


def test_a_stopped_replica_simulation_refuses_to_go_on(toy_model, start):
    """After a replica left the domain, a second run() went on from the broken state (the
    single engine refuses), advancing every replica and writing frames past the stop."""
    from test_contact import folding_velocities
    v = np.zeros((2, 5, 3))
    v[1] = 30 * folding_velocities(start)          # replica 1 folds hard into atoms 0 and 2
    reps = ReplicaSimulation(toy_model, start, velocities=v, dt_fs=0.25)
    with pytest.raises(MDInstabilityError, match=r"replica\(s\) \[1\]"):
        reps.run(2000, save_every=10, progress=False)
    step, q = reps.step, reps.positions
    with pytest.raises(MDInstabilityError, match=r"stopped earlier \(at step \d+: .* replica\(s\) \[1\]\)"):
        reps.run(100, save_every=10, progress=False)
    assert reps.step == step
    np.testing.assert_array_equal(reps.positions, q)


def test_a_subset_owns_its_arrays():
    """A subset by a slice shared the dataset's arrays (one by an index list did not):
    changing the subset's geometries changed the dataset's."""
    R = toy_geometries(6)
    E, F = toy_energy_forces(R)
    ds = gdmlx.Dataset(R=R, z=np.array([6, 6, 8, 6, 1]), F=F, E=E)
    kept = [a.copy() for a in (ds.R, ds.F, ds.E)]
    for idx in (slice(0, 3), [0, 1, 2], np.arange(6) < 3):
        sub = ds.subset(idx)
        assert len(sub) == 3 and np.array_equal(sub.R, R[:3]) and np.array_equal(sub.E, E[:3])
        sub.R *= 2.0
        sub.F[:] = 0.0
        sub.E[:] = 0.0
        for a, b in zip((ds.R, ds.F, ds.E), kept):
            np.testing.assert_array_equal(a, b)


def test_one_geometry_takes_its_energy_as_a_number(tmp_path):
    """R and F of one geometry may be (N, 3), but its energy as a number was refused
    ("E must have shape (1,), got ()")."""
    R = toy_geometries(1)
    E, F = toy_energy_forces(R)
    z = np.array([6, 6, 8, 6, 1])
    ds = gdmlx.Dataset(R=R[0], z=z, F=F[0], E=float(E[0]))
    assert ds.R.shape == (1, 5, 3) and ds.F.shape == (1, 5, 3) and ds.E.shape == (1,)
    assert ds == gdmlx.Dataset(R=R, z=z, F=F, E=E)
    ds.save_npz(tmp_path / "one.npz")
    assert gdmlx.load_dataset(tmp_path / "one.npz") == ds
    with pytest.raises(gdmlx.InputError, match=r"E must have shape \(2,\), got \(\)"):
        gdmlx.Dataset(R=toy_geometries(2), z=z, F=toy_energy_forces(toy_geometries(2))[1], E=1.0)


def test_an_empty_trajectory_name_is_refused(toy_model, toy_data):
    """run(trajectory="") ran and wrote nothing, without a word (an empty name was taken as
    no file), where every other writer refuses an empty name."""
    from gdmlx.md import Simulation
    sim = Simulation(toy_model, toy_data[0][0], dt_fs=0.25, temperature_K=300, seed=0)
    with pytest.raises(ValueError, match="an empty file name"):
        sim.run(10, trajectory="", progress=False)
