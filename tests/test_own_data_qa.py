"""A chemist's own data: files written by other codes (ASE, numpy), in other units and
names, with a broken frame here and there."""

import json
import re

import ase
import ase.io
import numpy as np
import pytest
from ase.calculators.singlepoint import SinglePointCalculator

from gdmlx import Dataset, load_dataset
from gdmlx.cli.main import main
from gdmlx.dataset import EV_TO_KCAL_MOL
from gdmlx.errors import InputError


def _water_frames(n=4, seed=0):
    """``n`` ASE frames of water with energies [eV] and forces [eV/A] as a calculator's."""
    rng = np.random.default_rng(seed)
    base = np.array([[0.0, 0.0, 0.0], [0.96, 0.0, 0.0], [-0.24, 0.93, 0.0]])
    frames = []
    for _ in range(n):
        a = ase.Atoms("OH2", positions=base + rng.normal(0, 0.02, (3, 3)))
        a.calc = SinglePointCalculator(a, energy=float(rng.normal()), forces=rng.normal(0, 1, (3, 3)))
        frames.append(a)
    return frames


@pytest.mark.parametrize("suffix", [".xyz", ".traj"])
def test_a_frame_with_nan_positions_is_named_as_such(tmp_path, suffix):
    """ASE drops the energy and forces of a frame whose positions are NaN: the message said
    the frame had no energy, and offered energy_key=..."""
    frames = _water_frames()
    frames[2].positions[1, 0] = np.nan
    ase.io.write(tmp_path / f"d{suffix}", frames)
    with pytest.raises(InputError, match=rf"d{suffix}: frame 2 has positions that are NaN or inf \(1 of 4"):
        load_dataset(tmp_path / f"d{suffix}")


def _water_arrays(n=4, seed=0):
    """R [A], z, E, F of ``n`` water geometries, as a user's own code gives them."""
    frames = _water_frames(n, seed)
    return (np.array([a.positions for a in frames]), frames[0].numbers,
            np.array([a.get_potential_energy() for a in frames]), np.array([a.get_forces() for a in frames]))


def test_npz_units_under_the_dataset_attribute_names_are_refused_not_taken_for_kcal_mol(tmp_path):
    """np.savez(..., energy_unit="eV"), the names gdmlx.Dataset uses: the file was read as
    kcal/mol (23x too weak forces) with only a warning that it records no e_unit."""
    R, z, E, F = _water_arrays()
    np.savez(tmp_path / "d.npz", R=R, z=z, E=E, F=F, energy_unit="eV", r_unit="Ang")
    with pytest.raises(InputError, match=r"d.npz: an .npz dataset's units are e_unit \(sGDML's names\), not "
                                         r"energy_unit: rename them"):
        load_dataset(tmp_path / "d.npz")


def test_a_dataset_file_without_sgdmls_arrays_says_which_arrays_it_holds(tmp_path):
    import h5py
    R, z, E, F = _water_arrays()
    np.savez(tmp_path / "d.npz", positions=R, numbers=z, energy=E, forces=F)
    with pytest.raises(InputError, match=r"d.npz: dataset lacks R, z, F \(.*; this one holds energy, forces, "
                                         r"numbers, positions\)"):
        load_dataset(tmp_path / "d.npz")
    with h5py.File(tmp_path / "d.h5", "w") as f:
        f.attrs.update(e_unit="eV", r_unit="Ang")
        for k, a in dict(R=R, z=z, F=F).items():
            f[f"water/{k}"] = a
    with pytest.raises(InputError, match=r"d.h5: not a dataset: it lacks R, z, F \(.*; this one holds water at "
                                         r"its root\)"):
        load_dataset(tmp_path / "d.h5")


def test_energies_under_another_name_in_an_npz_are_said_to_be_left_unread(tmp_path):
    R, z, E, F = _water_arrays()
    np.savez(tmp_path / "d.npz", R=R, z=z, energies=E, F=F, e_unit="eV", r_unit="Ang")
    with pytest.warns(UserWarning, match=r"d.npz holds no E: read without energies; its 'energies' is not read"):
        assert load_dataset(tmp_path / "d.npz").E is None


def test_one_geometry_is_not_called_a_constant_energy_offset_nor_geometries(toy_model, tmp_path, capsys):
    """The error of one geometry is its mean error: every test on one geometry said the
    model's energies were "mostly a constant offset" from the data's."""
    from conftest import toy_energy_forces, toy_geometries
    R = toy_geometries(2, seed=5)
    E, F = toy_energy_forces(R)
    toy_model.save(tmp_path / "m.h5")
    Dataset(R=R, z=toy_model.z_, E=E, F=F).save_npz(tmp_path / "two.npz")
    Dataset(R=R[:1], z=toy_model.z_, E=E[:1], F=F[:1]).save_npz(tmp_path / "one.npz")
    assert main(["test", str(tmp_path / "m.h5"), str(tmp_path / "one.npz")]) == 0
    err = capsys.readouterr().err
    assert "1 test geometry: force MAE" in err and "energy MAE" in err and "offset" not in err
    assert main(["info", str(tmp_path / "one.npz")]) == 0
    assert "dataset of 1 geometry, energies and forces" in capsys.readouterr().out
    assert main(["train", str(tmp_path / "two.npz"), "--n-train", "1", "-o", str(tmp_path / "x.h5")]) == 0
    assert re.search(r"1 training geometry, validation force MAE \S+ kcal/mol/Ang on 1 geometry$",
                     capsys.readouterr().err.strip())


@pytest.mark.parametrize("units", [("kJ mol^-1", "nm"), ("Ry", "bohr")])
def test_data_in_gromacs_and_plane_wave_units_train_the_same_force_field(toy_data, tmp_path, units):
    """kJ/mol and nm (GROMACS), Ry and Ry/bohr (Quantum ESPRESSO) were unknown units: such
    a file could not be trained on. The calculator's energies [eV] and forces [eV/A] must
    be those of the model trained on the same data in kcal/mol and A."""
    from gdmlx import GDMLCalculator, load_model
    R, F, E, z = toy_data
    ds = Dataset(R=R, z=z, E=E, F=F)
    ds.save_npz(tmp_path / "kcal.npz")
    ds.in_units(*units).save_npz(tmp_path / "other.npz")
    for name in ("kcal", "other"):
        assert main(["train", str(tmp_path / f"{name}.npz"), "--n-train", "20", "--n-valid", "10",
                     "-o", str(tmp_path / f"{name}.h5"), "--json"]) == 0
    atoms = ase.Atoms(numbers=z, positions=R[-1])
    results = []
    for name in ("kcal", "other"):
        atoms.calc = GDMLCalculator(load_model(tmp_path / f"{name}.h5"))
        results.append((atoms.get_potential_energy(), atoms.get_forces()))
    assert load_model(tmp_path / "other.h5").energy_unit_ == units[0]
    assert results[1][0] == pytest.approx(results[0][0], abs=1e-6)
    assert np.allclose(results[1][1], results[0][1], atol=1e-6)


def test_forces_without_energies_in_an_ase_file_are_read_with_a_warning(tmp_path, capsys):
    """A trajectory with forces and no energies was refused ('frame 0 has no energy where
    ASE looks'), though forces-only training is supported (an .npz without E). It is read
    with a warning that names numbers the frames hold which may be the energies."""
    frames = _water_frames(6)
    for a in frames:
        a.calc = SinglePointCalculator(a, forces=a.calc.results["forces"])
        a.info["step"] = 3
    ase.io.write(tmp_path / "f.xyz", frames)
    with pytest.warns(UserWarning, match=r"f.xyz: no frame has an energy where ASE looks .*read with forces only; "
                                         r"if one of its numbers \['step'\] is the energy, load_dataset"):
        ds = load_dataset(tmp_path / "f.xyz")
    assert ds.E is None
    np.testing.assert_allclose(ds.F[2], frames[2].calc.results["forces"] * EV_TO_KCAL_MOL, rtol=1e-6)   # text
    frames[3].calc = SinglePointCalculator(frames[3], energy=-1.0, forces=np.zeros((3, 3)))   # one has one
    ase.io.write(tmp_path / "g.xyz", frames)
    with pytest.raises(InputError, match="g.xyz: frame 0 has no energy where ASE looks"):
        load_dataset(tmp_path / "g.xyz")


def test_the_conversion_note_says_how_an_ase_file_was_read(toy_data, tmp_path, capsys):
    """gdmlx test of an eV model on an extended XYZ file in eV said the file 'is in kcal/mol
    and Ang' (load_dataset's units for ASE files): now it says the file was read so."""
    R, F, E, z = toy_data
    Dataset(R=R, z=z, E=E, F=F).in_units("eV", "Ang").save_npz(tmp_path / "ev.npz")
    assert main(["train", str(tmp_path / "ev.npz"), "--n-train", "20", "--n-valid", "10",
                 "-o", str(tmp_path / "ev.h5"), "--json"]) == 0
    frames = []
    for r, e, f in zip(R, E, F):
        frames.append(ase.Atoms(numbers=z, positions=r))
        frames[-1].calc = SinglePointCalculator(frames[-1], energy=e / EV_TO_KCAL_MOL, forces=f / EV_TO_KCAL_MOL)
    ase.io.write(tmp_path / "ev.xyz", frames)
    capsys.readouterr()
    assert main(["test", str(tmp_path / "ev.h5"), str(tmp_path / "ev.xyz")]) == 0
    assert ("ev.xyz was read in kcal/mol and Ang (load_dataset converts ASE files' eV and A): converted to "
            "the model's eV and Ang") in capsys.readouterr().err


def test_frames_of_another_molecule_or_atom_order_are_told_apart(tmp_path):
    """Both said 'frames do not all have the same atoms in the same order': a file that
    mixes two molecules and one whose code reordered the atoms need different fixes."""
    frames = _water_frames()
    swapped = frames[2][[1, 0, 2]]
    swapped.calc = SinglePointCalculator(swapped, energy=0.0, forces=np.zeros((3, 3)))
    ase.io.write(tmp_path / "order.xyz", frames[:2] + [swapped])
    with pytest.raises(InputError, match=r"order.xyz: frame 2 lists its atoms in another order than frame 0 "
                                         r"\(atom 0: H there, O in frame 0\)"):
        load_dataset(tmp_path / "order.xyz")
    other = ase.Atoms("NH2", positions=frames[0].positions)
    other.calc = SinglePointCalculator(other, energy=0.0, forces=np.zeros((3, 3)))
    ase.io.write(tmp_path / "mixed.traj", frames[:3] + [other])
    with pytest.raises(InputError, match=r"mixed.traj: frame 3 holds H2N and frame 0 H2O: a dataset holds one "
                                         r"molecule"):
        load_dataset(tmp_path / "mixed.traj")


def test_a_frame_without_labels_under_any_name_is_not_offered_energy_key(tmp_path):
    """A frame with no info keys and no per-atom arrays was told 'Other names:
    gdmlx.load_dataset(..., energy_key=..., forces_key=...) reads them': there are none."""
    frames = _water_frames()
    frames[1].calc.results.pop("forces")
    ase.io.write(tmp_path / "d.traj", frames)
    with pytest.raises(InputError, match=r"d.traj: frame 1 has no forces where ASE looks \(.*\); it holds no "
                                         r"numbers or per-atom arrays under other names either$"):
        load_dataset(tmp_path / "d.traj")
    ase.io.write(tmp_path / "g.xyz", [ase.Atoms(a.numbers, a.positions) for a in frames], format="xyz")
    with pytest.raises(InputError, match=r"g.xyz: frame 0 has no forces .* under other names either \(a file of "
                                         r"geometries alone is a start geometry, gdmlx md MODEL --xyz FILE"):
        load_dataset(tmp_path / "g.xyz")


def test_labels_in_an_ase_database_key_value_pairs_and_data_are_read_by_name(tmp_path):
    """ase.io.read drops a database row's key_value_pairs and data: energy_key and
    forces_key could not name them, and the message said the frames held no other names."""
    import ase.db
    frames = _water_frames()
    with ase.db.connect(tmp_path / "d.db") as db:
        for a in frames:
            db.write(ase.Atoms(a.numbers, a.positions), ref_energy=a.get_potential_energy(),
                     data={"ref_forces": a.get_forces(), "positions": np.zeros((3, 3))})
    with pytest.raises(InputError, match=r"d.db: frame 0 has no forces .* info keys: \['ref_energy'\]; its "
                                         r"per-atom arrays: \['ref_forces'\]"):
        load_dataset(tmp_path / "d.db")
    ds = load_dataset(tmp_path / "d.db", energy_key="ref_energy", forces_key="ref_forces")
    assert np.array_equal(ds.R, [a.positions for a in frames])          # not the data's 'positions'
    assert np.allclose(ds.E / EV_TO_KCAL_MOL, [a.get_potential_energy() for a in frames], rtol=1e-14, atol=0)
    assert np.allclose(ds.F / EV_TO_KCAL_MOL, [a.get_forces() for a in frames], rtol=1e-14, atol=0)


def test_info_says_when_a_datasets_unit_names_are_unknown(tmp_path, capsys):
    """e_unit 'Hartrees': info described the file as any other, and train then refused it."""
    import h5py
    R, z, E, F = _water_arrays()
    with h5py.File(tmp_path / "d.h5", "w") as f:
        f.attrs.update(e_unit="Hartrees", r_unit="Ang")
        f.update(R=R, z=z, E=E, F=F)
    assert main(["info", str(tmp_path / "d.h5")]) == 0
    assert "unknown unit name(s) 'Hartrees': gdmlx train and test refuse the file" in capsys.readouterr().out
    assert main(["train", str(tmp_path / "d.h5"), "--n-train", "2", "-o", str(tmp_path / "m.h5")]) == 2
    assert "unknown energy unit 'Hartrees'" in capsys.readouterr().err
    assert main(["info", str(tmp_path / "d.h5"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["unknown_units"] == ["Hartrees"]


def test_a_frame_ase_cannot_parse_is_named(tmp_path):
    """A bad number in frame 2 said only 'not a file ASE can read as geometries'."""
    frames = _water_frames()
    ase.io.write(tmp_path / "d.xyz", frames)
    lines = (tmp_path / "d.xyz").read_text().splitlines()
    lines[2 * 5 + 3] = lines[2 * 5 + 3].replace(" 0.", " x.", 1)       # frame 2, its second atom
    (tmp_path / "d.xyz").write_text("\n".join(lines) + "\n")
    with pytest.raises(InputError, match=r"d.xyz: ASE cannot read frame 2 \(the 2 before it read\) \(ValueError: "):
        load_dataset(tmp_path / "d.xyz")


def test_info_on_a_database_with_labels_under_other_names_does_not_call_it_bare_geometries(tmp_path, capsys):
    import ase.db
    with ase.db.connect(tmp_path / "d.db") as db:
        for a in _water_frames():
            db.write(ase.Atoms(a.numbers, a.positions), ref_energy=a.get_potential_energy(),
                     data={"ref_forces": a.get_forces()})
    assert main(["info", str(tmp_path / "d.db")]) == 2
    assert "frame 0 has no forces" in capsys.readouterr().err
    ase.io.write(tmp_path / "g.xyz", [ase.Atoms(a.numbers, a.positions) for a in _water_frames()], format="xyz")
    assert main(["info", str(tmp_path / "g.xyz")]) == 0
    assert "H2O (3 atoms): 4 geometries without energies or forces: a start geometry" in capsys.readouterr().out


def test_an_energy_with_its_unit_on_the_comment_line_is_named_not_a_numpy_traceback(tmp_path):
    """energy="-76.4 Ha": ASE keeps the text as the energy, and load_dataset crashed in numpy
    (ufunc 'multiply' did not contain a loop with signature matching types)."""
    ase.io.write(tmp_path / "d.xyz", _water_frames())
    text = (tmp_path / "d.xyz").read_text().split("\n")
    text[6] = re.sub(r"energy=\S+", 'energy="-76.4 Ha"', text[6])                # frame 1's comment line
    (tmp_path / "d.xyz").write_text("\n".join(text))
    with pytest.raises(InputError, match=r"d.xyz: frame 1: its energy is '-76.4 Ha', not a number \(in eV\)"):
        load_dataset(tmp_path / "d.xyz")


def test_per_atom_arrays_that_are_not_forces_are_named(tmp_path):
    """forces_key naming per-atom charges gave 'F must have shape (1, 3, 3), got (1, 1, 3)',
    and one naming texts a bare ValueError (could not convert string to float)."""
    frames = _water_frames(2)
    for a in frames:
        a.info["REF_energy"] = a.get_potential_energy()
        a.arrays["charges_"] = np.zeros(3)
        a.arrays["labels"] = np.array([["a", "b", "c"]] * 3)
        a.calc = None
    ase.io.write(tmp_path / "d.xyz", frames, format="extxyz")
    with pytest.raises(InputError, match=r"d.xyz: frame 0: its per-atom 'charges_' are float64 of shape \(3,\), "
                                         r"not forces \(3 x 3 numbers, eV/A\)"):
        load_dataset(tmp_path / "d.xyz", energy_key="REF_energy", forces_key="charges_")
    with pytest.raises(InputError, match=r"d.xyz: frame 0: its per-atom 'labels' are \S+ of shape \(3, 3\), not "
                                         r"forces"):
        load_dataset(tmp_path / "d.xyz", energy_key="REF_energy", forces_key="labels")


def test_atomic_numbers_as_floats_or_symbols_are_read(tmp_path):
    """z stored as floats (6.0, as other codes write HDF5) or as element symbols was refused
    ('z must be 3 integer atomic numbers, got ... float64'); a text that is no element is named."""
    frames = _water_frames()
    R = np.array([a.positions for a in frames])
    F = np.array([a.calc.results["forces"] for a in frames])
    base = Dataset(R=R, z=np.array([8, 1, 1]), F=F)
    for z in (np.array([8.0, 1.0, 1.0]), ["O", "H", "H"], np.array([b"O", b"H", b"H"])):
        assert np.array_equal(Dataset(R=R, z=z, F=F).z, base.z)
    for z, message in ((["O", "H", "Hx"], "z holds 'Hx', which is no element symbol"),
                       (np.array([8.0, 1.5, 1.0]), "z must be 3 integer atomic numbers")):
        with pytest.raises(InputError, match=message):
            Dataset(R=R, z=z, F=F)


def test_a_truncated_xyz_names_the_frame_and_line(tmp_path):
    """A cut file said only 'a frame declares 3 atoms, more than the lines that follow it'."""
    ase.io.write(tmp_path / "w.xyz", _water_frames(4))
    lines = (tmp_path / "w.xyz").read_text().splitlines(keepends=True)
    (tmp_path / "w.xyz").write_text("".join(lines[:-2]))                  # the last frame's last two atoms
    with pytest.raises(InputError, match=r"w.xyz: frame 3 \(line 16\) declares 3 atoms, but 1 atom line follows it"):
        load_dataset(tmp_path / "w.xyz")
