"""The contact wall for atom pairs outside every descriptor of a model (gdmlx.md.contact)."""

import numpy as np
import pytest

import gdmlx
from conftest import toy_geometries
from gdmlx.md import MDInstabilityError, Simulation
from gdmlx.md.contact import add_wall, model_wall, wall_energy_forces
from gdmlx.md.domain import model_floors, uncovered_pairs


def random_wall(seed=0, n_atoms=6):
    """Positions (N, 3), all pairs, and onsets that put about half the pairs inside their wall."""
    rng = np.random.default_rng(seed)
    R = rng.uniform(0.0, 2.5, (n_atoms, 3))
    pairs = np.stack(np.tril_indices(n_atoms, -1), axis=1)
    r = np.linalg.norm(R[pairs[:, 0]] - R[pairs[:, 1]], axis=1)
    return R, pairs, r * rng.uniform(0.7, 1.3, len(pairs))


def test_wall_forces_are_minus_energy_gradient():
    R, pairs, r0 = random_wall()
    E, F = wall_energy_forces(R, pairs, r0, k=2.0)
    assert E > 0
    h = 1e-6
    grad = np.zeros_like(R)
    for a in range(R.shape[0]):
        for c in range(3):
            Rp, Rm = R.copy(), R.copy()
            Rp[a, c] += h
            Rm[a, c] -= h
            grad[a, c] = (wall_energy_forces(Rp, pairs, r0, 2.0)[0] - wall_energy_forces(Rm, pairs, r0, 2.0)[0]) / (2 * h)
    np.testing.assert_allclose(F, -grad, atol=1e-7)


def test_compiled_wall_matches_numpy_reference_and_adds_to_forces():
    R, pairs, r0 = random_wall(seed=1)
    E_ref, F_ref = wall_energy_forces(R, pairs, r0, k=1.5)
    F = np.ones_like(R)
    E = add_wall(R, pairs, r0, 1.5, F)
    assert E == pytest.approx(E_ref, rel=1e-12)
    np.testing.assert_allclose(F, F_ref + 1.0, rtol=1e-12, atol=1e-12)
    far = np.zeros_like(R)
    assert add_wall(R, pairs, 0.5 * r0.min() * np.ones_like(r0), 1.5, far) == 0.0 and not far.any()


@pytest.mark.filterwarnings("ignore::gdmlx.errors.EnergyConsistencyWarning")
def test_walls_cover_exactly_the_pairs_no_descriptor_has(toy_data):
    R, F, E, z = toy_data
    covered = np.array([[1, 0], [2, 1], [3, 4]])          # either order
    model = gdmlx.GDMLRegressor(sigma=2.0, lam=1e-8, pairs=covered).fit(R[:20], F[:20], E[:20], z=z)
    pairs, floors, is_covered = model_floors(model)
    assert {tuple(sorted(p)) for p in pairs[is_covered]} == {(0, 1), (1, 2), (3, 4)}
    wall_pairs, r0, k = model_wall(model)
    np.testing.assert_array_equal(wall_pairs, pairs[~is_covered])
    assert {tuple(p) for p in wall_pairs} == {(2, 0), (3, 0), (3, 1), (4, 0), (4, 1), (4, 2), (3, 2)}
    assert np.all(wall_pairs[:, 0] > wall_pairs[:, 1]) and k > 0
    brute = np.array([min(np.linalg.norm(r[i] - r[j]) for r in R[:20]) for i, j in pairs])
    np.testing.assert_allclose(floors, brute, rtol=1e-12)
    vdw = {1: 1.2, 6: 1.77, 8: 1.5}                       # Alvarez 2013, Angstrom
    expected = [min(0.8 * b, 0.75 * (vdw[z[i]] + vdw[z[j]])) for (i, j), b in zip(wall_pairs, brute[~is_covered])]
    np.testing.assert_allclose(r0, expected, rtol=1e-12)
    assert np.any(r0 < 0.8 * brute[~is_covered]) and np.any(r0 == 0.8 * brute[~is_covered])
    assert len(model_wall(model, enabled=False)[0]) == 0 == len(model_wall(model, enabled=False)[1])
    # 0 and 1 are flags: as integers in the pair mask they indexed pairs (ten walls on pair 0)
    assert len(model_wall(model, enabled=0)[0]) == 0
    np.testing.assert_array_equal(model_wall(model, enabled=1)[0], wall_pairs)
    for bad in (None, "no", 2):
        with pytest.raises(gdmlx.InputError, match="contact_wall must be True or False"):
            model_wall(model, enabled=bad)
    assert len(uncovered_pairs(5, np.stack(np.tril_indices(5, -1), axis=1))) == 0


@pytest.fixture(scope="module")
def bonds_only_model(toy_data):
    """A toy model whose descriptor holds only the four chain bonds: nothing keeps atoms
    0 and 2 apart but the wall."""
    R, F, E, z = toy_data
    bonds = np.array([[1, 0], [2, 1], [3, 2], [4, 3]])
    return gdmlx.GDMLRegressor(sigma=2.0, lam=1e-8, pairs=bonds).fit(R[:30], F[:30], E[:30], z=z)


def folding_velocities(start):
    """Atoms 0 and 2 sent towards each other at 0.02 A/fs."""
    d = start[2] - start[0]
    v = np.zeros_like(start)
    v[0], v[2] = 0.02 * d / np.linalg.norm(d), -0.02 * d / np.linalg.norm(d)
    return v


@pytest.mark.filterwarnings("ignore::gdmlx.errors.EnergyConsistencyWarning")
def test_wall_keeps_uncovered_atoms_apart_and_conserves_energy(bonds_only_model):
    start = toy_geometries(1, noise=0.0)[0]
    v = folding_velocities(start)
    with pytest.raises(MDInstabilityError, match="closer than half"):
        Simulation(bonds_only_model, start, velocities=v, dt_fs=0.25, contact_wall=False).run(
            2000, save_every=10, report_every=1000, progress=False)
    sim = Simulation(bonds_only_model, start, velocities=v, dt_fs=0.25)
    onset = sim.wall[1][[tuple(p) for p in sim.wall[0]].index((2, 0))]
    ekin0 = 0.5 * np.sum(sim.masses[:, None] * sim.v**2)
    closest = np.inf
    etot = []
    for _ in range(200):
        s = sim.run(10, save_every=10, report_every=10, progress=False)
        closest = min(closest, np.linalg.norm(sim.q[0] - sim.q[2]))
        ekin = 0.5 * np.sum(sim.masses[:, None] * sim.v**2)
        etot.append(sim.E.sum() + ekin)
    assert closest < onset                       # the wall acted ...
    assert closest > 0.5 * onset                 # ... and turned the atoms round
    # E_tot (model + wall) is conserved through the bounce: its spread is small against the
    # kinetic energy the run started with
    assert np.ptp(etot) < 0.01 * ekin0
    assert s["steps"] == 10


@pytest.mark.filterwarnings("ignore::gdmlx.errors.EnergyConsistencyWarning")
def test_ase_calculator_carries_the_same_wall(bonds_only_model):
    """At a folded geometry (atoms 0 and 2 inside their wall) the calculator gives the model
    plus the wall, its forces are minus its energy gradient, and contact_wall=False gives
    the bare model."""
    from ase import Atoms
    from ase.calculators.fd import calculate_numerical_forces

    from gdmlx.units import energy_in_ev
    start = toy_geometries(1, noise=0.0)[0]
    sim = Simulation(bonds_only_model, start, velocities=folding_velocities(start), dt_fs=0.25)
    pairs, r0, k = sim.wall
    onset = r0[[tuple(p) for p in pairs].index((2, 0))]
    while np.linalg.norm(sim.q[0] - sim.q[2]) > 0.9 * onset:
        sim.run(10, save_every=10, report_every=10, progress=False)
    atoms = Atoms(numbers=bonds_only_model.z_, positions=sim.q)
    E_wall, F_wall = wall_energy_forces(sim.q, pairs, r0, k)
    assert E_wall > 0
    E_model, F_model = bonds_only_model.predict_energy_forces(sim.q)
    e_unit = energy_in_ev(bonds_only_model.energy_unit_)
    atoms.calc = gdmlx.GDMLCalculator(bonds_only_model)
    with pytest.warns(gdmlx.DomainWarning, match="atoms 2 and 0"):          # inside the wall is outside
        assert atoms.get_potential_energy() == pytest.approx(E_model[0] * e_unit + E_wall, rel=1e-10)
    np.testing.assert_allclose(atoms.get_forces(), F_model[0] * e_unit + F_wall, rtol=1e-9, atol=1e-9)
    numeric = calculate_numerical_forces(atoms, eps=1e-5)
    np.testing.assert_allclose(atoms.get_forces(), numeric, atol=1e-6)
    atoms.calc = gdmlx.GDMLCalculator(bonds_only_model, contact_wall=False)
    with pytest.warns(gdmlx.DomainWarning):
        assert atoms.get_potential_energy() == pytest.approx(E_model[0] * e_unit, rel=1e-10)


@pytest.mark.filterwarnings("ignore::gdmlx.errors.EnergyConsistencyWarning")
@pytest.mark.filterwarnings("ignore::gdmlx.DomainWarning")            # the folded frames, by design
def test_validate_judges_the_forces_the_run_had(bonds_only_model, tmp_path):
    """The trajectory records whether the wall was on, and the reference check adds it as the
    run had it: checked against the calculator (model + wall) as reference, the errors are
    round-off with the wall and not without it, on frames where the wall acted (it left the
    wall out: frames where it pushed were judged on forces that did not drive the run)."""
    from gdmlx.md.reference_check import check_trajectory
    from gdmlx.md.trajectory import read_trajectory, trajectory_summary
    start = toy_geometries(1, noise=0.0)[0]
    Simulation(bonds_only_model, start, velocities=folding_velocities(start), dt_fs=0.25).run(
        400, trajectory=tmp_path / "t.h5", save_every=10, progress=False)
    Simulation(bonds_only_model, start, dt_fs=0.25, contact_wall=False).run(
        10, trajectory=tmp_path / "off.h5", save_every=10, progress=False)
    assert trajectory_summary(tmp_path / "t.h5")["contact_wall"] is True
    assert trajectory_summary(tmp_path / "off.h5")["contact_wall"] is False
    q = read_trajectory(tmp_path / "t.h5")["positions"]
    reference = gdmlx.GDMLCalculator(bonds_only_model)
    with_wall = check_trajectory(bonds_only_model, q, reference, n_frames=40, skip=0.0)
    without = check_trajectory(bonds_only_model, q, reference, n_frames=40, skip=0.0, contact_wall=False)
    assert with_wall["f_mae"].max() < 1e-9
    assert without["f_mae"].max() > 1.0                # kcal/mol/A: the wall pushed in some frames
