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
