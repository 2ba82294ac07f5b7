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
