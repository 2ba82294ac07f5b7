"""What the public docstrings promise, where the code had to change to keep the promise."""

import ase
import numpy as np
import pytest

import gdmlx
from conftest import toy_geometries
from gdmlx.errors import InputError
from gdmlx.md import ReplicaSimulation, Simulation


def test_replicas_from_an_atoms_with_velocities_say_where_the_velocities_came_from(toy_model):
    atoms = ase.Atoms(numbers=toy_model.z_, positions=toy_geometries(1, noise=0.0)[0])
    atoms.set_velocities(np.full((len(atoms), 3), 0.01))
    with pytest.raises(InputError, match=r"Atoms given as positions has velocities set.*velocities \(3, N, 3\)"):
        ReplicaSimulation(toy_model, atoms, 3, seed=0)
    one = ReplicaSimulation(toy_model, atoms, seed=0)          # its velocities are one replica's
    assert one.n_replicas == 1
    assert np.allclose(one.velocities[0], atoms.get_velocities() * ase.units.fs)
    drawn = ReplicaSimulation(toy_model, atoms.positions, 3, seed=0)
    assert drawn.n_replicas == 3 and not np.allclose(drawn.velocities[0], drawn.velocities[1])


@pytest.mark.parametrize("engine", [Simulation, ReplicaSimulation])
def test_md_engines_refuse_a_model_path_naming_the_argument(engine, toy_model, tmp_path):
    path = tmp_path / "toy.h5"
    toy_model.save(path)
    with pytest.raises(InputError, match="model must be a fitted gdmlx model .*load_any_model.* got \\w*Path"):
        engine(path, toy_geometries(1, noise=0.0)[0])
    with pytest.raises(InputError, match="model must be a fitted gdmlx model .* got str"):
        engine(str(path), toy_geometries(1, noise=0.0)[0])
    assert engine(gdmlx.load_any_model(path), toy_geometries(1, noise=0.0)[0], seed=0).step == 0
