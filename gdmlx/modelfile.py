"""Model files: HDF5, self-describing, versioned, no pickle.

Layout (format version 1)::

    /                    attrs: format="gdmlx-model", format_version, gdmlx_version,
                                kind ("gdml", "multiscale"; "action": :meth:`gdmlx.ActionModel.save`)
    kind "gdml": the regressor below at the root; kind "multiscale": groups /fast and /slow,
    and attrs max_hops, n_fast (-1 for None; files without them: 2 and 100, the defaults).

    regressor group      attrs: energy_unit, length_unit, sigma, lam, solver,
                                use_energy_labels, train_hash, dataset_md5 (sGDML fingerprint
                                of the dataset the indices refer to), energy_fit_slope, energy_fit_r,
                                pairs_param ("all" or "explicit") and perms_param ("none", "auto"
                                or "explicit"): how the pairs and perms hyperparameters were given
        z (N,) int64
        perms (P, N) int64   atom permutations the kernel is summed over (identity first; the
                             identity alone without symmetries; absent in older files)
        expansion/       attrs: sigma, c;  datasets: pairs (D,2), X (M,D), B (M,D), a (M,)
        training/        optional: R (M,N,3), F (M,N,3), E (M,), alphas (M,N,3)
        indices/         optional: train, valid (int64) into the source dataset

Only numbers and strings are stored; loading never runs code from the file. The root
attribute ``content_sha256`` (:mod:`gdmlx.hdf5_files`) is the SHA-256 of everything else
in the file, checked when it is opened; files without it (older ones) are read, and files
of 2026-11-22/23 carry one over each expansion instead (attribute ``sha256``).
"""

import os

import h5py
import numpy as np

from gdmlx._version import __version__
from gdmlx.atomic_write import atomic_path
from gdmlx.errors import InputError, ModelFileError
from gdmlx.descriptor import check_pairs
from gdmlx.expansion import KernelExpansion, expansion_digest
from gdmlx.file_kinds import check_kind, file_kind, kind_error
from gdmlx.hdf5_files import (check_content_digest, check_group, open_hdf5, read_array, read_errors,
                              write_content_digest)
from gdmlx.symmetry import check_permutations
from gdmlx.units import energy_in_ev, length_in_ang
from gdmlx.validation import SIGMA_RANGE, check_atomic_numbers

FORMAT = "gdmlx-model"
FORMAT_VERSION = 1


def save_model(model, path):
    """Write a fitted model (GDMLRegressor or MultiscaleModel) to ``path`` (HDF5), atomically."""
    if not hasattr(model, "force_parts"):
        raise InputError(f"save_model writes a fitted GDMLRegressor or MultiscaleModel, got {type(model).__name__}")
    model.force_parts()                       # NotFittedError for an unfitted model, before any file
    with atomic_path(path) as tmp, h5py.File(tmp, "w") as f:
        f.attrs.update(format=FORMAT, format_version=FORMAT_VERSION, gdmlx_version=__version__)
        if hasattr(model, "fast_"):
            split = model._fitted_hyperparameters()        # as fitted, not set_params' changes since
            f.attrs.update(kind="multiscale", max_hops=int(split["max_hops"]),
                           n_fast=-1 if split["n_fast"] is None else int(split["n_fast"]))
            write_regressor(f.create_group("fast"), model.fast_)
            write_regressor(f.create_group("slow"), model.slow_)
        else:
            f.attrs["kind"] = "gdml"
            write_regressor(f, model)
        write_content_digest(f, ModelFileError)


def load_model(path):
    """The GDMLRegressor or MultiscaleModel in the model file ``path`` written by
    :func:`save_model`; ModelFileError for other files (sGDML models:
    :func:`load_any_model`; action models: :meth:`gdmlx.ActionModel.load`)."""
    with open_model_file(path) as f, read_errors(path, ModelFileError):
        kind = _text(f, "kind", "gdml")
        if kind == "multiscale":
            from gdmlx.multiscale import MultiscaleModel
            n_fast = int(f.attrs.get("n_fast", 100))   # parts that do not fit: InputError, named by read_errors
            return MultiscaleModel.from_parts(read_regressor(f["fast"]), read_regressor(f["slow"]),
                                              int(f.attrs.get("max_hops", 2)), None if n_fast < 0 else n_fast)
        if kind == "action":
            raise kind_error(path, "action", "a force field", ModelFileError)
        if kind != "gdml":
            raise ModelFileError(f"{path}: unknown model kind {kind!r}")
        return read_regressor(f)


def write_regressor(g, model):
    """Store a fitted GDMLRegressor in HDF5 group ``g``."""
    from gdmlx.regressor import fitted_hyperparameters
    exp = model._fitted_expansion()
    params = fitted_hyperparameters(model)       # not set_params' changes since the fit
    g.attrs.update(energy_unit=model.energy_unit_, length_unit=model.length_unit_,
                   sigma=float(params["sigma"]), lam=float(params["lam"]), solver=params["solver"],
                   use_energy_labels=bool(params["use_energy_labels"]),
                   train_hash=model.train_hash_, dataset_md5=getattr(model, "dataset_md5_", ""),
                   energy_fit_slope=model.energy_fit_.get("slope", np.nan),
                   energy_fit_r=model.energy_fit_.get("r", np.nan),
                   # the hyperparameters as given, so that clone(loaded).fit(other molecule) works
                   pairs_param="all" if params["pairs"] is None else "explicit",
                   perms_param=_perms_param(params["perms"]))
    g["z"] = model.z_
    g["perms"] = model.perms_
    write_expansion(g.create_group("expansion"), exp)
    if getattr(model, "R_train_", None) is not None:
        t = g.create_group("training")
        t["R"], t["F"], t["alphas"] = model.R_train_, model.F_train_, model.alphas_
        if model.E_train_ is not None:
            t["E"] = model.E_train_
    for name, idx in (getattr(model, "indices_", None) or {}).items():
        g[f"indices/{name}"] = np.asarray(idx, dtype=np.int64)


def _perms_param(perms):
    """How the ``perms`` hyperparameter was given: "none", "auto" or "explicit"."""
    if perms is None:
        return "none"
    return "auto" if isinstance(perms, str) else "explicit"


def read_regressor(g):
    """A fitted GDMLRegressor from HDF5 group ``g`` (inverse of :func:`write_regressor`)."""
    from gdmlx.regressor import GDMLRegressor
    name = check_group(g, ModelFileError).file.filename
    z = read_array(g, "z", ModelFileError, "int", 1)
    z = _checked(name, check_atomic_numbers, z, len(z))
    exp = read_expansion(g["expansion"], len(z), force_model=True)
    perms = _permutations(g, z)
    given = {"none": None, "auto": "auto", "explicit": perms}   # older files: as explicit arrays
    perms_param = _text(g, "perms_param", None)
    if perms_param not in (None, *given):
        raise ModelFileError(f"{name}: unknown perms_param {perms_param!r}")
    model = GDMLRegressor(sigma=_number(g, "sigma"), lam=_number(g, "lam"), solver=_text(g, "solver"),
                          pairs=None if _text(g, "pairs_param", "") == "all" else exp.pairs,
                          use_energy_labels=_flag(g, "use_energy_labels"),
                          perms=given[perms_param] if perms_param is not None
                          else (perms if len(perms) > 1 else None))
    model.energy_unit_, model.length_unit_ = _text(g, "energy_unit"), _text(g, "length_unit")
    _checked(name, lambda: (energy_in_ev(model.energy_unit_), length_in_ang(model.length_unit_),
                            model._check_params()))
    model.train_hash_, model.dataset_md5_ = _text(g, "train_hash"), _text(g, "dataset_md5", "")
    fit = {"slope": _number(g, "energy_fit_slope"), "r": _number(g, "energy_fit_r")}
    model.energy_fit_ = {} if np.isnan(fit["slope"]) and np.isnan(fit["r"]) else fit
    model.R_train_, model.F_train_, model.alphas_, model.E_train_ = _training_data(g, len(z))
    indices = check_group(g["indices"], ModelFileError) if "indices" in g else {}
    model.indices_ = {k: read_array(indices, k, ModelFileError, "int", 1) for k in indices}
    if any(np.any(idx < 0) for idx in model.indices_.values()):
        raise ModelFileError(f"{name}: negative dataset indices in 'indices'")
    model.expansion_, model.z_, model.pairs_, model.perms_ = exp, z, exp.pairs, perms
    model.fit_info_ = {}
    model.hyperparameters_ = model.get_params(deep=False)
    return model


def _training_data(g, n_atoms):
    """``(R, F, alphas, E)`` of the optional 'training' group (each None without it), checked."""
    if "training" not in g:
        return None, None, None, None
    train = check_group(g["training"], ModelFileError)
    R, F, alphas = (read_array(train, k, ModelFileError, ndim=3) for k in ("R", "F", "alphas"))
    E = read_array(train, "E", ModelFileError, ndim=1) if "E" in train else None
    shape = (len(R), n_atoms, 3)
    if R.shape != shape or F.shape != shape or alphas.shape != shape or (E is not None and E.shape != shape[:1]):
        raise ModelFileError(f"{g.file.filename}: training data have inconsistent shapes (R {R.shape}, F "
                             f"{F.shape}, alphas {alphas.shape}, E {None if E is None else E.shape}) for "
                             f"{n_atoms} atoms")
    if not all(np.all(np.isfinite(v)) for v in (R, F, alphas) + (() if E is None else (E,))):
        raise ModelFileError(f"{g.file.filename}: training data contain NaN or inf")
    return R, F, alphas, E


def write_expansion(group, exp):
    """Store a :class:`KernelExpansion` in an HDF5 group."""
    group.attrs.update(sigma=exp.sigma, c=exp.c)
    for name in ("pairs", "X", "B", "a"):
        group[name] = getattr(exp, name)


def read_expansion(group, n_atoms, force_model=True):
    """Read and check a :class:`KernelExpansion` from an HDF5 group, whose sigma must be
    the one of the model holding it (the parent group's attribute, for force and action
    models alike). For a force model (not an action model, whose features repeat pairs
    and include rates) the pairs must be distinct and the descriptors, inverse distances,
    positive."""
    name = check_group(group, ModelFileError).file.filename
    pairs = read_array(group, "pairs", ModelFileError, "int", 2)
    X, B, a = (read_array(group, n, ModelFileError, ndim=d) for n, d in (("X", 2), ("B", 2), ("a", 1)))
    M, D = X.shape
    if pairs.shape != (D, 2) or B.shape != (M, D) or a.shape != (M,) or M == 0 or D == 0:
        raise ModelFileError(f"{name}: expansion arrays have inconsistent shapes "
                             f"(pairs {pairs.shape}, X {X.shape}, B {B.shape}, a {a.shape})")
    if force_model:
        pairs = _checked(name, check_pairs, pairs, n_atoms)
    elif pairs.min() < 0 or pairs.max() >= n_atoms or np.any(pairs[:, 0] == pairs[:, 1]):
        raise ModelFileError(f"{name}: expansion pairs index atoms outside 0..{n_atoms - 1} or pair an atom with itself")
    sigma, c = _number(group, "sigma"), _number(group, "c")
    if not all(np.all(np.isfinite(v)) for v in (X, B, a, sigma, c)):
        raise ModelFileError(f"{name}: expansion holds NaN or inf")
    if not SIGMA_RANGE[0] <= sigma <= SIGMA_RANGE[1]:
        raise ModelFileError(f"{name}: expansion sigma {sigma:g} is outside {SIGMA_RANGE}")
    model_sigma = _number(group.parent, "sigma")
    if not np.isclose(model_sigma, sigma, rtol=1e-12, atol=0.0):
        raise ModelFileError(f"{name}: the model's sigma ({model_sigma}) is not its expansion's ({sigma})")
    if force_model and X.min() <= 0:
        raise ModelFileError(f"{name}: descriptors (inverse distances) must be positive, the file has {X.min():g}")
    exp = KernelExpansion(np.ascontiguousarray(pairs, dtype=np.int64), n_atoms, sigma,
                          np.asarray(X, dtype=np.float64), np.asarray(B, dtype=np.float64),
                          np.asarray(a, dtype=np.float64), c)
    stored = group.attrs.get("sha256")     # files of gdmlx 2026-11-22 to 23 (before the content digest)
    if stored is not None and str(stored) != expansion_digest(exp).hexdigest():
        raise ModelFileError(f"{name}: the expansion's arrays do not match their checksum: the file is corrupt")
    return exp


def _flag(obj, key):
    """True/False attribute ``key`` of HDF5 object ``obj`` (h5py reads it as numpy bool)."""
    value = obj.attrs[key]
    if not isinstance(value, (bool, np.bool_)):
        raise _attribute_error(obj, key, value, "must be True or False")
    return bool(value)


def _number(obj, key):
    """Real-number attribute ``key`` of HDF5 object ``obj``, as a float."""
    value = obj.attrs[key]
    if not isinstance(value, (int, float, np.integer, np.floating)) or isinstance(value, (bool, np.bool_)):
        raise _attribute_error(obj, key, value, "must be a number")
    return float(value)


def _text(obj, key, default=...):
    """Text attribute ``key`` of HDF5 object ``obj`` (``default`` when absent, if given)."""
    if default is not ... and key not in obj.attrs:
        return default
    value = obj.attrs[key]
    value = value.decode(errors="replace") if isinstance(value, bytes) else value
    if not isinstance(value, str):
        raise _attribute_error(obj, key, value, "must be a text")
    return value


def _attribute_error(obj, key, value, what):
    """The ModelFileError for attribute ``key`` of ``obj`` holding ``value``."""
    return ModelFileError(f"{obj.file.filename}: attribute '{key}' of '{obj.name}' {what}, got {value!r}")


def _checked(name, check, *args):
    """``check(*args)``, with an InputError or ValueError turned into ModelFileError naming the file."""
    try:
        return check(*args)
    except (InputError, ValueError) as exc:
        raise ModelFileError(f"{name}: {exc}") from None


def load_any_model(path):
    """A gdmlx model file, or an sGDML ``.npz`` model (imported), told apart by their
    contents (a gdmlx model saved as "m.npz" was taken for an sGDML file by its name)."""
    _check_is_a_file(path)
    check_kind(path, ("model", "multiscale", "sgdml"), "a force field (a gdmlx model .h5 or an sGDML model .npz)",
               ModelFileError)
    kind = file_kind(path)                        # None: damaged; its name picks the reader that says so
    if kind == "sgdml" or (kind is None and str(path).lower().endswith(".npz")):
        from gdmlx.sgdml_import import import_sgdml_model
        return import_sgdml_model(path)
    return load_model(path)


def open_model_file(path):
    """Open ``path`` as a gdmlx model file of a known version, or raise ModelFileError
    (FileNotFoundError, IsADirectoryError: :func:`gdmlx.hdf5_files.open_hdf5`)."""
    check_kind(path, ("model", "multiscale", "action"), "a gdmlx model file (.h5)", ModelFileError)
    hint = ("; an .npz is an sGDML file: gdmlx.load_any_model and gdmlx.import_sgdml_model read "
            "sGDML models" if str(path).lower().endswith(".npz") else "")
    return open_hdf5(path, "model file", ModelFileError, hint, check=_check_format)


def _check_is_a_file(path):
    """FileNotFoundError or IsADirectoryError naming ``path`` unless it is a file (HDF5's
    error for a directory names the time and a memory address)."""
    if not os.path.exists(path):
        raise FileNotFoundError(f"no such file: {path}")
    if os.path.isdir(path):
        raise IsADirectoryError(f"{path} is a directory, not a model file")


def _check_format(f, path):
    """Raise ModelFileError unless open file ``f`` says it is a gdmlx model file of a known
    version, whose contents match their checksum."""
    fmt, version = f.attrs.get("format"), f.attrs.get("format_version")
    fmt, version = (v if np.ndim(v) == 0 else repr(v) for v in (fmt, version))   # arrays: foreign
    if fmt != FORMAT:
        raise ModelFileError(f"{path}: not a gdmlx model file (format attribute {fmt!r})")
    if version is None:
        raise ModelFileError(f"{path}: says it is a gdmlx model file but has no format_version attribute: "
                             "the file is damaged or was not written by gdmlx")
    if isinstance(version, (str, bytes)) or version != FORMAT_VERSION:   # '1' is not 1
        shown = repr(version) if isinstance(version, (str, bytes)) else version
        raise ModelFileError(f"{path}: model format version {shown} is not supported by gdmlx "
                             f"{__version__} (supports {FORMAT_VERSION})")
    check_content_digest(f, path, ModelFileError)


def _permutations(g, z):
    if "perms" not in g:
        return np.arange(len(z), dtype=np.int64)[None]
    try:
        return check_permutations(read_array(g, "perms", ModelFileError, "int", 2), z)
    except InputError as exc:
        raise ModelFileError(f"{g.file.filename}: stored permutations are invalid ({exc})") from None
