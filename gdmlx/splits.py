"""Train / validation / test splits of a dataset, and which geometries a model has not seen."""

import numpy as np


def split_indices(n_total, n_train, n_valid, seed):
    """Random disjoint train and validation indices, sorted (the rest is for testing).

    ``n_valid=None`` takes min(1000, what is left).
    """
    if n_train < 1 or n_train >= n_total:
        raise ValueError(f"--n-train must be between 1 and {n_total - 1} for {n_total} geometries")
    n_valid = min(1000, n_total - n_train) if n_valid is None else n_valid
    if n_valid < 1 or n_train + n_valid > n_total:
        raise ValueError(f"--n-valid must be between 1 and {n_total - n_train}")
    perm = np.random.default_rng(seed).permutation(n_total)
    return np.sort(perm[:n_train]), np.sort(perm[n_train:n_train + n_valid])


def trained_on(model, ds):
    """True if ``model`` records that it was trained on dataset ``ds`` (same fingerprint)."""
    return bool(getattr(model, "dataset_md5_", "")) and model.dataset_md5_ == ds.md5().decode()


def held_out_indices(model, ds, exclude=("train", "valid")):
    """Indices of ``ds`` the model was not trained (or validated) on: the recorded split's
    ``exclude`` parts when the model was made by ``gdmlx train`` on ``ds``, and in any case
    every geometry equal to one of its training geometries (``R_train_``, when kept)."""
    model = getattr(model, "slow_", model)       # a multiscale model's split is its slow part's
    keep = np.ones(len(ds), dtype=bool)
    if trained_on(model, ds):
        for name in exclude:
            keep[getattr(model, "indices_", {}).get(name, [])] = False
    R_train = getattr(model, "R_train_", None)
    if R_train is not None:
        seen = {np.ascontiguousarray(r).tobytes() for r in R_train}
        keep &= np.array([np.ascontiguousarray(r).tobytes() not in seen for r in ds.R], dtype=bool)
    return np.flatnonzero(keep)
