"""Write a fitted gdmlx model as an sGDML model file (.npz), for sGDML's own tools.

The inverse of :func:`gdmlx.import_sgdml_model` (whose docstring gives the conventions):
``R_desc = X^T``, ``R_d_desc_alpha = -B``, ``alphas_E = a`` (written only when the model
has energy-label coefficients), ``std = 1``, the same ``c`` and ``sig``. A model summed over
permutations is written with its permuted copies as training points and the identity as
its only permutation, which predicts the same. sGDML's descriptor has every pair, so
models on a reduced pair list, and multiscale models, cannot be written; a model on every
pair in another order is written with its features in sGDML's order.
"""

import warnings

import numpy as np

from gdmlx.atomic_write import atomic_path
from gdmlx.descriptor import all_pairs
from gdmlx.errors import InputError
from gdmlx.units import energy_in_ev, length_in_ang


def export_sgdml_model(model, path):
    """Write the fitted :class:`gdmlx.GDMLRegressor` ``model`` to ``path`` (.npz) in sGDML's
    model format (``sgdml.predict.GDMLPredict``, sGDML's ASE calculator); returns ``path``.

    Raises InputError for a model sGDML cannot represent (a reduced pair list, a
    multiscale or unfitted model). Warns when sigma is not a whole number: sGDML's PyTorch
    predictor reads it as an integer (its NumPy predictor does not).
    """
    from gdmlx.calculator import energies_are_relative
    from gdmlx.regressor import GDMLRegressor, fitted_hyperparameters
    if not isinstance(model, GDMLRegressor) or not hasattr(model, "expansion_"):
        if isinstance(model, GDMLRegressor):
            hint = " (unfitted): fit it, or load a fitted one with gdmlx.load_model"
        elif isinstance(getattr(model, "best_estimator_", None), GDMLRegressor):
            hint = ": export its best_estimator_, the model refitted with the best parameters"
        else:
            hint = ": sGDML has no multiscale or action models"
        raise InputError(f"export_sgdml_model writes a fitted GDMLRegressor, got {type(model).__name__}{hint}")
    exp = model.expansion_
    pairs = all_pairs(exp.n_atoms)
    if len(exp.pairs) != len(pairs):
        raise InputError(f"sGDML models use all {len(pairs)} atom pairs; this model's descriptor has "
                         f"{len(exp.pairs)} (a reduced pair list): export a model fitted on all pairs "
                         "(GDMLRegressor(pairs=None))")
    # every pair, in another order or as (j, i): put the features in sGDML's lower-triangle order
    # (1/r_ij and its coefficients do not depend on which atom of a pair comes first)
    hi, lo = exp.pairs.max(axis=1), exp.pairs.min(axis=1)
    order = np.argsort(hi * (hi - 1) // 2 + lo)
    if exp.sigma != int(exp.sigma):
        warnings.warn(f"sigma {exp.sigma:g} is not a whole number: sGDML's NumPy predictor (GDMLPredict's "
                      f"default) uses it as it is, its PyTorch predictor (use_torch=True) as {int(exp.sigma)}, "
                      "which predicts other forces", UserWarning, stacklevel=2)
    _warn_about_sgdml_ase_units(model.energy_unit_, model.length_unit_)
    arrays = {
        "type": np.array("m"), "z": np.asarray(model.z_, dtype=np.int64),
        "R_desc": np.ascontiguousarray(exp.X[:, order].T), "R_d_desc_alpha": -exp.B[:, order],
        "sig": np.array(exp.sigma), "std": np.array(1.0), "c": np.array(exp.c),
        "perms": np.arange(exp.n_atoms, dtype=np.int64)[None], "tril_perms_lin": np.arange(len(pairs)),
        "e_unit": np.array(model.energy_unit_), "r_unit": np.array(model.length_unit_),
        "lam": np.array(float(fitted_hyperparameters(model)["lam"])), "n_train": np.array(exp.n_train),
        # sGDML's record of whether energies were fitted: without them c is no absolute offset
        "use_E": np.array(not energies_are_relative(model)),
    }
    if np.any(exp.a):
        arrays["alphas_E"] = exp.a.copy()
    indices = getattr(model, "indices_", None) or {}
    if getattr(model, "dataset_md5_", "") and "train" in indices:      # the split, as sGDML records it
        for part in ("train", "valid"):
            if part in indices:   # bytes, as sGDML's fingerprints: a str never equals its dataset's md5
                arrays[f"md5_{part}"] = np.array(str(model.dataset_md5_).encode())
                arrays[f"idxs_{part}"] = np.asarray(indices[part], dtype=np.int64)
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:            # a file object: np.savez adds no second .npz
            np.savez(fh, **arrays)
    return path


def _warn_about_sgdml_ase_units(energy_unit, length_unit):
    """Warn when sGDML's ASE calculator, which assumes kcal/mol and Angstrom unless given
    energy factors (``E_to_eV``, ``F_to_eV_Ang``) and never converts positions, would
    predict wrong numbers with a model in these units (unknown unit names: no warning)."""
    try:
        e, a = energy_in_ev(energy_unit), length_in_ang(length_unit)
    except InputError:
        return
    if a != 1.0:
        warnings.warn(f"the model is in {length_unit}: sGDML's GDMLPredict takes positions in {length_unit}, but "
                      "its ASE calculator (SGDMLCalculator) passes ASE's positions in Angstrom unconverted and "
                      "predicts wrong forces with this file; for it, train on data in Angstrom "
                      "(dataset.in_units(dataset.energy_unit, 'Ang'))", UserWarning, stacklevel=3)
    elif e != energy_in_ev("kcal/mol"):
        warnings.warn(f"the model is in {energy_unit}: sGDML's ASE calculator assumes kcal/mol unless told, "
                      f"SGDMLCalculator(path, E_to_eV={e:.10g}, F_to_eV_Ang={e:.10g})", UserWarning, stacklevel=3)
