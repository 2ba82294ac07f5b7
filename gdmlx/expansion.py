"""The fitted kernel expansion: everything prediction needs, nothing training needs."""

import hashlib
import threading
from dataclasses import dataclass, field, fields

import numpy as np

from gdmlx.descriptor import descriptors
from gdmlx.device_expansion import DeviceExpansion
from gdmlx.kernels.descriptor import scatter_batch
from gdmlx.kernels.predict import packed_work, predict_checked, predict_desc_batch

_CHUNK_ELEMENTS = 4_000_000   # (batch x training points) float64 elements: ~32 MB a work array


@dataclass(frozen=True)
class KernelExpansion:
    """Energy and force model ``E(R), F(R)`` of a fitted GDML model.

    Attributes
    ----------
    pairs : (D, 2) int64
        Descriptor pair list.
    n_atoms : int
    sigma : float
        Kernel length scale (inverse length units of the descriptor).
    X : (M, D) float64
        Training descriptors.
    B : (M, D) float64
        ``beta_m = J_m alpha_m`` for each training point (energy units).
    a : (M,) float64
        Energy-label coefficients (zeros for a force-only model).
    c : float
        Integration constant (energy units).
    X_sq, XB : (M,) float64
        ``|x_m|^2`` and ``x_m . beta_m``, derived on construction.

    The formulas are in :mod:`gdmlx.kernels.predict`.
    """

    pairs: np.ndarray
    n_atoms: int
    sigma: float
    X: np.ndarray
    B: np.ndarray
    a: np.ndarray
    c: float
    XB: np.ndarray = field(init=False, repr=False, compare=False)
    X_sq: np.ndarray = field(init=False, repr=False, compare=False)
    min_training_distance: float = field(init=False, repr=False, compare=False)
    _work: np.ndarray = field(init=False, repr=False, compare=False)
    _work_lock: threading.Lock = field(init=False, repr=False, compare=False)
    _devices: dict = field(init=False, repr=False, compare=False, default_factory=dict)

    def __post_init__(self):
        # X and B are views of one (2, M, D) array, X_sq, XB and a of one (3, M) array: the
        # packed arguments of predict_checked
        rows = np.array([self.X, self.B], dtype=np.float64)
        terms = np.empty((3, len(rows[0])))
        terms[2] = self.a
        np.einsum("md,md->m", rows[0], rows[1], out=terms[1])
        np.einsum("md,md->m", rows[0], rows[0], out=terms[0])
        for name, value in (("_rows", rows), ("X", rows[0]), ("B", rows[1]), ("_terms", terms),
                            ("X_sq", terms[0]), ("XB", terms[1]), ("a", terms[2])):
            object.__setattr__(self, name, value)
        object.__setattr__(self, "pairs", np.ascontiguousarray(self.pairs, dtype=np.int64))
        object.__setattr__(self, "sigma", float(self.sigma))
        object.__setattr__(self, "c", float(self.c))
        # shortest atom-atom distance among the descriptor's pairs in the training data
        object.__setattr__(self, "min_training_distance", 1.0 / self.X.max())
        # work array of predict_one (kept: allocating it cost ~1 us a call), one call at a
        # time: a large model's parallel kernel releases the GIL, and two Python threads
        # writing it at once got each other's forces (the lock costs ~0.1 us a call)
        object.__setattr__(self, "_work", packed_work(len(self.pairs)))
        object.__setattr__(self, "_work_lock", threading.Lock())

    def on_device(self, xp):
        """This expansion's arrays held by array module ``xp`` (numpy or cupy), made once:
        a :class:`gdmlx.device_expansion.DeviceExpansion`."""
        if xp.__name__ not in self._devices:
            self._devices[xp.__name__] = DeviceExpansion(self, xp)
        return self._devices[xp.__name__]

    def __getstate__(self):
        """Pickle and deepcopy the constructor's fields only: not the device copies (they
        hold array modules, which do not pickle, and CuPy arrays; :meth:`on_device` rebuilds
        them when asked), not predict_one's work array (sized for this process's numba
        threads) and its lock, and not the packed arrays, of which X, B and a are views
        (pickled apart, views would come back as copies)."""
        return {f.name: getattr(self, f.name) for f in fields(self) if f.init}

    def __setstate__(self, state):
        self.__dict__.update(state, _devices={})
        self.__post_init__()

    @property
    def n_train(self):
        """Number of training points M (rows of ``X``)."""
        return self.X.shape[0]

    def predict_one(self, R, r_min=0.0):
        """Energy (float) and forces (N, 3) of one geometry ``R`` (N, 3); fused compiled path
        (on up to ``numba.get_num_threads()`` threads for large models). The energy is NaN
        (forces unset) if ``R`` is not finite or two atoms are closer than ``r_min``
        (length unit): callers check that before they raise a clear error. Safe to call
        from several threads (one at a time: each call may use all numba threads)."""
        F = np.empty((self.n_atoms, 3))
        R = np.ascontiguousarray(R, dtype=np.float64)
        with self._work_lock:
            E = predict_checked(R, r_min, self.pairs, self._rows, self._terms, self.sigma, self.c,
                                self._work, F)
        return E, F

    def predict_desc(self, x):
        """Energies (n,) and descriptor-space forces (n, D) of descriptors ``x`` (n, D)."""
        step = max(1, _CHUNK_ELEMENTS // self.n_train)
        out = [predict_desc_batch(x[s:s + step], self.X, self.B, self.a, self.sigma, self.c,
                                  self.XB, self.X_sq) for s in range(0, len(x), step)]
        return np.concatenate([e for e, _ in out]), np.concatenate([f for _, f in out])

    def predict(self, R, batch_size=None):
        """Energies (n,) and forces (n, N, 3) of geometries ``R`` (n, N, 3), ``batch_size``
        geometries at a time (None: work arrays of about 32 MB)."""
        n = R.shape[0]
        if n == 1:
            E, F = self.predict_one(R[0])
            return np.array([E]), F[None]
        step = batch_size or max(1, _CHUNK_ELEMENTS // self.n_train)
        E = np.empty(n)
        F = np.empty((n, self.n_atoms, 3))
        for s in range(0, n, step):
            x, G = descriptors(R[s:s + step], self.pairs)
            E[s:s + step], fd = predict_desc_batch(x, self.X, self.B, self.a, self.sigma, self.c,
                                                   self.XB, self.X_sq)
            F[s:s + step] = scatter_batch(np.ascontiguousarray(fd), G, self.pairs, self.n_atoms)
        return E, F


def force_model_fingerprint(model):
    """SHA-256 (hex) of a fitted force model's kernel expansions: recorded in MD
    trajectories and action models, so that an action model is trained on trajectories of,
    and run with, the force field it corrects."""
    h = hashlib.sha256()
    for part in model.force_parts():
        expansion_digest(part, h)
    h.update(f"{model.energy_unit_}/{model.length_unit_}".encode())   # the same numbers in eV are another model
    return h.hexdigest()


def expansion_digest(exp, h=None):
    """``h`` (a new SHA-256 if None) updated with the arrays and numbers of expansion ``exp``:
    part of :func:`force_model_fingerprint`; model files of 2026-11-22/23 stored it over each
    expansion, checked when read (newer ones: :mod:`gdmlx.hdf5_files`' content digest)."""
    h = hashlib.sha256() if h is None else h
    for a in (exp.pairs, exp.X, exp.B, exp.a, np.array([exp.sigma, exp.c])):
        h.update(np.ascontiguousarray(a).tobytes())
    return h
