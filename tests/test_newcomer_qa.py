"""QA of what a newcomer meets on the command line with data of their own."""

import re
import warnings

import pytest

import gdmlx
from gdmlx.cli.main import main


def test_positions_in_bohr_labelled_angstrom_are_warned_about(toy_data, tmp_path):
    """Positions in bohr in a file that says Ang trained and tested without a word (the energy
    check's slope, 0.52 for malonaldehyde, passed): now the bond lengths give them away."""
    R, F, E, z = toy_data
    good, bohr = tmp_path / "good.npz", tmp_path / "bohr.npz"
    gdmlx.Dataset(R=R, z=z, F=F, E=E).save_npz(good)
    gdmlx.Dataset(R=R / 0.529177, z=z, F=F, E=E).save_npz(bohr)
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        assert main(["train", str(good), "--n-train", "20", "--sigma", "2", "-o", str(tmp_path / "m.h5")]) == 0
    with pytest.warns(UserWarning, match="bohr.npz: with positions in Ang, .* another length unit"):
        assert main(["train", str(bohr), "--n-train", "20", "--sigma", "2", "-o", str(tmp_path / "b.h5")]) == 0
    with pytest.warns(UserWarning, match="another length unit"):
        assert main(["test", str(tmp_path / "m.h5"), str(bohr)]) == 0


def test_train_says_what_sym_found_and_how_many_validation_geometries(toy_npz, tmp_path, capsys):
    """--sym on a molecule without symmetries was silently a no-op, and the validation MAE
    of the summary line did not say on how many geometries it was measured."""
    assert main(["train", str(toy_npz), "--n-train", "20", "--sigma", "2", "--sym",
                 "-o", str(tmp_path / "m.h5")]) == 0
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert "1 permutation(s) found (--sym)" in last and "on 20 geometries" in last


def test_info_describes_a_geometry_file(toy_data, tmp_path, capsys):
    """gdmlx info start.xyz (a start geometry for gdmlx md --xyz) failed with 'frame 0 has
    no energy where ASE looks ... energy_key=...', as if it were a dataset with odd names."""
    import ase
    import ase.io
    R, F, E, z = toy_data
    path = tmp_path / "start.xyz"
    ase.io.write(path, ase.Atoms(numbers=z, positions=R[0]))
    assert main(["info", str(path)]) == 0
    out = capsys.readouterr().out
    assert "(5 atoms): 1 geometry without energies or forces" in out and "--xyz" in out


def test_md_prints_the_energy_drift_with_its_error(toy_model, tmp_path, capsys):
    """The NVE summary line gave a short run's drift bare ('E_tot drift 1.25e-02 eV/ps' over
    0.05 ps, at an energy std of 7.6e-04 eV): noise that looked like a broken integrator."""
    path = tmp_path / "m.h5"
    toy_model.save(path)
    assert main(["md", str(path), "--steps", "100", "--seed", "0"]) == 0
    assert "eV/ps (under 50 frames saved: no error estimate)" in capsys.readouterr().err
    assert main(["md", str(path), "--steps", "600", "--seed", "0"]) == 0
    assert re.search(r"E_tot drift \S+ \+- \S+ eV/ps", capsys.readouterr().err)


def test_test_says_when_the_energy_error_is_a_constant_offset(toy_model, toy_data, tmp_path, capsys):
    """An sGDML file of a model fitted without energies (gdmlx export) tested with
    'energy MAE 1.188e+04 RMSE 1.188e+04 kcal/mol' and no word on why."""
    R, F, E, z = toy_data
    path, data = tmp_path / "m.h5", tmp_path / "shifted.npz"
    toy_model.save(path)
    gdmlx.Dataset(R=R, z=z, F=F, E=E + 1e4).save_npz(data)
    assert main(["test", str(path), str(data)]) == 0
    assert "mostly a constant offset, mean error -1e+04 kcal/mol" in capsys.readouterr().err
    gdmlx.Dataset(R=R, z=z, F=F, E=E).save_npz(data)
    assert main(["test", str(path), str(data)]) == 0
    assert "offset" not in capsys.readouterr().err
