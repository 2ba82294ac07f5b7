"""Molecular dynamics with gdmlx models: a compiled integration loop and its driver."""

from gdmlx.md.replicas import ReplicaSimulation
from gdmlx.md.simulation import MDInstabilityError, Simulation
from gdmlx.md.trajectory import read_trajectory

__all__ = ["Simulation", "ReplicaSimulation", "MDInstabilityError", "read_trajectory"]
