"""gdmlx called from the user's own threads and processes: the same numbers as serial calls,
and a deadlock fails the test (timeouts) rather than hanging it."""

import copy
import os
import pickle
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from ase import Atoms

import gdmlx
from conftest import toy_geometries

TIMEOUT_S = 60


@pytest.fixture
def fast_switching():
    """Python threads switching every microsecond (default 5 ms): races show up at once."""
    before = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    yield
    sys.setswitchinterval(before)


def in_threads(fn, items, workers=4):
    """``[fn(item) for item in items]`` on ``workers`` threads; fails after TIMEOUT_S."""
    with ThreadPoolExecutor(workers) as pool:
        futures = [pool.submit(fn, item) for item in items]
        return [f.result(timeout=TIMEOUT_S) for f in futures]


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


@pytest.mark.filterwarnings("ignore::gdmlx.DomainWarning")
def test_threads_sharing_one_calculator_get_their_own_geometrys_results(toy_model, fast_switching):
    """ASE keeps the last calculation's atoms and results in the calculator: threads calling
    calc.get_forces(atoms) on one calculator got the results of another thread's geometry."""
    R = toy_geometries(200, seed=7, noise=0.05)
    calc = gdmlx.GDMLCalculator(toy_model)

    def energy_forces(r, calc=calc):
        atoms = Atoms(toy_model.z_, positions=r)
        return calc.get_potential_energy(atoms), calc.get_forces(atoms)

    got = in_threads(energy_forces, R)
    serial = gdmlx.GDMLCalculator(toy_model)
    for r, (e, f) in zip(R, got):
        e_ref, f_ref = energy_forces(r, serial)
        assert e == e_ref and np.array_equal(f, f_ref)

def test_copied_calculator_calculates_as_the_original(toy_model, toy_data):
    """Calculators pickle (multiprocessing, joblib) and deepcopy with the state they need."""
    calc = gdmlx.GDMLCalculator(toy_model)
    atoms = Atoms(toy_model.z_, positions=toy_data[0][3])
    want = calc.get_forces(atoms)
    for copied in (pickle.loads(pickle.dumps(calc)), copy.deepcopy(calc)):
        np.testing.assert_array_equal(copied.get_forces(atoms.copy()), want)
        assert in_threads(lambda r: copied.get_potential_energy(Atoms(toy_model.z_, positions=r)),
                          toy_data[0][:4], workers=2)[3] == calc.get_potential_energy(atoms)
