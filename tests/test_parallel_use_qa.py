"""gdmlx called from the user's own threads and processes: the same numbers as serial calls,
and a deadlock fails the test (timeouts) rather than hanging it."""

import os
import subprocess
import sys

SPLIT_MODEL_IN_THREADS = """
import numpy as np
from concurrent.futures import ThreadPoolExecutor
from gdmlx.expansion import KernelExpansion
from gdmlx.kernels.predict import MIN_ELEMENTS_PER_THREAD
import numba
assert numba.get_num_threads() == 2
rng = np.random.default_rng(0)
N, D = 5, 10
M = 3 * MIN_ELEMENTS_PER_THREAD // D                 # split over both numba threads
exp = KernelExpansion(np.array([(i, j) for i in range(N) for j in range(i)]), N, 2.0,
                      rng.uniform(0.3, 1.0, (M, D)), 1e-3 * rng.standard_normal((M, D)), np.zeros(M), 0.0)
R = np.arange(N * 3.0).reshape(N, 3) + 0.1 * rng.standard_normal((400, N, 3))
serial = [exp.predict_one(r) for r in R]
with ThreadPoolExecutor(4) as pool:
    threaded = list(pool.map(exp.predict_one, R, timeout=60))
print(sum(e != e_ref or not np.array_equal(f, f_ref) for (e, f), (e_ref, f_ref) in zip(threaded, serial)))
"""


def test_threads_predicting_one_geometry_of_a_split_model_get_their_own_forces():
    """With NUMBA_NUM_THREADS=2, a model large enough to split one geometry over the numba
    threads (aspirin with 150 training points) released the GIL while it wrote its shared
    work array: 4 threads calling predict_one (model.predict on one geometry, a calculator
    each) got forces off by thousands, without an error."""
    env = dict(os.environ, NUMBA_NUM_THREADS="2", PYTHONPATH=os.pathsep.join(sys.path))
    done = subprocess.run([sys.executable, "-c", SPLIT_MODEL_IN_THREADS], env=env, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split()[-1] == "0", "geometries predicted wrong in threads: " + done.stdout

