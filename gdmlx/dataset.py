"""Reference datasets: geometries, atomic numbers, energies and forces, with units.

Formats read: sGDML ``.npz`` (R, z, E, F, r_unit, e_unit, ...), gdmlx ``.h5`` (same names),
and anything ASE reads with energies and forces (extended XYZ, ...; converted from eV and
eV/A to kcal/mol and A). Written: sGDML-compatible ``.npz`` with its ``md5`` fingerprint.
"""

import hashlib
import os
import warnings
import zipfile
from dataclasses import dataclass

import h5py
import numpy as np
from ase.data import chemical_symbols
from ase.formula import Formula

from gdmlx.atomic_write import atomic_path
from gdmlx.errors import InputError, user_stacklevel
from gdmlx.file_kinds import check_kind, file_kind
from gdmlx.hdf5_files import open_hdf5, read_array, read_errors
from gdmlx.npz_files import read_npz
from gdmlx.units import energy_in_ev, length_in_ang
from gdmlx.validation import (as_float_array, check_atomic_numbers, check_energies, check_forces,
                              check_geometries, check_molecule_size, check_xyz_atom_counts)

EV_TO_KCAL_MOL = 1.0 / energy_in_ev("kcal/mol")


def chemical_formula(z):
    """Hill formula of atomic numbers ``z`` ("C2H6O")."""
    return Formula.from_list([chemical_symbols[int(k)] for k in z]).format("hill")


@dataclass(repr=False, eq=False)
class Dataset:
    """Geometries and labels of one molecule.

    R (n, N, 3) [length_unit]; z (N,); E (n,) [energy_unit] or None;
    F (n, N, 3) [energy_unit / length_unit]; lattice (3, 3) or None; ``name`` and ``theory``
    texts (the molecule, the reference method) written to .npz files. ``source_md5``: the
    sGDML fingerprint of the arrays as a file stored them, when their types differ from
    the float64 and int64 they are read into (float32 data, uint8 atomic numbers), so that
    models fitted by sGDML on that file recognise it (:func:`gdmlx.splits.trained_on`).
    """

    R: np.ndarray
    z: np.ndarray
    F: np.ndarray
    E: np.ndarray | None = None
    energy_unit: str = "kcal/mol"
    length_unit: str = "Ang"
    name: str = ""
    theory: str = ""
    lattice: np.ndarray | None = None
    source_md5: bytes | None = None

    def __post_init__(self):
        self.R = check_geometries(self.R)
        self.z = check_atomic_numbers(self.z, self.R.shape[1])
        check_molecule_size(len(self.z))
        self.F = check_forces(self.F, self.R.shape)
        if self.E is not None:          # one geometry's energy may be a number, as its R and F are (N, 3)
            E = np.reshape(self.E, 1) if np.ndim(self.E) == 0 and len(self.R) == 1 else self.E
            self.E = check_energies(E, len(self.R), "E")
        if self.lattice is not None:
            self.lattice = _check_lattice(self.lattice)
        for key in ("energy_unit", "length_unit", "name", "theory"):   # texts, so save_npz writes texts
            setattr(self, key, _as_text(getattr(self, key), key))

    def __len__(self):
        return len(self.R)

    def __eq__(self, other):
        """Equal: the same arrays (values and shapes; None where the other has None), units,
        name and theory. (The generated comparison raised numpy's 'truth value of an array
        is ambiguous'.)"""
        if not isinstance(other, Dataset):
            return NotImplemented
        same = all((a is None and b is None) or (a is not None and b is not None and np.array_equal(a, b))
                   for a, b in ((getattr(self, k), getattr(other, k)) for k in ("R", "z", "F", "E", "lattice")))
        return same and all(getattr(self, k) == getattr(other, k)
                            for k in ("energy_unit", "length_unit", "name", "theory"))

    __hash__ = None                     # mutable, like the generated comparison made it

    def __repr__(self):
        return (f"Dataset({self.name or 'unnamed'}: {len(self)} geometr{'y' if len(self) == 1 else 'ies'} of "
                f"{chemical_formula(self.z)}, "
                f"{'energies and ' if self.E is not None else ''}forces in {self.energy_unit} and "
                f"{self.length_unit}{', periodic' if self.lattice is not None else ''})")

    def subset(self, idx):
        """A new Dataset with the geometries ``idx`` (indices, a slice or a boolean mask; one
        index gives a dataset of one geometry), with its own arrays (a slice's are copied, not
        views of this dataset's)."""
        if isinstance(idx, (int, np.integer)) and not isinstance(idx, (bool, np.bool_)):
            idx = [idx]                          # keeps the geometry axis (E[i] would be a scalar)
        try:
            self.R[idx]
        except IndexError as exc:                # numpy's message names neither the dataset nor its size
            raise IndexError(f"subset of a dataset of {len(self)} geometries: {exc}") from None
        R, F, E = (None if a is None else np.array(a[idx]) for a in (self.R, self.F, self.E))
        return Dataset(R, self.z, F, E, self.energy_unit, self.length_unit, self.name, self.theory,
                       self.lattice)

    def in_units(self, energy_unit, length_unit):
        """A copy of the dataset in other units (names as in :mod:`gdmlx.units`)."""
        e = energy_in_ev(self.energy_unit) / energy_in_ev(energy_unit)
        a = length_in_ang(self.length_unit) / length_in_ang(length_unit)
        return Dataset(self.R * a, self.z, self.F * (e / a), None if self.E is None else self.E * e,
                       energy_unit, length_unit, self.name, self.theory,
                       None if self.lattice is None else self.lattice * a)

    def md5(self):
        """sGDML's dataset fingerprint (md5 of md5s of z, R, E, F) of the arrays as they are
        now, as bytes."""
        return fingerprint(self.z, self.R, self.E, self.F)

    def save_npz(self, path):
        """Write an sGDML-compatible ``.npz`` (with ``md5``), atomically."""
        arrays = dict(R=self.R, z=self.z, F=self.F, name=self.name, theory=self.theory,
                      r_unit=self.length_unit, e_unit=self.energy_unit, type="d", md5=self.md5())
        if self.E is not None:
            arrays["E"] = self.E[:, None]
        if self.lattice is not None:
            arrays["lattice"] = self.lattice
        with atomic_path(path) as tmp:
            with open(tmp, "wb") as fh:
                np.savez_compressed(fh, **arrays)


def _as_text(value, key):
    """``value`` of a Dataset's text field as a str: None is "" for name and theory."""
    if value is None and key in ("name", "theory"):
        return ""
    value = value.item() if isinstance(value, np.ndarray) and value.size == 1 else value
    if isinstance(value, bytes):
        return value.decode()
    if not isinstance(value, str):
        raise InputError(f"{key} must be a text, got {type(value).__name__} {value!r}")
    return str(value)


def _check_lattice(lattice):
    """The lattice as a finite float64 (3, 3) array (its rows the cell vectors)."""
    lattice = as_float_array(lattice, "lattice")
    if lattice.shape != (3, 3):
        raise InputError(f"lattice must be a (3, 3) array of cell vectors, got shape {lattice.shape}")
    if not np.all(np.isfinite(lattice)):
        raise InputError(f"lattice contains NaN or inf: {lattice.tolist()}")
    return np.array(lattice)


def fingerprint(z, R, E, F):
    """sGDML's dataset fingerprint of arrays as they are (their bytes), as bytes."""
    h = hashlib.md5()
    for a in (z, R) + (() if E is None else (E,)) + (F,):
        h.update(hashlib.md5(np.ascontiguousarray(a).ravel()).digest())
    return h.hexdigest().encode()


def load_dataset(path, *, energy_key=None, forces_key=None):
    """Read a dataset from ``.npz`` (sGDML), ``.h5``/``.hdf5`` (gdmlx) or an ASE-readable file.

    ASE formats (extended XYZ, .traj, .db, ...) are in eV and Angstrom, with energies and
    forces where ASE puts a calculator's results (``energy=`` on an extended XYZ comment
    line, a ``forces`` column); ``energy_key`` and ``forces_key`` read them from other names
    of the frames' info and per-atom arrays instead (``"REF_energy"``, ``"REF_forces"``).
    """
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"no such file: {path}")
    if os.path.isdir(path):
        raise IsADirectoryError(f"{path} is a directory, not a dataset")
    check_kind(path, ("dataset",), "a dataset", InputError)
    fmt = _archive_format(path)
    if fmt is not None:
        if energy_key is not None or forces_key is not None:
            raise InputError(f"{path}: energy_key and forces_key name the labels of ASE formats "
                             "(extended XYZ, .traj, .db); .npz and .h5 datasets hold E and F")
        return _load_npz(path) if fmt == ".npz" else _load_h5(path)
    return _load_ase(path, energy_key, forces_key)


def read_by_ase(path):
    """True when :func:`load_dataset` reads the existing file ``path`` with ASE (in eV and A,
    converted to kcal/mol and A), False for .npz and .h5 datasets (in their own units)."""
    return _archive_format(os.fspath(path)) is None


def _archive_format(path):
    """".npz" or ".h5" for the dataset archive ``path`` (by content, else by suffix), None
    for the files ASE reads."""
    ext = os.path.splitext(path)[1].lower()
    return _container(path) or (".npz" if ext == ".npz" else ".h5" if ext in (".h5", ".hdf5") else None)


def _container(path):
    """".npz" or ".h5" for a dataset archive, told by its contents whatever its name
    (``save_npz("data")`` writes no suffix, ``save_npz("data.h5")`` an .npz); None for other
    files (ASE's formats; damaged archives, which their suffix sends to their reader)."""
    if file_kind(path) != "dataset":
        return None
    return ".h5" if h5py.is_hdf5(path) else ".npz" if zipfile.is_zipfile(path) else None


_NPZ_KEYS = ("R", "z", "F", "E", "e_unit", "r_unit", "name", "theory", "lattice")


def _load_npz(path):
    arrays, names = read_npz(path, _NPZ_KEYS, InputError, ".npz dataset")
    if not {"R", "z", "F"} & set(arrays) and {"coords", "nuclear_charges", "forces"} <= names:
        raise InputError(f"{path}: the revised MD17 layout (coords, nuclear_charges, energies, forces; "
                         "kcal/mol and Angstrom), not sGDML's (R, z, E, F): d = numpy.load(path); "
                         "gdmlx.Dataset(R=d['coords'], z=d['nuclear_charges'], E=d['energies'], "
                         "F=d['forces']).save_npz('data.npz') converts it")
    missing = [k for k in ("R", "z", "F") if k not in arrays]
    if missing:
        raise InputError(f"{path}: dataset lacks {', '.join(missing)} (an .npz dataset holds R, z, F and "
                         f"optionally E, e_unit, r_unit; this one holds {', '.join(sorted(names))})")
    misnamed = [(k, sgdml) for k, sgdml in (("energy_unit", "e_unit"), ("length_unit", "r_unit"))
                if k in names and sgdml not in names]
    if misnamed:                    # gdmlx.Dataset's names: the file's units would be taken for sGDML's default
        raise InputError(f"{path}: an .npz dataset's units are {' and '.join(s for _, s in misnamed)} (sGDML's "
                         f"names), not {' and '.join(k for k, _ in misnamed)}: rename them")
    assumed = [(k, unit) for k, unit in (("e_unit", "kcal/mol"), ("r_unit", "Ang")) if k not in arrays]
    if assumed:                     # sGDML's defaults, but said: eV data read as kcal/mol give the
        warnings.warn(              # calculator 23x too weak forces
            f"{path} records no {' or '.join(k for k, _ in assumed)}: assuming "
            f"{' and '.join(u for _, u in assumed)} (sGDML's default); if the data are in other units, "
            "write them: gdmlx.Dataset(..., energy_unit=..., length_unit=...).save_npz(path)",
            UserWarning, stacklevel=user_stacklevel())
    unread = sorted(k for k in names if "energ" in k.lower())
    if "E" not in arrays and unread:
        warnings.warn(f"{path} holds no E: read without energies; its {', '.join(map(repr, unread))} "
                      f"{'is' if len(unread) == 1 else 'are'} not read (an .npz dataset's energies are E)",
                      UserWarning, stacklevel=user_stacklevel())
    return _from_mapping(arrays, path)


def _load_h5(path):
    with open_hdf5(path, "dataset", InputError) as f, read_errors(path, InputError):
        data = {k: read_array(f, k, InputError) for k in _ARRAY_KEYS if k in f}
        data.update({k: _h5_text(f, k) for k in _NPZ_KEYS if k in f and k not in _ARRAY_KEYS})
        both = [k for k in _NPZ_KEYS if k in data and k in f.attrs]
        if both:
            raise InputError(f"{path}: {', '.join(both)} {'is' if len(both) == 1 else 'are'} both a dataset "
                             "and an attribute of the file's root: keep one")
        data.update({k: f.attrs[k] for k in _NPZ_KEYS if k in f.attrs})
        held = sorted(f)
    missing = [k for k in ("R", "z", "F") if k not in data]
    if missing:
        raise InputError(f"{path}: not a dataset: it lacks {', '.join(missing)} (a gdmlx .h5 dataset holds "
                         f"R, z, F and optionally E, with attrs e_unit and r_unit; this one holds "
                         f"{', '.join(held) or 'nothing'} at its root)")
    missing = [k for k in ("e_unit", "r_unit") if k not in data]
    if missing:
        raise InputError(f"{path}: an HDF5 dataset must say its units ({' and '.join(missing)} missing; "
                         "e.g. attrs e_unit='kcal/mol', r_unit='Ang')")
    return _from_mapping(data, path)


_ARRAY_KEYS = ("R", "z", "F", "E", "lattice")


def _h5_text(f, key):
    """A text stored as a dataset (``name``, ``theory``, units), checked to be one."""
    ds = f[key]
    if not isinstance(ds, h5py.Dataset) or ds.size > 1 or ds.dtype.kind not in "SUO":
        raise InputError(f"{f.filename}: '{key}' must be a text, got {getattr(ds, 'dtype', type(ds).__name__)}")
    return ds[()]


def _from_mapping(d, path):
    """The Dataset of arrays and texts ``d`` (R, z, F present) read from ``path``."""
    try:
        ds = Dataset(R=d["R"], z=d["z"], F=d["F"], E=d.get("E"),
                     energy_unit=_text(d, "e_unit", "kcal/mol"),
                     length_unit=_text(d, "r_unit", "Ang"), name=_text(d, "name"),
                     theory=_text(d, "theory"), lattice=d.get("lattice"))
    except InputError as exc:
        raise InputError(f"{path}: {exc}") from None
    stored = {k: np.asarray(d[k]) for k in ("z", "R", "E", "F") if k in d}
    read = {"z": ds.z, "R": ds.R, "E": ds.E, "F": ds.F}
    if any(a.dtype != read[k].dtype for k, a in stored.items()):      # float32, uint8, ... on file
        ds.source_md5 = fingerprint(stored["z"], stored["R"], stored.get("E"), stored["F"])
    return ds


def _text(d, key, default=""):
    v = d.get(key, default)
    if isinstance(v, np.ndarray) and v.size != 1:
        raise InputError(f"'{key}' must be one text, got an array of shape {v.shape}")
    v = v.item() if isinstance(v, np.ndarray) else v
    return v.decode() if isinstance(v, bytes) else str(v)


def _load_ase(path, energy_key, forces_key):
    check_xyz_atom_counts(path)
    frames = []
    try:
        frames.extend(read_ase_frames(path))      # one by one: the frames before one ASE cannot parse are kept
    except Exception as exc:   # ASE raises many types for unreadable files
        why = f"{type(exc).__name__}: {exc}"
        if frames:
            raise InputError(f"{path}: ASE cannot read frame {len(frames)} (the {len(frames)} before it read) "
                             f"({why})") from None
        raise InputError(f"{path}: not a file ASE can read as geometries ({why})") from None
    if not frames:
        raise InputError(f"{path} holds no frames")
    z = frames[0].numbers
    for i, a in enumerate(frames):
        if len(a) != len(z):
            raise InputError(f"{path}: frames have different numbers of atoms (frame 0: {len(z)}, frame {i}: "
                             f"{len(a)}); a dataset holds one molecule")
        if sorted(a.numbers) != sorted(z):
            raise InputError(f"{path}: frame {i} holds {chemical_formula(a.numbers)} and frame 0 "
                             f"{chemical_formula(z)}: a dataset holds one molecule")
        if not np.array_equal(a.numbers, z):
            k = int(np.flatnonzero(a.numbers != z)[0])
            raise InputError(f"{path}: frame {i} lists its atoms in another order than frame 0 (atom {k}: "
                             f"{chemical_symbols[a.numbers[k]]} there, {chemical_symbols[z[k]]} in frame 0): a "
                             "dataset lists them in one order")
    R = np.array([a.positions for a in frames])
    bad = np.flatnonzero(~np.isfinite(R).all(axis=(1, 2)))
    if len(bad):            # before the labels: ASE drops a frame's energy and forces when its positions are NaN
        raise InputError(f"{path}: frame {bad[0]} has positions that are NaN or inf ({len(bad)} of {len(frames)} "
                         "frames): leave those frames out")
    F = np.array([_frame_forces(a, i, forces_key, path) for i, a in enumerate(frames)]) * EV_TO_KCAL_MOL
    E = _frame_energies(frames, energy_key, path)
    periodic = [bool(a.pbc.any()) for a in frames]
    if any(periodic) and not all(periodic):
        raise InputError(f"{path}: frame {periodic.index(not periodic[0])} is {'not ' if periodic[0] else ''}"
                         f"periodic and frame 0 is{'' if periodic[0] else ' not'}: a dataset is one or the other")
    if periodic[0]:
        cells = np.array([a.cell.array for a in frames])
        other = np.flatnonzero(np.any(cells != cells[0], axis=(1, 2)))
        if len(other):
            raise InputError(f"{path}: frame {other[0]} has another cell than frame 0 ({cells[other[0]].tolist()} "
                             f"and {cells[0].tolist()}): a dataset holds one lattice")
    try:                                          # a lattice is kept, which the command line refuses
        return Dataset(R=R, z=z, F=F, E=E, name=os.path.basename(path),
                       lattice=frames[0].cell.array.copy() if periodic[0] else None)
    except InputError as exc:
        raise InputError(f"{path}: {exc}") from None


def read_ase_frames(path):
    """The frames of a file ASE reads, one by one; an ASE database's rows with their
    key_value_pairs in ``info`` and their (N, 3) data arrays in ``arrays``, which ``ase.io``
    drops, so that ``energy_key`` and ``forces_key`` name them as they name an extended
    XYZ file's."""
    import ase.db
    import ase.io
    from ase.io.formats import filetype
    if filetype(path) not in ("db", "json"):
        yield from ase.io.iread(path, index=":")
        return
    with ase.db.connect(path) as db:
        for row in db.select():
            a = row.toatoms()
            a.info.update(row.key_value_pairs)
            a.arrays.update({k: np.asarray(v) for k, v in row.data.items()
                             if np.shape(v) == (len(a), 3) and k not in a.arrays})
            yield a


def _labels_hint(atoms, path):
    """What a frame without ASE's energy or forces holds instead, and how to read it."""
    info = sorted(k for k, v in atoms.info.items() if np.ndim(v) == 0)
    arrays = sorted(k for k in atoms.arrays if k not in ("numbers", "positions"))
    number = [k for k in info if _is_number(k)]
    if number and not arrays:            # ASE took the comment line's number for a key
        return (f"its comment line holds a bare number ({number[0]}), as in sGDML's own xyz format "
                "(the energy on the comment line, forces after the positions), which ASE reads without "
                "energies or forces and which does not say its units: read the numbers yourself and "
                "write gdmlx.Dataset(R=R, z=z, E=E, F=F, energy_unit=..., length_unit=...)"
                ".save_npz('data.npz'), or write an extended XYZ (energy=... on the comment line, "
                "Properties=species:S:1:pos:R:3:forces:R:3)")
    if not info and not arrays:          # energy_key=... has nothing to name
        return ("it holds no numbers or per-atom arrays under other names either"
                + (" (a file of geometries alone is a start geometry, gdmlx md MODEL --xyz FILE, not a dataset)"
                   if atoms.calc is None else ""))
    return (f"its info keys: {info or 'none'}; its per-atom arrays: {arrays or 'none'}. Other names: "
            f"gdmlx.load_dataset({path!r}, energy_key=..., forces_key=...) reads them (eV, eV/A); "
            "save that with .save_npz('data.npz') for the command line")


def _is_number(text):
    try:
        float(text)
    except (TypeError, ValueError):
        return False
    return True


def _frame_energies(frames, key, path):
    """Energies (frames,) [kcal/mol] of the ASE ``frames``; None, with a warning, when no
    ``key`` was given and no frame has an energy where ASE looks: forces-only data, read as
    an .npz without E is (a model of them has energies up to a constant)."""
    if key is None and not any(_has_energy(a) for a in frames):
        numbers = sorted(k for k, v in frames[0].info.items()
                         if isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool))
        warnings.warn(f"{path}: no frame has an energy where ASE looks (energy= on an extended XYZ comment "
                      "line, a calculator's results): read with forces only"
                      + (f"; if one of its numbers {numbers} is the energy, load_dataset(path, energy_key=...) "
                         "reads it" if numbers else ""), UserWarning, stacklevel=user_stacklevel())
        return None
    return np.array([_frame_energy(a, i, key, path) for i, a in enumerate(frames)]) * EV_TO_KCAL_MOL


def _has_energy(atoms):
    """Whether ASE finds an energy for ``atoms`` (a calculator's results)."""
    try:
        atoms.get_potential_energy()
    except Exception:     # no calculator, or one without an energy
        return False
    return True


def _frame_energy(atoms, i, key, path):
    """Energy [eV] of frame ``i``: ``atoms.info[key]``, or its calculator's."""
    if key is not None:
        if key not in atoms.info:
            raise InputError(f"{path}: frame {i} has no energy '{key}'; " + _labels_hint(atoms, path))
        value, name = atoms.info[key], f"energy '{key}'"
    else:
        try:
            value, name = atoms.get_potential_energy(), "energy"
        except Exception:     # no calculator, or one without an energy
            raise InputError(f"{path}: frame {i} has no energy where ASE looks (energy= on an extended XYZ "
                             "comment line, a calculator's results); " + _labels_hint(atoms, path)) from None
    try:                      # energy="-76.4 Ha" on a comment line is a text
        return float(value)
    except (TypeError, ValueError):
        raise InputError(f"{path}: frame {i}: its {name} is {value!r}, not a number (in eV)") from None


def _frame_forces(atoms, i, key, path):
    """Forces [eV/A] of frame ``i``: ``atoms.arrays[key]``, or its calculator's as computed
    (without the constraints ASE would apply: fixed atoms keep their forces)."""
    if key is not None:
        if key not in atoms.arrays:
            raise InputError(f"{path}: frame {i} has no per-atom forces '{key}'; " + _labels_hint(atoms, path))
        value = np.asarray(atoms.arrays[key])
        if value.shape != (len(atoms), 3) or value.dtype.kind not in "iuf":   # charges, texts: not forces
            raise InputError(f"{path}: frame {i}: its per-atom '{key}' are {value.dtype} of shape {value.shape}, "
                             f"not forces ({len(atoms)} x 3 numbers, eV/A)")
        return value.astype(np.float64)
    try:
        return atoms.get_forces(apply_constraint=False)
    except Exception:
        raise InputError(f"{path}: frame {i} has no forces where ASE looks (a forces column, a "
                         "calculator's results); " + _labels_hint(atoms, path)) from None
