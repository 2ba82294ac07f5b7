"""Unit names used in datasets and model files, and their values in ASE units (eV, Angstrom)."""

import ase.units
import numpy as np

from gdmlx.errors import InputError

ENERGY_IN_EV = {
    "kcal/mol": ase.units.kcal / ase.units.mol,
    "kcal mol-1": ase.units.kcal / ase.units.mol,
    "kcal mol^-1": ase.units.kcal / ase.units.mol,
    "kj/mol": ase.units.kJ / ase.units.mol,
    "kj mol-1": ase.units.kJ / ase.units.mol,
    "kj mol^-1": ase.units.kJ / ase.units.mol,
    "ev": 1.0,
    "ha": ase.units.Hartree,
    "hartree": ase.units.Hartree,
    "eh": ase.units.Hartree,
    "au": ase.units.Hartree,          # atomic units, as for lengths (bohr)
    "a.u.": ase.units.Hartree,
    "ry": ase.units.Rydberg,          # plane-wave codes (Quantum ESPRESSO): Ry and Ry/bohr
    "rydberg": ase.units.Rydberg,
}
LENGTH_IN_ANG = {"ang": 1.0, "angstrom": 1.0, "a": 1.0, "\u00e5": 1.0, "bohr": ase.units.Bohr, "au": ase.units.Bohr,
                 "a.u.": ase.units.Bohr, "nm": ase.units.nm}       # nm: GROMACS's kJ/mol and nm


def energy_in_ev(unit):
    """Value of one ``unit`` of energy in eV (e.g. 'kcal/mol' -> 0.0434)."""
    return _lookup(ENERGY_IN_EV, unit, "energy")


def length_in_ang(unit):
    """Value of one ``unit`` of length in Angstrom."""
    return _lookup(LENGTH_IN_ANG, unit, "length")


def same_unit(a, b, what):
    """Whether unit names ``a`` and ``b`` ("energy" or "length") name the same unit
    ('Ang' and 'angstrom', 'Ha' and 'Hartree'); unknown names must be equal, case aside."""
    table = ENERGY_IN_EV if what == "energy" else LENGTH_IN_ANG
    a, b = str(a).strip().lower(), str(b).strip().lower()
    return a == b or (a in table and b in table and table[a] == table[b])


def in_angstrom(R, length_unit):
    """Geometries ``R`` (any shape) given in ``length_unit``, in Angstrom (what covalent
    radii, bond graphs and the MD engine work in)."""
    return np.asarray(R, dtype=np.float64) * length_in_ang(length_unit)


def hyperparameters_in(length_unit, sigma_ang, lam_ang):
    """``(sigma, lam)`` for data in ``length_unit`` that give the same model as ``sigma_ang``
    (1/A) and ``lam_ang`` give for data in Angstrom: the descriptor (1/length) scales by the
    unit's length a [A], so sigma scales by a and lam, like the kernel matrix, by a^2."""
    a = length_in_ang(length_unit)
    return sigma_ang * a, lam_ang * a * a


def _lookup(table, unit, what):
    try:
        return table[str(unit).strip().lower()]
    except KeyError:
        hint = (" ('u' is unknown: an sGDML model that says so gets its units from "
                "gdmlx.import_sgdml_model(path, energy_unit=..., length_unit=...), a dataset from its "
                "energy_unit and length_unit set in Python)" if str(unit).strip().lower() == "u" else "")
        raise InputError(f"unknown {what} unit {unit!r}; known: {sorted(table)}{hint}") from None
