"""ASE calculator for gdmlx models."""

import os
import warnings

import numpy as np
from ase.calculators.calculator import Calculator, all_changes

from gdmlx.errors import DomainWarning, InputError
from gdmlx.md.contact import add_wall, model_wall
from gdmlx.md.domain import model_floors, worst_pair
from gdmlx.units import energy_in_ev, length_in_ang
from gdmlx.validation import check_atomic_numbers, check_geometries, check_min_distance


class GDMLCalculator(Calculator):
    """Energy (eV) and forces (eV/A) of a fitted gdmlx model, for ASE.

    The atoms must be the model's molecule with its atoms in the model's order (that of
    the training data), without periodic boundary conditions.

    Parameters
    ----------
    model : fitted model (anything with ``force_parts()``, ``z_`` and units) or the path
        of a model file (gdmlx .h5 or sGDML .npz)
    contact_wall : add the MD engine's repulsive wall for atom pairs outside every
        descriptor of the model (:mod:`gdmlx.md.contact`), so that ASE's dynamics and
        optimisers see the same potential as ``gdmlx md``; zero inside the training domain
        and for models whose descriptor has every pair.

    Raises InputError for another atom count, other atomic numbers, NaN or infinite
    positions or a periodic cell, and GeometryError where the MD engine stops (two atoms
    closer than half the shortest distance in the training data). Warns once, with a
    :class:`gdmlx.DomainWarning`, at the first geometry with a pair of atoms closer than
    0.8 x that pair's shortest training distance: the model extrapolates there, and atoms
    listed in another order than the model's look exactly like that.
    """

    implemented_properties = ["energy", "free_energy", "forces"]

    def __init__(self, model, contact_wall=True, **kwargs):
        """See the class docstring; ``kwargs`` go to ASE's ``Calculator`` (e.g. ``label``)."""
        super().__init__(**kwargs)
        if not hasattr(model, "predict_energy_forces"):
            if not isinstance(model, (str, os.PathLike)):
                raise InputError(f"model must be a fitted gdmlx model or the path of a model file, got "
                                 f"{type(model).__name__}")
            from gdmlx.modelfile import load_any_model
            model = load_any_model(model)
        self.model = model
        self.parts = model.force_parts()              # NotFittedError for an unfitted model
        self.z = np.asarray(model.z_)
        self.r_scale = 1.0 / length_in_ang(model.length_unit_)
        self.e_scale = energy_in_ev(model.energy_unit_)
        self.r_min = 0.5 * min(p.min_training_distance for p in self.parts) / self.r_scale
        self.wall = model_wall(model, contact_wall)
        self.domain_pairs, self.floors, _ = model_floors(model)
        self.warned_outside = False
        self.calls = 0                       # geometries calculated, for the warning's wording

    def calculate(self, atoms=None, properties=("energy", "forces"), system_changes=all_changes):
        super().calculate(atoms, properties, system_changes)
        if self.atoms.pbc.any():
            raise InputError(f"atoms.pbc is {self.atoms.pbc.tolist()}: gdmlx models describe one molecule "
                             "without periodic images; set atoms.pbc = False")
        q = check_geometries(self.atoms.positions, len(self.z), "atoms.positions")
        check_atomic_numbers(self.atoms.numbers, len(self.z), self.z)
        check_min_distance(q, self.r_min, "half the shortest distance in the training data",
                           "atoms.positions")
        if not self.warned_outside:
            where = worst_pair(q, self.domain_pairs, self.floors, name="atoms.positions")
            if where:
                first = (" Are the atoms in the model's order? (gdmlx.match_atom_order(atoms, model) "
                         "reorders them)" if self.calls == 0 else "")
                warnings.warn(f"{where}: this geometry is outside the model's domain and the model "
                              f"extrapolates.{first} (warned once per calculator)", DomainWarning, stacklevel=2)
                self.warned_outside = True
        self.calls += 1
        E, F = 0.0, np.zeros_like(q[0])
        for part in self.parts:
            E_part, F_part = part.predict_one(q[0] * self.r_scale)
            E, F = E + E_part, F + F_part
        F = F * (self.e_scale * self.r_scale)
        energy = float(E) * self.e_scale + add_wall(q[0], *self.wall, F)
        self.results = {"energy": energy, "free_energy": energy, "forces": F}
