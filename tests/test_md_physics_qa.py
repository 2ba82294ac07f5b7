"""Physics of the MD engines from a QA session: time reversibility, the Langevin kinetic
energy's distribution, and what a stopped run blames."""

import ase.units
import numpy as np
import pytest

from conftest import toy_geometries
from gdmlx.errors import InputError
from gdmlx.md import MDInstabilityError, ReplicaSimulation, Simulation
from gdmlx.md.simulation import stop_cause


@pytest.fixture(scope="module")
def start():
    return toy_geometries(1, noise=0.0)[0]


@pytest.mark.parametrize("engine", [Simulation, ReplicaSimulation])
def test_nve_runs_back_to_its_start_when_the_velocities_are_flipped(toy_model, start, engine):
    """Velocity Verlet is time-reversible: 400 steps forward, the velocities flipped, 400
    steps back return the start state to rounding."""
    sim = engine(toy_model, start, temperature_K=300, seed=6)
    q0, v0 = np.array(sim.q), np.array(sim.v)
    sim.run(400, progress=False)
    sim.v *= -1
    sim.run(400, progress=False)
    np.testing.assert_allclose(sim.q, q0, atol=1e-10)
    np.testing.assert_allclose(-sim.v, v0, atol=1e-10)


def test_multiple_time_steps_run_back_to_their_start(ms_model, chain):
    """Impulse r-RESPA is time-reversible too (the slow kicks bracket whole outer steps)."""
    sim = Simulation(ms_model, chain[0][0], temperature_K=200, seed=3, slow_every=3)
    q0, v0 = sim.q.copy(), sim.v.copy()
    sim.run(300, save_every=30, progress=False)
    sim.v *= -1
    sim.run(300, save_every=30, progress=False)
    np.testing.assert_allclose(sim.q, q0, atol=1e-10)
    np.testing.assert_allclose(-sim.v, v0, atol=1e-10)


def test_langevin_kinetic_energy_has_the_canonical_mean_and_spread(toy_model, start):
    """With 3N - 3 degrees of freedom (centre of mass at rest) the canonical kinetic
    temperature has mean T and standard deviation T sqrt(2 / (3N - 3)): 0.41 T here, where
    3N - 6 would give the mean 4/3 T."""
    sim = Simulation(toy_model, start, temperature_K=400, thermostat="langevin", friction_per_fs=0.1, seed=8)
    sim.run(2000, progress=False)
    s = sim.run(200_000, progress=False)
    assert sim.ndof == 12
    assert s["mean_temperature_K"] == pytest.approx(400, rel=0.02)
    assert s["std_temperature_K"] == pytest.approx(400 * np.sqrt(2 / 12), rel=0.03)


@pytest.mark.parametrize("engine", [Simulation, ReplicaSimulation])
def test_a_run_whose_energy_ran_away_blames_its_time_step(toy_model, start, engine):
    """At 4 fs the toy molecule's bonds outrun velocity Verlet: its NVE energy climbs by
    several times the kinetic energy before the geometry breaks. The stop said the model
    had left its training domain (and more data would help); it names the time step."""
    with pytest.raises(MDInstabilityError, match=r"the total energy, which NVE conserves, had already moved by up "
                                                 r"to \+0\.\d+ eV \(\d+% of the kinetic energy\) before the stop: "
                                                 r"the time step, 4 fs, is too long") as err:
        engine(toy_model, start, dt_fs=4.0, temperature_K=300, seed=0).run(2000, progress=False)
    assert "training domain" not in str(err.value)


def test_a_run_that_kept_its_energy_still_blames_the_model(toy_model, start):
    with pytest.raises(MDInstabilityError, match="bond stretched.*; the model has left its training domain"):
        Simulation(toy_model, start, temperature_K=3000, seed=0, max_bond_stretch=1.2).run(
            5000, save_every=1, progress=False)


def test_the_stop_names_slow_every_for_multiple_time_steps():
    """A resonating outer step (ethanol, 0.5 fs x 8) heats an NVE run: the stop names slow_every."""
    ekin = np.full(10, 0.5)
    epot = -10.0 + np.linspace(0.0, 3.0, 10)                 # E_tot from -9.5 eV up by 3 eV
    assert "a smaller slow_every, --mts, helps" in stop_cause(-9.5, epot, ekin, True, 0.5, 8)
    assert "outer time step, 4 fs" in stop_cause(-9.5, epot, ekin, True, 0.5, 8)
    for nve, epot_kept in ((False, epot), (True, np.full(10, -10.0))):   # Langevin; energy kept
        assert "training domain" in stop_cause(-9.5, epot_kept, ekin, nve, 0.5, 8)


@pytest.mark.parametrize("engine", [Simulation, ReplicaSimulation])
def test_friction_without_a_thermostat_is_refused(toy_model, start, engine):
    """``friction_per_fs`` with the default thermostat ("nve") was ignored: a user asking for
    friction at 500 K got NVE at 560 K. It is refused now; Langevin takes 0.01/fs unless told."""
    with pytest.raises(InputError, match=r"friction_per_fs \(0.05\) applies to thermostat='langevin'"):
        engine(toy_model, start, temperature_K=500, friction_per_fs=0.05)
    with pytest.raises(InputError, match="thermostat must be 'nve' or 'langevin', got 'berendsen'"):
        engine(toy_model, start, thermostat="berendsen")
    default = engine(toy_model, start, thermostat="langevin", seed=0)
    assert default.gamma * ase.units.fs == pytest.approx(0.01)
    with pytest.raises(InputError, match="seed must be None or a non-negative integer, got 'a'"):
        engine(toy_model, start, seed="a")


def test_each_replica_counts_its_own_degrees_of_freedom(toy_model, start):
    """Replicas from different start states (one drawn without rotation, one spinning) read
    their temperatures with their own counts (3N - 6 and 3N - 3), as the single engine does;
    all replicas took the smallest count (the spinning one's temperature read 14 % high)."""
    still = Simulation(toy_model, start, temperature_K=300, seed=0)
    v = still.v * ase.units.fs                                              # A/fs
    spin = v + np.cross([0.0, 0.0, 0.02], start - still.masses @ start / still.masses.sum())
    spinning = Simulation(toy_model, start, velocities=spin)
    reps = ReplicaSimulation(toy_model, np.stack([start, start]), velocities=np.stack([v, spin]))
    assert reps.ndof.tolist() == [still.ndof, spinning.ndof] == [9, 12]
    both = reps.run(200, progress=False)["replicas"]
    for alone, rep in zip((still, spinning), both):
        assert rep["mean_temperature_K"] == pytest.approx(alone.run(200, progress=False)["mean_temperature_K"],
                                                          rel=1e-8)
