"""Checks of user input, with errors that name what is wrong."""

import bz2
import gzip
import itertools
import lzma

import numpy as np

from gdmlx.errors import GeometryError, InputError
from gdmlx.kernels.descriptor import closest_pairs
from gdmlx.units import energy_in_ev, length_in_ang, same_unit


def as_float_array(a, name="R"):
    """``a`` as a float64 array; InputError naming ``name`` when it is not real numbers:
    complex numbers (a conversion would keep their real part), texts (it would parse
    them) or objects (ASE Atoms, for instance)."""
    if type(a) is np.ndarray and a.dtype == np.float64:
        return a                                   # the common case, first: ~0.5 us a call saved
    try:
        x = np.asarray(a)
        if x.dtype.kind not in "cSUVMm":
            return x.astype(np.float64, copy=False)
    except (TypeError, ValueError) as exc:
        raise InputError(f"{name} must be numbers, got {type(a).__name__} ({exc}); for ASE Atoms give "
                         "atoms.positions (or gdmlx.GDMLCalculator)") from None
    raise InputError(f"{name} must be real numbers, got {x.dtype}")


def check_geometries(R, n_atoms=None, name="R"):
    """Return ``R`` as float64 (n, N, 3); a single (N, 3) geometry becomes n = 1."""
    R = as_float_array(R, name)
    given = R.shape
    if R.ndim == 2:
        R = R[None]
    if R.ndim != 3 or R.shape[2] != 3:
        raise InputError(f"{name} must have shape (n, N, 3) or (N, 3), got {given}")
    if R.shape[0] == 0:
        raise InputError(f"{name} holds no geometries")
    if n_atoms is not None and R.shape[1] != n_atoms:
        raise InputError(f"{name} has {R.shape[1]} atoms per geometry, the model has {n_atoms}")
    _check_finite(R, name)
    return np.ascontiguousarray(R)


def check_forces(F, shape, name="F"):
    """Return forces as float64 with the same shape as the geometries."""
    F = as_float_array(F, name)
    if F.ndim == 2 and len(shape) == 3 and shape[0] == 1:
        F = F[None]
    if F.shape != tuple(shape):
        raise InputError(f"{name} must have shape {tuple(shape)} (like the geometries), got {F.shape}")
    _check_finite(F, name)
    return np.ascontiguousarray(F)


def check_energies(E, n, name="energies"):
    """Return energies as float64 (n,); (n, 1) is accepted."""
    E = as_float_array(E, name)
    if E.ndim == 2 and E.shape[1] == 1:
        E = E[:, 0]
    if E.shape != (n,):
        raise InputError(f"{name} must have shape ({n},), got {E.shape}")
    _check_finite(E, name)
    return E


def check_atomic_numbers(z, n_atoms, expected=None):
    """Return ``z`` as int64 (N,), checked against the geometry and, if given, the model.
    Element symbols ("C", "H") and whole floats (6.0, as other codes store them) are read as
    the atomic numbers they are."""
    z = np.asarray(z)
    if z.shape == (n_atoms,) and z.dtype.kind in "US":
        z = _symbols_as_numbers(z)
    if z.shape == (n_atoms,) and z.dtype.kind == "f" and np.all(np.isfinite(z)) and np.all(z == np.round(z)):
        z = z.astype(np.int64)
    if z.shape != (n_atoms,) or not np.issubdtype(z.dtype, np.integer):
        raise InputError(f"z must be {n_atoms} integer atomic numbers, got shape {z.shape} dtype {z.dtype}")
    z = z.astype(np.int64)
    if np.any(z < 1) or np.any(z > 118):
        raise InputError(f"z holds atomic numbers outside 1..118: {z}")
    if expected is not None and not np.array_equal(z, expected):
        hint = ("; the same elements in another order: gdmlx.match_atom_order(atoms, model) puts them in "
                "the model's order (gdmlx md: --reorder)" if sorted(z) == sorted(np.asarray(expected)) else "")
        raise InputError(f"atomic numbers {z.tolist()} do not match the model's "
                         f"{np.asarray(expected).tolist()}{hint}")
    return z


def _symbols_as_numbers(symbols):
    """Atomic numbers (N,) of element symbols (N,) (texts or bytes); InputError naming the
    first that is no element."""
    from ase.data import atomic_numbers
    texts = [s.decode() if isinstance(s, bytes) else str(s) for s in symbols.tolist()]
    unknown = [s for s in texts if s.strip() not in atomic_numbers]
    if unknown:
        raise InputError(f"z holds {unknown[0]!r}, which is no element symbol (z: atomic numbers or symbols)")
    return np.array([atomic_numbers[s.strip()] for s in texts], dtype=np.int64)


def check_min_distance(R, r_min, reason, name="R", unit=""):
    """Raise GeometryError if two atoms of a geometry ``R`` (n, N, 3) are closer than ``r_min``.

    ``reason`` says where ``r_min`` comes from and ``unit`` names the length unit, for the
    message.
    """
    dist, i, j = closest_pairs(R)
    t = int(np.argmin(dist))
    if dist[t] < r_min:
        unit = f" {unit}" if unit else ""
        raise GeometryError(
            f"{name}{'' if len(dist) == 1 else f'[{t}]'}: atoms {i[t]} and {j[t]} are {dist[t]:.3g}{unit} apart, "
            f"closer than {r_min:.3g}{unit} ({reason})")
    return dist[t]


def check_training_data(R, F, energies, z, energy_unit, length_unit):
    """Training inputs as checked arrays ``(R (M, N, 3), F (M, N, 3), E (M,) or None, z (N,))``;
    units must be known ones (:mod:`gdmlx.units`). Raises InputError naming what is wrong."""
    R = check_geometries(R)
    M, N = R.shape[:2]
    F = check_forces(F, R.shape)
    for a, name in ((R, "R"), (F, "F")):
        _check_squares_finite(a, name)
    E = None if energies is None else check_energies(energies, M)
    if z is None:
        raise InputError("fit needs the atomic numbers z (N,)")
    if np.ndim(z) == 1 and len(z) == M != N:
        raise InputError(f"z has {M} entries, one per geometry of this fit, not one per atom ({N}): "
                         "scikit-learn's GridSearchCV and cross_validate slice every fit argument as "
                         "long as the data, z too when there are as many geometries as atoms; "
                         "give them one geometry more or fewer")
    z = check_atomic_numbers(z, N)
    check_molecule_size(N)
    check_min_distance(R, 1e-3, "atoms coincide")
    energy_in_ev(energy_unit), length_in_ang(length_unit)      # unknown units raise here, not in MD
    return R, F, E, z


def check_molecule_size(n_atoms):
    """Raise InputError for fewer than two atoms: the descriptor is the atoms' pair distances."""
    if n_atoms < 2:
        raise InputError(f"a molecule of {n_atoms} atom{'s' if n_atoms != 1 else ''} has no pair distances "
                         "to describe it: gdmlx models need at least 2 atoms")


def check_force_model(model, name="model"):
    """Raise InputError unless ``model`` (the argument ``name``) is a gdmlx force model object
    (a path, an action model or a dataset is not)."""
    if not hasattr(model, "force_parts"):
        raise InputError(f"{name} must be a fitted gdmlx model (GDMLRegressor or MultiscaleModel; "
                         f"gdmlx.load_any_model(path) reads one from a file), got {type(model).__name__}")


def check_data_for_model(ds, model, name):
    """Raise InputError unless dataset ``ds`` describes ``model``'s molecule (atomic numbers)
    in the model's units; ``name`` (the file) leads the message."""
    if not hasattr(ds, "R") or not hasattr(ds, "z"):
        raise InputError(f"{name} must be a gdmlx.Dataset (see gdmlx.load_dataset), got {type(ds).__name__}")
    if np.shape(ds.z) != np.shape(model.z_):
        raise InputError(f"{name} holds a molecule of {np.size(ds.z)} atoms, the model one of "
                         f"{np.size(model.z_)} (atomic numbers {np.asarray(model.z_).tolist()})")
    try:
        check_atomic_numbers(ds.z, len(model.z_), model.z_)
    except InputError as exc:
        raise InputError(f"{name}: {exc}") from None
    if not (same_unit(ds.energy_unit, model.energy_unit_, "energy")
            and same_unit(ds.length_unit, model.length_unit_, "length")):
        hint = ("; the model's units are unknown ('u', an sGDML file): give them with "
                "gdmlx.import_sgdml_model(path, energy_unit=..., length_unit=...) and save it as .h5"
                if "u" in (str(model.energy_unit_).lower(), str(model.length_unit_).lower()) else
                f"; dataset.in_units({model.energy_unit_!r}, {model.length_unit_!r}) converts it")
        raise InputError(f"{name} is in {ds.energy_unit} and {ds.length_unit}, the model in "
                         f"{model.energy_unit_} and {model.length_unit_}{hint}")


def check_number(value, name, minimum=0.0, strict=False):
    """Return ``value`` as a finite float >= ``minimum`` (> ``minimum`` if ``strict``)."""
    try:
        x = float(value)
    except (TypeError, ValueError):
        raise InputError(f"{name} must be a number, got {value!r}") from None
    if not np.isfinite(x) or x < minimum or (strict and x == minimum):
        raise InputError(f"{name} must be a finite number {'>' if strict else '>='} {minimum:g}, got {value!r}")
    return x


# kernel length scales beyond these (in the data's 1/length) are no model anyone fitted:
# fitting refuses them, and a model file holding one is corrupt
SIGMA_RANGE = (1e-6, 1e6)


def check_sigma(value, name="sigma"):
    """Return kernel length scale ``value`` as a float within :data:`SIGMA_RANGE`."""
    x = check_number(value, name, strict=True)
    if not SIGMA_RANGE[0] <= x <= SIGMA_RANGE[1]:
        raise InputError(f"{name} must be between {SIGMA_RANGE[0]:g} and {SIGMA_RANGE[1]:g} (a kernel length "
                         f"scale in the data's inverse length unit), got {value!r}")
    return x


def check_count(value, name, minimum=1):
    """Return ``value`` as an int from ``minimum`` to 2^63 - 1 (counts go to numpy and HDF5
    as int64); floats are accepted only when whole."""
    whole = isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))
    if isinstance(value, (float, np.floating)):
        whole = bool(np.isfinite(value)) and float(value).is_integer()
    if not whole:
        raise InputError(f"{name} must be a whole number, got {value!r}")
    if value < minimum:
        raise InputError(f"{name} must be at least {minimum}, got {value!r}")
    if value > np.iinfo(np.int64).max:
        raise InputError(f"{name} must be below 2^63, got {value!r}")
    return int(value)


def check_flag(value, name):
    """Return ``value`` as a bool: True, False, numpy's bools, 1 and 0; anything else
    (None, strings, 2) is refused. (A 0/1 integer used as a mask would index, not mask.)"""
    if not isinstance(value, (bool, np.bool_, int, np.integer)) or value not in (0, 1):
        raise InputError(f"{name} must be True or False, got {value!r}")
    return bool(value)


_COMPRESSED = {".gz": gzip.open, ".bz2": bz2.open, ".xz": lzma.open}


def check_xyz_atom_counts(path):
    """Raise InputError if a frame of the XYZ file at ``path`` declares more atoms than lines
    follow it: ASE's reader reads that many lines, also past the end, and a three-line file
    declaring 10^12 atoms kept it busy for hours. Other formats and other damage are left to ASE."""
    name = str(path).lower()
    opener = next((o for suffix, o in _COMPRESSED.items() if name.endswith(suffix)), open)
    if opener is not open:                  # ASE reads data.xyz.gz (.bz2, .xz) as an .xyz
        name = name.rsplit(".", 1)[0]
    if not name.endswith((".xyz", ".extxyz")):
        return
    with opener(path, "rb") as fh:
        line_no = 0                                 # of the frame's count line, from 1
        for frame, line in enumerate(fh):
            line_no += 1
            if not line.strip():
                return                              # ASE stops at a blank line too
            try:
                n = int(line)
            except ValueError:
                return
            follow = sum(1 for _ in itertools.islice(fh, n + 1)) - 1 if n >= 0 else 0     # atom lines
            if n < 0 or follow < n:
                raise InputError(f"{path}: frame {frame} (line {line_no}) declares {n} atoms, but "
                                 f"{max(follow, 0)} atom line{' follows' if follow == 1 else 's follow'} it; the file "
                                 "is truncated or corrupted")
            line_no += n + 1


# training squares positions and forces (distances, label scales): beyond this they overflow
MAX_MAGNITUDE = 1e150


def _check_squares_finite(a, name):
    """InputError when finite array ``a`` holds a value whose square overflows float64."""
    largest = float(np.abs(a).max())
    if largest > MAX_MAGNITUDE:
        raise InputError(f"{name} holds values up to {largest:.3g}, beyond {MAX_MAGNITUDE:g}, where their squares "
                         "overflow: no molecule has such positions or forces (are the units the ones given?)")


def _check_finite(a, name):
    """InputError unless ``a`` (first axis: geometries) is finite, naming the geometries
    that are not (up to 5 of them)."""
    if not np.all(np.isfinite(a)):
        bad = np.argwhere(~np.isfinite(a))[0]
        finite_rows = np.isfinite(a.reshape(len(a), -1)).all(axis=1)
        rows = np.flatnonzero(~finite_rows)
        listed = ", ".join(str(int(i)) for i in rows[:5]) + (", ..." if len(rows) > 5 else "")
        raise InputError(f"{name} contains NaN or inf (first at index {tuple(int(i) for i in bad)}) in "
                         f"{len(rows)} of {len(a)} geometries ({listed}): leave those geometries out")
