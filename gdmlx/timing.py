"""Wall-clock measurement of one-geometry prediction, as the CLI and benchmarks report it."""

import time

import numpy as np


def one_geometry_latency_us(expansion, R, repeats=200, q=50):
    """Percentile ``q`` (default: the median; a sequence gives an array) of the time, in
    microseconds, of ``expansion.predict_one`` over ``repeats`` calls.

    expansion: a :class:`gdmlx.expansion.KernelExpansion`; R (n, N, 3): geometries, used in
    turn. The first call (compilation, cold caches) is not timed.
    """
    expansion.predict_one(R[0])
    times = np.empty(repeats)
    for t in range(repeats):
        t0 = time.perf_counter()
        expansion.predict_one(R[t % len(R)])
        times[t] = time.perf_counter() - t0
    return np.percentile(times, q) * 1e6
