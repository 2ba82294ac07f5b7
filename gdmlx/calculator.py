"""ASE calculator for gdmlx models."""

import os
import threading
import warnings

import numpy as np
from ase.calculators.calculator import Calculator, all_changes

from gdmlx.errors import DomainWarning, InputError, user_stacklevel
from gdmlx.md.contact import add_wall, model_wall
from gdmlx.kernels.descriptor import geometry_ok
from gdmlx.md.domain import (STRETCH_FACTOR, model_floors, outside_limits_sq, ratio_range, stretched_bond,
                             training_bonds, worst_pair)
from gdmlx.units import energy_in_ev, length_in_ang
from gdmlx.validation import check_atomic_numbers, check_flag, check_geometries, check_min_distance


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
        and for models whose descriptor has every pair. ``calc.set(contact_wall=False)``
        switches it later. Other keywords than these and ASE's ``label``, ``directory`` and
        ``atoms`` are refused (InputError): ASE would keep them as parameters nothing reads.

    Raises InputError for another atom count, other atomic numbers, NaN or infinite
    positions or a periodic cell, and GeometryError where the MD engine stops (two atoms
    closer than half the shortest distance in the training data). Warns once, with a
    :class:`gdmlx.DomainWarning`, at the first geometry outside the training domain: a pair
    of atoms closer than 0.8 x that pair's shortest training distance, or a bond of the
    training data stretched beyond 1.5 x its longest training length. The model
    extrapolates there, and atoms listed in another order than the model's, or positions
    in another unit, look exactly like that. Warns once, with a UserWarning, when the
    model was fitted without energies: its energies are then right up to a constant. A
    model fitted again after the calculator was made is used as fitted then.
    """

    implemented_properties = ["energy", "free_energy", "forces"]

    def __init__(self, model, contact_wall=True, **kwargs):
        """See the class docstring; ``kwargs`` go to ASE's ``Calculator``: ``label``,
        ``directory``, ``atoms`` (ASE keeps any other keyword as a parameter nothing reads)."""
        unknown = sorted(set(kwargs) - {"label", "directory", "atoms"})
        if unknown:
            hint = (": the units come from the model (an sGDML file without them: "
                    "gdmlx.import_sgdml_model(path, energy_unit=..., length_unit=...))"
                    if {"E_to_eV", "F_to_eV_Ang"} & set(unknown) else "")
            raise InputError(f"GDMLCalculator got unknown keyword argument(s) {', '.join(unknown)}; it takes "
                             f"model, contact_wall and ASE's label, directory and atoms{hint}")
        if not hasattr(model, "predict_energy_forces"):
            if not isinstance(model, (str, os.PathLike)):
                raise InputError(f"model must be a fitted gdmlx model or the path of a model file, got "
                                 f"{type(model).__name__}")
            from gdmlx.modelfile import load_any_model
            model = load_any_model(model)
        self.model, self.contact_wall = model, check_flag(contact_wall, "contact_wall")
        self._lock = threading.RLock()
        self._bind()
        self.calls = 0                       # geometries calculated, for the warning's wording
        super().__init__(**kwargs)           # last: atoms=... gets a calculator that works

    def set(self, **kwargs):
        """ASE's way to change settings: ``calc.set(contact_wall=False)``; returns what changed."""
        unknown = sorted(set(kwargs) - {"contact_wall"})
        if unknown:
            raise InputError(f"GDMLCalculator.set got unknown setting(s) {', '.join(unknown)}; "
                             "its one setting is contact_wall")
        if "contact_wall" not in kwargs:
            return {}
        flag = check_flag(kwargs["contact_wall"], "contact_wall")
        if flag == self.contact_wall:
            return {}
        self.contact_wall = flag
        self.wall = model_wall(self.model, flag)
        self.reset()
        return {"contact_wall": flag}

    def _bind(self):
        """Take what calculations need from the model as it is fitted now (a model fitted
        again later is taken again, see :meth:`_refitted`)."""
        model = self.model
        self.parts = model.force_parts()              # NotFittedError for an unfitted model
        self.z = np.asarray(model.z_)
        self.r_scale = 1.0 / length_in_ang(model.length_unit_)
        self.e_scale = energy_in_ev(model.energy_unit_)
        self.wall = model_wall(model, self.contact_wall)
        # the domain checks, compiled for the common case of a geometry inside (ratio_range)
        self.domain_pairs, self.floors, _ = model_floors(model)
        self.r_min = 0.5 * self.floors.min()          # half the shortest training distance [A]
        self.outside_sq = outside_limits_sq(self.floors)
        self.bonds, self.longest = training_bonds(model)
        self.stretch_sq = (STRETCH_FACTOR * self.longest) ** 2
        self.warned_outside = False
        self.warn_relative_energy = energies_are_relative(model)

    def _refitted(self):
        """True when the model was fitted again (or loaded into) since :meth:`_bind`."""
        return any(now is not before for now, before in zip(self.model.force_parts(), self.parts))

    def __getstate__(self):
        """Pickle and deepcopy without the lock (the copy gets its own)."""
        return {name: value for name, value in self.__dict__.items() if name != "_lock"}

    def __setstate__(self, state):
        self.__dict__.update(state, _lock=threading.RLock())

    def get_property(self, name, atoms=None, allow_calculation=True):
        # one thread at a time: ASE keeps the atoms and results of the last calculation in
        # the calculator, and threads sharing one got each other's forces
        with self._lock:
            return self._get_property(name, atoms, allow_calculation)

    def _get_property(self, name, atoms, allow_calculation):
        if self._refitted():
            self._bind()
            if atoms is None:                         # ASE's "the atoms of the last calculation"
                atoms = self.atoms
            self.reset()                              # results of the model as fitted before
        if self.warn_relative_energy and name in ("energy", "free_energy"):
            warnings.warn("this model was fitted without energies: its energies are right up to a constant "
                          "(differences and forces are meaningful, absolute values are not)", UserWarning,
                          stacklevel=user_stacklevel())
            self.warn_relative_energy = False
        return super().get_property(name, atoms, allow_calculation)

    def check_state(self, atoms, tol=1e-15):
        """Which of positions, numbers and pbc changed since the last calculation (the model
        depends on nothing else): exact comparisons, a tenth of the time of ASE's."""
        old = self.atoms
        if old is None:
            return list(all_changes)
        return [name for name, before, now in zip(("positions", "numbers", "pbc"), _state(old), _state(atoms))
                if not np.array_equal(before, now)]

    def calculate(self, atoms=None, properties=("energy", "forces"), system_changes=all_changes):
        super().calculate(atoms, properties, system_changes)
        self.results = {}                             # a refused geometry must not keep the last one's
        if self.atoms is None:
            raise InputError("no atoms to calculate: give an Atoms (atoms.calc = calc, then "
                             "atoms.get_forces(), or calc.get_forces(atoms))")
        if self._refitted():                          # called directly, not from get_property
            self._bind()
        if self.atoms.pbc.any():
            raise InputError(f"atoms.pbc is {self.atoms.pbc.tolist()}: gdmlx models describe one molecule "
                             "without periodic images; set atoms.pbc = False")
        if len(self.atoms) != len(self.z):
            check_geometries(self.atoms.positions, len(self.z), "atoms.positions")     # names both counts
        if not np.array_equal(self.atoms.numbers, self.z):     # every call: a refused Atoms stays stored
            check_atomic_numbers(self.atoms.numbers, len(self.z), self.z)
        q = np.ascontiguousarray(self.atoms.positions, dtype=np.float64)
        if not geometry_ok(q, self.r_min):
            not_finite = np.flatnonzero(~np.isfinite(q).all(axis=1))
            if len(not_finite):                      # one Atoms: name the atom, not a geometry index
                i = not_finite[0]
                raise InputError(f"atoms.positions contains NaN or inf: atom {i} ({self.atoms[i].symbol}) is at "
                                 f"{q[i].tolist()}" + (f", and {len(not_finite) - 1} more atom(s)"
                                                        if len(not_finite) > 1 else ""))
            check_min_distance(q[None], self.r_min, "half the shortest distance in the training data",
                               "atoms.positions", unit="A")
        if not self.warned_outside:
            self._warn_outside(q)
        self.calls += 1
        E, F = 0.0, np.zeros_like(q)
        for part in self.parts:
            E_part, F_part = part.predict_one(q * self.r_scale)
            E, F = E + E_part, F + F_part
        F = F * (self.e_scale * self.r_scale)
        energy = float(E) * self.e_scale + add_wall(q, *self.wall, F)
        self.results = {"energy": energy, "free_energy": energy, "forces": F}

    def _warn_outside(self, q):
        where = ""
        if ratio_range(q, self.domain_pairs, self.outside_sq)[0] < 1.0:
            where = worst_pair(q, self.domain_pairs, self.floors, name="atoms.positions")
        elif len(self.bonds) and ratio_range(q, self.bonds, self.stretch_sq)[1] > 1.0:
            where = stretched_bond(q, self.bonds, self.longest, name="atoms.positions")
        if where:
            first = (" Are the atoms in the model's order, and the positions in Angstrom? "
                     "(gdmlx.match_atom_order(atoms, model) reorders them)" if self.calls == 0 else "")
            warnings.warn(f"{where}: this geometry is outside the model's domain and the model "
                          f"extrapolates.{first} (warned once per calculator)", DomainWarning,
                          stacklevel=user_stacklevel())
            self.warned_outside = True


def _state(atoms):
    return atoms.positions, atoms.numbers, atoms.pbc


def energies_are_relative(model):
    """True for a model fitted without training energies (its energy offset is arbitrary):
    in gdmlx (it kept no training energies) or, imported, as its sGDML file's ``use_E``
    says; False when it had energies or nothing says (an sGDML file without ``use_E``)."""
    fitted = getattr(model, "slow_", model)
    if getattr(fitted, "R_train_", None) is None:
        return bool(getattr(fitted, "energies_relative_", False))
    return getattr(fitted, "E_train_", None) is None
