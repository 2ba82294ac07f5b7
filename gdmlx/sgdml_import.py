"""Read model files written by sGDML (https://github.com/stefanch/sGDML) without pickle.

sGDML stores ``R_desc`` (D, M), ``R_d_desc_alpha`` (M, D) = J_m alpha_m with its own sign
convention (alpha = -a, labels scaled by ``std``), ``sig``, ``std``, ``c``, ``z``, ``perms``
and, for a model trained with energy constraints, ``alphas_E`` (M,). In gdmlx's convention
(:mod:`gdmlx.kernels.predict`) this is ``X = R_desc^T``, ``B = -std * R_d_desc_alpha``,
``a = std * alphas_E`` (zero without), same ``c`` and ``sigma``; the descriptor pair order
(lower triangle, i > j) is the same. :mod:`gdmlx.sgdml_export` writes the other way.
"""

import warnings

import numpy as np

from gdmlx.descriptor import all_pairs
from gdmlx.errors import InputError, ModelFileError
from gdmlx.expansion import KernelExpansion
from gdmlx.file_kinds import check_kind
from gdmlx.modelfile import SIGMA_RANGE
from gdmlx.npz_files import read_npz
from gdmlx.symmetry import check_permutations, pair_permutation
from gdmlx.units import energy_in_ev, length_in_ang
from gdmlx.validation import check_atomic_numbers


def import_sgdml_model(path, energy_unit=None, length_unit=None):
    """A fitted :class:`gdmlx.GDMLRegressor` predicting what the sGDML model at ``path`` does.

    Supported: GDML and sGDML models (with permutational symmetries, with or without energy
    constraints), without periodic lattices. Object arrays in the file are never loaded. The sum
    over permutations becomes permuted copies of the training points in the expansion.
    The units are the file's (``e_unit``, ``r_unit``; kcal/mol and Angstrom when absent);
    ``energy_unit`` and ``length_unit`` (names as in :mod:`gdmlx.units`) replace them, for
    files that say 'u' (unknown) or say wrongly.
    """
    from gdmlx.regressor import GDMLRegressor
    check_kind(path, ("sgdml",), "an sGDML model (.npz)", ModelFileError)
    arr, keys = read_npz(path, MODEL_KEYS, ModelFileError, "sGDML .npz model")
    if "type" not in arr or _text(arr["type"]) != "m":            # sGDML accepts 'm' and b'm'
        raise ModelFileError(f"{path}: not an sGDML model file (no type='m')")
    missing = [k for k in ("R_desc", "R_d_desc_alpha", "sig", "std", "c", "z", "perms") if k not in arr]
    if missing:
        raise ModelFileError(f"{path}: sGDML model file lacks {missing}")
    units = {k: _text(arr[k]) if k in arr else d for k, d in (("e_unit", "kcal/mol"), ("r_unit", "Ang"))}
    for k in [k for k in units if units[k] is None]:
        raise ModelFileError(f"{path}: '{k}' must be a unit name (text), got {arr[k].dtype} of shape {arr[k].shape}")
    split = _recorded_split(path, arr)
    if "lattice" in keys:
        raise ModelFileError(f"{path}: sGDML models with a periodic 'lattice' are not supported yet")
    _check_numbers(path, arr)
    try:
        z = check_atomic_numbers(arr["z"], len(np.atleast_1d(arr["z"])))
    except InputError as exc:
        raise ModelFileError(f"{path}: {exc}") from None
    perms = arr["perms"]
    first = [k for k, p in enumerate(perms) if np.array_equal(p, np.arange(len(z)))][:1]
    perms = perms[first + [k for k in range(len(perms)) if k not in first]]   # identity first
    try:
        perms = check_permutations(perms, z)
    except InputError as exc:
        raise ModelFileError(f"{path}: the model's permutations are invalid ({exc})") from None
    X = arr["R_desc"].T
    pairs = all_pairs(len(z))
    if (X.ndim != 2 or X.shape[1] != len(pairs) or arr["R_d_desc_alpha"].shape != X.shape or X.size == 0
            or X.min() <= 0):
        raise ModelFileError(f"{path}: descriptor arrays do not fit {len(z)} atoms (R_desc {arr['R_desc'].shape}, "
                             f"R_d_desc_alpha {arr['R_d_desc_alpha'].shape}), or hold inverse distances <= 0")
    std = _number(arr, "std")
    B = -std * arr["R_d_desc_alpha"]
    a = std * arr["alphas_E"] if "alphas_E" in arr else np.zeros(len(X))
    if a.shape != (len(X),):
        raise ModelFileError(f"{path}: 'alphas_E' has shape {a.shape}, expected ({len(X)},), one per training point")
    s = np.stack([pair_permutation(pairs, p) for p in perms])          # (P, D)
    X, B = X[:, s].reshape(-1, len(pairs)), B[:, s].reshape(-1, len(pairs))
    exp = KernelExpansion(pairs, len(z), _number(arr, "sig"), X, B, np.repeat(a, len(perms)), _number(arr, "c"))
    model = GDMLRegressor(sigma=exp.sigma, perms=perms if len(perms) > 1 else None,   # all pairs: the default
                          use_energy_labels="alphas_E" in arr)
    if "lam" in arr:                                   # what it was fitted with: for the record
        model.lam = _number(arr, "lam")
    model.expansion_, model.pairs_, model.z_, model.perms_ = exp, pairs, z, perms
    for key, given, known in (("e_unit", energy_unit, energy_in_ev), ("r_unit", length_unit, length_in_ang)):
        if given is not None:
            known(given)                               # the caller's unit name: InputError if unknown
            units[key] = given
        elif units[key].strip().lower() != "u":        # 'u' (unknown): refused where units matter
            try:
                known(units[key])
            except InputError as exc:
                raise ModelFileError(f"{path}: {exc}") from None
    assumed = [k for k, given in (("e_unit", energy_unit), ("r_unit", length_unit)) if k not in arr and given is None]
    if assumed:                                        # sGDML's own assumption, but said
        warnings.warn(f"{path} records no {' or '.join(assumed)}: assuming {' and '.join(units[k] for k in assumed)} "
                      "(sGDML's default); if the data were in other units, give them: "
                      "gdmlx.import_sgdml_model(path, energy_unit=..., length_unit=...)", UserWarning, stacklevel=2)
    model.energy_unit_, model.length_unit_ = units["e_unit"], units["r_unit"]
    model.R_train_ = model.F_train_ = model.E_train_ = model.alphas_ = None
    # sGDML's use_E: False for a model fitted without energies (an arbitrary offset, c = 0)
    model.energies_relative_ = "use_E" in arr and not bool(arr["use_E"])
    model.train_hash_, model.energy_fit_, model.fit_info_ = "", {}, {}
    model.dataset_md5_, model.indices_ = split
    model.hyperparameters_ = model.get_params(deep=False)
    return model


MODEL_KEYS = ("type", "R_desc", "R_d_desc_alpha", "sig", "std", "c", "z", "perms", "e_unit", "r_unit",
              "md5_train", "idxs_train", "md5_valid", "idxs_valid", "lam", "alphas_E", "use_E")


def _check_numbers(path, arr):
    """Raise ModelFileError unless the arrays are real and finite, the permutations
    integers, sigma is within the range of model files and the label scale is positive."""
    for k in [k for k in ("R_desc", "R_d_desc_alpha", "sig", "std", "c", "alphas_E") if k in arr]:
        if arr[k].dtype.kind not in "iuf" or not np.all(np.isfinite(arr[k])):
            raise ModelFileError(f"{path}: '{k}' is not finite real numbers")
    if arr["perms"].dtype.kind not in "iu":             # floats were cut to integers
        raise ModelFileError(f"{path}: 'perms' must be integer atom indices, got {arr['perms'].dtype}")
    if "lam" in arr and (arr["lam"].dtype.kind not in "iuf" or arr["lam"].size != 1
                         or not np.isfinite(arr["lam"]).all() or _number(arr, "lam") < 0):
        raise ModelFileError(f"{path}: 'lam' must be one number >= 0")
    if "use_E" in arr and (arr["use_E"].dtype.kind not in "biu" or arr["use_E"].size != 1):
        raise ModelFileError(f"{path}: 'use_E' must be one boolean")
    for k in ("sig", "std", "c"):
        if arr[k].size != 1:
            raise ModelFileError(f"{path}: '{k}' must be one number, it has shape {arr[k].shape}")
    sig, std = _number(arr, "sig"), _number(arr, "std")
    if not SIGMA_RANGE[0] <= sig <= SIGMA_RANGE[1] or std <= 0:
        raise ModelFileError(f"{path}: sig {sig:g} outside {SIGMA_RANGE} or std {std:g} <= 0")


def _number(arr, key):
    """The one number array ``arr[key]`` holds (shape () or (1,), as sGDML reads both)."""
    return float(arr[key].reshape(-1)[0])


def _text(a):
    """The text a one-element str or bytes array holds (sGDML wrote both), or None."""
    if a.dtype.kind not in "SU" or a.size != 1:
        return None
    value = a.reshape(-1)[0].item()
    return value.decode(errors="replace") if isinstance(value, bytes) else value


def _recorded_split(path, f):
    """``(dataset md5, {"train": idx, "valid": idx})`` recorded in an sGDML model file ``f``
    (validation indices only when they come from the same dataset), so that testing on that
    dataset leaves them out; ``("", {})`` when the file has none. ModelFileError naming
    ``path`` for fingerprints that are not text or indices that are not integers >= 0."""
    if "md5_train" not in f or "idxs_train" not in f:
        return "", {}
    md5 = {k: _text(f[k]) for k in ("md5_train", "md5_valid") if k in f}
    for k in [k for k in md5 if md5[k] is None]:
        raise ModelFileError(f"{path}: '{k}' must be a dataset fingerprint (text), got {f[k].dtype} "
                             f"of shape {f[k].shape}")
    parts = ("train", "valid") if "idxs_valid" in f and md5.get("md5_valid") == md5["md5_train"] else ("train",)
    indices = {}
    for part in parts:
        idx = f[f"idxs_{part}"]
        if idx.ndim != 1 or (idx.size and (idx.dtype.kind not in "iu" or idx.min() < 0)):
            raise ModelFileError(f"{path}: 'idxs_{part}' must be dataset indices (integers >= 0, one "
                                 f"dimension), got {idx.dtype} of shape {idx.shape}")
        indices[part] = idx.astype(np.int64)
    return md5["md5_train"], indices
