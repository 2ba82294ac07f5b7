"""MD engine and trajectory checks from a QA session (Simulation, trajectories, gdmlx md)."""

import ase.io
import numpy as np
import pytest

import gdmlx
from conftest import toy_geometries
from gdmlx.md import MDInstabilityError, Simulation, read_last_state, read_trajectory


@pytest.fixture(scope="module")
def start():
    return toy_geometries(1, noise=0.0)[0]


def _stop_step(toy_model, start):
    sim = Simulation(toy_model, start, temperature_K=3000, seed=0, max_bond_stretch=1.2)
    with pytest.raises(MDInstabilityError):
        sim.run(5000, save_every=1, progress=False)
    return sim.step


@pytest.mark.parametrize("ext", [".h5", ".xyz"])
def test_a_run_that_stops_on_its_last_step_is_marked_incomplete(toy_model, start, tmp_path, ext):
    """A stop on the run's very last step left the file marked complete (status lost in .xyz)."""
    k = _stop_step(toy_model, start)
    path = tmp_path / f"t{ext}"
    sim = Simulation(toy_model, start, temperature_K=3000, seed=0, max_bond_stretch=1.2)
    with pytest.raises(MDInstabilityError, match="bond stretched"):
        sim.run(k, trajectory=path, save_every=1, progress=False)
    assert sim.step == k
    state = read_last_state(path)
    assert not state.complete and state.status == 2
    if ext == ".h5":
        assert read_trajectory(path)["status"] == 2
