"""Model files: HDF5, self-describing, versioned, no pickle.

Layout (format version 1)::

    /                    attrs: format="gdmlx-model", format_version, gdmlx_version,
                                kind ("gdml" or "multiscale")
    kind "gdml": the regressor below at the root; kind "multiscale": groups /fast and /slow,
    and attrs max_hops, n_fast (-1 for None; files without them: 2 and 100, the defaults).

    regressor group      attrs: energy_unit, length_unit, sigma, lam, solver,
                                use_energy_labels, train_hash, dataset_md5 (sGDML fingerprint
                                of the dataset the indices refer to), energy_fit_slope, energy_fit_r
        z (N,) int64
        perms (P, N) int64   atom permutations the kernel is summed over (identity first;
                             optional, absent in files of models without symmetries)
        expansion/       attrs: sigma, c;  datasets: pairs (D,2), X (M,D), B (M,D), a (M,)
        training/        optional: R (M,N,3), F (M,N,3), E (M,), alphas (M,N,3)
        indices/         optional: train, valid (int64) into the source dataset

Only numbers and strings are stored; loading never runs code from the file.
"""

import os

import h5py
import numpy as np

from gdmlx._version import __version__
from gdmlx.atomic_write import atomic_path
from gdmlx.errors import InputError, ModelFileError
from gdmlx.expansion import KernelExpansion
from gdmlx.hdf5_files import open_hdf5
from gdmlx.symmetry import check_permutations
from gdmlx.units import energy_in_ev, length_in_ang

FORMAT = "gdmlx-model"
FORMAT_VERSION = 1


def save_model(model, path):
    """Write a fitted model (GDMLRegressor or MultiscaleModel) to ``path`` (HDF5), atomically."""
    with atomic_path(path) as tmp, h5py.File(tmp, "w") as f:
        f.attrs.update(format=FORMAT, format_version=FORMAT_VERSION, gdmlx_version=__version__)
        if hasattr(model, "fast_"):
            f.attrs.update(kind="multiscale", max_hops=int(model.max_hops),
                           n_fast=-1 if model.n_fast is None else int(model.n_fast))
            write_regressor(f.create_group("fast"), model.fast_)
            write_regressor(f.create_group("slow"), model.slow_)
        else:
            f.attrs["kind"] = "gdml"
            write_regressor(f, model)


def load_model(path):
    """Read a model file written by :func:`save_model`."""
    with open_model_file(path) as f:
        try:
            kind = f.attrs.get("kind", "gdml")
            if kind == "multiscale":
                from gdmlx.multiscale import MultiscaleModel
                n_fast = int(f.attrs.get("n_fast", 100))
                return MultiscaleModel.from_parts(read_regressor(f["fast"]), read_regressor(f["slow"]),
                                                  int(f.attrs.get("max_hops", 2)), None if n_fast < 0 else n_fast)
            if kind == "action":
                raise ModelFileError(f"{path} is an action model (a learned long-stride map), not a force "
                                     f"field: run it with gdmlx md FORCE_MODEL --action {path}")
            if kind != "gdml":
                raise ModelFileError(f"{path}: unknown model kind {kind!r}")
            return read_regressor(f)
        except KeyError as exc:
            raise ModelFileError(f"{path}: model file lacks an entry ({exc}); it is truncated "
                                 "or was not written by gdmlx") from None


def write_regressor(g, model):
    """Store a fitted GDMLRegressor in HDF5 group ``g``."""
    exp = model._fitted_expansion()
    g.attrs.update(energy_unit=model.energy_unit_, length_unit=model.length_unit_,
                   sigma=float(model.sigma), lam=float(model.lam), solver=model.solver,
                   use_energy_labels=bool(model.use_energy_labels),
                   train_hash=model.train_hash_, dataset_md5=getattr(model, "dataset_md5_", ""),
                   energy_fit_slope=model.energy_fit_.get("slope", np.nan),
                   energy_fit_r=model.energy_fit_.get("r", np.nan),
                   # the hyperparameters as given, so that clone(loaded).fit(other molecule) works
                   pairs_param="all" if model.pairs is None else "explicit",
                   perms_param=_perms_param(model.perms))
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
    z = _dataset(g, "z").astype(np.int64)
    exp = read_expansion(g["expansion"], len(z))
    a = dict(g.attrs)
    perms = _permutations(g, z)
    given = {"none": None, "auto": "auto", "explicit": perms}   # older files: as explicit arrays
    model = GDMLRegressor(sigma=float(a["sigma"]), lam=float(a["lam"]), solver=str(a["solver"]),
                          pairs=None if a.get("pairs_param") == "all" else exp.pairs,
                          use_energy_labels=bool(a["use_energy_labels"]),
                          perms=given[a["perms_param"]] if "perms_param" in a
                          else (perms if len(perms) > 1 else None))
    model.energy_unit_, model.length_unit_ = str(a["energy_unit"]), str(a["length_unit"])
    try:
        energy_in_ev(model.energy_unit_), length_in_ang(model.length_unit_)
        model._check_params()
    except ValueError as exc:
        raise ModelFileError(f"{g.file.filename}: {exc}") from None
    model.train_hash_ = str(a["train_hash"])
    model.dataset_md5_ = str(a.get("dataset_md5", ""))
    fit = {"slope": float(a["energy_fit_slope"]), "r": float(a["energy_fit_r"])}
    model.energy_fit_ = {} if np.isnan(fit["slope"]) and np.isnan(fit["r"]) else fit
    train = g.get("training")
    model.R_train_ = _dataset(train, "R") if train else None
    model.F_train_ = _dataset(train, "F") if train else None
    model.alphas_ = _dataset(train, "alphas") if train else None
    model.E_train_ = _dataset(train, "E") if train and "E" in train else None
    model.indices_ = {k: _dataset(g["indices"], k) for k in g.get("indices", {})}
    model.expansion_, model.z_, model.pairs_, model.perms_ = exp, z, exp.pairs, perms
    model.fit_info_ = {}
    return model


def write_expansion(group, exp):
    """Store a :class:`KernelExpansion` in an HDF5 group."""
    group.attrs.update(sigma=exp.sigma, c=exp.c)
    for name in ("pairs", "X", "B", "a"):
        group[name] = getattr(exp, name)


def read_expansion(group, n_atoms):
    """Read and check a :class:`KernelExpansion` from an HDF5 group."""
    pairs, X, B, a = (_dataset(group, n) for n in ("pairs", "X", "B", "a"))
    M, D = X.shape if X.ndim == 2 else (-1, -1)
    if (pairs.shape != (D, 2) or B.shape != (M, D) or a.shape != (M,)
            or pairs.min() < 0 or pairs.max() >= n_atoms):
        raise ModelFileError(f"{group.file.filename}: expansion arrays have inconsistent shapes "
                             f"(pairs {pairs.shape}, X {X.shape}, B {B.shape}, a {a.shape})")
    sigma, c = float(group.attrs["sigma"]), float(group.attrs["c"])
    if not all(np.all(np.isfinite(v)) for v in (X, B, a, sigma, c)) or sigma <= 0:
        raise ModelFileError(f"{group.file.filename}: expansion holds NaN/inf or sigma <= 0")
    return KernelExpansion(pairs, n_atoms, sigma, X, B, a, c)


def load_any_model(path):
    """A gdmlx model file, or an sGDML ``.npz`` model (imported)."""
    if not os.path.exists(path):
        raise FileNotFoundError(f"no such file: {path}")
    if str(path).lower().endswith(".npz"):
        from gdmlx.sgdml_import import import_sgdml_model
        return import_sgdml_model(path)
    return load_model(path)


def open_model_file(path):
    """Open ``path`` as a gdmlx model file of a known version, or raise ModelFileError."""
    hint = ("; an .npz is an sGDML file: gdmlx.load_any_model and gdmlx.import_sgdml_model read "
            "sGDML models" if str(path).lower().endswith(".npz") else "")
    f = open_hdf5(path, "model file", ModelFileError, hint)
    fmt, version = f.attrs.get("format"), f.attrs.get("format_version")
    if fmt != FORMAT:
        f.close()
        raise ModelFileError(f"{path}: not a gdmlx model file (format attribute {fmt!r})")
    if version != FORMAT_VERSION:
        f.close()
        raise ModelFileError(f"{path}: model format version {version} is not supported by gdmlx "
                             f"{__version__} (supports {FORMAT_VERSION})")
    return f


def _permutations(g, z):
    if "perms" not in g:
        return np.arange(len(z), dtype=np.int64)[None]
    try:
        return check_permutations(_dataset(g, "perms"), z)
    except InputError as exc:
        raise ModelFileError(f"{g.file.filename}: stored permutations are invalid ({exc})") from None


def _dataset(group, name):
    ds = group[name]
    if not isinstance(ds, h5py.Dataset):
        raise ModelFileError(f"{group.file.filename}: '{name}' is not a dataset")
    return ds[()]
