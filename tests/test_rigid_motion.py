"""Rigid motion of start velocities and the degrees of freedom of the kinetic temperature."""

import ase.units
import numpy as np

from conftest import toy_geometries
from gdmlx.md import ReplicaSimulation, Simulation
from gdmlx.md.rigid_motion import kinetic_dof, rotation_rank, without_rigid_motion
from gdmlx.md.simulation import thermal_velocities

MASSES = np.array([12.0, 12.0, 16.0, 12.0, 1.0])


def _momenta(q, v):
    r = q - MASSES @ q / MASSES.sum()
    return MASSES @ v, np.einsum("i,ij->j", MASSES, np.cross(r, v))


def test_removes_momentum_and_rotation_and_keeps_internal_motion():
    rng = np.random.default_rng(0)
    q = toy_geometries(1, seed=1)[0]
    v = rng.standard_normal((5, 3))
    internal, removed = without_rigid_motion(q, v, MASSES)
    P, L = _momenta(q, internal)
    assert np.abs(P).max() < 1e-12 and np.abs(L).max() < 1e-12 and 0 < removed < 1
    again, removed_again = without_rigid_motion(q, internal, MASSES)
    np.testing.assert_allclose(again, internal, atol=1e-14)
    assert removed_again < 1e-12
    rigid = np.cross([0.3, -0.1, 0.2], q) + [0.5, 0.0, -0.2]      # a rotation and a translation only
    assert np.abs(without_rigid_motion(q, rigid, MASSES)[0]).max() < 1e-12


def test_degrees_of_freedom_count_the_motions_the_velocities_lack():
    q = toy_geometries(1, seed=1)[0]
    v = without_rigid_motion(q, np.random.default_rng(1).standard_normal((5, 3)), MASSES)[0]
    spin = np.cross([0.0, 0.0, 0.4], q - MASSES @ q / MASSES.sum())
    assert kinetic_dof(q, v, MASSES, "nve") == 9                   # 3N - 6
    assert kinetic_dof(q, v + spin, MASSES, "nve") == 12           # rotating: 3N - 3
    assert kinetic_dof(q, v + [0.1, 0.0, 0.0], MASSES, "nve") == 15
    assert kinetic_dof(q, v + spin, MASSES, "langevin") == 12
    line = np.outer(np.arange(5.0), [0.0, 0.0, 1.2])
    v_line = np.zeros((5, 3))
    v_line[:, 2] = [0.3, -0.1, 0.2, -0.5, 0.1]
    v_line[:, 2] -= MASSES @ v_line[:, 2] / MASSES.sum()
    assert rotation_rank(line, MASSES) == 2 and kinetic_dof(line, v_line, MASSES, "nve") == 10   # 3N - 5
    pair = line[:2]
    v_pair = np.array([[0.0, 0.0, 1.0], [0.0, 0.0, -1.0]])
    assert kinetic_dof(pair, v_pair, np.ones(2), "nve") == 1                                 # a diatomic


def test_drawn_velocities_start_at_the_target_temperature_on_average():
    """Projected, not rescaled: the mean kinetic energy is (3N - 6) kT / 2, which the NVE
    temperature divides by (a draw of all 3N then projected and rescaled back came out
    3N / (3N - 6) too hot)."""
    q = toy_geometries(1, seed=1)[0]
    rng = np.random.default_rng(3)
    ekin = [0.5 * np.einsum("i,ij,ij->", MASSES, v, v)
            for v in (thermal_velocities(q, MASSES, 400.0, rng) for _ in range(4000))]
    T = 2 * np.mean(ekin) / (9 * ase.units.kB)
    assert abs(T - 400.0) < 0.04 * 400.0


def test_engines_count_degrees_of_freedom_by_their_start(toy_model):
    q = toy_geometries(1, noise=0.0)[0]
    sim = Simulation(toy_model, q, temperature_K=300, seed=0)
    assert sim.ndof == 9
    spin = np.cross([0.0, 0.0, 0.02], q - sim.masses @ q / sim.masses.sum())   # A/fs
    given = Simulation(toy_model, q, velocities=sim.v * ase.units.fs + spin)
    assert given.ndof == 12
    assert ReplicaSimulation(toy_model, q, 2, temperature_K=300, seed=0).ndof.tolist() == [9, 9]


def test_replicas_move_their_own_copy_of_the_positions(toy_model):
    R = np.ascontiguousarray(toy_geometries(3, seed=4, noise=0.02))
    before = R.copy()
    sim = ReplicaSimulation(toy_model, R, temperature_K=300, seed=0)
    snapshot = sim.positions
    sim.run(20, save_every=10, progress=False)
    np.testing.assert_array_equal(R, before)
    assert not np.array_equal(snapshot, sim.positions)
    np.testing.assert_array_equal(snapshot, before)
