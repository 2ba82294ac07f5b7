"""A folder for numba's cache of gdmlx's compiled kernels (``cache=True``), found before the
first kernel is compiled: every module that compiles kernels calls :func:`ensure_cache_folder`
on import (:mod:`gdmlx.kernels`, :mod:`gdmlx.md`, :mod:`gdmlx.matern`)."""

import atexit
import os
import shutil
import tempfile
import warnings

import numba

try:                                     # numba's internals: where they move, numba keeps its own ways
    from numba.core.caching import FunctionCache
    from numba.misc.appdirs import AppDirs
except ImportError:
    FunctionCache = None


_checked = False


def ensure_cache_folder():
    """Give numba a temporary cache folder (``NUMBA_CACHE_DIR``, removed at exit), with a
    warning, when it has nowhere to cache compiled kernels: the installed package is
    read-only and so is the user's cache folder (a system-wide install run by an account
    without a writable home), where numba raised 'cannot cache function ...: no locator
    available' on import and no command ran."""
    global _checked
    if _checked or numba.config.DISABLE_JIT or FunctionCache is None:
        return
    _checked = True
    try:
        FunctionCache(ensure_cache_folder)         # numba's own search for a writable folder
        return
    except RuntimeError:
        pass
    nowhere = (f"numba has no writable folder to cache gdmlx's compiled kernels in (NUMBA_CACHE_DIR "
               f"{os.environ.get('NUMBA_CACHE_DIR') or 'not set'}, the package folder {os.path.dirname(__file__)}, "
               f"the user's cache folder {AppDirs(appname='numba', appauthor=False).user_cache_dir})")
    try:
        folder = tempfile.mkdtemp(prefix="gdmlx-numba-cache-")
    except OSError as exc:
        raise OSError(f"{nowhere}, nor a temporary one ({exc}): set NUMBA_CACHE_DIR to a writable folder") from None
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    os.environ["NUMBA_CACHE_DIR"] = folder
    numba.config.reload_config()
    warnings.warn(f"{nowhere}: they are compiled again in every run (about 10 s); set NUMBA_CACHE_DIR to a "
                  "writable folder to keep them", UserWarning)

