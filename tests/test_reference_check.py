"""Checking a model against the reference method on frames of its own trajectory."""

import numpy as np
import pytest
from ase.units import Bohr
from ase.calculators.calculator import Calculator, all_changes

import gdmlx
from conftest import toy_energy_forces, toy_geometries
from gdmlx.md import Simulation
from gdmlx.md.domain import model_floors, outside_frames
from gdmlx.md.reference_check import check_trajectory, reference_labels
from gdmlx.units import energy_in_ev


class ToyCalculator(Calculator):
    """The toy potential the test models are trained on, in ASE units (its energies are
    'kcal/mol'); ``scale`` multiplies it, to play a reference the model does not match."""

    implemented_properties = ["energy", "forces"]

    def __init__(self, scale=1.0):
        super().__init__()
        self.scale = scale

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
        super().calculate(atoms, properties, system_changes)
        E, F = toy_energy_forces(self.atoms.positions[None])
        kcal = energy_in_ev("kcal/mol")
        self.results = {"energy": self.scale * E[0] * kcal, "forces": self.scale * F[0] * kcal}


def test_reference_labels_are_in_model_units():
    R = toy_geometries(3)
    E, F = reference_labels(ToyCalculator(), [6, 6, 8, 6, 1], R)
    E_ref, F_ref = toy_energy_forces(R)
    np.testing.assert_allclose(E, E_ref, rtol=1e-12)
    np.testing.assert_allclose(F, F_ref, rtol=1e-12, atol=1e-12)
    E_bohr, F_bohr = reference_labels(ToyCalculator(), [6, 6, 8, 6, 1], R / Bohr, "ev", "bohr")
    np.testing.assert_allclose(E_bohr, E_ref * energy_in_ev("kcal/mol"), rtol=1e-10)
    np.testing.assert_allclose(F_bohr, F_ref * energy_in_ev("kcal/mol") * Bohr, rtol=1e-9, atol=1e-12)


@pytest.fixture(scope="module")
def hot_run(toy_model, tmp_path_factory):
    """Positions (T, N, 3) of a hot toy run, some of whose frames leave the training domain."""
    sim = Simulation(toy_model, toy_geometries(1, noise=0.0)[0], temperature_K=1500,
                     thermostat="langevin", seed=4)
    path = tmp_path_factory.mktemp("check") / "t.h5"
    sim.run(3000, trajectory=path, save_every=10, report_every=3000, progress=False)
    return gdmlx.md.read_trajectory(path)["positions"]


@pytest.mark.filterwarnings("ignore::gdmlx.errors.EnergyConsistencyWarning")
def test_check_matches_brute_force(toy_model, hot_run):
    res = check_trajectory(toy_model, hot_run, ToyCalculator(), n_frames=40, skip=0.1)
    frames = res["frames"]
    assert len(frames) == 40 and frames[0] == 30 and frames[-1] == len(hot_run) - 1
    q = hot_run[frames]
    E_ref, F_ref = toy_energy_forces(q)
    E, F = toy_model.predict_energy_forces(q)
    np.testing.assert_allclose(res["f_mae"], np.abs(F - F_ref).mean(axis=(1, 2)), rtol=1e-10)
    outside = outside_frames(q, *model_floors(toy_model)[:2])
    np.testing.assert_array_equal(res["outside"], outside)
    assert 0 < res["n_outside"] < 40                       # the hot run visits both
    assert res["f_mae_inside"] == pytest.approx(np.abs(F - F_ref)[~outside].mean(), rel=1e-10)
    assert res["e_mae_outside"] == pytest.approx(np.abs(E - E_ref - np.median(E - E_ref))[outside].mean(), rel=1e-10)
    # a reference the model was not trained on shows up as a much larger error
    wrong = check_trajectory(toy_model, hot_run, ToyCalculator(scale=1.3), n_frames=40)
    assert wrong["f_mae_inside"] > 3 * res["f_mae_inside"]


def test_check_refuses_frames_of_another_molecule(toy_model):
    with pytest.raises(gdmlx.InputError):
        check_trajectory(toy_model, np.zeros((10, 4, 3)), ToyCalculator())
