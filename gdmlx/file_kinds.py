"""What kind of gdmlx file a path holds, told from its attributes, member names or first
line (h5py and numpy only), so that every reader can say what a wrong file is and where it
goes instead (:func:`check_kind`).

Kinds: ``dataset`` (sGDML .npz, gdmlx .h5, extended XYZ with forces), ``model`` and
``multiscale`` (gdmlx force fields), ``action`` (action models), ``trajectory`` (gdmlx md
.h5), ``xyz trajectory`` (gdmlx md .xyz) and ``sgdml`` (sGDML .npz models).
"""

import os
import re
import zipfile

import h5py

from gdmlx.npz_files import NPZ_READ_ERRORS, read_npz

_MODELS_GO = "models go to gdmlx md MODEL, gdmlx test MODEL DATA and --model"

# kind: (what such a file is, where it goes; {path} is the file)
KINDS = {
    "dataset": ("a dataset (geometries with forces)",
                "datasets go to gdmlx train DATA, gdmlx test MODEL DATA and --data (gdmlx.load_dataset reads them)"),
    "model": ("a gdmlx model (a force field)", f"{_MODELS_GO} (gdmlx.load_model reads them)"),
    "multiscale": ("a multiscale model (gdmlx split; a force field)",
                   f"{_MODELS_GO}; gdmlx md runs them with --mts (gdmlx.load_model reads them)"),
    "action": ("an action model (a learned long-stride map)",
               "run it with gdmlx md FORCE_MODEL --action {path} (gdmlx.ActionModel.load reads it)"),
    "trajectory": ("an MD trajectory (written by gdmlx md)",
                   "trajectories go to gdmlx md MODEL --restart, gdmlx validate MODEL TRAJ and gdmlx action "
                   "train (gdmlx.md.read_trajectory reads them)"),
    "xyz trajectory": ("an MD trajectory in extended XYZ (written by gdmlx md)",
                       "it goes to gdmlx md MODEL --restart or --xyz and gdmlx validate MODEL TRAJ; gdmlx action "
                       "train and gdmlx.md.read_trajectory read .h5 runs (gdmlx md -o run.h5)"),
    "sgdml": ("an sGDML model (a force field)", f"{_MODELS_GO} (gdmlx.load_any_model reads them)"),
}

_MODEL_KINDS = {"gdml": "model", "multiscale": "multiscale", "action": "action"}


def file_kind(path):
    """The kind (a key of :data:`KINDS`) of the file at ``path``, or None when it is none of
    them, cannot be read or does not exist (its reader then says why)."""
    path = os.fspath(path)
    try:
        if not os.path.isfile(path):
            return None
        if h5py.is_hdf5(path):
            with h5py.File(path, "r") as f:
                return hdf5_kind(f)
        if zipfile.is_zipfile(path):
            return _npz_kind(path)
        if path.lower().removesuffix(".part").endswith((".xyz", ".extxyz")):   # also a killed run's .part
            return _xyz_kind(path)
    except (OSError, RuntimeError, *NPZ_READ_ERRORS):     # unreadable, locked by a writer
        return None
    return None


def hdf5_kind(f):
    """The kind of open HDF5 file ``f``: its ``format`` attribute (and a model's ``kind``), or
    a dataset's arrays; None for other files."""
    fmt, kind = (_text(f.attrs.get(k)) for k in ("format", "kind"))
    if fmt == "gdmlx-model":
        return _MODEL_KINDS.get(kind or "gdml")
    if fmt == "gdmlx-trajectory":
        return "trajectory"
    return "dataset" if fmt is None and {"R", "z", "F"} <= set(f.keys()) else None


def _npz_kind(path):
    arrays, names = read_npz(path, ("type",), ValueError, ".npz archive")
    kind = _text(arrays["type"].item()) if "type" in arrays and arrays["type"].size == 1 else None
    if kind == "m":
        return "sgdml"
    return "dataset" if kind == "d" or {"R", "F"} <= names else None


def _xyz_kind(path):
    """A gdmlx md trajectory (momenta and time_fs) or a dataset (forces), told by the first
    frame's comment line; None for geometries and other files."""
    with open(path, "rb") as fh:
        lines = fh.read(1 << 16).split(b"\n", 2)
    if len(lines) < 2 or not lines[0].strip().isdigit():
        return None
    comment = lines[1].decode(errors="replace")
    props = re.search(r"Properties=(\S+)", comment)
    props = props.group(1) if props else ""
    if "momenta:R:3" in props and "time_fs=" in comment:
        return "xyz trajectory"
    return "dataset" if "forces:R:3" in props else None


def _text(value):
    """An attribute's text (str or bytes), or None for anything else."""
    value = value.decode(errors="replace") if isinstance(value, bytes) else value
    return value if isinstance(value, str) else None


def kind_error(path, kind, expected, error):
    """``error`` (an exception class) saying that ``path`` is of ``kind``, not ``expected``,
    and where such files go."""
    what, where = KINDS[kind]
    return error(f"{path} is {what}, not {expected}: {where.format(path=path)}")


def check_kind(path, accepted, expected, error):
    """Raise :func:`kind_error` when the file at ``path`` is of a known kind not in
    ``accepted``; files of no known kind pass (their reader says what is wrong)."""
    kind = file_kind(path)
    if kind is not None and kind not in accepted:
        raise kind_error(path, kind, expected, error)
