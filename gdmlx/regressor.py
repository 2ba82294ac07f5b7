"""scikit-learn style estimator for GDML force fields."""

import hashlib
from dataclasses import replace

import numpy as np
from sklearn.base import BaseEstimator, RegressorMixin, clone
from sklearn.exceptions import NotFittedError

from gdmlx.backend import backend_module, resolve_backend
from gdmlx.descriptor import all_pairs, check_pairs
from gdmlx.kernels.descriptor import closest_pairs
from gdmlx.errors import InputError
from gdmlx.options import ComputeOptions
from gdmlx.symmetry import check_permutations, find_permutations, pairs_closed
from gdmlx.training import fit_expansion
from gdmlx.units import in_angstrom, length_in_ang
from gdmlx.validation import (as_float_array, check_forces, check_geometries, check_min_distance,
                              check_number, check_sigma, check_training_data)


class GDMLRegressor(RegressorMixin, BaseEstimator):
    """Gradient-domain machine learning (GDML) force field.

    A Matern 5/2 kernel on inverse pairwise distances, trained on forces (and optionally
    energies), predicting forces that are exactly minus the gradient of the predicted
    energy. Chmiela et al., Sci. Adv. 3, e1603015 (2017).

    Parameters
    ----------
    sigma : float
        Kernel length scale, in the descriptor's units (inverse length).
    lam : float
        Regularisation added to the kernel diagonal (labels are scaled to unit std), for
        data in A; it scales with the length unit like the kernel, a^2 (a: the unit in A,
        :func:`gdmlx.units.hyperparameters_in`), and energy rows get ``lam / a^2``, so that
        the same model comes from data in any length unit.
    solver : {"analytic", "cg", "auto"}
        Linear solver: dense Cholesky factorisation (without the training geometries' rigid
        motions, see :mod:`gdmlx.rigid`; memory 4 (M(3N-6))^2 bytes, 3N-5 when a training
        geometry is linear), matrix-free
        conjugate gradient with a Nystrom preconditioner (for systems too large to store),
        or "auto": analytic when its matrix fits in the memory budget.
    pairs : (D, 2) array of int or None
        Descriptor pair list; None means all N(N-1)/2 pairs.
    use_energy_labels : bool
        Add energies as extra rows of the linear system (otherwise energies only set the
        integration constant); the analytic solver only ("cg" refuses them, "auto" then
        solves analytically).
    perms : None, "auto" or (P, N) array of int
        Permutational symmetries: the kernel is summed over these atom permutations (a
        group, identity first), as in sGDML. "auto" detects them from the bond graph of
        the training geometries (:func:`gdmlx.symmetry.find_permutations`). Training and
        prediction cost grow with P.
    options : ComputeOptions or None
        Performance settings (memory budget, batch size, verbosity).

    Attributes
    ----------
    expansion_ : KernelExpansion
        What prediction uses.
    pairs_ : (D, 2) int64
    z_ : (N,) int64
    R_train_, F_train_ : (M, N, 3); E_train_ : (M,) or None
        The training data, kept so that the model can be refitted (e.g. on fewer pairs); the
        model's own copies (so are ``pairs_`` and ``hyperparameters_``' arrays): changing the
        arrays given to ``fit`` afterwards does not change the model.
    alphas_ : (M, N, 3)
        Force coefficients.
    perms_ : (P, N) int64
        The permutations used (only the identity without symmetries).
    energy_fit_ : dict
        Slope and correlation of training energies against model energies.
    fit_info_ : dict
        Timings of kernel assembly and solve (s).
    train_hash_ : str
        SHA-256 of the training data (z, R, F, E).
    hyperparameters_ : dict
        ``get_params()`` as they were when the model was fitted (or loaded): what model
        files record; ``set_params`` afterwards changes the next fit, not this model.
    energy_unit_, length_unit_ : str
    indices_, dataset_md5_, reduction_
        What was recorded about the data (:data:`DATA_RECORDS`): the split (``{"train": ...,
        "valid": ...}`` indices into the dataset) and the dataset's sGDML fingerprint, from
        ``gdmlx train``, a model file or an sGDML file (``{}`` and ``""`` where none was
        recorded), and :func:`gdmlx.reduce`'s report; absent after a fit in Python.
    """

    def __init__(self, sigma=10.0, lam=1e-10, solver="analytic", pairs=None,
                 use_energy_labels=False, perms=None, options=None):
        self.sigma = sigma
        self.lam = lam
        self.solver = solver
        self.pairs = pairs
        self.use_energy_labels = use_energy_labels
        self.perms = perms
        self.options = options

    def fit(self, R, F, energies=None, z=None, energy_unit="kcal/mol", length_unit="Ang"):
        """Fit to geometries ``R`` (M, N, 3) and forces ``F`` (M, N, 3); returns self.

        ``energies`` (M,) set the integration constant (and are fitted with
        ``use_energy_labels``); ``z`` (N,) are the atomic numbers (required).
        ``energy_unit`` and ``length_unit`` name the data's units (:mod:`gdmlx.units`),
        recorded in the model, which the ASE calculator, MD and the commands convert with:
        for a :class:`gdmlx.Dataset` ``ds``, give ``ds.energy_unit`` and ``ds.length_unit``.
        """
        self._check_params()
        given = (R, F, energies)
        R, F, E, z = check_training_data(R, F, energies, z, energy_unit, length_unit)
        # the model keeps its training data (refit, model files, the domain check): its own
        # copy, so that the caller changing its arrays afterwards does not change the model
        R, F, E = (_owned(a, g) for a, g in zip((R, F, E), given))
        M, N = R.shape[:2]
        pairs = all_pairs(N) if self.pairs is None else _owned(check_pairs(self.pairs, N), self.pairs)
        if self.use_energy_labels and E is None:
            raise InputError("use_energy_labels=True fits energies, and none were given: pass them "
                             "(fit(R, F, energies=E, z=z)) or set use_energy_labels=False")
        options = self._compute_options()
        perms = self._permutations(in_angstrom(R, length_unit), z, pairs)
        self.expansion_, self.alphas_, self.fit_info_ = fit_expansion(
            R, F, E, pairs, float(self.sigma), float(self.lam), self.use_energy_labels, options,
            self.solver, perms, length_in_ang(length_unit))
        self.energy_fit_ = self.fit_info_.pop("energy_fit", {})
        self.pairs_, self.z_, self.perms_ = pairs, z, perms
        self.R_train_, self.F_train_, self.E_train_ = R, F, E
        self.energy_unit_, self.length_unit_ = energy_unit, length_unit
        self.train_hash_ = training_data_hash(z, R, F, E)
        self.hyperparameters_ = clone(self.get_params(deep=False), safe=False)   # copies of arrays
        forget_data_records(self)
        return self

    def _permutations(self, R_ang, z, pairs):
        """The permutation group (P, N) the kernel is summed over (bond graph from the
        geometries ``R_ang`` in Angstrom)."""
        if self.perms is None:
            return np.arange(len(z), dtype=np.int64)[None]
        if isinstance(self.perms, str):
            if self.perms != "auto":
                raise ValueError(f"perms must be None, 'auto' or a (P, N) array, got {self.perms!r}")
            perms = find_permutations(R_ang, z)
        else:
            perms = check_permutations(self.perms, z)
        if not pairs_closed(pairs, perms):
            raise InputError("the descriptor's pair list is not closed under the permutations "
                             "(a permuted geometry would have other features): extend it with "
                             "gdmlx.symmetry.close_pairs(pairs, perms)" + (
                                 ", perms = gdmlx.symmetry.find_permutations(R, z) (what perms='auto' "
                                 "found; R in A)" if isinstance(self.perms, str) else ""))
        return perms

    def _compute_options(self):
        """``options``, or the default ComputeOptions for None; anything else is refused."""
        if self.options is None:
            return ComputeOptions()
        if not isinstance(self.options, ComputeOptions):
            raise InputError(f"options must be a gdmlx.ComputeOptions (e.g. ComputeOptions(verbose=True)) "
                             f"or None, got {type(self.options).__name__}")
        return self.options

    def _check_params(self):
        check_sigma(self.sigma)
        check_number(self.lam, "lam")
        if not isinstance(self.use_energy_labels, (bool, np.bool_)):
            raise InputError(f"use_energy_labels must be True or False, got {self.use_energy_labels!r}")
        if self.solver not in ("analytic", "cg", "auto"):
            raise ValueError(f"solver must be 'analytic', 'cg' or 'auto', got {self.solver!r}")

    def predict(self, R):
        """Forces (n, N, 3) for geometries ``R`` (n, N, 3) or (N, 3), in dataset units."""
        return self.predict_energy_forces(R)[1]

    def predict_energy(self, R):
        """Energies (n,) for geometries ``R``, in dataset units."""
        return self.predict_energy_forces(R)[0]

    def predict_energy_forces(self, R):
        """Energies (n,) and forces (n, N, 3) of geometries ``R`` (n, N, 3) or (N, 3), in
        dataset units, from one pass. GeometryError for two atoms closer than half the
        shortest distance in the training data (:meth:`shortest_training_distance`)."""
        return self._predict_within(R, 0.5 * self.shortest_training_distance())

    def shortest_training_distance(self):
        """Shortest atom-atom distance of the training geometries (length unit): geometries
        with two atoms closer than half of it are outside the model's domain."""
        return self._shortest_training_distance(self._fitted_expansion())

    def _predict_within(self, R, r_min):
        """:meth:`predict_energy_forces` for geometries whose atoms are at least ``r_min``
        apart (length unit; InputError for others)."""
        exp = self._fitted_expansion()
        one = as_float_array(R)
        if one.shape == (exp.n_atoms, 3):        # one geometry (MD, optimisers): least overhead
            E, F = exp.predict_one(one, r_min)
            if E == E:                            # NaN: not a valid geometry, the checks below say why
                return np.array([E]), F[None]
        R = check_geometries(R, exp.n_atoms)
        check_min_distance(R, r_min, "half the shortest distance in the training data: outside the "
                                     "model's domain", unit=self.length_unit_)
        options = self._compute_options()
        if resolve_backend(options.backend) == "gpu":
            return exp.on_device(backend_module("gpu")).predict(R, options.batch_size)
        return exp.predict(R, options.batch_size)

    def _shortest_training_distance(self, exp):
        """Shortest atom-atom distance of the training geometries (length unit): over every
        pair when they are kept (a reduced descriptor may lack the short ones), else over
        the descriptor's pairs. Cached for the training data it was computed from."""
        R = getattr(self, "R_train_", None)
        cached = getattr(self, "_shortest_cache", None)
        if cached is None or cached[0] is not R or cached[1] is not exp:
            shortest = exp.min_training_distance if R is None else min(closest_pairs(R)[0].min(),
                                                                        exp.min_training_distance)
            cached = self._shortest_cache = (R, exp, float(shortest))
        return cached[2]

    def score(self, R, F):
        """Coefficient of determination R^2 of the predicted force components on geometries
        ``R`` against forces ``F`` (n, N, 3) (:func:`force_r2`)."""
        return force_r2(self, R, F)

    def set_backend(self, backend):
        """Run batched prediction and the iterative solver on ``backend`` ("cpu", "gpu" or
        "auto", see :class:`gdmlx.options.ComputeOptions`); returns self."""
        self.options = replace(self._compute_options(), backend=backend)
        return self

    def force_parts(self):
        """The kernel expansions whose sum is this model (MD and the ASE calculator use them)."""
        return [self._fitted_expansion()]

    def _fitted_expansion(self):
        if not hasattr(self, "expansion_"):
            raise NotFittedError("this GDMLRegressor is not fitted yet; call fit or load a model")
        return self.expansion_

    def save(self, path):
        """Write the fitted model to ``path`` (HDF5); see :func:`gdmlx.load_model`."""
        from gdmlx.modelfile import save_model
        save_model(self, path)

    def refit(self, **params):
        """This model with ``params`` changed (e.g. ``pairs=``), fitted on the stored data: the
        other hyperparameters are the ones it was fitted with (``hyperparameters_``), not
        ``set_params``' changes since, and ``options`` the current ones."""
        if getattr(self, "R_train_", None) is None:
            raise ValueError("refit needs the training data, and this model keeps none (models "
                             "imported from sGDML do not)")
        fitted = clone({k: v for k, v in fitted_hyperparameters(self).items() if k != "options"}, safe=False)
        model = clone(self).set_params(**{**fitted, **params})
        return model.fit(self.R_train_, self.F_train_, self.E_train_, self.z_,
                         self.energy_unit_, self.length_unit_)


# what ``gdmlx train``, model files and ``gdmlx.reduce`` record about the data a model was
# fitted on: the dataset's split and fingerprint, the reduction's rounds
DATA_RECORDS = ("indices_", "dataset_md5_", "reduction_")


def forget_data_records(model):
    """Drop ``model``'s :data:`DATA_RECORDS` (after a fit on other data they would be
    wrong: ``gdmlx.reduce`` would validate on the recorded split, now training data)."""
    for name in DATA_RECORDS:
        vars(model).pop(name, None)


def _owned(a, given):
    """``a`` (an array checked from ``given``), copied if it shares memory with ``given``."""
    if a is not None and isinstance(given, np.ndarray) and np.may_share_memory(a, given):
        return a.copy()
    return a


def fitted_hyperparameters(model):
    """The hyperparameters (``get_params``) fitted GDMLRegressor ``model`` was made with;
    its current ones for a model that did not record them (pickled by an older gdmlx)."""
    return getattr(model, "hyperparameters_", None) or model.get_params(deep=False)


def force_r2(model, R, F):
    """Coefficient of determination R^2 of ``model``'s force components on geometries ``R``
    (n, N, 3) against forces ``F`` (n, N, 3): the estimators' ``score``."""
    F = check_forces(F, check_geometries(R).shape)
    ss_res = np.sum((F - model.predict(R))**2)
    ss_tot = np.sum((F - F.mean())**2)
    if ss_tot == 0.0:                      # constant forces: as sklearn's r2_score (force_finite)
        return 1.0 if ss_res == 0.0 else 0.0
    return 1.0 - ss_res / ss_tot


def force_mae_scorer(estimator, R, F):
    """Scorer for model selection (GridSearchCV): minus the force mean absolute error of
    ``estimator`` on geometries ``R`` (n, N, 3) against forces ``F`` of the same shape."""
    F = check_forces(F, check_geometries(R).shape)
    return -float(np.mean(np.abs(estimator.predict(R) - F)))


def training_data_hash(z, R, F, E):
    """SHA-256 hex digest of the training data, recorded in model files."""
    h = hashlib.sha256()
    for a in (z, R, F) + (() if E is None else (E,)):
        h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()
