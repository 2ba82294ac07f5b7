"""gdmlx.GDMLCalculator used as ASE users use calculators: results, caching and errors."""

import warnings

import ase.units
import numpy as np
import pytest
from ase import Atoms

import gdmlx
from conftest import toy_geometries

KCAL = ase.units.kcal / ase.units.mol


@pytest.fixture(scope="module")
def start():
    return toy_geometries(1, noise=0.0)[0]


def test_a_refused_geometry_keeps_no_results_of_the_one_before(toy_model, start):
    """calc.calculate(atoms) on a geometry the calculator refuses: calc.results held the
    previous geometry's energy and forces, and get_property for the refused atoms returned
    them as its own."""
    calc = gdmlx.GDMLCalculator(toy_model)
    good = Atoms(numbers=toy_model.z_, positions=start)
    calc.calculate(good)
    E, F = toy_model.predict_energy_forces(start)
    assert calc.results["energy"] == pytest.approx(E[0] * KCAL, rel=1e-12)
    bad = good.copy()
    bad.positions[1] = bad.positions[0]                 # two atoms on top of each other
    with pytest.raises(gdmlx.GeometryError, match="atoms 0 and 1 are 0 A apart"):
        calc.calculate(bad)
    assert calc.results == {}
    for _ in range(2):
        with pytest.raises(gdmlx.GeometryError, match="atoms 0 and 1"):
            calc.get_property("energy", bad)
    np.testing.assert_array_equal(calc.get_forces(good), F[0] * KCAL)    # and back: computed again


def test_get_property_without_atoms_uses_the_last_atoms_also_after_a_refit(toy_data, start):
    """calc.get_property(name) with no atoms means the atoms of the last calculation; after
    the model was fitted again it raised AttributeError ('NoneType' object has no attribute
    'pbc'), as it did on a calculator that had calculated nothing."""
    R, F, E, z = toy_data
    model = gdmlx.GDMLRegressor(sigma=2.0, lam=1e-8).fit(R[:10], F[:10], E[:10], z=z)
    calc = gdmlx.GDMLCalculator(model)
    with pytest.raises(gdmlx.InputError, match="no atoms to calculate"):
        calc.get_property("energy")
    calc.get_forces(Atoms(numbers=z, positions=start))
    model.fit(R[:20], F[:20], E[:20], z=z)
    E_new, F_new = model.predict_energy_forces(start)
    assert calc.get_property("energy") == pytest.approx(E_new[0] * KCAL, rel=1e-12)
    np.testing.assert_allclose(calc.get_property("forces"), F_new[0] * KCAL, rtol=1e-12)
    assert calc.calls == 2


@pytest.fixture(scope="module")
def bonds_only_model(toy_data):
    """A toy model whose descriptor holds only the chain bonds: six pairs get a wall."""
    R, F, E, z = toy_data
    bonds = np.array([[1, 0], [2, 1], [3, 2], [4, 3]])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", gdmlx.errors.EnergyConsistencyWarning)
        return gdmlx.GDMLRegressor(sigma=2.0, lam=1e-8, pairs=bonds).fit(R[:30], F[:30], E[:30], z=z)


@pytest.mark.parametrize("flag", [0, 1, np.False_, np.True_])
def test_contact_wall_given_as_a_number_is_the_flag_it_means(bonds_only_model, flag):
    """contact_wall=0 or 1 (as a number) was used as an index mask: walls on pair (0, 1), a
    bond, repeated, instead of none or the six uncovered pairs."""
    wall_pairs = gdmlx.GDMLCalculator(bonds_only_model, contact_wall=flag).wall[0]
    expected = gdmlx.GDMLCalculator(bonds_only_model, contact_wall=bool(flag)).wall[0]
    np.testing.assert_array_equal(wall_pairs, expected)
    assert len(wall_pairs) == (6 if flag else 0)


def test_contact_wall_that_is_no_flag_is_refused(toy_model):
    for value in (None, "no", 2):
        with pytest.raises(gdmlx.InputError, match="contact_wall must be True or False, got"):
            gdmlx.GDMLCalculator(toy_model, contact_wall=value)


def test_nan_positions_name_the_atom(toy_model, start):
    """NaN positions: the message gave a (geometry, atom, coordinate) index into a stack of
    geometries and told the user to leave geometries out; it names the atom and its position."""
    positions = start.copy()
    positions[3, 1] = np.nan
    positions[4, 0] = np.inf
    atoms = Atoms(numbers=toy_model.z_, positions=positions, calculator=gdmlx.GDMLCalculator(toy_model))
    with pytest.raises(gdmlx.InputError, match=r"NaN or inf: atom 3 \(C\) is at \[.*nan.*\], and 1 more atom\(s\)$"):
        atoms.get_forces()


def test_unknown_keywords_are_refused(bonds_only_model, start):
    """Keywords the calculator does not know went to ASE's parameters, which nothing reads:
    a misspelt contact_walls=False kept the wall, sGDML's E_to_eV converted nothing."""
    with pytest.raises(gdmlx.InputError, match="unknown keyword argument.* contact_walls; it takes model, contact_wall"):
        gdmlx.GDMLCalculator(bonds_only_model, contact_walls=False)
    with pytest.raises(gdmlx.InputError, match="E_to_eV.*the units come from the model"):
        gdmlx.GDMLCalculator(bonds_only_model, E_to_eV=1.0)
    atoms = Atoms(numbers=bonds_only_model.z_, positions=start)
    calc = gdmlx.GDMLCalculator(bonds_only_model, label="gdml", atoms=atoms)
    assert atoms.calc is calc and calc.label.endswith("gdml")


def test_set_contact_wall_switches_the_wall(bonds_only_model, start):
    """calc.set(contact_wall=False), ASE's way to change a setting, was stored as a parameter
    nothing read: the wall stayed, and so did the results with it."""
    folded = start.copy()
    d = folded[2] - folded[0]
    folded[0] += 0.3 * d                                # atoms 0 and 2 inside their wall
    folded[2] -= 0.3 * d
    atoms = Atoms(numbers=bonds_only_model.z_, positions=folded)
    atoms.calc = gdmlx.GDMLCalculator(bonds_only_model)
    E_model = bonds_only_model.predict_energy_forces(folded)[0][0] * KCAL
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", gdmlx.DomainWarning)
        with_wall = atoms.get_potential_energy()
        assert with_wall > E_model + 0.01
        assert atoms.calc.set(contact_wall=False) == {"contact_wall": False}
        assert atoms.get_potential_energy() == pytest.approx(E_model, rel=1e-12)
        assert atoms.calc.set(contact_wall=True) == {"contact_wall": True}
        assert atoms.get_potential_energy() == pytest.approx(with_wall, rel=1e-12)
    assert atoms.calc.set(contact_wall=True) == {}
    with pytest.raises(gdmlx.InputError, match="unknown setting.* sigma; its one setting is contact_wall"):
        atoms.calc.set(sigma=3.0)


def test_a_refused_model_leaves_the_atoms_without_the_calculator(start):
    atoms = Atoms(numbers=[6, 6, 8, 6, 1], positions=start)
    with pytest.raises(gdmlx.InputError, match="got NoneType"):
        gdmlx.GDMLCalculator(None, atoms=atoms)
    assert atoms.calc is None
