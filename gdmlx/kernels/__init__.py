"""Compiled compute kernels (numba on the CPU).

Each kernel has a plain numpy counterpart in :mod:`gdmlx.reference` with the same
meaning; the tests hold the two together. Kernels take float64, C-contiguous arrays and
int64 pair lists only, so that numba compiles one specialisation of each (cached on disk).
"""

from gdmlx.numba_cache import ensure_cache_folder

ensure_cache_folder()
