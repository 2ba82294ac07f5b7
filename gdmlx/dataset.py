"""Reference datasets: geometries, atomic numbers, energies and forces, with units.

Formats read: sGDML ``.npz`` (R, z, E, F, r_unit, e_unit, ...), gdmlx ``.h5`` (same names),
and anything ASE reads with energies and forces (extended XYZ, ...; converted from eV and
eV/A to kcal/mol and A). Written: sGDML-compatible ``.npz`` with its ``md5`` fingerprint.
"""

import hashlib
import os
from dataclasses import dataclass

import h5py
import numpy as np
from ase.data import chemical_symbols
from ase.formula import Formula

from gdmlx.atomic_write import atomic_path
from gdmlx.errors import InputError
from gdmlx.hdf5_files import read_array
from gdmlx.npz_files import read_npz
from gdmlx.units import energy_in_ev
from gdmlx.validation import (check_atomic_numbers, check_energies, check_forces,
                              check_geometries)

EV_TO_KCAL_MOL = 1.0 / energy_in_ev("kcal/mol")


def chemical_formula(z):
    """Hill formula of atomic numbers ``z`` ("C2H6O")."""
    return Formula.from_list([chemical_symbols[int(k)] for k in z]).format("hill")


@dataclass(repr=False)
class Dataset:
    """Geometries and labels of one molecule.

    R (n, N, 3) [length_unit]; z (N,); E (n,) [energy_unit] or None;
    F (n, N, 3) [energy_unit / length_unit]; lattice (3, 3) or None.
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

    def __post_init__(self):
        self.R = check_geometries(self.R)
        self.z = check_atomic_numbers(self.z, self.R.shape[1])
        self.F = check_forces(self.F, self.R.shape)
        if self.E is not None:
            self.E = check_energies(self.E, len(self.R), "E")

    def __len__(self):
        return len(self.R)

    def __repr__(self):
        return (f"Dataset({self.name or 'unnamed'}: {len(self)} geometries of {chemical_formula(self.z)}, "
                f"{'energies and ' if self.E is not None else ''}forces in {self.energy_unit} and "
                f"{self.length_unit}{', periodic' if self.lattice is not None else ''})")

    def subset(self, idx):
        """A new Dataset with the geometries ``idx``."""
        return Dataset(self.R[idx], self.z, self.F[idx], None if self.E is None else self.E[idx],
                       self.energy_unit, self.length_unit, self.name, self.theory, self.lattice)

    def md5(self):
        """sGDML's dataset fingerprint (md5 of md5s of z, R, E, F), as bytes."""
        h = hashlib.md5()
        for a in (self.z, self.R) + (() if self.E is None else (self.E[:, None],)) + (self.F,):
            h.update(hashlib.md5(np.ascontiguousarray(a).ravel()).digest())
        return h.hexdigest().encode()

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


def load_dataset(path):
    """Read a dataset from ``.npz`` (sGDML), ``.h5``/``.hdf5`` (gdmlx) or an ASE-readable file."""
    path = os.fspath(path)
    ext = os.path.splitext(path)[1].lower()
    if not os.path.exists(path):
        raise FileNotFoundError(f"no such file: {path}")
    if ext == ".npz":
        return _load_npz(path)
    if ext in (".h5", ".hdf5"):
        return _load_h5(path)
    return _load_ase(path)


_NPZ_KEYS = ("R", "z", "F", "E", "e_unit", "r_unit", "name", "theory", "lattice")


def _load_npz(path):
    data, keys = read_npz(path, _NPZ_KEYS + ("type",), InputError, ".npz dataset")
    if "type" in data and data.pop("type").item() == "m":
        raise InputError(f"{path} is an sGDML model, not a dataset: give it where a model is "
                         "expected (gdmlx.load_any_model reads it)")
    return _from_mapping(data, path)


def _load_h5(path):
    try:
        with h5py.File(path, "r") as f:
            if f.attrs.get("format") in ("gdmlx-model", "gdmlx-trajectory"):
                raise InputError(f"{path} is a {f.attrs['format']} file, not a dataset")
            data = {k: read_array(f, k, InputError) for k in _ARRAY_KEYS if k in f}
            data.update({k: _h5_text(f, k) for k in _NPZ_KEYS if k in f and k not in _ARRAY_KEYS})
            data.update({k: v for k, v in f.attrs.items()})
    except OSError as exc:
        raise InputError(f"{path}: not a readable HDF5 dataset ({exc})") from None
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
    missing = [k for k in ("R", "z", "F") if k not in d]
    if missing:
        raise InputError(f"{path}: dataset lacks {', '.join(missing)} (needs R, z, F; E optional)")
    try:
        return Dataset(R=d["R"], z=d["z"], F=d["F"], E=d.get("E"),
                       energy_unit=_text(d, "e_unit", "kcal/mol"),
                       length_unit=_text(d, "r_unit", "Ang"), name=_text(d, "name"),
                       theory=_text(d, "theory"), lattice=d.get("lattice"))
    except InputError as exc:
        raise InputError(f"{path}: {exc}") from None


def _text(d, key, default=""):
    v = d.get(key, default)
    if isinstance(v, np.ndarray) and v.size != 1:
        raise InputError(f"'{key}' must be one text, got an array of shape {v.shape}")
    v = v.item() if isinstance(v, np.ndarray) else v
    return v.decode() if isinstance(v, bytes) else str(v)


def _load_ase(path):
    import ase.io
    try:
        frames = ase.io.read(path, index=":")
    except Exception as exc:   # ASE raises many types for unreadable files
        raise InputError(f"{path}: ASE could not read it as a trajectory ({exc})") from None
    try:
        E = np.array([a.get_potential_energy() for a in frames]) * EV_TO_KCAL_MOL
        F = np.array([a.get_forces() for a in frames]) * EV_TO_KCAL_MOL
    except Exception as exc:
        raise InputError(f"{path}: every frame needs energy and forces ({exc})") from None
    z = frames[0].numbers
    if any(not np.array_equal(a.numbers, z) for a in frames):
        raise InputError(f"{path}: frames do not all have the same atoms in the same order")
    R = np.array([a.positions for a in frames])
    periodic = frames[0].pbc.any()                 # kept as the lattice, which the command line refuses
    return Dataset(R=R, z=z, F=F, E=E, name=os.path.basename(path),
                   lattice=frames[0].cell.array.copy() if periodic else None)
