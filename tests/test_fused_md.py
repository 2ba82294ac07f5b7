"""Fused GPU MD steps (gdmlx.kernels.fused_md): under numba's CUDA simulator on any machine
(against the replica engine's whole-array steps), and on a GPU when there is one (against
the CPU engines)."""

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import gdmlx
from conftest import toy_geometries
from gdmlx.md import ReplicaSimulation, Simulation
from test_backend import _cupy_or_skip
from test_contact import folding_velocities

SIMULATED = textwrap.dedent("""
    import numpy as np
    import gdmlx
    from conftest import toy_energy_forces, toy_geometries
    from gdmlx.kernels.fused_md import FusedSteps
    from gdmlx.md import ReplicaSimulation

    R = toy_geometries(20)
    E, F = toy_energy_forces(R)
    z = np.array([6, 6, 8, 6, 1])
    # bonds only: the other pairs get the contact wall, which the start below is inside of
    bonds = np.array([[1, 0], [2, 1], [3, 2], [4, 3]])
    model = gdmlx.GDMLRegressor(sigma=2.0, lam=1e-8, pairs=bonds).fit(R[:8], F[:8], E[:8], z=z)
    start = toy_geometries(1, noise=0.0)[0]
    start[2] = start[0] + 0.75 * (start[2] - start[0])
    v = 0.004 * np.random.default_rng(5).standard_normal((2, 5, 3))
    runs = []
    for fused in (False, True):
        sim = ReplicaSimulation(model, start, 2, velocities=v, dt_fs=0.5)
        assert len(sim.wall_pairs) == 6
        if fused:
            sim.fused = FusedSteps(model.expansion_, sim)
        sim.advance(3)
        runs.append([np.array(a) for a in (sim.q, sim.v, sim.F[0], sim.E[0])])
    for name, a, b in zip("qvFE", *runs):
        assert np.abs(a - b).max() <= 1e-12 * max(1.0, np.abs(a).max()), (name, np.abs(a - b).max())
    assert np.abs(runs[0][3] - runs[0][3].mean()).max() > 0 and np.any(runs[0][2] != 0)

    sim = ReplicaSimulation(model, start, 2, velocities=v, dt_fs=0.5, thermostat="langevin",
                            friction_per_fs=0.1, temperature_K=300.0, seed=3)
    sim.fused = FusedSteps(model.expansion_, sim)
    v0 = np.array(sim.v)
    sim.advance(2)
    p = (np.array(sim.masses) * sim.v).sum(axis=1)
    assert np.abs(p).max() < 1e-14, p                    # each replica's momentum removed
    assert np.all(np.isfinite(sim.q)) and np.abs(sim.v - v0).max() > 1e-4
    print("simulated fused steps agree")
""")


# The simulator runs one block after another and its grid barrier waits for nothing; here all
# blocks of a launch run at once (a barrier per block, one for the grid, shared arrays per block),
# as a cooperative launch does on a GPU, so that P > 1 runs.
CONCURRENT = textwrap.dedent("""
    import sys, threading, traceback
    import ase.units
    import numpy as np
    from numba import types
    from numba.cuda.simulator import kernel as K, kernelapi as KA
    from numba.np import numpy_support
    import gdmlx
    from conftest import toy_energy_forces, toy_geometries
    from gdmlx.kernels import fused_md
    from gdmlx.md import ReplicaSimulation

    launch, lock = {}, threading.Lock()

    def run_block(self, grid_point, *args):
        n_thr = int(np.prod(self._block_dim))
        if not any(grid_point):
            launch.update(grid=threading.Barrier(n_thr * int(np.prod(self._grid_dim)), timeout=300), threads=[])
        block = threading.Barrier(n_thr, timeout=300)
        for p in np.ndindex(*self._block_dim):
            t = K.BlockThread(lambda: self._f(*args), self, grid_point, p, False)
            t.syncthreads, t.grid_sync = block.wait, launch["grid"].wait
            t.start()
            launch["threads"].append(t)
        if tuple(grid_point) == tuple(d - 1 for d in self._grid_dim):
            for t in launch["threads"]:
                t.join()
            for t in launch["threads"]:
                if t.exception:
                    raise t.exception[0].with_traceback(t.exception[1])

    def shared_array(self, shape, dtype):
        dtype = numpy_support.as_dtype(dtype) if isinstance(dtype, types.Type) else dtype
        key = (tuple(traceback.extract_stack(sys._getframe())[-2][0:2]), tuple(threading.current_thread().blockIdx))
        with lock:
            return self._allocations.setdefault(key, np.empty(shape, dtype))

    K.BlockManager.run = run_block
    KA.GridGroup.sync = lambda self: threading.current_thread().grid_sync()
    KA.FakeCUDAShared.array = shared_array
    fused_md.THREADS = 2                    # fewer than D = 4, 3N = 15 and the 7 wall pairs
    resident = [20]
    fused_md._compiled = lambda args: (fused_md._steps, resident[0])

    R = toy_geometries(20)
    E, F = toy_energy_forces(R)
    z = np.array([6, 6, 8, 6, 1])
    bonds = np.array([[1, 0], [2, 1], [3, 2], [4, 3]])
    # M = 8 rows; kcal/mol and bohr: e_scale and r_scale not 1
    model = gdmlx.GDMLRegressor(sigma=2.0, lam=1e-8, pairs=bonds).fit(R[:8], F[:8], E[:8], z=z, length_unit="bohr")
    start = toy_geometries(1, noise=0.0)[0] * ase.units.Bohr
    start[2] = start[0] + 0.75 * (start[2] - start[0])         # inside the contact wall
    v = 0.004 * np.random.default_rng(5).standard_normal((3, 5, 3))

    def run(P, res=20, **kw):
        resident[0] = res
        sim = ReplicaSimulation(model, start, 3, velocities=v, dt_fs=0.5, **kw)
        if P:
            sim.fused = fused_md.FusedSteps(model.expansion_, sim, P)
        sim.advance(1)
        sim.advance(2)
        if P:        # every block's copy of its replica's state the same, bit for bit
            copies = np.array(sim.fused.work[0]).reshape(sim.fused.chunk, P, -1)
            assert (copies == copies[:, :1]).all(), P
        return sim, [np.array(a) for a in (sim.q, sim.v, sim.F[0], sim.E[0])]

    def agree(a, b):
        for name, x, y in zip("qvFE", a, b):
            assert np.abs(x - y).max() <= 1e-12 * max(1.0, np.abs(x).max()), (name, np.abs(x - y).max())

    ref = run(None)[1]
    assert np.abs(ref[3] - ref[3].mean()).max() > 0
    agree(ref, run(3)[1])                   # M not divisible by P, one launch
    agree(ref, run(10)[1])                  # P > M: blocks without rows; two launches (2 + 1 replicas)
    lang = dict(thermostat="langevin", friction_per_fs=0.1, temperature_K=300.0, seed=3)
    sim, one = run(1, **lang)
    agree(one, run(2, res=4, **lang)[1])    # the same noise with 2 blocks a replica, in two launches
    p = (np.array(sim.masses) * sim.v).sum(axis=1)
    assert np.abs(p).max() < 1e-14 and np.abs(sim.v - v).max() > 1e-4, p
    print("simulated fused steps agree")
""")


def _simulate(script):
    """Runs ``script`` under numba's CUDA simulator; asserts that it ends with its message."""
    tests = os.path.dirname(__file__)
    env = dict(os.environ, NUMBA_ENABLE_CUDASIM="1", PYTHONPATH=os.pathsep.join(
        [tests, os.path.dirname(tests), os.environ.get("PYTHONPATH", "")]))
    out = subprocess.run([sys.executable, "-W", "ignore", "-c", script], env=env,
                         capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "simulated fused steps agree" in out.stdout


def test_fused_steps_match_whole_array_steps_in_the_cuda_simulator():
    """The kernel's logic (descriptor, sums, wall, kicks, Langevin momentum removal) on the
    CPU: numba runs CUDA kernels thread by thread under NUMBA_ENABLE_CUDASIM=1."""
    _simulate(SIMULATED)


def test_fused_steps_with_many_blocks_a_replica_in_the_cuda_simulator():
    """P > 1 (grid barrier, partial sums by step parity), P > M, replicas in several launches,
    blocks of fewer threads than pairs and coordinates, unit scales; ~10 s."""
    _simulate(CONCURRENT)


@pytest.fixture(scope="module")
def start():
    return toy_geometries(1, noise=0.0)[0]


@pytest.mark.parametrize("blocks", [1, 3, None])
def test_gpu_fused_steps_follow_the_single_engine(toy_model, start, blocks):
    """NVE on the GPU, one block per replica, three, and the default spread, against the CPU
    single-molecule engine; forces at the GPU's end geometry agree to 1e-10 relative."""
    _cupy_or_skip()
    v = 0.004 * np.random.default_rng(5).standard_normal((2, 5, 3))
    gpu = ReplicaSimulation(toy_model, start, velocities=v, dt_fs=0.5, backend="gpu",
                            fused_steps=True, blocks_per_replica=blocks)
    assert blocks is None or gpu.fused.P == blocks
    gpu.run(200, save_every=50, report_every=200, progress=False)
    for r in range(2):
        cpu = Simulation(toy_model, start, velocities=v[r], dt_fs=0.5)
        cpu.run(200, save_every=50, report_every=200, progress=False)
        np.testing.assert_allclose(gpu.positions[r], cpu.q, rtol=0, atol=1e-10)
        F_cpu = toy_model.predict(gpu.positions[r])[0] * gpu.e_scale * gpu.r_scale    # predict: (1, N, 3)
        F_gpu = gpu.F[0].get()[r]
        assert np.abs(F_gpu - F_cpu).max() <= 1e-10 * np.abs(F_cpu).max()


def test_gpu_fused_langevin_holds_temperature_and_momentum(toy_model, start):
    _cupy_or_skip()
    sim = ReplicaSimulation(toy_model, start, 64, dt_fs=0.5, backend="gpu", thermostat="langevin",
                            friction_per_fs=0.05, temperature_K=300.0, seed=0, fused_steps=True)
    s = sim.run(4000, save_every=100, report_every=4000, progress=False)
    p = (sim.masses * sim.v).sum(axis=1).get()
    assert np.abs(p).max() < 1e-12
    assert 270 < s["mean_temperature_K"] < 330


@pytest.mark.filterwarnings("ignore::gdmlx.errors.EnergyConsistencyWarning")
def test_fused_steps_need_a_gpu_and_a_one_part_model(toy_data, toy_model, start):
    with pytest.raises(ValueError, match="backend='gpu'"):
        ReplicaSimulation(toy_model, start, 2, fused_steps=True)
    with pytest.raises(ValueError, match="fused steps only"):
        ReplicaSimulation(toy_model, start, 2, blocks_per_replica=4)
    _cupy_or_skip()
    R, F, E, z = toy_data
    fast = gdmlx.GDMLRegressor(sigma=2.0, lam=1e-8, pairs=np.array([[1, 0], [2, 1], [3, 2], [4, 3]])).fit(
        R[:30], F[:30], E[:30], z=z)
    slow = gdmlx.GDMLRegressor(sigma=2.0, lam=1e-8).fit(R[:30], F[:30] - fast.predict(R[:30]),
                                                       E[:30] - fast.predict_energy(R[:30]), z=z)
    model = gdmlx.MultiscaleModel.from_parts(fast, slow)
    with pytest.raises(ValueError, match="one part"):
        ReplicaSimulation(model, start, 2, backend="gpu", fused_steps=True)


def test_gpu_fused_steps_with_the_contact_wall(toy_data, start):
    """A bonds-only model folding atoms 0 and 2 into the wall, GPU fused against CPU."""
    _cupy_or_skip()
    R, F, E, z = toy_data
    model = gdmlx.GDMLRegressor(sigma=2.0, lam=1e-8, pairs=np.array([[1, 0], [2, 1], [3, 2], [4, 3]])).fit(
        R[:30], F[:30], E[:30], z=z)
    v = folding_velocities(start)[None]
    gpu = ReplicaSimulation(model, start, velocities=v, dt_fs=0.25, backend="gpu", fused_steps=True)
    gpu.run(600, save_every=30, report_every=600, progress=False)
    cpu = Simulation(model, start, velocities=v[0], dt_fs=0.25)
    cpu.run(600, save_every=30, report_every=600, progress=False)
    np.testing.assert_allclose(gpu.positions[0], cpu.q, rtol=0, atol=1e-9)
