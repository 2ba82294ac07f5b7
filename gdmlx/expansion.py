"""The fitted kernel expansion: everything prediction needs, nothing training needs."""

import hashlib
from dataclasses import dataclass, field

import numpy as np

from gdmlx.descriptor import descriptors
from gdmlx.device_expansion import DeviceExpansion
from gdmlx.kernels.descriptor import scatter_batch
from gdmlx.kernels.predict import predict_desc_batch, predict_one, work_arrays

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
    _work: tuple = field(init=False, repr=False, compare=False)
    _devices: dict = field(init=False, repr=False, compare=False, default_factory=dict)

    def __post_init__(self):
        for name in ("X", "B", "a"):
            object.__setattr__(self, name, np.ascontiguousarray(getattr(self, name), dtype=np.float64))
        object.__setattr__(self, "pairs", np.ascontiguousarray(self.pairs, dtype=np.int64))
        object.__setattr__(self, "sigma", float(self.sigma))
        object.__setattr__(self, "c", float(self.c))
        object.__setattr__(self, "XB", np.einsum("md,md->m", self.X, self.B))
        object.__setattr__(self, "X_sq", np.einsum("md,md->m", self.X, self.X))
        # shortest atom-atom distance among the descriptor's pairs in the training data
        object.__setattr__(self, "min_training_distance", 1.0 / self.X.max())
        # work arrays of predict_one (kept: allocating them cost ~1 us a call); calls hold
        # the GIL, so Python threads cannot share them at the same time
        object.__setattr__(self, "_work", work_arrays(len(self.pairs)))

    def on_device(self, xp):
        """This expansion's arrays held by array module ``xp`` (numpy or cupy), made once:
        a :class:`gdmlx.device_expansion.DeviceExpansion`."""
        if xp.__name__ not in self._devices:
            self._devices[xp.__name__] = DeviceExpansion(self, xp)
        return self._devices[xp.__name__]

    def __getstate__(self):
        """Pickle and deepcopy without the device copies (they hold array modules, which do
        not pickle, and CuPy arrays; :meth:`on_device` rebuilds them when asked) and without
        predict_one's work arrays (sized for this process's numba threads)."""
        return {k: v for k, v in self.__dict__.items() if k != "_work"} | {"_devices": {}}

    def __setstate__(self, state):
        self.__dict__.update(state)
        object.__setattr__(self, "_work", work_arrays(len(self.pairs)))

    @property
    def n_train(self):
        return self.X.shape[0]

    def predict_one(self, R):
        """Energy (float) and forces (N, 3) of one geometry ``R`` (N, 3); fused compiled path
        (on up to ``numba.get_num_threads()`` threads for large models)."""
        F = np.empty((self.n_atoms, 3))
        E = predict_one(np.ascontiguousarray(R, dtype=np.float64), self.pairs, self.X, self.B,
                        self.X_sq, self.XB, self.a, self.sigma, self.c, *self._work, F)
        return E, F

    def predict_desc(self, x):
        """Energies (n,) and descriptor-space forces (n, D) of descriptors ``x`` (n, D)."""
        step = max(1, _CHUNK_ELEMENTS // self.n_train)
        out = [predict_desc_batch(x[s:s + step], self.X, self.B, self.a, self.sigma, self.c,
                                  self.XB, self.X_sq) for s in range(0, len(x), step)]
        return np.concatenate([e for e, _ in out]), np.concatenate([f for _, f in out])

    def predict(self, R, batch_size=None):
        """Energies (n,) and forces (n, N, 3) of geometries ``R`` (n, N, 3)."""
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
    return h.hexdigest()


def expansion_digest(exp, h=None):
    """``h`` (a new SHA-256 if None) updated with the arrays and numbers of expansion ``exp``;
    model files store it to detect corruption."""
    h = hashlib.sha256() if h is None else h
    for a in (exp.pairs, exp.X, exp.B, exp.a, np.array([exp.sigma, exp.c])):
        h.update(np.ascontiguousarray(a).tobytes())
    return h
