"""Multiscale models: a cheap local kernel for the fast forces plus a global kernel for the rest.

After Fu et al., "Learning Interatomic Potentials at Multiple Scales" (arXiv:2310.13756):
the fast part is a GDML model on *local* pairs only (atoms at most ``max_hops`` bonds apart:
bond stretches and angle bends, the stiff motions that limit the time step) trained on few
geometries; the slow part is a GDML model on the global descriptor trained on what the
fast part misses (reference minus fast forces and energies). The sum is the model; MD can
evaluate the slow part only every few steps (impulse r-RESPA, :mod:`gdmlx.md.integrator`).
"""

import warnings

import numpy as np
from scipy.sparse.csgraph import shortest_path
from sklearn.base import BaseEstimator, RegressorMixin, clone
from sklearn.exceptions import NotFittedError

from gdmlx.bonds import bond_matrix
from gdmlx.cg import NotConvergedError
from gdmlx.descriptor import check_pairs
from gdmlx.errors import EnergyConsistencyWarning, InputError
from gdmlx.regressor import GDMLRegressor, force_r2, forget_data_records
from gdmlx.symmetry import check_permutations, close_pairs
from gdmlx.units import hyperparameters_in, in_angstrom, same_unit
from gdmlx.validation import check_count, check_training_data


def bond_graph_pairs(z, R, max_hops):
    """Pairs (i > j, lower-triangle order) at most ``max_hops`` bonds apart.

    Bonds: mean distance over the geometries R (n, N, 3) [A] below 1.25 x the sum of covalent radii.
    """
    bonded = bond_matrix(z, R)
    hops = shortest_path(bonded.astype(float), unweighted=True, directed=False)
    i, j = np.tril_indices(len(z), -1)
    near = hops[i, j] <= max_hops
    if not near.any():
        raise InputError("no two atoms are bonded in these geometries (bonds: mean distance below 1.25 x "
                         "the sum of covalent radii), so there are no local pairs for the fast part: are "
                         "the positions in the length unit given (length_unit)?")
    return check_pairs(np.stack([i[near], j[near]], axis=1), len(z))


# Default hyperparameters for data in Angstrom (converted for other length units)
FAST_SIGMA_ANG, FAST_LAM_ANG = 4.0, 1e-3
SLOW_SIGMA_ANG, SLOW_LAM_ANG = 10.0, 1e-10


def default_parts(length_unit):
    """The default fast and slow templates, ``GDMLRegressor(sigma=4, lam=1e-3)`` and
    ``GDMLRegressor(sigma=10, lam=1e-10)`` for data in Angstrom, the same models for
    data in ``length_unit`` (:func:`gdmlx.units.hyperparameters_in`)."""
    fast_sigma, fast_lam = hyperparameters_in(length_unit, FAST_SIGMA_ANG, FAST_LAM_ANG)
    slow_sigma, slow_lam = hyperparameters_in(length_unit, SLOW_SIGMA_ANG, SLOW_LAM_ANG)
    return GDMLRegressor(sigma=fast_sigma, lam=fast_lam), GDMLRegressor(sigma=slow_sigma, lam=slow_lam)


class MultiscaleModel(RegressorMixin, BaseEstimator):
    """Sum of a fast local GDML model and a slow global GDML model fitted to its residual.

    Parameters
    ----------
    fast : GDMLRegressor
        Template of the fast part; its pair list is replaced by the local pairs, and when
        its ``perms`` is None it takes the slow part's (a symmetric slow part needs a
        symmetric residual). Default ``GDMLRegressor(sigma=4, lam=1e-3)`` for data in
        Angstrom, the same model in other length units (:func:`default_parts`): a short
        length scale (few features) and strong
        regularisation keep the fast part smooth where it has no data, so the residual it
        leaves is learnable. With lam 1e-3 every 50-ps 500 K run of alanine dipeptide,
        aspirin and (reduced, with the MD engine's contact wall) oleic acid finished; with
        1e-4 some alanine-dipeptide and aspirin runs left the training domain and stopped
        (benchmarks/README.md section 3). 1e-4 fits 0.4-6 % better where it is stable, and
        for a large molecule whose slow part will be reduced (oleic acid) the reduction
        found a working pair list only with 1e-4. Check with ``outside_fraction`` in MD
        summaries.
    slow : GDMLRegressor
        Template of the slow part (all pairs unless its ``pairs`` is set, e.g. reduced).
        Default ``GDMLRegressor(sigma=10)`` for data in Angstrom (converted likewise).
    max_hops : int
        Local pairs are at most this many bonds apart (bonds from the mean training
        distances; 2: bonds and angles).
    n_fast : int or None
        Training geometries for the fast part (an evenly spaced subset); None: all.

    Attributes
    ----------
    fast_, slow_ : fitted GDMLRegressor
    hyperparameters_ : dict
        ``max_hops`` and ``n_fast`` as they were when the model was fitted (or loaded, or
        made by :meth:`from_parts`): what model files record and :meth:`with_slow` keeps;
        ``set_params`` afterwards changes the next fit, not this model (the parts record
        their own).
    """

    def __init__(self, fast=None, slow=None, max_hops=2, n_fast=100):
        self.fast = fast
        self.slow = slow
        self.max_hops = max_hops
        self.n_fast = n_fast

    def fit(self, R, F, energies=None, z=None, energy_unit="kcal/mol", length_unit="Ang"):
        """Fit the fast part on local pairs, then the slow part on the residual; returns self.
        Arguments as for :meth:`gdmlx.GDMLRegressor.fit` (``z`` required)."""
        R, F, energies, z = check_training_data(R, F, energies, z, energy_unit, length_unit)
        _check_split(self.max_hops, self.n_fast)
        for name in ("fast", "slow"):
            template = getattr(self, name)
            if template is not None and not isinstance(template, GDMLRegressor):
                raise InputError(f"{name} must be a GDMLRegressor template (or None for the default part), got "
                                 f"{type(template).__name__}: each part of a multiscale model is one GDML model")
        if self.fast is not None and self.fast.pairs is not None:
            raise InputError("fast.pairs is set: the fast part's pairs are the local ones max_hops chooses; "
                             "give a template with pairs=None")
        default_fast, default_slow = default_parts(length_unit)
        fast = clone(self.fast if self.fast is not None else default_fast)
        slow = clone(self.slow if self.slow is not None else default_slow)
        if fast.perms is None and slow.perms is not None:
            fast.set_params(perms=slow.perms)
        local = bond_graph_pairs(z, in_angstrom(R, length_unit), self.max_hops)
        if fast.perms is not None and not isinstance(fast.perms, str):
            # given permutations need not map bonds to bonds ('auto' ones do): a permuted
            # geometry must have the same kind of local features
            local = close_pairs(local, check_permutations(fast.perms, z))
        sub = np.unique(np.linspace(0, len(R) - 1, min(self.n_fast or len(R), len(R))).astype(int))
        with warnings.catch_warnings():
            # a local model's energies cannot follow the total energy: the check is for the
            # slow part, which fits what the fast part leaves
            warnings.simplefilter("ignore", EnergyConsistencyWarning)
            _fit_part("fast", fast.set_params(pairs=local), R[sub], F[sub],
                      None if energies is None else energies[sub], z, energy_unit, length_unit)
        E_fast, F_fast = fast.predict_energy_forces(R)
        E_resid = None if energies is None else energies - E_fast
        _fit_part("slow", slow, R, F - F_fast, E_resid, z, energy_unit, length_unit)
        self._set_parts(fast, slow)
        self.hyperparameters_ = {"max_hops": self.max_hops, "n_fast": self.n_fast}
        forget_data_records(self)
        return self

    def set_params(self, **params):
        """scikit-learn's ``set_params``; a part's own parameters (``fast__sigma``) need
        that part's template given (None, the default, is chosen at fit)."""
        defaults = {"fast": (FAST_SIGMA_ANG, FAST_LAM_ANG), "slow": (SLOW_SIGMA_ANG, SLOW_LAM_ANG)}
        for name, (sigma, lam) in defaults.items():
            if params.get(name, getattr(self, name)) is None and any(k.startswith(name + "__") for k in params):
                raise InputError(f"{name} is None (the default part, made at fit for the data's length unit): give "
                                 f"a template to set its parameters, e.g. MultiscaleModel({name}=GDMLRegressor("
                                 f"sigma={sigma:g}, lam={lam:g})) for data in A")
        return super().set_params(**params)

    @classmethod
    def from_parts(cls, fast, slow, max_hops=2, n_fast=100):
        """A fitted MultiscaleModel from two fitted GDMLRegressors (model files use this);
        ``max_hops`` and ``n_fast`` are recorded as the parameters a refit would use."""
        for name, part in (("fast", fast), ("slow", slow)):
            if not isinstance(part, GDMLRegressor):
                raise InputError(f"{name} must be a fitted GDMLRegressor, got {type(part).__name__}")
            if not hasattr(part, "expansion_"):
                raise NotFittedError(f"the {name} part is not fitted yet: fit it, or MultiscaleModel.fit fits both")
        max_hops, n_fast = _check_split(max_hops, n_fast)
        model = cls(fast=clone(fast).set_params(pairs=None), slow=clone(slow), max_hops=max_hops, n_fast=n_fast)
        model._set_parts(fast, slow)
        model.hyperparameters_ = {"max_hops": max_hops, "n_fast": n_fast}
        return model

    def with_slow(self, slow):
        """This model with another fitted slow part (a reduced one): same fast part and parameters."""
        fitted = self._fitted_hyperparameters()
        return self.from_parts(self._fitted_parts()[0], slow, fitted["max_hops"], fitted["n_fast"])

    def _fitted_hyperparameters(self):
        """``max_hops`` and ``n_fast`` this fitted model was made with (its current ones for
        a model pickled by a gdmlx that did not record them)."""
        return getattr(self, "hyperparameters_", None) or {"max_hops": self.max_hops, "n_fast": self.n_fast}

    def _set_parts(self, fast, slow):
        if not np.array_equal(fast.z_, slow.z_):
            raise ValueError("fast and slow parts describe different molecules")
        if not (same_unit(fast.energy_unit_, slow.energy_unit_, "energy")
                and same_unit(fast.length_unit_, slow.length_unit_, "length")):
            raise InputError(f"the fast part is in {fast.energy_unit_} and {fast.length_unit_}, the slow part "
                             f"in {slow.energy_unit_} and {slow.length_unit_}: fit both on data in the same units")
        self.fast_, self.slow_ = fast, slow
        self.z_, self.energy_unit_, self.length_unit_ = slow.z_, slow.energy_unit_, slow.length_unit_
        self.R_train_ = slow.R_train_

    def _fitted_parts(self):
        if not hasattr(self, "fast_"):
            raise NotFittedError("this MultiscaleModel is not fitted yet; call fit or load a model")
        return self.fast_, self.slow_

    def set_backend(self, backend):
        """Set both fitted parts' backend (:meth:`GDMLRegressor.set_backend`); returns self."""
        for part in self._fitted_parts():
            part.set_backend(backend)
        return self

    def force_parts(self):
        """[fast expansion, slow expansion]: MD evaluates them with different periods."""
        return [part._fitted_expansion() for part in self._fitted_parts()]

    def predict_energy_forces(self, R):
        """Energies (n,) and forces (n, N, 3) of geometries ``R``: the sum of both parts, in
        dataset units."""
        fast, slow = self._fitted_parts()
        # one domain for both parts, as the calculator and MD have: each part's own check
        # held R to its own geometries (the fast part's n_fast of them)
        r_min = 0.5 * min(fast.shortest_training_distance(), slow.shortest_training_distance())
        E_f, F_f = fast._predict_within(R, r_min)
        E_s, F_s = slow._predict_within(R, r_min)
        return E_f + E_s, F_f + F_s

    def predict(self, R):
        """Forces (n, N, 3) for geometries ``R`` (n, N, 3) or (N, 3), in dataset units."""
        return self.predict_energy_forces(R)[1]

    def predict_energy(self, R):
        """Energies (n,) for geometries ``R``, in dataset units."""
        return self.predict_energy_forces(R)[0]

    def score(self, R, F):
        """Coefficient of determination R^2 of the predicted force components on geometries
        ``R`` against forces ``F`` (n, N, 3)."""
        return force_r2(self, R, F)

    def save(self, path):
        """Write the fitted model to ``path`` (HDF5); see :func:`gdmlx.load_model`."""
        from gdmlx.modelfile import save_model
        save_model(self, path)


def _fit_part(name, part, *args):
    """``part.fit(*args)``; a refused setting or a failed solve names the part (``name``)."""
    try:
        return part.fit(*args)
    except (ValueError, NotConvergedError) as exc:       # InputError, LinAlgError, ...
        raise type(exc)(f"the {name} part: {exc}") from exc


def _check_split(max_hops, n_fast):
    """``(max_hops, n_fast)`` as ints (n_fast None: all geometries), checked: whole numbers >= 1."""
    return check_count(max_hops, "max_hops"), None if n_fast is None else check_count(n_fast, "n_fast")
