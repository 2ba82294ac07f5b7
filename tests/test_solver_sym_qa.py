"""Permutational symmetries and the solvers, checked as a user meets them: detection on
one geometry and on cages of identical atoms, user-given permutations, a symmetric model's
invariance, and the iterative solver's preconditioner memory and progress."""

import itertools
import time

import numpy as np
import pytest

import gdmlx
from conftest import toy_energy_forces, toy_geometries
from gdmlx.bonds import bond_matrix
from gdmlx.errors import InputError
from gdmlx.symmetry import check_permutations, find_permutations, isomorphisms, refined_colours


def _emt_data(name, n, seed=0):
    """(R, F, E, z) of ``n`` perturbed copies of ASE's molecule ``name``, EMT labels."""
    from ase.build import molecule
    from ase.calculators.emt import EMT
    atoms = molecule(name)
    atoms.calc = EMT()
    base = atoms.get_positions()
    rng = np.random.default_rng(seed)
    R, F, E = [], [], []
    for _ in range(n):
        atoms.set_positions(base + 0.05 * rng.standard_normal(base.shape))
        R.append(atoms.get_positions())
        F.append(atoms.get_forces())
        E.append(atoms.get_potential_energy())
    return np.array(R), np.array(F), np.array(E), atoms.numbers.copy()


def test_one_geometry_gives_the_same_permutations_as_a_set_of_one():
    """find_permutations(atoms.positions, z) read the (N, 3) array as N geometries of 3
    atoms: water got the identity only, methane a numpy broadcasting error."""
    for name, size in (("H2O", 2), ("CH4", 24)):
        R, _, _, z = _emt_data(name, 1)
        one = find_permutations(R[0], z)
        assert len(one) == size
        np.testing.assert_array_equal(one, find_permutations(R, z))
    with pytest.raises(InputError, match="z has 4"):
        find_permutations(R, z[:4])


def test_non_integer_permutations_are_refused():
    """A permutation entry 3.7 was truncated to 3, and the model silently used it."""
    z = np.array([6, 6, 8, 6, 1])
    with pytest.raises(InputError, match="whole atom indices"):
        check_permutations([[0, 1, 2, 3, 4], [3.7, 1, 2, 0, 4]], z)
    np.testing.assert_array_equal(check_permutations([[0., 1, 2, 3, 4], [3, 1, 2, 0, 4]], z)[1], [3, 1, 2, 0, 4])


def test_automorphisms_of_a_cage_of_identical_atoms_are_found_quickly():
    """C60 (one colour, every atom alike): the backtracking tested each candidate against
    each placed atom in Python, 8 s for 24 automorphisms and 78 s for perms="auto"."""
    from ase.build import molecule
    atoms = molecule("C60")
    R = atoms.get_positions()
    adj = bond_matrix(atoms.numbers, R[None])
    colours = refined_colours(adj, atoms.numbers)
    t0 = time.perf_counter()
    found = list(itertools.islice(isomorphisms(adj, colours, adj, colours), 24))
    assert time.perf_counter() - t0 < 3.0
    d = np.linalg.norm(R[:, None] - R[None], axis=-1)
    assert len(set(found)) == 24
    for p in found:                 # each keeps the bonds, and is a symmetry of the cage's shape
        np.testing.assert_array_equal(adj[np.ix_(p, p)], adj)
        np.testing.assert_allclose(d[np.ix_(p, p)], d, atol=0.02)    # ASE's C60 is Ih to 0.01 A


def test_methane_model_is_symmetric_and_conservative():
    """24 permutations of methane's hydrogens: a permuted, rotated copy gets the same
    energy and the permuted, rotated forces, which are minus the energy's gradient."""
    R, F, E, z = _emt_data("CH4", 14)
    model = gdmlx.GDMLRegressor(sigma=2.0, lam=1e-8, perms="auto").fit(R[:10], F[:10], E[:10], z=z)
    assert len(model.perms_) == 24
    Rt = R[10:]
    E0, F0 = model.predict_energy_forces(Rt)
    c, s = np.cos(0.7), np.sin(0.7)
    Q = np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]]) @ np.array([[1, 0, 0], [0, c, s], [0, -s, c]])
    for p in model.perms_[[5, 17, 23]]:
        E1, F1 = model.predict_energy_forces(Rt[:, p] @ Q.T + 1.5)
        np.testing.assert_allclose(E1, E0, atol=1e-10)
        np.testing.assert_allclose(F1, F0[:, p] @ Q.T, atol=1e-9)
    h, x = 1e-5, Rt[0]
    grad = np.zeros_like(x)
    for i, k in np.ndindex(*x.shape):
        step = np.zeros_like(x)
        step[i, k] = h
        grad[i, k] = (model.predict_energy(x + step)[0] - model.predict_energy(x - step)[0]) / (2 * h)
    np.testing.assert_allclose(F0[0], -grad, atol=1e-6 * np.abs(F0[0]).max())


def test_more_preconditioner_points_than_training_points_are_capped_before_the_memory_check(capsys):
    """preconditioner_points=1000 on 6 geometries: the preconditioner takes all 6, but
    the memory check counted 1000 (refusing a fit that needs 1 MB) and the log said
    'Nystrom preconditioner on 1000 of 6 training points'."""
    R = toy_geometries(6, seed=3)
    E, F = toy_energy_forces(R)
    opts = gdmlx.ComputeOptions(preconditioner_points=1000, memory_limit_gb=0.01, verbose=True)
    model = gdmlx.GDMLRegressor(sigma=2.0, lam=1e-8, solver="cg", options=opts).fit(
        R, F, E, z=np.array([6, 6, 8, 6, 1]))
    assert model.fit_info_["preconditioner_points"] == 6
    assert "on 6 of 6 training points" in capsys.readouterr().err


@pytest.mark.parametrize("n_train, n_points", [(20, 20), (40, 10)])
def test_preconditioner_memory_estimate_covers_its_peak(n_train, n_points):
    """The iterative solver's memory check counted only the preconditioner's (3NM x 3Nk)
    factor, while K_SS's factor (copied twice) and the inner matrix, each (3Nk)^2, were
    alive with it: with k = M the preconditioner took 3x what the check allowed for."""
    import tracemalloc

    from gdmlx.descriptor import all_pairs
    from gdmlx.kernel_data import KernelData
    from gdmlx.nystrom import NystromPreconditioner
    data = KernelData(toy_geometries(n_train, seed=1), all_pairs(5))
    NystromPreconditioner(data, 2.0, 1e-6, n_points)              # compiled before measuring
    tracemalloc.start()                                            # numpy's arrays; B is memory mapped
    try:
        pc = NystromPreconditioner(data, 2.0, 1e-6, n_points)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak + pc.B.nbytes <= 1.02 * NystromPreconditioner.memory_bytes(n_train, 5, n_points) + 2**16


def test_iterative_solver_reports_progress_when_its_products_are_slow(monkeypatch, capsys):
    """The solve reported its residual every 50 iterations only: a large fit whose kernel
    products take seconds each showed nothing for minutes (with lam 1e-7, where aspirin
    converges in about 60 products, nothing at all). Here the clock runs 11 s per reading,
    so each iteration takes over 10 s."""
    import gdmlx.training
    R = toy_geometries(12, seed=5)
    E, F = toy_energy_forces(R)
    clock = itertools.count(0.0, 11.0)
    monkeypatch.setattr(gdmlx.training.time, "perf_counter", lambda: next(clock))
    opts = gdmlx.ComputeOptions(verbose=True, preconditioner_points=2)
    gdmlx.GDMLRegressor(sigma=2.0, lam=1e-4, solver="cg", options=opts).fit(R, F, z=np.array([6, 6, 8, 6, 1]))
    err = capsys.readouterr().err
    assert "[1: " in err and "[3: " in err                      # not only iterations 50, 100, ...


def test_iterative_solver_redraws_its_residual_in_place_on_a_terminal(monkeypatch, capsys):
    """On a terminal each report was appended to the stage's line: a solve of thousands of
    iterations drew one line of hundreds of "[it: residual]" entries. Now the line is
    redrawn with the latest report; in a log file each report stays a line of its own."""
    import sys
    R = toy_geometries(12, seed=5)
    E, F = toy_energy_forces(R)
    opts = gdmlx.ComputeOptions(verbose=True, preconditioner_points=1, cg_tol=1e-14)
    fit = lambda: gdmlx.GDMLRegressor(sigma=2.0, lam=1e-10, solver="cg", options=opts).fit(
        R, F, z=np.array([6, 6, 8, 6, 1]))
    fit()
    in_file = [line for line in capsys.readouterr().err.splitlines() if "conjugate gradient" in line]
    assert len(in_file) >= 3 and all(line.count("[") <= 1 for line in in_file)  # [50: ..], [100: ..], ..
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    fit()
    drawn = capsys.readouterr().err.split("\r")
    cg = [d for d in drawn if "conjugate gradient" in d]
    assert len(cg) >= 3 and all(d.count("[") == 1 for d in cg[1:])
    assert cg[-1].rstrip("\n").endswith(" s") and "\n" in cg[-1]


def test_an_interrupt_names_the_iteration_the_checkpoint_holds(tmp_path):
    """Ctrl-C just after a step whose save had not happened yet said the checkpoint kept
    that step (iteration 10 here) while the file held the one before (5), where the next
    run resumed."""
    from gdmlx.cg import conjugate_gradient
    rng = np.random.default_rng(0)
    Q = rng.standard_normal((40, 40))
    A, b = Q @ Q.T + 40 * np.eye(40), rng.standard_normal(40)
    path, notes = str(tmp_path / "cg.npz"), []

    def stop_at_10(it, res):
        if it == 10:
            raise KeyboardInterrupt
    with pytest.raises(KeyboardInterrupt):
        conjugate_gradient(lambda v: A @ v, b, tol=1e-14, checkpoint=path, checkpoint_every=5,
                           callback=stop_at_10, notify=notes.append)
    assert "keeps the solve at iteration 5:" in notes[-1]
    x = conjugate_gradient(lambda v: A @ v, b, tol=1e-12, checkpoint=path, checkpoint_every=5,
                           notify=notes.append)
    assert "at iteration 5" in notes[-1]
    np.testing.assert_allclose(A @ x, b, atol=1e-10)
