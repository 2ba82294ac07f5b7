from pathlib import Path

import h5py
import numpy as np
import pytest

import gdmlx
from conftest import edited_file, toy_energy_forces, toy_geometries


def test_model_round_trip_is_exact(toy_model, tmp_path):
    path = tmp_path / "m.h5"
    toy_model.indices_ = {"train": np.arange(30)}
    toy_model.save(path)
    loaded = gdmlx.load_model(path)
    R = toy_geometries(5, seed=7)
    np.testing.assert_array_equal(loaded.predict(R), toy_model.predict(R))
    np.testing.assert_array_equal(loaded.predict_energy(R), toy_model.predict_energy(R))
    assert loaded.get_params()["sigma"] == toy_model.sigma
    assert loaded.train_hash_ == toy_model.train_hash_
    np.testing.assert_array_equal(loaded.indices_["train"], np.arange(30))
    np.testing.assert_array_equal(loaded.R_train_, toy_model.R_train_)
    refit = loaded.refit()
    np.testing.assert_allclose(refit.predict(R), toy_model.predict(R), rtol=1e-12)
    assert loaded.get_params()["pairs"] is None and loaded.get_params()["perms"] is None
    assert loaded.energy_fit_.keys() == toy_model.energy_fit_.keys()


def test_loaded_hyperparameters_are_the_ones_given(toy_data, tmp_path):
    """'all pairs' and perms='auto' come back as such, not as this molecule's arrays: a clone
    of a loaded model fitted to another molecule gets that molecule's pairs and group."""
    from sklearn.base import clone
    R, F, E, z = toy_data
    model = gdmlx.GDMLRegressor(sigma=2.0, perms="auto").fit(R[:20], F[:20], E[:20], z=z)
    model.save(tmp_path / "m.h5")
    loaded = gdmlx.load_model(tmp_path / "m.h5")
    assert loaded.get_params()["perms"] == "auto" and loaded.get_params()["pairs"] is None
    longer = toy_geometries(20, n_atoms=6, seed=3)
    E6, F6 = toy_energy_forces(longer)
    other = clone(loaded).fit(longer, F6, E6, z=np.array([6, 6, 8, 6, 1, 1]))
    assert len(other.pairs_) == 15


def test_set_params_after_fit_does_not_change_what_is_saved(toy_data, tmp_path):
    """set_params changes the next fit, not the fitted model: the file records the
    hyperparameters the model was fitted with (sigma 20 in the file made it unloadable)."""
    R, F, E, z = toy_data
    model = gdmlx.GDMLRegressor(sigma=2.0, lam=1e-8).fit(R[:20], F[:20], E[:20], z=z)
    model.set_params(sigma=20.0, lam=1e-3, perms="auto")
    model.save(tmp_path / "m.h5")
    loaded = gdmlx.load_model(tmp_path / "m.h5")
    params = loaded.get_params()
    assert (params["sigma"], params["lam"], params["perms"]) == (2.0, 1e-8, None)
    np.testing.assert_allclose(loaded.refit().predict(R[40:42]), model.predict(R[40:42]), rtol=1e-10)
    loaded.set_params(lam=1e-3)
    loaded.save(tmp_path / "again.h5")
    assert gdmlx.load_model(tmp_path / "again.h5").lam == 1e-8


def test_saving_an_unfitted_model_or_another_object_is_refused(tmp_path):
    """An unfitted MultiscaleModel or another object failed with AttributeError '_fitted_expansion'."""
    from sklearn.exceptions import NotFittedError
    with pytest.raises(NotFittedError, match="MultiscaleModel is not fitted"):
        gdmlx.save_model(gdmlx.MultiscaleModel(), tmp_path / "ms.h5")
    with pytest.raises(gdmlx.InputError, match="got dict"):
        gdmlx.save_model({}, tmp_path / "d.h5")
    assert not list(tmp_path.iterdir())


def test_garbage_foreign_and_truncated_files_are_refused(toy_model, tmp_path):
    garbage = tmp_path / "garbage.h5"
    garbage.write_bytes(b"not a model at all" * 100)
    with pytest.raises(gdmlx.ModelFileError, match="not a readable HDF5"):
        gdmlx.load_model(garbage)

    foreign = tmp_path / "foreign.h5"
    with h5py.File(foreign, "w") as f:
        f["x"] = np.arange(3)
    with pytest.raises(gdmlx.ModelFileError, match="not a gdmlx model"):
        gdmlx.load_model(foreign)

    good = tmp_path / "good.h5"
    toy_model.save(good)
    raw = good.read_bytes()
    cut = tmp_path / "cut.h5"
    cut.write_bytes(raw[: len(raw) // 2])
    with pytest.raises(gdmlx.ModelFileError):
        gdmlx.load_model(cut)

    with edited_file(good) as f:
        del f["expansion/B"]
    with pytest.raises(gdmlx.ModelFileError, match="'/expansion/B' is missing"):
        gdmlx.load_model(good)


def _edit(model, path, edit):
    model.save(path)
    with edited_file(path) as f:
        edit(f)
    return path


def _replace(name, value):
    def edit(f):
        attrs = dict(f[name].attrs)
        del f[name]
        f[name] = value
        f[name].attrs.update(attrs)
    return edit


@pytest.mark.parametrize("edit, message", [
    (lambda f: _replace("expansion/pairs", np.where(f["expansion/pairs"][()] == 4, np.nan, f["expansion/pairs"][()]))(f),
     "pairs' has type float64, expected integers"),           # once a heap corruption in numba
    (lambda f: _replace("z", np.array([6, 6, 8, 1, 200]))(f), "outside 1..118"),
    (lambda f: _replace("expansion/pairs", np.r_[[[3, 3]], f["expansion/pairs"][1:]])(f), "paired with itself"),
    (lambda f: _replace("expansion/pairs", np.r_[f["expansion/pairs"][:9], f["expansion/pairs"][:1]])(f),
     "the same pair twice"),
    (lambda f: _replace("expansion/X", -f["expansion/X"][()])(f), "must be positive"),
    (lambda f: _replace("training/R", f["training/R"][:, :4])(f), "training data have inconsistent shapes"),
    (lambda f: f.attrs.__setitem__("sigma", 3.0), "is not its expansion's"),
    (lambda f: f["expansion"].attrs.__setitem__("sigma", 1e-300), "outside"),
    (lambda f: (f.__delitem__("expansion/a"), f["expansion"].create_dataset("a", shape=(10**9,), dtype="f8")),
     "declares 8000000000 bytes but stores 0"),               # a file cannot make gdmlx allocate 8 GB
    (lambda f: (f.__delitem__("expansion/X"), f["expansion"].__setitem__("X", h5py.ExternalLink("other.h5", "/X"))),
     "is a link"),
    (lambda f: f.attrs.__setitem__("lam", np.ones(3)), r"attribute 'lam' of '/' must be a number, got array"),
    (lambda f: f.attrs.__setitem__("use_energy_labels", "no"), "must be True or False"),
    (lambda f: f.attrs.__setitem__("sigma", "2.0"), "attribute 'sigma' of '/' must be a number, got '2.0'"),
    (lambda f: f["expansion"].attrs.__setitem__("c", np.ones(2)), "attribute 'c' of '/expansion' must be a number"),
    (lambda f: f.attrs.__setitem__("kind", np.array([1, 2])), "attribute 'kind' of '/' must be a text"),
    (lambda f: f.attrs.__setitem__("solver", 3), r"attribute 'solver' of '/' must be a text, got np.int64\(3\)"),
    (lambda f: (f.__delitem__("training"), f.__setitem__("training", 1.0)), "'/training' is not a group"),
    (lambda f: (f.__delitem__("expansion"), f.__setitem__("expansion", np.ones(3))), "'/expansion' is not a group"),
    (lambda f: (f.__delitem__("indices"), f.__setitem__("indices", np.arange(3))), "'/indices' is not a group"),
])
def test_corrupt_or_crafted_model_files_are_refused_by_name(toy_model, tmp_path, edit, message):
    """What a test session did to model files: each is a ModelFileError naming the file,
    never a crash in numba, an allocation of what the file does not hold, or a wrong answer."""
    path = _edit(toy_model, tmp_path / "m.h5", edit)
    with pytest.raises(gdmlx.ModelFileError, match=message) as got:
        gdmlx.load_model(path)
    assert str(path) in str(got.value)


def test_a_changed_value_anywhere_in_a_model_file_is_caught_by_its_checksum(toy_model, toy_data, tmp_path):
    """A changed number that every other check accepts (a training force, the action
    model's momentum scale) gave wrong answers silently; files from before the content
    checksum still load, and those that carry the older checksum over each expansion
    are still checked against it."""
    from gdmlx.action import ActionModel
    from gdmlx.expansion import expansion_digest
    path = tmp_path / "m.h5"
    R, F, E, z = toy_data
    rng = np.random.default_rng(0)
    action = ActionModel(stride_fs=1.0, sigma=1.0).fit_gradients(
        z, R[:4], rng.standard_normal((4, 5, 3)), rng.standard_normal((4, 5, 3)), rng.standard_normal((4, 5, 3)))
    for save, load, name, change in (
            (toy_model.save, gdmlx.load_model, "training/F", lambda a: a + 1e-9),
            (toy_model.save, gdmlx.load_model, "expansion/X", lambda a: a * (1 + 1e-15)),
            (action.save, ActionModel.load, "perms", lambda a: a[:, ::-1])):
        save(path)
        with h5py.File(path, "a") as f:
            f[name][...] = change(f[name][()])
        with pytest.raises(gdmlx.ModelFileError, match="m.h5: its contents do not match the checksum"):
            load(path)
    action.save(path)
    with h5py.File(path, "a") as f:
        f.attrs["kappa"] = 2 * f.attrs["kappa"]
    with pytest.raises(gdmlx.ModelFileError, match="do not match the checksum"):
        ActionModel.load(path)

    toy_model.save(path)
    with edited_file(path):                            # an older file: no checksum
        pass
    np.testing.assert_array_equal(gdmlx.load_model(path).predict(R[:3]), toy_model.predict(R[:3]))
    with edited_file(path) as f:                       # 2026-11-22/23: one over each expansion
        f["expansion"].attrs["sha256"] = expansion_digest(toy_model.expansion_).hexdigest()
    gdmlx.load_model(path)
    with h5py.File(path, "a") as f:
        f["expansion/X"][0, 3] += 0.123
    with pytest.raises(gdmlx.ModelFileError, match="expansion's arrays do not match their checksum"):
        gdmlx.load_model(path)


def test_future_version_and_inconsistent_arrays_are_refused(toy_model, tmp_path):
    path = tmp_path / "m.h5"
    toy_model.save(path)
    with edited_file(path) as f:
        f.attrs["format_version"] = 99
    with pytest.raises(gdmlx.ModelFileError, match="version 99"):
        gdmlx.load_model(path)
    toy_model.save(path)
    with edited_file(path) as f:
        del f["expansion/a"]
        f["expansion/a"] = np.zeros(3)
    with pytest.raises(gdmlx.ModelFileError, match="inconsistent"):
        gdmlx.load_model(path)
    for attr, value, message in (("energy_unit", "kcal", "unknown energy unit"), ("sigma", -1.0, "sigma")):
        toy_model.save(path)
        with edited_file(path) as f:
            f.attrs[attr] = value
        with pytest.raises(gdmlx.ModelFileError, match=message):
            gdmlx.load_model(path)


def test_files_of_the_wrong_kind_say_what_they_are(toy_model, tmp_path):
    sgdml_model = Path(__file__).parent / "data" / "sgdml_ethanol20_model.npz"
    with pytest.raises(gdmlx.InputError, match=r"is an sGDML model \(a force field\), not a dataset: .*load_any_model"):
        gdmlx.load_dataset(sgdml_model)
    with pytest.raises(gdmlx.ModelFileError, match="load_any_model"):
        gdmlx.load_model(sgdml_model)
    toy_model.save(tmp_path / "m.h5")
    with pytest.raises(gdmlx.ModelFileError, match=r"is a gdmlx model \(a force field\), not an sGDML model .*gdmlx.load_model reads"):
        gdmlx.import_sgdml_model(tmp_path / "m.h5")


def test_interrupted_save_leaves_old_file(toy_model, tmp_path, monkeypatch):
    path = tmp_path / "m.h5"
    toy_model.save(path)
    before = path.read_bytes()

    def boom(group, exp):
        raise KeyboardInterrupt

    monkeypatch.setattr("gdmlx.modelfile.write_expansion", boom)
    with pytest.raises(KeyboardInterrupt):
        toy_model.save(path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["m.h5"]
    with pytest.raises(FileNotFoundError, match="there is no directory .*missing"):
        toy_model.save(tmp_path / "missing" / "m.h5")
    (tmp_path / "d.h5").mkdir()
    with pytest.raises(IsADirectoryError, match="d.h5: it is a directory"):
        toy_model.save(tmp_path / "d.h5")


def test_dataset_npz_round_trip_and_checks(toy_data, tmp_path):
    R, F, E, z = toy_data
    ds = gdmlx.Dataset(R=R, z=z, F=F, E=E[:, None], name="toy")
    ds.save_npz(tmp_path / "toy.npz")
    back = gdmlx.load_dataset(tmp_path / "toy.npz")
    for k in ("R", "z", "F", "E"):
        np.testing.assert_array_equal(getattr(back, k), getattr(ds, k))
    assert back.name == "toy" and back.energy_unit == "kcal/mol"
    assert repr(back) == "Dataset(toy: 60 geometries of C3HO, energies and forces in kcal/mol and Ang)"
    assert np.load(tmp_path / "toy.npz")["md5"] == ds.md5()
    bad = dict(np.load(tmp_path / "toy.npz"))
    bad["F"] = bad["F"][:, :3]
    np.savez(tmp_path / "bad.npz", **bad)
    with pytest.raises(gdmlx.InputError, match="bad.npz.*F must have shape"):
        gdmlx.load_dataset(tmp_path / "bad.npz")
    del bad["F"]
    np.savez(tmp_path / "nof.npz", **bad)
    with pytest.raises(gdmlx.InputError, match="lacks F"):
        gdmlx.load_dataset(tmp_path / "nof.npz")
    (tmp_path / "junk.npz").write_bytes(b"junk")
    with pytest.raises(gdmlx.InputError, match="not an .npz archive"):
        gdmlx.load_dataset(tmp_path / "junk.npz")
    np.savez(tmp_path / "obj.npz", R=np.array([None], dtype=object))
    with pytest.raises(gdmlx.InputError, match="object .pickled. arrays, which gdmlx never loads"):
        gdmlx.load_dataset(tmp_path / "obj.npz")
    import h5py
    with h5py.File(tmp_path / "nounits.h5", "w") as f:          # written by hand, units forgotten
        f["R"], f["z"], f["F"] = R, z, F
    with pytest.raises(gdmlx.InputError, match="must say its units"):
        gdmlx.load_dataset(tmp_path / "nounits.h5")


@pytest.mark.parametrize("change, message", [
    ({"R": lambda R: R.astype(complex)}, "R must be real numbers, got complex128"),   # was cut to its real part
    ({"F": lambda F: F.astype(str)}, "F must be real numbers, got <U"),               # was parsed
    ({"E": lambda E: E + 1j}, "E must be real numbers, got complex128"),
])
def test_dataset_entries_of_the_wrong_type_are_named(toy_data, tmp_path, change, message):
    """.npz datasets (read without read_array's type check) of complex numbers or texts."""
    R, F, E, z = toy_data
    gdmlx.Dataset(R=R, z=z, F=F, E=E).save_npz(tmp_path / "d.npz")
    arrays = dict(np.load(tmp_path / "d.npz"))
    arrays.update({k: transform(arrays[k]) for k, transform in change.items()})
    np.savez(tmp_path / "bad.npz", **arrays)
    with pytest.raises(gdmlx.InputError, match=message):
        gdmlx.load_dataset(tmp_path / "bad.npz")


def test_extxyz_dataset_is_converted_from_ev(toy_data, tmp_path):
    from ase import Atoms
    from ase.calculators.singlepoint import SinglePointCalculator
    import ase.io
    import ase.units
    R, F, E, z = toy_data
    EV = 1 / (ase.units.kcal / ase.units.mol)
    frames = []
    for t in range(3):
        atoms = Atoms(numbers=z, positions=R[t])
        atoms.calc = SinglePointCalculator(atoms, energy=E[t], forces=F[t])
        frames.append(atoms)
    ase.io.write(tmp_path / "t.extxyz", frames)
    ds = gdmlx.load_dataset(tmp_path / "t.extxyz")
    np.testing.assert_allclose(ds.E, E[:3] * EV, rtol=1e-10)
    np.testing.assert_allclose(ds.F, F[:3] * EV, rtol=1e-6)
    np.testing.assert_allclose(ds.R, R[:3], atol=1e-8)


def _frames(R, F, E, z, n=3):
    from ase import Atoms
    from ase.calculators.singlepoint import SinglePointCalculator
    frames = []
    for t in range(n):
        atoms = Atoms(numbers=z, positions=R[t])
        atoms.calc = SinglePointCalculator(atoms, energy=E[t], forces=F[t])
        frames.append(atoms)
    return frames


def test_ase_files_keep_the_forces_of_fixed_atoms_and_read_other_label_names(toy_data, tmp_path):
    """Constrained frames (FixAtoms in a .traj, move_mask in extended XYZ) keep their
    forces as computed; labels under other names are read when named, and a file without
    ASE's names says which names it has."""
    from ase.constraints import FixAtoms
    import ase.io
    import ase.units
    R, F, E, z = toy_data
    frames = _frames(R, F, E, z)
    for a in frames:
        a.set_constraint(FixAtoms([0]))
    ev = 1 / (ase.units.kcal / ase.units.mol)
    for ext in (".traj", ".extxyz"):
        ase.io.write(tmp_path / f"fixed{ext}", frames)
        np.testing.assert_allclose(gdmlx.load_dataset(tmp_path / f"fixed{ext}").F, F[:3] * ev, rtol=1e-6)
    plain = [a.copy() for a in frames]
    for t, a in enumerate(plain):
        a.set_constraint()
        a.info["REF_energy"], a.arrays["REF_forces"] = E[t], F[t].copy()
    ase.io.write(tmp_path / "ref.extxyz", plain)
    with pytest.raises(gdmlx.InputError, match=r"frame 0 has no forces.*info keys: \['REF_energy'\]; "
                                               r"its per-atom arrays: \['REF_forces'\].*energy_key="):
        gdmlx.load_dataset(tmp_path / "ref.extxyz")
    ds = gdmlx.load_dataset(tmp_path / "ref.extxyz", energy_key="REF_energy", forces_key="REF_forces")
    np.testing.assert_allclose(ds.E, E[:3] * ev, rtol=1e-10)
    np.testing.assert_allclose(ds.F, F[:3] * ev, rtol=1e-6)
    with pytest.raises(gdmlx.InputError, match="no per-atom forces 'forces_ref'"):
        gdmlx.load_dataset(tmp_path / "ref.extxyz", energy_key="REF_energy", forces_key="forces_ref")


def test_ase_files_of_mixed_molecules_or_periodicity_and_single_atoms_are_refused(toy_data, tmp_path):
    from ase import Atoms
    import ase.io
    R, F, E, z = toy_data
    frames = _frames(R, F, E, z)
    small = Atoms(numbers=z[:3], positions=R[3, :3])
    small.calc = frames[0].calc.__class__(small, energy=1.0, forces=np.zeros((3, 3)))
    ase.io.write(tmp_path / "mixed.extxyz", frames + [small])
    with pytest.raises(gdmlx.InputError, match=r"different numbers of atoms \(frame 0: 5, frame 3: 3\)"):
        gdmlx.load_dataset(tmp_path / "mixed.extxyz")
    frames[2].pbc, frames[2].cell = True, 6.0 * np.eye(3)
    ase.io.write(tmp_path / "pbc.extxyz", frames)
    with pytest.raises(gdmlx.InputError, match="frame 2 is periodic and frame 0 is not"):
        gdmlx.load_dataset(tmp_path / "pbc.extxyz")
    with pytest.raises(gdmlx.InputError, match="1 atom has no pair distances"):
        gdmlx.Dataset(R=R[:, :1], z=z[:1], F=F[:, :1], E=E)
    with pytest.raises(gdmlx.InputError, match="at least 2 atoms"):
        gdmlx.GDMLRegressor().fit(R[:10, :1], F[:10, :1], z=z[:1])


def test_a_float32_file_is_recognised_by_its_stored_fingerprint(toy_data, tmp_path):
    """sGDML fingerprints a file's arrays as stored: a model that records the fingerprint of
    a float32 / uint8 file is recognised as trained on it, and its split is left out."""
    from gdmlx.dataset import fingerprint
    from gdmlx.splits import held_out_indices, trained_on
    R, F, E, z = toy_data
    stored = dict(R=R.astype(np.float32), z=z.astype(np.uint8), F=F.astype(np.float32),
                  E=E.astype(np.float32)[:, None], e_unit="kcal/mol", r_unit="Ang")
    np.savez(tmp_path / "f32.npz", **stored)
    ds = gdmlx.load_dataset(tmp_path / "f32.npz")
    assert ds.R.dtype == np.float64 and ds.source_md5 == fingerprint(stored["z"], stored["R"], stored["E"], stored["F"])
    model = gdmlx.GDMLRegressor(sigma=2.0).fit(ds.R[:10], ds.F[:10], z=ds.z)
    model.R_train_ = None                              # as an sGDML import: only the record
    model.dataset_md5_, model.indices_ = ds.source_md5.decode(), {"train": np.arange(10), "valid": np.arange(10, 20)}
    assert trained_on(model, ds) and held_out_indices(model, ds).tolist() == list(range(20, len(R)))
    assert gdmlx.load_dataset(tmp_path / "f32.npz").subset(np.arange(5)).source_md5 is None


def test_held_out_geometries_leave_out_copies_of_the_training_data(toy_model, toy_data):
    """A copy of the data through a text format (extended XYZ: differences of ~1e-9 A) is
    still the training data; geometries 1e-3 A away are not."""
    from gdmlx.splits import found_in, held_out_indices
    R, F, E, z = toy_data
    shifted = R + np.where(np.arange(len(R)) % 2 == 0, 5e-9, 1e-3)[:, None, None]
    hits = found_in(shifted, toy_model.R_train_)
    assert hits.tolist() == [i < 30 and i % 2 == 0 for i in range(len(R))]
    copy = gdmlx.Dataset(R=R + 5e-9, z=z, F=F, E=E)
    assert held_out_indices(toy_model, copy).tolist() == list(range(30, 60))


def test_a_model_without_its_geometries_is_not_tested_on_them(toy_model, toy_data, tmp_path):
    """An sGDML model keeps only training descriptors: on a dataset it records no split for
    (here its data shuffled and rotated), its training geometries are found by those and
    left out (they were counted as test geometries, which made test errors look tiny)."""
    from gdmlx.splits import held_out_indices
    R, F, E, z = toy_data
    gdmlx.export_sgdml_model(toy_model, tmp_path / "m.npz")
    imported = gdmlx.import_sgdml_model(tmp_path / "m.npz")
    assert imported.R_train_ is None
    order = np.random.default_rng(1).permutation(len(R))
    c, s = np.cos(0.7), np.sin(0.7)
    rot = np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])
    shuffled = gdmlx.Dataset(R=R[order] @ rot.T + 3.0, z=z, F=F[order] @ rot.T, E=E[order])
    assert held_out_indices(imported, shuffled).tolist() == np.flatnonzero(order >= 30).tolist()


def test_unit_names_are_compared_as_units(toy_model, toy_data):
    import ase.units
    from gdmlx.validation import check_data_for_model
    R, F, E, z = toy_data
    check_data_for_model(gdmlx.Dataset(R=R, z=z, F=F, E=E, energy_unit="KCAL/MOL", length_unit="Angstrom"),
                         toy_model, "data")
    with pytest.raises(gdmlx.InputError, match=r"is in eV and Angstrom, the model in kcal/mol and Ang; "
                                               r"dataset.in_units\('kcal/mol', 'Ang'\) converts it"):
        check_data_for_model(gdmlx.Dataset(R=R, z=z, F=F, E=E, energy_unit="eV", length_unit="Angstrom"),
                             toy_model, "data")
    with pytest.raises(gdmlx.InputError, match="data holds a molecule of 4 atoms, the model one of 5"):
        check_data_for_model(gdmlx.Dataset(R=R[:, :4], z=z[:4], F=F[:, :4], E=E), toy_model, "data")
    ds = gdmlx.Dataset(R=R, z=z, F=F, E=E, energy_unit="kcal mol-1", length_unit="\u00c5")
    back = ds.in_units("Ha", "bohr").in_units("kcal/mol", "Ang")
    for k in ("R", "F", "E"):
        np.testing.assert_allclose(getattr(back, k), getattr(ds, k), rtol=1e-13)
    np.testing.assert_allclose(ds.in_units("kcal/mol", "bohr").R * ase.units.Bohr, R, rtol=1e-14)


def test_crafted_archives_trajectories_and_datasets_are_refused_by_name(toy_model, toy_data, tmp_path):
    """The other readers: an .npz member or HDF5 dataset declaring more than it holds, a
    trajectory without velocities or with a negative frame count, a periodic .xyz."""
    import ase.io
    from ase import Atoms
    from ase.calculators.singlepoint import SinglePointCalculator
    from gdmlx.md import Simulation, read_last_state
    import io
    import zipfile
    sgdml = dict(np.load(Path(__file__).parent / "data" / "sgdml_ethanol20_model.npz", allow_pickle=True))
    np.savez(tmp_path / "bomb.npz", **{k: v for k, v in sgdml.items() if k != "R_desc"})
    member = io.BytesIO()                    # a header declaring 36 x 10^9 doubles, then 64 bytes
    np.lib.format.write_array_header_1_0(member, {"descr": "<f8", "fortran_order": False, "shape": (36, 10**9)})
    with zipfile.ZipFile(tmp_path / "bomb.npz", "a") as z:
        z.writestr("R_desc.npy", member.getvalue() + bytes(64))
    with pytest.raises(gdmlx.ModelFileError, match="'R_desc' declares 288000000000 bytes but holds 64"):
        gdmlx.import_sgdml_model(tmp_path / "bomb.npz")
    with h5py.File(tmp_path / "d.h5", "w") as f:
        f.create_dataset("R", shape=(10**8, 5, 3), dtype="f8")
        f["z"], f["F"] = toy_model.z_, np.zeros((2, 5, 3))
        f.attrs.update(e_unit="kcal/mol", r_unit="Ang")
    with pytest.raises(gdmlx.InputError, match="'/R' declares 12000000000 bytes but stores 0"):
        gdmlx.load_dataset(tmp_path / "d.h5")
    with h5py.File(tmp_path / "u.h5", "w") as f:
        f["R"], f["z"], f["F"] = toy_data[0][:2], toy_model.z_, toy_data[1][:2]
        f.attrs.update(e_unit=np.array([b"kcal/mol", b"eV"]), r_unit="Ang")
    with pytest.raises(gdmlx.InputError, match=r"u.h5: 'e_unit' must be one text"):
        gdmlx.load_dataset(tmp_path / "u.h5")

    traj = tmp_path / "t.h5"
    Simulation(toy_model, toy_data[0][0], seed=0).run(20, trajectory=traj, progress=False)
    with h5py.File(traj, "a") as f:
        f.attrs["n_frames"] = -3
    with pytest.raises(gdmlx.InputError, match=r"n_frames attribute \(-3\) is not a count"):
        read_last_state(traj)
    with h5py.File(traj, "a") as f:
        f.attrs["n_frames"] = 2
        del f["velocities"]
    with pytest.raises(gdmlx.InputError, match=r"needs \['velocities'\]"):
        read_last_state(traj)

    atoms = [Atoms(numbers=toy_model.z_, positions=r, cell=[10, 10, 10], pbc=True) for r in toy_data[0][:3]]
    for a, f in zip(atoms, toy_data[1][:3]):
        a.calc = SinglePointCalculator(a, energy=0.0, forces=f)
    ase.io.write(tmp_path / "p.xyz", atoms)
    assert gdmlx.load_dataset(tmp_path / "p.xyz").lattice is not None     # which train then refuses
    from gdmlx.cli.common import read_start_atoms
    with pytest.raises(gdmlx.InputError, match="periodic boundary conditions"):
        read_start_atoms(tmp_path / "p.xyz")                              # an MD start (md --xyz)
    with h5py.File(_edit(toy_model, tmp_path / "v.h5", lambda f: None), "a") as f:
        f.attrs["format_version"] = np.array([1, 1])
    with pytest.raises(gdmlx.ModelFileError, match="format version"):
        gdmlx.load_model(tmp_path / "v.h5")


def test_split_indices_are_disjoint_and_refuse_bad_counts():
    from gdmlx.splits import split_indices
    train, valid = split_indices(10, 4, None, seed=1)
    assert len(train) == 4 and len(valid) == 3 and not set(train) & set(valid)
    np.testing.assert_array_equal(split_indices(10, 4.0, 3, seed=1)[0], train)       # whole floats pass
    for n_train, n_valid, message in ((2.5, None, "n_train must be a whole number"), (10, None, r"n_train \(--n-train\)"),
                                      (4, 0, "n_valid must be at least 1"), (4, 7, r"n_valid \(--n-valid\)")):
        with pytest.raises(ValueError, match=message):
            split_indices(10, n_train, n_valid, seed=1)


def _link(name, link):
    def edit(f):
        del f[name]
        f[name] = link
    return edit


def _virtual_z(other):
    def edit(f):
        del f["z"]
        layout = h5py.VirtualLayout(shape=(5,), dtype="i8")
        layout[:] = h5py.VirtualSource(str(other), "z", shape=(5,))
        f.create_virtual_dataset("z", layout)
    return edit


def _external_a(secret):
    def edit(f):
        n = len(f["expansion/a"])
        del f["expansion/a"]
        f["expansion"].create_dataset("a", shape=(n,), dtype="<f8", external=[(str(secret), 0, 8 * n)])
    return edit


def test_files_that_read_other_files_are_refused_when_opened(toy_model, toy_data, tmp_path):
    """Links anywhere in a file (also to a group: another model's expansion was read as this
    one's), data stored in other files and a trajectory's datasets, which are read without
    read_array, are refused by open_hdf5 before anything is read."""
    from gdmlx.md import Simulation, read_trajectory
    secret = tmp_path / "secret.bin"
    secret.write_bytes(b"\x01" * 1000)
    other = tmp_path / "other.h5"
    toy_model.save(other)
    for edit, message in ((_external_a(secret), r"'/expansion/a' takes its data from other files \(external"),
                          (_virtual_z(other), r"'/z' takes its data from other files \(virtual"),
                          (_link("expansion", h5py.ExternalLink(str(other), "/expansion")),
                           "'/expansion' is a link \\(ExternalLink to .*other.h5:/expansion\\)"),
                          (lambda f: f.__setitem__("loop", h5py.SoftLink("/loop")),
                           r"'/loop' is a link \(SoftLink")):
        path = _edit(toy_model, tmp_path / "m.h5", edit)
        with pytest.raises(gdmlx.ModelFileError, match=message):
            gdmlx.load_model(path)
    R, F, E, z = toy_data
    with h5py.File(tmp_path / "d.h5", "w") as f:
        f.attrs.update(e_unit="kcal/mol", r_unit="Ang")
        f["R"], f["F"] = R, F
        f["z"] = h5py.ExternalLink(str(other), "/z")
    with pytest.raises(gdmlx.InputError, match="'/z' is a link"):
        gdmlx.load_dataset(tmp_path / "d.h5")
    traj = tmp_path / "t.h5"
    Simulation(toy_model, R[0], seed=0).run(20, trajectory=traj, progress=False)
    with h5py.File(other, "a") as f:
        f["t"] = np.zeros(100)
    with h5py.File(traj, "a") as f:
        _link("time_fs", h5py.ExternalLink(str(other), "/t"))(f)
    with pytest.raises(gdmlx.InputError, match="'/time_fs' is a link"):
        read_trajectory(traj)


@pytest.mark.parametrize("raised", [OSError("ran off end of input buffer while decoding"),
                                    RuntimeError("integer offset out of bounds"),
                                    SystemError("error return without exception set"),
                                    ValueError("Insufficient precision in available types")])
def test_what_hdf5_raises_on_damaged_files_is_named(toy_model, toy_data, tmp_path, monkeypatch, raised):
    """Bytes flipped in a file made h5py raise these while reading (found by fuzzing): each
    reader names the file, models with ModelFileError, datasets and trajectories with InputError."""
    from gdmlx.md import Simulation, read_last_state, read_trajectory
    R, F, E, z = toy_data
    toy_model.save(tmp_path / "m.h5")
    with h5py.File(tmp_path / "d.h5", "w") as f:
        f["R"], f["z"], f["F"] = R[:2], z, F[:2]
        f.attrs.update(e_unit="kcal/mol", r_unit="Ang")
    Simulation(toy_model, R[0], seed=0).run(20, trajectory=tmp_path / "t.h5", progress=False)

    def damaged(self, key):
        raise raised
    monkeypatch.setattr(h5py.Dataset, "__getitem__", damaged)
    message = f"unreadable .{type(raised).__name__}: {raised}.; the file is truncated"
    with pytest.raises(gdmlx.ModelFileError, match=f"m.h5: {message}"):
        gdmlx.load_model(tmp_path / "m.h5")
    for read, name in ((gdmlx.load_dataset, "d.h5"), (read_trajectory, "t.h5"), (read_last_state, "t.h5")):
        with pytest.raises(gdmlx.InputError, match=f"{name}: {message}"):
            read(tmp_path / name)


def test_a_damaged_deflate_stream_in_an_npz_is_named(toy_data, tmp_path):
    """A flipped byte in a compressed member made zlib raise zlib.error (found by flipping bytes)."""
    import zipfile
    R, F, E, z = toy_data
    path = tmp_path / "d.npz"
    gdmlx.Dataset(R=R, z=z, F=F, E=E).save_npz(path)
    with zipfile.ZipFile(path) as zf:
        info = zf.getinfo("R.npy")
    raw = bytearray(path.read_bytes())
    lengths = raw[info.header_offset + 26:info.header_offset + 30]          # local file header
    start = info.header_offset + 30 + int.from_bytes(lengths[:2], "little") + int.from_bytes(lengths[2:], "little")
    raw[start + 2] ^= 0xFF
    (tmp_path / "bad.npz").write_bytes(bytes(raw))
    with pytest.raises(gdmlx.InputError, match=r"bad.npz: not a readable .npz dataset \(error: Error -3"):
        gdmlx.load_dataset(tmp_path / "bad.npz")


def test_an_action_model_whose_sigma_is_not_its_expansions_is_refused(toy_data, tmp_path):
    """ActionModel.load read sigma and the expansion's without comparing them; read_expansion
    now checks what force and action models hold alike."""
    from gdmlx.action import ActionModel
    R, F, E, z = toy_data
    rng = np.random.default_rng(0)
    action = ActionModel(stride_fs=1.0, sigma=1.0).fit_gradients(
        z, R[:4], rng.standard_normal((4, 5, 3)), rng.standard_normal((4, 5, 3)), rng.standard_normal((4, 5, 3)))
    action.save(tmp_path / "a.h5")
    with edited_file(tmp_path / "a.h5") as f:
        f.attrs["sigma"] = 3.0
    with pytest.raises(gdmlx.ModelFileError, match=r"a.h5: the model's sigma \(3.0\) is not its expansion's"):
        ActionModel.load(tmp_path / "a.h5")


def test_xyz_frames_declaring_more_atoms_than_they_hold_are_refused(tmp_path):
    """ASE's reader spun for hours on this three-line file (gdmlx md --xyz, load_dataset, --restart)."""
    from gdmlx.cli.common import read_start_atoms
    from gdmlx.md import read_last_state
    path = tmp_path / "huge.xyz"
    path.write_text("1000000000000\nProperties=species:S:1:pos:R:3:forces:R:3 energy=1.0\nC 0 0 0 0 0 0\n")
    for read in (gdmlx.load_dataset, read_last_state, read_start_atoms):
        with pytest.raises(gdmlx.InputError, match="declares 1000000000000 atoms"):
            read(path)


def test_an_npy_header_cut_short_is_named(tmp_path):
    """A flipped byte in an .npy header made numpy's header parser raise tokenize.TokenError."""
    import struct
    import zipfile
    header = b"{'descr': '<f8', 'fortran_order': False, 'shape': (3,"
    header += b" " * (118 - len(header)) + b"\n"
    with zipfile.ZipFile(tmp_path / "d.npz", "w") as zf:
        zf.writestr("R.npy", b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header + bytes(24))
    with pytest.raises(gdmlx.InputError, match="d.npz: not a readable .npz dataset"):
        gdmlx.load_dataset(tmp_path / "d.npz")


def test_a_dataset_with_a_few_nan_geometries_names_them(toy_data, tmp_path):
    """Only the first bad index was named, and not what to do."""
    R, F, E, z = toy_data
    F = F.copy()
    F[[5, 17, 18], 1, 2] = np.nan
    np.savez(tmp_path / "d.npz", R=R, z=z, E=E, F=F)
    with pytest.raises(gdmlx.InputError, match=r"d.npz: F contains NaN or inf \(first at index \(5, 1, 2\)\) "
                                               r"in 3 of 60 geometries \(5, 17, 18\): leave those geometries out"):
        gdmlx.load_dataset(tmp_path / "d.npz")
    E = E.copy()
    E[np.arange(0, 60, 5)] = np.inf
    with pytest.raises(gdmlx.InputError, match=r"E contains NaN or inf .* in 12 of 60 geometries "
                                               r"\(0, 5, 10, 15, 20, \.\.\.\)"):
        gdmlx.Dataset(R=R, z=z, F=toy_data[1], E=E)
