"""Getting data in and out: load_dataset on every format, Dataset's API, units."""

import warnings

import h5py
import numpy as np
import pytest

import gdmlx
from gdmlx import Dataset, load_dataset
from gdmlx.errors import InputError


def _water(n=6, seed=0, **kw):
    rng = np.random.default_rng(seed)
    R = np.array([[0.0, 0.0, 0.0], [0.96, 0.0, 0.0], [-0.24, 0.93, 0.0]]) + rng.normal(0, 0.02, (n, 3, 3))
    return Dataset(R=R, z=np.array([8, 1, 1]), F=rng.normal(0, 1, (n, 3, 3)), E=rng.normal(0, 1, n), **kw)


def _same(a, b):
    for k in ("R", "z", "F", "E", "lattice"):
        x, y = getattr(a, k), getattr(b, k)
        assert (x is None) == (y is None), k
        if x is not None:
            assert x.dtype == y.dtype and np.array_equal(x, y), k
    for k in ("energy_unit", "length_unit", "name", "theory"):
        assert getattr(a, k) == getattr(b, k), k


def test_dataset_archives_are_read_by_their_contents_not_their_suffix(tmp_path):
    ds = _water(energy_unit="Ha", length_unit="bohr", name="w", theory="DFT", lattice=4.0 * np.eye(3))
    ds.save_npz(tmp_path / "data")                     # np.savez to a file: no .npz is appended
    assert (tmp_path / "data").exists()
    _same(load_dataset(tmp_path / "data"), ds)
    ds.save_npz(tmp_path / "npz.h5")                   # an .npz under an HDF5 name
    _same(load_dataset(tmp_path / "npz.h5"), ds)
    with h5py.File(tmp_path / "data.hdf", "w") as f:
        for k in ("R", "z", "F", "E"):
            f[k] = getattr(ds, k)
        f.attrs.update(e_unit="eV", r_unit="Ang", name="h")
    got = load_dataset(tmp_path / "data.hdf")
    assert np.array_equal(got.R, ds.R) and got.energy_unit == "eV" and got.name == "h"
    with pytest.raises(InputError, match="energy_key and forces_key"):
        load_dataset(tmp_path / "data", energy_key="REF_energy")


@pytest.mark.parametrize("lattice, message", [
    (np.array([1.0, 2.0]), r"lattice must be a \(3, 3\) array of cell vectors, got shape \(2,\)"),
    (np.full((3, 3), np.nan), "lattice contains NaN or inf"),
    (np.array("abc"), "lattice must be real numbers"),
])
def test_a_bad_lattice_is_refused_naming_the_file(tmp_path, lattice, message):
    ds = _water()
    np.savez(tmp_path / "d.npz", R=ds.R, z=ds.z, F=ds.F, E=ds.E, lattice=lattice)
    with pytest.raises(InputError, match="d.npz: " + message):
        load_dataset(tmp_path / "d.npz")


def test_a_lattice_given_as_a_list_converts_with_the_length_unit():
    ds = _water(length_unit="bohr", lattice=[[5, 0, 0], [0, 5, 0], [0, 0, 5]])
    assert ds.lattice.dtype == np.float64
    assert np.array_equal(ds.in_units("kcal/mol", "bohr").lattice, 5.0 * np.eye(3))
    assert np.allclose(ds.in_units("kcal/mol", "Ang").lattice, 5 * 0.52917721 * np.eye(3), rtol=1e-8)


def test_subsets_by_index_slice_list_and_mask_keep_everything_but_the_other_geometries():
    ds = _water(energy_unit="Ha", length_unit="bohr", name="w", theory="DFT", lattice=4.0 * np.eye(3))
    for idx, rows in [(2, [2]), (np.int64(-1), [5]), (slice(1, 4), [1, 2, 3]), ([0, 0, 5], [0, 0, 5]),
                      (ds.E > 0, np.flatnonzero(ds.E > 0))]:
        sub = ds.subset(idx)
        assert len(sub) == len(rows)
        assert np.array_equal(sub.R, ds.R[rows]) and np.array_equal(sub.F, ds.F[rows])
        assert np.array_equal(sub.E, ds.E[rows]) and np.array_equal(sub.z, ds.z)
        assert (sub.energy_unit, sub.length_unit, sub.name, sub.theory) == ("Ha", "bohr", "w", "DFT")
        assert np.array_equal(sub.lattice, ds.lattice)
    with pytest.raises(IndexError):
        ds.subset(6)


def _h5(path, arrays, attrs):
    with h5py.File(path, "w") as f:
        for k, v in arrays.items():
            f[k] = v
        f.attrs.update(attrs)
    return path


def test_hdf5_datasets_round_trip_exactly_and_say_what_is_missing_or_ambiguous(tmp_path):
    ds = _water(energy_unit="eV", length_unit="bohr", name="w", theory="CCSD(T)", lattice=4.5 * np.eye(3))
    arrays = {k: getattr(ds, k) for k in ("R", "z", "F", "E", "lattice")}
    units = dict(e_unit="eV", r_unit="bohr")
    _same(load_dataset(_h5(tmp_path / "a.h5", arrays, {**units, "name": "w", "theory": "CCSD(T)"})), ds)
    as_datasets = {**arrays, **units, "name": "w", "theory": "CCSD(T)"}     # texts as datasets
    _same(load_dataset(_h5(tmp_path / "b.h5", as_datasets, {})), ds)
    # another program's HDF5 file: what a dataset needs is named first, not the units
    with pytest.raises(InputError, match=r"c.h5: not a dataset: it lacks R, z, F"):
        load_dataset(_h5(tmp_path / "c.h5", {"coords": ds.R}, {}))
    with pytest.raises(InputError, match=r"d.h5: an HDF5 dataset must say its units \(r_unit missing"):
        load_dataset(_h5(tmp_path / "d.h5", arrays, {"e_unit": "eV"}))
    # an attribute R beside the dataset R was silently read instead of it
    with pytest.raises(InputError, match="e.h5: R is both a dataset and an attribute"):
        load_dataset(_h5(tmp_path / "e.h5", arrays, {**units, "R": np.zeros(3)}))
    with pytest.raises(InputError, match="f.h5: e_unit is both a dataset and an attribute"):
        load_dataset(_h5(tmp_path / "f.h5", {**arrays, "e_unit": "Ha"}, units))


def test_an_energy_key_that_is_not_a_number_names_the_file_and_frame(tmp_path):
    import ase
    import ase.io
    frames = []
    for i, e in enumerate([-1.0, "abc", -1.2]):
        a = ase.Atoms("OH2", positions=_water().R[i])
        a.info.update(REF_energy=e, moments=np.array([1.0, 2.0]))
        a.arrays["REF_forces"] = _water().F[i]
        frames.append(a)
    ase.io.write(tmp_path / "d.xyz", frames, format="extxyz")
    with pytest.raises(InputError, match=r"d.xyz: frame 1: its energy 'REF_energy' is 'abc', not a number"):
        load_dataset(tmp_path / "d.xyz", energy_key="REF_energy", forces_key="REF_forces")
    with pytest.raises(InputError, match=r"d.xyz: frame 0: its energy 'moments' is array\(\[1\., 2\.\]\)"):
        load_dataset(tmp_path / "d.xyz", energy_key="moments", forces_key="REF_forces")


def test_periodic_frames_keep_their_cell_and_frames_of_other_cells_are_refused(tmp_path):
    import ase
    import ase.io
    from ase.calculators.singlepoint import SinglePointCalculator
    ds = _water(3)
    frames = []
    for i, side in enumerate([10.0, 10.0, 10.5]):
        a = ase.Atoms("OH2", positions=ds.R[i], cell=side * np.eye(3), pbc=True)
        a.calc = SinglePointCalculator(a, energy=float(ds.E[i]), forces=ds.F[i])
        frames.append(a)
    ase.io.write(tmp_path / "same.xyz", frames[:2], format="extxyz")
    assert np.array_equal(load_dataset(tmp_path / "same.xyz").lattice, 10.0 * np.eye(3))
    ase.io.write(tmp_path / "npt.xyz", frames, format="extxyz")       # frame 0's cell was kept for all
    with pytest.raises(InputError, match="npt.xyz: frame 2 has another cell than frame 0"):
        load_dataset(tmp_path / "npt.xyz")


def test_datasets_compare_by_their_contents():
    ds = _water(energy_unit="Ha", length_unit="bohr", name="w", lattice=4.0 * np.eye(3))
    assert ds == ds.subset(slice(None)) == ds.in_units("Ha", "bohr")
    assert ds != ds.subset([0, 1]) and ds != ds.in_units("eV", "bohr") and ds != _water(name="w")
    assert ds != Dataset(ds.R, ds.z, ds.F, None, "Ha", "bohr", "w", lattice=ds.lattice)   # no energies
    assert ds != "a dataset"


def test_an_xyz_in_sgdmls_own_format_is_named_as_such(tmp_path):
    """Energy on the comment line, forces after the positions: ASE reads neither, and the
    message offered energy_key=..., which cannot name a number that changes every frame."""
    frame = "3\n{e}\nO 0 0 0 0.1 0.2 0.3\nH 0.96 0 0 0.1 0.2 0.3\nH -0.24 0.93 0 -0.2 -0.4 -0.6\n"
    (tmp_path / "sgdml.xyz").write_text(frame.format(e=-76.4) + frame.format(e=-76.5))
    with pytest.raises(InputError, match=r"sgdml.xyz: frame 0 has no forces .*comment line holds a bare "
                                         r"number \(-76.4\), as in sGDML's own xyz format"):
        load_dataset(tmp_path / "sgdml.xyz")


def test_repr_says_what_the_dataset_holds():
    ds = _water(energy_unit="eV", name="w", lattice=5.0 * np.eye(3))
    assert repr(ds) == "Dataset(w: 6 geometries of H2O, energies and forces in eV and Ang, periodic)"
    one = Dataset(ds.R[0], ds.z, ds.F[0])
    assert repr(one) == "Dataset(unnamed: 1 geometry of H2O, forces in kcal/mol and Ang)"


def test_npz_members_without_the_npy_suffix_are_read_and_checked(tmp_path):
    """numpy reads a member named 'R' like 'R.npy'; the size check looked up 'R.npy' only and
    raised a bare KeyError (also from gdmlx info)."""
    import io
    import zipfile
    ds = _water(energy_unit="eV", name="w")
    arrays = dict(R=ds.R, z=ds.z, F=ds.F, E=ds.E, e_unit=np.array("eV"), name=np.array("w"))

    def archive(path, arrays, raw=()):
        with zipfile.ZipFile(path, "w") as zf:
            for k, v in arrays.items():
                buf = io.BytesIO()
                np.save(buf, v)
                zf.writestr(k if k in ("R", "e_unit") else f"{k}.npy", buf.getvalue())
            for k, data in raw:
                zf.writestr(k, data)
        return path

    _same(load_dataset(archive(tmp_path / "a.npz", arrays)), ds)
    from gdmlx.file_kinds import file_kind
    assert file_kind(tmp_path / "a.npz") == "dataset"
    header = io.BytesIO()
    np.save(header, np.zeros((1000, 3, 3)))            # declares 72 kB, holds 128 bytes of it
    cut = {k: v for k, v in arrays.items() if k != "F"}
    with pytest.raises(InputError, match="b.npz: 'F' declares 72000 bytes but holds 128"):
        load_dataset(archive(tmp_path / "b.npz", cut, [("F", header.getvalue()[:256])]))


def test_an_object_array_in_an_npz_is_named_and_never_unpickled(tmp_path):
    ds = _water()
    np.savez(tmp_path / "d.npz", R=ds.R, z=ds.z, F=ds.F, E=ds.E, theory=None, notes=np.array([{}]))
    with pytest.raises(InputError, match=r"d.npz: not a readable .npz dataset: 'theory' holds object \(pickled\) arrays"):
        load_dataset(tmp_path / "d.npz")
    np.savez(tmp_path / "e.npz", R=ds.R, z=ds.z, F=ds.F, E=ds.E, notes=np.array([{}]))   # not a dataset key
    assert np.array_equal(load_dataset(tmp_path / "e.npz").F, ds.F)


def test_a_revised_md17_file_says_how_to_convert_it(tmp_path):
    ds = _water()
    np.savez(tmp_path / "rmd17_water.npz", coords=ds.R, nuclear_charges=ds.z, energies=ds.E, forces=ds.F,
             old_indices=np.arange(6))
    with pytest.raises(InputError, match=r"rmd17_water.npz: the revised MD17 layout .*d\['coords'\]"):
        load_dataset(tmp_path / "rmd17_water.npz")
    d = np.load(tmp_path / "rmd17_water.npz")          # the conversion it gives works
    Dataset(R=d["coords"], z=d["nuclear_charges"], E=d["energies"], F=d["forces"]).save_npz(tmp_path / "w.npz")
    assert np.array_equal(load_dataset(tmp_path / "w.npz").F, ds.F)


def test_atomic_units_name_hartree_and_bohr_for_energies_as_for_lengths():
    """'au' was bohr for lengths but unknown for energies: a dataset in atomic units
    (e_unit='au', r_unit='au') could not be converted or used."""
    ds = _water(energy_unit="au", length_unit="au")
    kcal = ds.in_units("kcal/mol", "Ang")
    hartree_kcal, bohr = 627.509474, 0.529177211       # kcal/mol per Hartree, Angstrom per bohr
    assert np.allclose(kcal.E, ds.E * hartree_kcal, rtol=1e-6)
    assert np.allclose(kcal.F, ds.F * hartree_kcal / bohr, rtol=1e-6)
    assert np.allclose(kcal.R, ds.R * bohr, rtol=1e-8)
    assert ds.in_units("Ha", "bohr") == Dataset(ds.R, ds.z, ds.F, ds.E, "Ha", "bohr")
    assert np.array_equal(_water(energy_unit="A.U.", length_unit="a.u.").in_units("Hartree", "Bohr").F, ds.F)
    with pytest.raises(InputError, match=r"unknown energy unit 'meV'; known: \['a.u.', 'au', 'eh'"):
        ds.in_units("meV", "Ang")


def test_texts_are_stored_as_texts_so_that_saved_files_load(tmp_path):
    """name=None was saved by np.savez as an object array, which load_dataset refuses."""
    ds = _water(name=None, theory=None)
    assert (ds.name, ds.theory) == ("", "")
    ds.save_npz(tmp_path / "a.npz")
    _same(load_dataset(tmp_path / "a.npz"), ds)
    ds = _water(energy_unit=np.str_("eV"), name=np.array("w"), theory=b"DFT")
    assert (type(ds.energy_unit), ds.name, ds.theory) == (str, "w", "DFT")
    ds.save_npz(tmp_path / "b.npz")
    _same(load_dataset(tmp_path / "b.npz"), ds)
    with pytest.raises(InputError, match="energy_unit must be a text, got NoneType None"):
        _water(energy_unit=None)


def test_commands_name_coinciding_atoms_by_their_index_in_the_file(tmp_path, capsys):
    """The training and test subsets' checks named their own index (R[2] for the file's R[3])
    and not the file."""
    from gdmlx.cli.main import main
    ds = _water(n=12)
    ds.R[3, 1] = ds.R[3, 0]
    ds.save_npz(tmp_path / "coinc.npz")
    assert main(["train", str(tmp_path / "coinc.npz"), "--n-train", "10", "-o", str(tmp_path / "m.h5")]) == 2
    err = capsys.readouterr().err
    assert f"{tmp_path / 'coinc.npz'}: R[3]: atoms 0 and 1 are 0 Ang apart" in err and "atoms coincide" in err


def test_compressed_xyz_declaring_too_many_atoms_is_refused_at_once(tmp_path):
    """ASE reads data.xyz.gz as an .xyz, and a frame declaring 10^12 atoms kept it reading;
    the atom-count check skipped compressed files."""
    import gzip
    with gzip.open(tmp_path / "big.xyz.gz", "wt") as fh:
        fh.write("1000000000000\nc\nH 0 0 0\n")
    with pytest.raises(InputError, match=r"frame 0 \(line 1\) declares 1000000000000 atoms, but 1 atom line follows it"):
        load_dataset(tmp_path / "big.xyz.gz")


def test_info_on_an_unreadable_file_does_not_call_it_a_model(tmp_path, capsys):
    from gdmlx.cli.main import main
    _water().save_npz(tmp_path / "d.npz")
    data = (tmp_path / "d.npz").read_bytes()
    (tmp_path / "cut.npz").write_bytes(data[:len(data) // 2])
    assert main(["info", str(tmp_path / "cut.npz")]) == 2
    assert "neither a readable model nor a dataset or trajectory" in capsys.readouterr().err


def test_an_npz_without_units_is_read_in_sgdmls_units_with_a_warning(toy_data, tmp_path):
    """A hand-made .npz without e_unit / r_unit was read as kcal/mol and A without a word:
    eV data so read give the ASE calculator forces 23x too weak."""
    R, F, E, z = toy_data
    np.savez(tmp_path / "d.npz", R=R, z=z, F=F, E=E, r_unit="Ang")
    with pytest.warns(UserWarning, match="records no e_unit: assuming kcal/mol .sGDML's default.") as rec:
        ds = gdmlx.load_dataset(tmp_path / "d.npz")
    assert rec[0].filename == __file__ and (ds.energy_unit, ds.length_unit) == ("kcal/mol", "Ang")
    gdmlx.Dataset(R=R, z=z, F=F, E=E, energy_unit="eV").save_npz(tmp_path / "e.npz")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert gdmlx.load_dataset(tmp_path / "e.npz").energy_unit == "eV"
