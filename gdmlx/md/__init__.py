"""Molecular dynamics with gdmlx models: a compiled integration loop and its driver."""

from gdmlx.numba_cache import ensure_cache_folder

ensure_cache_folder()                    # before the integrator's kernels compile

from gdmlx.md.replicas import ReplicaSimulation
from gdmlx.md.simulation import MDInstabilityError, Simulation
from gdmlx.md.trajectory import MDState, read_last_state, read_trajectory

__all__ = ["Simulation", "ReplicaSimulation", "MDInstabilityError", "MDState", "read_last_state",
           "read_trajectory"]
