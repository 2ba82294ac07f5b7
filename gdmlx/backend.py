"""Where array work runs: the CPU (numpy and numba) or an NVIDIA GPU (CuPy).

``backend`` is ``"cpu"``, ``"gpu"`` or ``"auto"`` (the GPU when CuPy is installed and sees
a device, else the CPU). CuPy is imported only when a GPU is asked for, so gdmlx installs
and runs without it (``pip install gdmlx[gpu]`` adds it for CUDA 12, ``gdmlx[gpu-cuda13]``
for CUDA 13).

The GPU code paths are written once with whole-array operations on an *array module*
``xp`` (numpy or cupy, see :func:`array_module`); run with numpy they are the CPU-side
check of the same code (tests), with cupy they run on the device.
"""

from functools import cache

import numpy as np

from gdmlx.errors import BackendUnavailableError, InputError

BACKENDS = ("cpu", "gpu", "auto")


def _cupy():
    """The cupy module, or None when it is not installed or sees no CUDA device (asked once
    per process; :func:`_cupy_status` says why)."""
    return _cupy_status()[0]


@cache
def _cupy_status():
    """(the cupy module, "") when CuPy sees a CUDA device, else (None, why not)."""
    try:
        import cupy
    except Exception as exc:        # built for another CUDA or numpy version: not only ImportError
        if isinstance(exc, ModuleNotFoundError) and exc.name == "cupy":
            return None, "CuPy is not installed"
        return None, f"CuPy is installed but does not import ({type(exc).__name__}: {exc})"
    try:
        n_devices = cupy.cuda.runtime.getDeviceCount()
    except Exception as exc:        # CUDA driver or runtime missing: cupy raises its own error types
        return None, f"CuPy cannot use a CUDA device ({type(exc).__name__}: {exc})"
    return (cupy, "") if n_devices > 0 else (None, "CuPy sees no CUDA device")


def check_backend(name):
    """``name`` if it is one of :data:`BACKENDS`, else an InputError."""
    if name not in BACKENDS:
        raise InputError(f"backend must be one of {BACKENDS}, got {name!r}")
    return name


def resolve_backend(name):
    """``"cpu"`` or ``"gpu"`` for a requested backend (``"auto"`` picks the GPU if usable).

    Raises BackendUnavailableError for ``"gpu"`` without CuPy or a CUDA device.
    """
    check_backend(name)
    if name == "cpu":
        return "cpu"
    if _cupy() is not None:
        return "gpu"
    if name == "auto":
        return "cpu"
    why = _cupy_status()[1]
    raise BackendUnavailableError(
        f"backend='gpu' needs CuPy and a CUDA device{f' ({why})' if why else ''}: install it with "
        "pip install 'gdmlx[gpu]' (CUDA 12) or 'gdmlx[gpu-cuda13]' (CUDA 13), check that "
        "nvidia-smi sees a GPU, or use backend='cpu' / 'auto'")


def backend_module(name):
    """The array module (numpy or cupy) of backend ``name`` (see :func:`resolve_backend`)."""
    return _cupy() if resolve_backend(name) == "gpu" else np


def array_module(a):
    """numpy or cupy, whichever owns array ``a`` (anything not from cupy counts as numpy)."""
    if type(a).__module__.startswith("cupy"):
        import cupy
        return cupy
    return np


def to_host(a):
    """``a`` as a numpy array (copied from the device for a cupy array)."""
    return a if isinstance(a, np.ndarray) else a.get()
