"""Use a gdmlx model as an ASE calculator: geometry optimisation and ASE's own MD.

Run after examples/train_and_predict.py (it reads ethanol.h5).
"""

import numpy as np
from ase import Atoms
from ase.md.verlet import VelocityVerlet
from ase.md.velocitydistribution import thermalize_momenta
from ase.optimize import BFGS
import ase.units

import gdmlx

model = gdmlx.load_model("ethanol.h5")
atoms = Atoms(numbers=model.z_, positions=model.R_train_[0])
atoms.calc = gdmlx.GDMLCalculator(model)               # energies in eV, forces in eV/A

BFGS(atoms).run(fmax=0.01)
print("minimum energy", atoms.get_potential_energy(), "eV")

thermalize_momenta(atoms, temperature_K=300, rng=np.random.default_rng(0))
VelocityVerlet(atoms, timestep=0.5 * ase.units.fs).run(1000)
print("after 0.5 ps:", atoms.get_potential_energy() + atoms.get_kinetic_energy(), "eV total")
