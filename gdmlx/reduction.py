"""Automatic descriptor reduction: keep the pair features that matter, retrain, stop by itself.

Procedure (after Kabylda et al., Nat. Commun. 14, 3562 (2023), with a stopping rule added):
rank features by importance on validation geometries, drop the least important fraction,
retrain on the kept pairs, and accept the round if the validation force MAE stays within
``(1 + tol)`` of the full model's; after a rejected round the fraction is halved. The test
set is never looked at. Optionally a round must also pass an MD check: short Langevin runs
from validation geometries that spend no more time outside the training domain than the
unreduced model's (:class:`gdmlx.md.probe.StabilityProbe`), because a reduced model can
match validation forces and still lead MD where its data never went.
"""

import copy
import os
import sys
import time
import warnings
from dataclasses import dataclass, field

import numpy as np

from gdmlx.atomic_write import check_output_path
from gdmlx.descriptor import descriptors
from gdmlx.errors import EnergyConsistencyWarning, InputError
from gdmlx.multiscale import MultiscaleModel
from gdmlx.splits import held_out_indices, recorded_split
from gdmlx.symmetry import close_pairs, pair_orbits
from gdmlx.kernels.masking import masked_force_change_sq
from gdmlx.units import in_angstrom
from gdmlx.validation import (check_count, check_data_for_model, check_force_model, check_forces, check_geometries,
                              check_number)

LOCAL_CUTOFF_ANG = 5.0


def masking_importance(expansion, R, orbits=None):
    """Force RMSE (per component) between the model and the model without feature k: (D,).

    R (n, N, 3) validation geometries. Exact masking, as published, at the cost of two
    (D x M) @ (M x D) products per geometry. ``orbits`` (D,) (:func:`gdmlx.symmetry.pair_orbits`,
    for a model summed over permutations): the features of an orbit are masked together,
    and each gets its orbit's value (one feature of an orbit masked alone leaves its
    equivalents to carry what it carried, and ranked the C-H bonds of a symmetric ethanol
    model least important).
    """
    orbits = np.arange(len(expansion.pairs)) if orbits is None else np.asarray(orbits)
    x, G = descriptors(R, expansion.pairs)
    total = np.zeros(orbits.max() + 1)
    for t in range(len(R)):
        total += masked_force_change_sq(x[t], G[t], expansion.pairs, expansion.n_atoms,
                                        expansion.X, expansion.B, expansion.a, expansion.sigma, orbits)
    return np.sqrt(total / (len(R) * expansion.n_atoms * 3))[orbits]


def own_term_importance(expansion, R, orbits=None):
    """RMS size of each feature's own term in the atomic forces: (D,).

    Feature k adds ``F_desc_k g_k`` to atom i and subtracts it from atom j, so its direct
    contribution has norm ``sqrt(2) |F_desc_k| |g_k|``. One ordinary prediction per geometry.
    With ``orbits`` (D,), each feature gets the root sum of squares over its orbit.
    """
    from gdmlx.kernels.predict import predict_desc_batch
    x, G = descriptors(R, expansion.pairs)
    _, fd = predict_desc_batch(x, expansion.X, expansion.B, expansion.a, expansion.sigma, expansion.c)
    contrib_sq = (2.0 * fd**2 * np.einsum("ndc,ndc->nd", G, G)).mean(axis=0) / (expansion.n_atoms * 3)
    if orbits is not None:
        contrib_sq = np.bincount(orbits, weights=contrib_sq)[orbits]
    return np.sqrt(contrib_sq)


IMPORTANCE = {"masking": masking_importance, "own-term": own_term_importance}
IMPORTANCE_LABEL = {"masking": "importance: force RMSE change when masked",
                    "own-term": "importance: RMS of its own force term"}


@dataclass
class ReductionReport:
    """What a reduction did: one entry per round, and the accepted model's numbers."""

    full_valid_f_mae: float
    tol: float
    rounds: list = field(default_factory=list)
    pairs: np.ndarray | None = None
    n_local: int = 0
    n_nonlocal: int = 0
    all_pairs: np.ndarray | None = None       # the full model's pairs
    importance: np.ndarray | None = None      # of the full model's features
    mean_distance: np.ndarray | None = None   # of the full model's pairs, A


def reduce_pairs(model, R_valid, F_valid, tol=0.05, importance="masking", drop_fraction=0.3,
           min_drop_fraction=0.02, progress=True, on_round=None, check=None):
    """Smallest pair list whose retrained model keeps validation force MAE within ``tol``.

    model: fitted GDMLRegressor with its training data; R_valid, F_valid (n, N, 3):
    validation geometries (not the test set). ``check(trial_model) -> (ok, info)``, if
    given, must also pass for a trial within ``tol`` to be accepted (e.g. the MD check of
    :func:`md_check`); ``info`` goes into the round's entry. ``on_round(trial_model,
    round)``, if given, is called with every model tried and its entry of
    ``report.rounds`` (benchmarks use it to record test errors; it must not influence the
    selection). Returns ``(reduced_model, report)``.
    """
    if isinstance(model, MultiscaleModel):
        raise InputError("reduce_pairs reduces a GDMLRegressor; a MultiscaleModel's slow part: "
                         "reduce_slow_part, or gdmlx.reduce for either")
    check_force_model(model)                              # a path: InputError, not AttributeError
    model.force_parts()                                   # NotFittedError for an unfitted model
    if model.R_train_ is None:
        raise ValueError("reduction retrains the model: it needs a model that kept its training "
                         "data (models imported from sGDML do not)")
    R_valid = check_geometries(R_valid, len(model.z_), "R_valid")
    F_valid = check_forces(F_valid, R_valid.shape, "F_valid")
    _check_settings(tol, importance, drop_fraction, min_drop_fraction)
    rank = IMPORTANCE[importance]
    full_mae = _valid_mae(model, R_valid, F_valid)
    if progress:                        # the rounds' reference, before the first round's retraining
        print(f"reduce: {len(model.pairs_)} pairs, validation force MAE {full_mae:.4f} (unreduced); each round "
              f"retrains the model's {len(model.R_train_)} geometries on fewer", file=sys.stderr, flush=True)
    report = ReductionReport(full_valid_f_mae=full_mae, tol=tol)
    R_ang = in_angstrom(model.R_train_, model.length_unit_)
    dist = np.linalg.norm(R_ang[:, model.pairs_[:, 0]] - R_ang[:, model.pairs_[:, 1]], axis=-1)
    report.mean_distance = dist.mean(axis=0)
    accepted, frac, tried = model, drop_fraction, set()
    orbits = pair_orbits(model.pairs_, model.perms_)
    imp = rank(model.expansion_, R_valid, orbits)
    report.importance, report.all_pairs = imp, model.pairs_
    while frac >= min_drop_fraction and len(accepted.pairs_) > 1:
        n_keep = max(1, min(len(accepted.pairs_) - 1, int(round(len(accepted.pairs_) * (1 - frac)))))
        keep = np.sort(np.argsort(imp, kind="stable")[::-1][:n_keep])
        subset = close_pairs(accepted.pairs_[keep], accepted.perms_)   # symmetric models: whole orbits
        if len(subset) == len(accepted.pairs_) and orbits.max() > 0:
            # the fraction is smaller than the least important orbit, which closing put back:
            # the smallest step that drops anything drops that orbit
            subset = accepted.pairs_[orbits != orbits[np.argmin(imp)]]
        if len(subset) == len(accepted.pairs_) or subset.tobytes() in tried:
            frac /= 2                                  # nothing dropped, or a subset already tried
            continue
        tried.add(subset.tobytes())
        t0 = time.perf_counter()
        with warnings.catch_warnings():     # the full model's fit has reported on its energies
            warnings.simplefilter("ignore", EnergyConsistencyWarning)
            trial = accepted.refit(pairs=subset)
        mae = _valid_mae(trial, R_valid, F_valid)
        ok = mae <= (1 + tol) * full_mae
        entry = {"n_pairs": len(subset), "valid_f_mae": mae, "drop_fraction": frac}
        if ok and check is not None:
            ok, entry["check"] = check(trial)
        entry.update(accepted=bool(ok), seconds=time.perf_counter() - t0)
        report.rounds.append(entry)
        if on_round:
            on_round(trial, report.rounds[-1])
        if progress:
            md = " by the MD check" if "check" in entry and not ok else ""
            print(f"reduce: {len(subset)} pairs, validation force MAE {mae:.4f} "
                  f"({mae / full_mae - 1:+.1%} vs full) {'accepted' if ok else 'rejected'}{md}",
                  file=sys.stderr, flush=True)
        if ok:
            accepted = trial
            orbits = pair_orbits(accepted.pairs_, accepted.perms_)
            imp = rank(accepted.expansion_, R_valid, orbits)
        else:
            frac /= 2
    report.pairs = accepted.pairs_
    kept = _pair_rows(model.pairs_, accepted.pairs_)
    report.n_local = int(np.sum(report.mean_distance[kept] < LOCAL_CUTOFF_ANG))
    report.n_nonlocal = len(kept) - report.n_local
    return accepted, report


def _check_settings(tol, importance, drop_fraction=0.3, min_drop_fraction=0.02):
    """Raise for settings :func:`reduce_pairs` refuses: called first by every entry point,
    before an MD check's baseline runs (minutes) are spent on a reduction that cannot start."""
    if importance not in IMPORTANCE:
        raise ValueError(f"importance must be one of {sorted(IMPORTANCE)}, got {importance!r}")
    check_number(tol, "tol")
    for value, name in ((drop_fraction, "drop_fraction"), (min_drop_fraction, "min_drop_fraction")):
        if not 0 < check_number(value, name) < 1:
            raise InputError(f"{name} must be a fraction of the pairs between 0 and 1 (exclusive), got {value!r}")
    if min_drop_fraction > drop_fraction:
        raise InputError(f"min_drop_fraction ({min_drop_fraction!r}) is larger than drop_fraction "
                         f"({drop_fraction!r}): no round would be tried")


def md_check(probe, baseline_model, starts, as_model=lambda trial: trial, progress=True):
    """A ``check`` for :func:`reduce_pairs`: ``probe`` (:class:`gdmlx.md.probe.StabilityProbe`)
    runs from ``starts`` (n, N, 3) with ``as_model(trial)`` must do no worse than with
    ``baseline_model``. The baseline is measured once, here."""
    baseline = probe.measure(baseline_model, starts)
    if progress:
        print(f"reduce: MD check baseline, outside the training domain {np.mean(baseline['outside']):.1%} "
              f"of the time, {sum(s is not None for s in baseline['stopped_ps'])} of {probe.n_runs} "
              "runs stopped", file=sys.stderr, flush=True)

    def check(trial):
        result = probe.measure(as_model(trial), starts)
        return probe.passes(result, baseline), {"md": result, "md_baseline": baseline}
    return check


def reduce(model, dataset, tol=0.05, importance="masking", n_valid=500, seed=0, progress=True,
           probe=None):
    """Reduce ``model``'s descriptor using validation geometries from ``dataset``.

    Validation geometries are the model's own validation split if it was trained on this
    dataset by ``gdmlx train`` (or on the same geometries in other units,
    :func:`gdmlx.splits.recorded_split`), otherwise up to ``n_valid`` random geometries it was not
    trained on. For a :class:`gdmlx.MultiscaleModel` the slow part's descriptor is reduced
    (see :func:`reduce_slow_part`); the fast part keeps its local pairs. With a ``probe``
    (:class:`gdmlx.md.probe.StabilityProbe`) every reduction must also pass its MD check
    (:func:`md_check`, runs from validation geometries). Returns the reduced model, with
    the :class:`ReductionReport` in its ``reduction_`` attribute. ``tol``: the allowed relative
    increase of the validation force MAE over the full model's (0.05: 5 %).
    """
    check_force_model(model)                              # a path: InputError, not AttributeError
    model.force_parts()                                   # NotFittedError for an unfitted model
    check_count(n_valid, "n_valid")
    _check_settings(tol, importance)
    check_data_for_model(dataset, model, "dataset")
    base = model.slow_ if isinstance(model, MultiscaleModel) else model
    split = recorded_split(base, dataset)
    indices, recorded_md5 = dict(split), getattr(base, "dataset_md5_", "")
    if len(indices.get("valid", [])) == 0:
        pool = held_out_indices(model, dataset)
        if len(pool) == 0:
            raise InputError(f"every one of the dataset's {len(dataset)} geometries was used to train the "
                             "model: reduction needs validation geometries the model has not seen "
                             "(a dataset with more geometries)")
        indices["valid"] = np.sort(np.random.default_rng(seed).permutation(pool)[:n_valid])
    valid = indices["valid"]
    # copies, so that recording the split below never changes the caller's model (the result
    # is that model itself when no round is accepted)
    if isinstance(model, MultiscaleModel):
        reduced, report = reduce_slow_part(model, dataset.R[valid], dataset.F[valid], tol=tol,
                                           importance=importance, progress=progress, probe=probe)
        reduced = reduced.with_slow(copy.copy(reduced.slow_))
        base = reduced.slow_
    else:
        check = probe and md_check(probe, model, dataset.R[valid], progress=progress)
        reduced, report = reduce_pairs(model, dataset.R[valid], dataset.F[valid], tol=tol,
                                       importance=importance, progress=progress, check=check)
        reduced = base = copy.copy(reduced)
    # record the split, so that testing the reduced model leaves out what chose its pairs; a
    # split recognised on this dataset keeps naming the dataset it was made on (the same
    # geometries, perhaps in other units)
    base.indices_ = indices
    base.dataset_md5_ = recorded_md5 if split else dataset.md5().decode()
    reduced.reduction_ = report
    return reduced


def reduce_slow_part(model, R_valid, F_valid, tol=0.05, importance="masking", progress=True,
                     probe=None):
    """Reduce the slow part of a fitted :class:`gdmlx.MultiscaleModel`; ``(reduced, report)``.

    The slow part is fitted to the forces the fast part misses, so it is reduced against
    those residuals ``F_valid - fast(R_valid)``: its validation error on them is the whole
    model's validation force error, and ``tol`` bounds that. MD evaluates the slow part only
    every few steps, and its cost (training points x pairs) sets the multiple-time-step
    speed-up. With a ``probe``, the whole model (fast + trial slow part) must pass the MD
    check of :func:`md_check` against the unreduced model.
    """
    if not isinstance(model, MultiscaleModel):
        raise InputError(f"reduce_slow_part reduces a MultiscaleModel's slow part, not a {type(model).__name__}: "
                         "reduce_pairs, or gdmlx.reduce for either")
    check_force_model(model)                              # a path: InputError, not AttributeError
    model.force_parts()                                   # NotFittedError for an unfitted model
    _check_settings(tol, importance)
    R_valid = check_geometries(R_valid, len(model.z_), "R_valid")
    F_resid = check_forces(F_valid, R_valid.shape, "F_valid") - model.fast_.predict(R_valid)
    check = probe and md_check(probe, model, R_valid,
                               model.with_slow, progress)
    slow, report = reduce_pairs(model.slow_, R_valid, F_resid, tol=tol, importance=importance,
                                progress=progress, check=check)
    return model.with_slow(slow), report


def _pyplot():
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise ValueError("saving a figure needs matplotlib: pip install matplotlib") from None
    return plt


def check_figure_path(path):
    """Raise ValueError now if :func:`plot_reduction` could not write ``path`` later (no
    matplotlib, no such folder, a format matplotlib does not write)."""
    check_output_path(path)
    plt = _pyplot()
    fig = plt.figure()
    formats = fig.canvas.get_supported_filetypes()
    plt.close(fig)
    ext = os.path.splitext(str(path))[1].lstrip(".").lower()
    if ext not in formats:
        raise ValueError(f"{path}: matplotlib writes {', '.join(sorted(formats))} figures, not '{ext}'")


def plot_reduction(report, n_atoms, path, importance="masking"):
    """Figure: importance (computed by ``importance``, a key of :data:`IMPORTANCE`) against
    mean pair distance, and the kept pairs as an N x N map (black: kept)."""
    plt = _pyplot()
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 4.2))
    kept = np.zeros(len(report.importance), dtype=bool)
    kept[_pair_rows(report.all_pairs, report.pairs)] = True
    ax1.semilogy(report.mean_distance[~kept], report.importance[~kept], ".", color="0.6", label="dropped")
    ax1.semilogy(report.mean_distance[kept], report.importance[kept], ".", color="C3", label="kept")
    ax1.axvline(LOCAL_CUTOFF_ANG, ls="--", color="0.3")
    ax1.set(xlabel="mean pair distance (A)", ylabel=IMPORTANCE_LABEL[importance])
    ax1.legend()
    grid = np.zeros((n_atoms, n_atoms))
    grid[report.pairs[:, 0], report.pairs[:, 1]] = grid[report.pairs[:, 1], report.pairs[:, 0]] = 1
    ax2.imshow(grid, cmap="Greys", interpolation="nearest")
    ax2.set(xlabel="atom", ylabel="atom",
            title=f"{len(report.pairs)} of {len(report.importance)} pairs kept (black): "
                  f"{report.n_local} local, {report.n_nonlocal} non-local")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _valid_mae(model, R, F):
    return float(np.abs(model.predict(R) - F).mean())


def _pair_rows(all_pairs, subset):
    """Row indices of ``subset`` pairs within ``all_pairs``."""
    index = {tuple(p): k for k, p in enumerate(all_pairs)}
    return np.array([index[tuple(p)] for p in subset], dtype=np.int64)
