"""The backend switch and the whole-array (device) code paths.

The GPU backend runs :mod:`gdmlx.kernels.pair_arrays`, :class:`DeviceExpansion` and the
array path of the kernel operator on CuPy arrays. Here they run on numpy arrays and are held
to the compiled CPU kernels and the numpy reference; the tests at the end compare the GPU
with the CPU and skip without CuPy and a CUDA device.
"""

import copy

import numpy as np
import pytest

import gdmlx
import gdmlx.backend as backend
from conftest import toy_geometries
from gdmlx import reference
from gdmlx.descriptor import all_pairs, descriptors
from gdmlx.device_expansion import DeviceExpansion
from gdmlx.errors import InputError
from gdmlx.kernel_data import KernelData
from gdmlx.kernel_operator import ForceKernelOperator
from gdmlx.kernels import pair_arrays
from gdmlx.kernels.descriptor import gather_batch, scatter_batch
from gdmlx.options import ComputeOptions
from test_kernels import PAIR_LISTS, SIGMA, random_expansion

REVERSAL = np.array([[0, 1, 2, 3, 4], [4, 3, 2, 1, 0]])   # a permutation group of the 5-atom chain


@pytest.mark.parametrize("pairs", PAIR_LISTS)
def test_pair_arrays_match_compiled_descriptor(pairs):
    R = toy_geometries(6, seed=2)
    S = pair_arrays.incidence(pairs, 5)
    x, G = pair_arrays.descriptors(R, S)
    x_ref, G_ref = descriptors(R, pairs)
    np.testing.assert_allclose(x, x_ref, rtol=1e-14, atol=0)
    np.testing.assert_allclose(G, G_ref, rtol=1e-13, atol=0)
    rng = np.random.default_rng(0)
    fd, v = rng.standard_normal((6, len(pairs))), rng.standard_normal((6, 5, 3))
    scale = np.abs(G).max()
    np.testing.assert_allclose(pair_arrays.to_atoms(fd, G, S), scatter_batch(fd, G_ref, pairs, 5),
                               rtol=0, atol=1e-13 * scale)
    np.testing.assert_allclose(pair_arrays.from_atoms(v, G, S), gather_batch(v, G_ref, pairs),
                               rtol=0, atol=1e-13 * scale)


def test_kernel_operator_stays_within_its_memory_estimate():
    """Construction and one product allocate at most what ``memory_bytes`` (the solver's
    budget check) counts, plus the small (M, D) and (3NM,) arrays."""
    import tracemalloc
    M = 300
    data = KernelData(toy_geometries(M, seed=5), all_pairs(5), None)
    v = np.random.default_rng(2).standard_normal(M * 15)
    small = 16 * M * 15 * 8                          # 0.8 of one (M, M) array
    tracemalloc.start()
    try:
        op = ForceKernelOperator(data, SIGMA, 0.3)
        op.matvec(v)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak <= ForceKernelOperator.memory_bytes(M, M) + small


@pytest.mark.parametrize("pairs", PAIR_LISTS)
def test_device_expansion_matches_reference(pairs):
    exp, R_train, alphas, a = random_expansion(pairs, M=7)
    R = toy_geometries(5, seed=8)
    E, F = DeviceExpansion(exp, np).predict(R, batch_size=2)
    for t in range(5):
        E_ref, F_ref = reference.predict(R[t], pairs, R_train, alphas, a, SIGMA, -3.5)
        assert abs(E[t] - E_ref) <= 1e-10 * max(1.0, abs(E_ref))
        np.testing.assert_allclose(F[t], F_ref, rtol=0, atol=1e-10 * np.abs(F_ref).max())


@pytest.mark.parametrize("perms", [None, REVERSAL])
@pytest.mark.parametrize("compiled", [True, False])
def test_kernel_operator_matches_assembled_matrix(perms, compiled):
    R, pairs = toy_geometries(4, seed=4), all_pairs(5)
    op = ForceKernelOperator(KernelData(R, pairs, perms), SIGMA, 0.3, np, compiled=compiled)
    K = (reference.kernel_matrix(R, pairs, SIGMA) if perms is None
         else reference.symmetric_kernel_matrix(R, pairs, SIGMA, perms))
    v = np.random.default_rng(1).standard_normal(len(K))
    ref = K @ v + 0.3 * v
    np.testing.assert_allclose(op.matvec(v), ref, rtol=0, atol=1e-12 * np.abs(ref).max())


def test_backend_names_and_missing_gpu(monkeypatch):
    monkeypatch.setattr(backend, "_cupy", lambda: None)
    assert backend.resolve_backend("cpu") == "cpu"
    assert backend.resolve_backend("auto") == "cpu"
    assert backend.backend_module("auto") is np
    with pytest.raises(backend.BackendUnavailableError, match=r"gdmlx\[gpu\]"):
        backend.resolve_backend("gpu")
    with pytest.raises(InputError, match="backend must be one of"):
        ComputeOptions(backend="tpu")
    with pytest.raises(InputError, match="backend must be one of"):
        backend.resolve_backend("cuda")


def test_model_on_a_missing_gpu_says_what_to_install(toy_model, toy_data, monkeypatch):
    monkeypatch.setattr(backend, "_cupy", lambda: None)
    model = copy.deepcopy(toy_model)
    with pytest.raises(backend.BackendUnavailableError, match="CuPy and a CUDA device"):
        model.set_backend("gpu")                        # when asked, not at the first prediction
    with pytest.raises(backend.BackendUnavailableError, match="CuPy and a CUDA device"):
        ComputeOptions(backend="gpu")
    model.set_backend("auto")
    np.testing.assert_array_equal(model.predict(toy_data[0][:4]), toy_model.predict(toy_data[0][:4]))


def _cupy_or_skip():
    cupy = pytest.importorskip("cupy")
    if backend._cupy() is None:
        pytest.skip("no CUDA device")
    return cupy


def test_gpu_prediction_matches_cpu(toy_model, toy_data):
    _cupy_or_skip()
    R = toy_data[0]
    gpu = copy.deepcopy(toy_model).set_backend("gpu")
    E, F = gpu.predict_energy_forces(R)
    E_ref, F_ref = toy_model.predict_energy_forces(R)
    assert isinstance(F, np.ndarray)
    np.testing.assert_allclose(E, E_ref, rtol=1e-10, atol=0)
    np.testing.assert_allclose(F, F_ref, rtol=0, atol=1e-10 * np.abs(F_ref).max())


@pytest.mark.parametrize("perms", [None, REVERSAL])
def test_gpu_kernel_product_matches_cpu(perms):
    cupy = _cupy_or_skip()
    data = KernelData(toy_geometries(6, seed=4), all_pairs(5), perms)
    v = np.random.default_rng(1).standard_normal(6 * 15)
    ref = ForceKernelOperator(data, SIGMA, 0.3).matvec(v)
    out = ForceKernelOperator(data, SIGMA, 0.3, cupy).matvec(v)
    np.testing.assert_allclose(out, ref, rtol=0, atol=1e-10 * np.abs(ref).max())


def test_gpu_cg_fit_matches_cpu(toy_data):
    _cupy_or_skip()
    R, F, E, z = toy_data
    fits = [gdmlx.GDMLRegressor(sigma=2.0, lam=1e-6, solver="cg",
                                options=ComputeOptions(backend=b, cg_tol=1e-10)).fit(R, F, E, z=z)
            for b in ("cpu", "gpu")]
    np.testing.assert_allclose(fits[1].alphas_, fits[0].alphas_, rtol=0,
                               atol=1e-6 * np.abs(fits[0].alphas_).max())
