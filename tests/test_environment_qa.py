"""gdmlx in the environments users run it in: an installed package numba cannot write its
cache into, a damaged cache, the command line with its output going nowhere (a closed pipe,
a full disk, closed streams), thread settings, a deleted working directory, a file system
without file locks. Most checks run in a fresh interpreter."""

import os
import subprocess
import sys
from pathlib import Path

import gdmlx

ROOT = str(Path(gdmlx.__file__).parents[1])


def run_python(code, **kwargs):
    """Run ``code`` in a fresh interpreter with this checkout's gdmlx (CompletedProcess)."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([ROOT, os.environ.get("PYTHONPATH", "")])}
    env.pop("NUMBA_CACHE_DIR", None)
    return subprocess.run([sys.executable, "-c", code], env=env, text=True, capture_output=True,
                          timeout=120, **kwargs)


def test_kernels_compile_when_no_folder_is_writable_for_numbas_cache():
    """A read-only installed package and a read-only home (every folder numba tries refuses
    its test file): the kernels compile into a temporary cache folder, with one warning that
    says how to keep them, and the folder is removed at exit."""
    code = """
import os, tempfile, warnings
import numpy as np
from numba.core import caching

ensure_cache_path = caching._CacheLocator.ensure_cache_path
temporary = os.path.join(tempfile.gettempdir(), "gdmlx-numba-cache-")

def read_only(locator):
    if not locator.get_cache_path().startswith(temporary):
        raise PermissionError(13, "Read-only file system", locator.get_cache_path())
    ensure_cache_path(locator)

caching._CacheLocator.ensure_cache_path = read_only
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    from gdmlx.kernels.descriptor import descriptor_batch
x, _ = descriptor_batch(np.array([[[0.0, 0, 0], [1, 0, 0], [0, 2, 0]]]), np.array([[1, 0], [2, 0], [2, 1]]))
assert np.allclose(x, [[1, 0.5, 1 / np.sqrt(5)]]), x
folder = os.environ["NUMBA_CACHE_DIR"]
assert any(name.endswith(".nbi") for _, _, names in os.walk(folder) for name in names), "nothing cached"
print(folder)
print(*[str(w.message) for w in caught], sep="\\n")
"""
    res = run_python(code)
    assert res.returncode == 0, res.stderr
    folder, *messages = res.stdout.splitlines()
    assert not os.path.exists(folder)
    assert len(messages) == 1 and "NUMBA_CACHE_DIR not set" in messages[0], messages
    assert "set NUMBA_CACHE_DIR to a writable folder to keep them" in messages[0]
