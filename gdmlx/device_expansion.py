"""A kernel expansion held on a device (CuPy's GPU, or numpy's CPU): batched prediction
with whole-array operations only, the GPU backend's prediction path.

The expansion sums are :func:`gdmlx.kernels.predict.predict_desc_batch` (matrix products;
numpy functions dispatch to CuPy for CuPy arrays), the descriptor and the Jacobian
products :mod:`gdmlx.kernels.pair_arrays`. Geometries go to the device in chunks of
``chunk_elements`` (batch x training points) work-array elements.
"""

from gdmlx.backend import to_host
from gdmlx.kernels.pair_arrays import descriptors, incidence, pair_work, to_atoms
from gdmlx.kernels.predict import batch_work, predict_desc_batch

CHUNK_ELEMENTS = 16_000_000   # ~128 MB a (batch x training points) float64 work array


class DeviceExpansion:
    """The arrays of a :class:`gdmlx.expansion.KernelExpansion` held by array module ``xp``,
    in floating-point type ``dtype`` (float64; float32 only to measure its error)."""

    def __init__(self, expansion, xp, dtype="float64"):
        self.xp, self.dtype = xp, dtype
        self.n_atoms, self.sigma, self.c = expansion.n_atoms, expansion.sigma, expansion.c
        self.n_train = expansion.n_train
        self.X, self.B, self.a, self.XB, self.X_sq = (
            xp.asarray(getattr(expansion, k), dtype=dtype) for k in ("X", "B", "a", "XB", "X_sq"))
        self.S = incidence(expansion.pairs, expansion.n_atoms, xp).astype(dtype)

    def work(self, n):
        """Work arrays of :meth:`energy_forces` for up to ``n`` geometries a call, on this
        device: the kernel sums' (:func:`gdmlx.kernels.predict.batch_work`) and the
        descriptor's (:func:`gdmlx.kernels.pair_arrays.pair_work`)."""
        return (batch_work(n, self.n_train, self.xp, self.dtype),
                pair_work(n, len(self.S), self.xp, self.dtype))

    def energy_forces(self, R, work=None):
        """Energies (n,) and forces (n, N, 3) for ``R`` (n, N, 3), all arrays of ``xp``, new
        arrays; the intermediates in ``work`` (:meth:`work`, made if not given)."""
        kernel_work, desc_work = work or self.work(len(R))
        x, G = descriptors(R, self.S, desc_work)
        E, fd = predict_desc_batch(x, self.X, self.B, self.a, self.sigma, self.c, self.XB, self.X_sq,
                                   kernel_work)
        return E, to_atoms(fd, G, self.S, desc_work)

    def predict(self, R, batch_size=None):
        """Energies (n,) and forces (n, N, 3) as numpy arrays, for numpy ``R`` (n, N, 3)."""
        step = batch_size or max(1, CHUNK_ELEMENTS // self.n_train)
        work = self.work(min(step, len(R)))
        out = [self.energy_forces(self.xp.asarray(R[s:s + step], dtype=self.dtype), work)
               for s in range(0, len(R), step)]
        return (to_host(self.xp.concatenate([e for e, _ in out])),
                to_host(self.xp.concatenate([f for _, f in out])))
