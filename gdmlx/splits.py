"""Train / validation / test splits of a dataset, and which geometries a model has not seen."""

import numpy as np

from gdmlx.errors import InputError
from gdmlx.validation import check_count


def split_indices(n_total, n_train, n_valid, seed):
    """Random disjoint train and validation indices, sorted (the rest is for testing).

    ``n_valid=None`` takes half of what is left, at most 1000, so that testing has the rest.
    """
    if n_total < 2:
        raise ValueError(f"the dataset holds {n_total} geometr{'y' if n_total == 1 else 'ies'}: training "
                         "needs at least 2, one to train on and one to choose sigma on")
    n_train = check_count(n_train, "n_train")
    if n_train >= n_total:
        raise ValueError(f"n_train (--n-train) must be between 1 and {n_total - 1} for {n_total} geometries")
    n_valid = min(1000, max(1, (n_total - n_train) // 2)) if n_valid is None else check_count(n_valid, "n_valid")
    if n_train + n_valid > n_total:
        raise ValueError(f"n_valid (--n-valid) must be between 1 and {n_total - n_train}")
    perm = np.random.default_rng(seed).permutation(n_total)
    return np.sort(perm[:n_train]), np.sort(perm[n_train:n_train + n_valid])


def trained_on(model, ds):
    """True if ``model`` records that it was trained on dataset ``ds`` (same fingerprint, of
    the arrays as they are or as their file stored them)."""
    recorded = getattr(model, "dataset_md5_", "")
    stored = getattr(ds, "source_md5", None)
    return bool(recorded) and (recorded == ds.md5().decode() or (stored is not None and recorded == stored.decode()))


def recorded_split(model, ds):
    """The split (``indices_``: train, valid) GDMLRegressor ``model`` records for dataset
    ``ds``, or {}.

    The model's split is this dataset's when the model was trained on it (:func:`trained_on`,
    by fingerprint), or on the same geometries in other units or a text copy: converting data
    back and forth changes their last bits and so the fingerprint, but the recorded training
    indices of ``ds`` still hold the model's training geometries (to ``SAME_GEOMETRY_TOL``).
    """
    indices = dict(getattr(model, "indices_", None) or {})
    if not indices or trained_on(model, ds):
        return indices
    recorded = [np.asarray(v, dtype=np.int64).ravel() for v in indices.values()]
    if any(len(v) and (v.min() < 0 or v.max() >= len(ds)) for v in recorded):
        return {}                                 # indices of a larger dataset: another one
    train = np.asarray(indices.get("train", []), dtype=np.int64)
    R_train = getattr(model, "R_train_", None)
    if R_train is None or len(train) == 0 or len(train) != len(R_train) or ds.R.shape[1:] != R_train.shape[1:]:
        return {}
    return indices if np.abs(ds.R[train] - R_train).max() <= SAME_GEOMETRY_TOL else {}


def held_out_indices(model, ds, exclude=("train", "valid")):
    """Indices of ``ds`` the model was not trained (or validated) on: not in the ``exclude``
    parts of the split it records for ``ds`` (:func:`recorded_split`: made by ``gdmlx
    train`` on ``ds``, or on the same geometries in other units), and equal to none of its
    training geometries (``R_train_``, when kept; a multiscale model's fast part's too) to
    ``SAME_GEOMETRY_TOL`` (a copy of the data written to a text format and read back). A
    model that keeps no training geometries (imported from sGDML) is matched by its training
    descriptors instead (:func:`found_in_descriptors`)."""
    parts = [getattr(model, "fast_", model)]     # from_parts: a fast part fitted on other geometries
    model = getattr(model, "slow_", model)       # a multiscale model's split is its slow part's
    keep = np.ones(len(ds), dtype=bool)
    split = recorded_split(model, ds)
    for name in exclude:
        idx = np.asarray(split.get(name, []), dtype=np.int64)
        if len(idx) and (idx.min() < 0 or idx.max() >= len(ds)):
            raise InputError(f"the model's recorded {name} indices reach beyond the dataset's "
                             f"{len(ds)} geometries, although it records this dataset: a corrupt model file")
        keep[idx] = False
    for part in {id(p): p for p in parts + [model]}.values():
        R_train = getattr(part, "R_train_", None)
        if R_train is not None and R_train.shape[1:] == ds.R.shape[1:]:
            keep &= ~found_in(ds.R, R_train)
        elif R_train is None:
            keep &= ~found_in_descriptors(ds.R, part.expansion_)
    return np.flatnonzero(keep)


def test_indices(model, ds, n_test=None, seed=0):
    """Sorted indices of at most ``n_test`` geometries of ``ds`` the model was not trained or
    validated on (:func:`held_out_indices`), drawn at random with ``seed`` when there are
    more; every command that reports test errors picks them so."""
    idx = held_out_indices(model, ds)
    if n_test is not None and n_test < len(idx):
        idx = np.sort(np.random.default_rng(seed).choice(idx, n_test, replace=False))
    return idx


SAME_GEOMETRY_TOL = 1e-5       # largest coordinate difference of the same geometry (length unit)


def found_in(R, R_ref, tol=SAME_GEOMETRY_TOL):
    """Boolean (n,): which geometries of ``R`` (n, N, 3) equal one of ``R_ref`` (M, N, 3) to
    ``tol`` in every coordinate (any trailing shape: (n, D) descriptors work the same).
    Candidates come from a random projection (geometries that match are within
    ``tol * sum|w|`` of each other on it), then are compared whole."""
    a, b = R.reshape(len(R), -1), R_ref.reshape(len(R_ref), -1)
    w = np.random.default_rng(0).standard_normal(a.shape[1])
    pa, pb = a @ w, b @ w
    order = np.argsort(pb)
    pb = pb[order]
    window = tol * np.abs(w).sum()
    lo, hi = np.searchsorted(pb, pa - window), np.searchsorted(pb, pa + window, side="right")
    out = np.zeros(len(R), dtype=bool)
    for i in np.flatnonzero(hi > lo):
        out[i] = np.any(np.abs(b[order[lo[i]:hi[i]]] - a[i]).max(axis=1) <= tol)
    return out


def found_in_descriptors(R, expansion, chunk=20_000):
    """Boolean (n,): which geometries of ``R`` (n, N, 3) [the model's length unit] are training
    geometries of ``expansion`` (:class:`gdmlx.expansion.KernelExpansion`), judged by its training
    descriptors ``X`` (M, D): for a model that keeps no training geometries. The tolerance
    is what ``SAME_GEOMETRY_TOL`` in the coordinates can change a descriptor ``1/r`` by
    at the shortest training distance (``2 tol / r_min^2``); descriptors are invariant
    under rotation and translation, so a rotated copy of a training geometry is found too.
    ``chunk`` geometries are compared at a time."""
    i, j = expansion.pairs[:, 0], expansion.pairs[:, 1]
    tol = 2.0 * SAME_GEOMETRY_TOL * expansion.X.max() ** 2
    out = np.zeros(len(R), dtype=bool)
    for s in range(0, len(R), chunk):
        x = 1.0 / np.linalg.norm(R[s:s + chunk, i] - R[s:s + chunk, j], axis=-1)
        out[s:s + chunk] = found_in(x, expansion.X, tol)
    return out
