import warnings

import h5py
import numpy as np
import pytest
from ase import Atoms
from ase.constraints import FixAtoms
from ase.md.verlet import VelocityVerlet
from ase.optimize import BFGS
import ase.data
import ase.units

import gdmlx
from conftest import toy_geometries
from gdmlx.md import MDInstabilityError, ReplicaSimulation, Simulation, read_last_state, read_trajectory


@pytest.fixture(scope="module")
def start():
    """The unperturbed toy geometry, in the middle of the training data."""
    return toy_geometries(1, noise=0.0)[0]


def test_engine_matches_ase_velocity_verlet(toy_model, start):
    """Same model, same start: the compiled loop and ASE's VelocityVerlet agree step by step."""
    sim = Simulation(toy_model, start, dt_fs=0.5, temperature_K=300, seed=3)
    v0 = sim.v.copy()
    sim.run(200, save_every=10, report_every=100, progress=False)
    atoms = Atoms(numbers=toy_model.z_, positions=start, masses=sim.masses)
    atoms.set_velocities(v0)
    atoms.calc = gdmlx.GDMLCalculator(toy_model)
    VelocityVerlet(atoms, timestep=0.5 * ase.units.fs).run(200)
    np.testing.assert_allclose(sim.q, atoms.positions, atol=1e-9)
    np.testing.assert_allclose(sim.v, atoms.get_velocities(), rtol=1e-7, atol=1e-10)


def test_nve_energy_error_is_second_order_and_does_not_drift(toy_model, start):
    """Velocity Verlet's energy error oscillates with amplitude ~ dt^2 and has no drift:
    halving dt divides the total-energy fluctuation by ~4."""
    stds = []
    for dt, n in ((0.5, 4000), (0.25, 8000)):
        sim = Simulation(toy_model, start, dt_fs=dt, temperature_K=300, seed=1)
        s = sim.run(n, save_every=20, report_every=2000, progress=False)
        stds.append(s["etot_std_eV"])
        assert abs(s["etot_drift_eV_per_ps"]) * s["simulated_ps"] < 2 * s["etot_std_eV"]
    assert 3.0 < stds[0] / stds[1] < 5.5


def test_langevin_thermalises_to_target_temperature(toy_model, start):
    sim = Simulation(toy_model, start, dt_fs=0.5, temperature_K=400, thermostat="langevin",
                     friction_per_fs=0.05, seed=7)
    sim.run(2000, save_every=10, report_every=2000, progress=False)        # equilibrate
    s = sim.run(40000, save_every=10, report_every=20000, progress=False)
    assert abs(s["mean_temperature_K"] - 400) < 0.1 * 400
    assert np.linalg.norm(sim.masses @ sim.v) < 1e-10                    # no centre-of-mass drift


@pytest.mark.parametrize("engine", [Simulation, ReplicaSimulation])
def test_langevin_without_friction_counts_the_temperature_as_nve(toy_model, start, engine):
    """friction 0 is velocity Verlet from velocities without net rotation: its temperature
    counts the NVE run's degrees of freedom, 3N - 6, not Langevin's 3N - 3."""
    summaries = [engine(toy_model, start, temperature_K=300, seed=2, **kw).run(200, progress=False)
                 for kw in ({"thermostat": "nve"}, {"thermostat": "langevin", "friction_per_fs": 0.0})]
    assert summaries[1]["mean_temperature_K"] == pytest.approx(summaries[0]["mean_temperature_K"], rel=1e-9)


def test_seed_makes_langevin_reproducible(toy_model, start):
    runs = []
    for _ in range(2):
        sim = Simulation(toy_model, start, thermostat="langevin", temperature_K=300, seed=11)
        sim.run(100, save_every=10, report_every=100, progress=False)
        runs.append(sim.q.copy())
    np.testing.assert_array_equal(runs[0], runs[1])


def test_trajectory_names_its_format(toy_model, start, tmp_path):
    with pytest.raises(ValueError, match=r"\.h5, \.hdf5\) or extended XYZ"):
        Simulation(toy_model, start).run(20, trajectory=tmp_path / "t.dcd", progress=False)


@pytest.mark.parametrize("ext", [".h5", ".xyz"])
def test_trajectory_file_holds_every_frame(toy_model, start, tmp_path, ext):
    path = tmp_path / f"traj{ext}"
    sim = Simulation(toy_model, start, temperature_K=300, seed=2)
    sim.run(300, trajectory=path, save_every=10, report_every=100, progress=False)
    if ext == ".h5":
        traj = read_trajectory(path)
        assert traj["positions"].shape == (30, 5, 3) and traj["complete"]
        np.testing.assert_array_equal(traj["positions"][-1], sim.q)
        np.testing.assert_allclose(traj["time_fs"], 5.0 * np.arange(1, 31))
    else:
        import ase.io
        frames = ase.io.read(path, ":")
        assert len(frames) == 30
        np.testing.assert_allclose(frames[-1].positions, sim.q, atol=1e-6)
        atoms = Atoms(numbers=toy_model.z_, positions=frames[-1].positions,
                      calculator=gdmlx.GDMLCalculator(toy_model))
        assert frames[-1].get_potential_energy() == pytest.approx(atoms.get_potential_energy(), abs=1e-6)
    assert not (tmp_path / f"traj{ext}.part").exists()


@pytest.mark.parametrize("engine, ext, atol", [("single", ".h5", 1e-9), ("single", ".xyz", 1e-5),
                                               ("replicas", ".h5", 1e-9)])
def test_a_run_continued_from_its_trajectory_is_the_run_not_cut(toy_model, start, tmp_path, engine,
                                                                  ext, atol):
    """NVE velocity Verlet is deterministic: 200 steps in one go and 100 + 100 steps
    continued from the first part's last frame give the same state and frame times (HDF5
    to rounding; extended XYZ to its printed digits); the file keeps the (isotope) masses."""
    make = ((lambda **kw: Simulation(toy_model, kw.pop("q", start), **kw)) if engine == "single" else
            (lambda **kw: ReplicaSimulation(toy_model, kw.pop("q", start), 3, **kw)))
    masses = ase.data.atomic_masses[toy_model.z_] * np.array([1.0, 2.0, 1.0, 1.0, 1.0])
    whole = make(temperature_K=300, seed=4, masses=masses)
    whole.run(200, save_every=10, progress=False)
    first = make(temperature_K=300, seed=4, masses=masses)
    first.run(100, trajectory=tmp_path / f"a{ext}", save_every=10, progress=False)
    state = read_last_state(tmp_path / f"a{ext}")
    assert state.time_fs == 50.0 and np.array_equal(state.z, toy_model.z_)
    np.testing.assert_allclose(state.masses, masses)
    rest = make(q=state.positions, velocities=state.velocities, time_fs=state.time_fs, masses=state.masses)
    rest.run(100, trajectory=tmp_path / "b.h5", save_every=10, progress=False)
    q_whole, q_rest = (np.asarray(getattr(s, "positions", s.q)) for s in (whole, rest))
    np.testing.assert_allclose(q_rest, q_whole, atol=atol)
    assert rest.time_fs == whole.time_fs == 100.0
    np.testing.assert_allclose(read_trajectory(tmp_path / "b.h5")["time_fs"], 50.0 + 5.0 * np.arange(1, 11))


def test_a_state_without_velocities_cannot_be_continued(tmp_path):
    import ase.io
    ase.io.write(tmp_path / "plain.xyz", Atoms("CO", positions=[[0, 0, 0], [0, 0, 1.2]]))
    with pytest.raises(gdmlx.InputError, match="no velocities or no time_fs"):
        read_last_state(tmp_path / "plain.xyz")


@pytest.mark.parametrize("ext", [".h5", ".xyz"])
def test_unstable_run_stops_with_message_and_keeps_frames(toy_model, start, tmp_path, ext):
    path = tmp_path / f"t{ext}"
    sim = Simulation(toy_model, start, temperature_K=3000, seed=0, max_bond_stretch=1.2)
    with pytest.raises(MDInstabilityError, match="bond stretched.*frames were kept"):
        sim.run(5000, trajectory=path, save_every=1, report_every=10, progress=False)
    state = read_last_state(path)
    assert not state.complete and state.time_fs == 0.5 * (sim.step - 1)   # the last whole step's frame
    if ext == ".h5":
        traj = read_trajectory(path)
        assert not traj["complete"] and traj["status"] == 2 and len(traj["time_fs"]) >= 1
    else:
        import ase.io
        frames = ase.io.read(path, ":")
        assert frames[-1].info["status"] == 2 and "complete" not in frames[0].info
        assert len(frames) == sim.step - 1
    with pytest.raises(MDInstabilityError, match="stopped earlier .*bond stretched"):
        sim.run(10, progress=False)                    # not on from the broken state


def test_an_xyz_trajectory_cut_while_writing_continues_from_its_last_whole_frame(toy_model, start, tmp_path):
    path = tmp_path / "t.xyz"
    Simulation(toy_model, start, temperature_K=300, seed=2).run(30, trajectory=path, save_every=10, progress=False)
    text = path.read_bytes()
    frame = len(text) // 3
    for cut in (len(text) - 40, len(text) - frame + 3, 2 * frame + 60):          # within the third frame
        (tmp_path / "cut.xyz").write_bytes(text[:cut])
        state = read_last_state(tmp_path / "cut.xyz")
        assert state.time_fs == 10.0 and not state.complete
    (tmp_path / "cut.xyz").write_bytes(text[:40])
    with pytest.raises(gdmlx.InputError, match="not a readable extended XYZ"):
        read_last_state(tmp_path / "cut.xyz")


def test_a_second_run_with_another_save_every_labels_its_frames_by_their_time(toy_model, start, tmp_path):
    sim = Simulation(toy_model, start, temperature_K=300, seed=5)
    sim.run(6, save_every=3, progress=False)
    sim.run(10, trajectory=tmp_path / "b.h5", save_every=5, progress=False)
    whole = Simulation(toy_model, start, temperature_K=300, seed=5)
    whole.run(16, trajectory=tmp_path / "w.h5", save_every=1, progress=False)
    b, w = read_trajectory(tmp_path / "b.h5"), read_trajectory(tmp_path / "w.h5")
    np.testing.assert_array_equal(b["time_fs"], [5.5, 8.0])
    at = np.searchsorted(w["time_fs"], b["time_fs"])
    np.testing.assert_array_equal(b["positions"], w["positions"][at])


def test_a_run_interrupted_while_compiling_leaves_no_file(toy_model, start, tmp_path, monkeypatch):
    sim = Simulation(toy_model, start, temperature_K=300, seed=0)

    def interrupt(n, *args):
        raise KeyboardInterrupt

    monkeypatch.setattr(sim, "_chunk", interrupt)
    with pytest.raises(KeyboardInterrupt):
        sim.run(100, trajectory=tmp_path / "t.h5", save_every=10, progress=False)
    assert list(tmp_path.iterdir()) == []


def test_ctrl_c_while_the_file_opens_leaves_it_whole_and_renamed(toy_model, start, tmp_path, monkeypatch):
    import os
    import signal
    import gdmlx.md.simulation as simulation
    real = simulation.open_trajectory

    def open_then_ctrl_c(*args, **kwargs):
        os.kill(os.getpid(), signal.SIGINT)          # arrives while the file is being made
        return real(*args, **kwargs)

    monkeypatch.setattr(simulation, "open_trajectory", open_then_ctrl_c)
    with pytest.raises(KeyboardInterrupt) as stop:
        Simulation(toy_model, start, seed=0).run(100, trajectory=tmp_path / "t.h5", save_every=10, progress=False)
    assert stop.value.summary["steps"] == 0
    assert [p.name for p in tmp_path.iterdir()] == ["t.h5"] and not read_trajectory(tmp_path / "t.h5")["complete"]


def test_progress_in_a_log_is_one_line_per_report(toy_model, start, capsys):
    Simulation(toy_model, start, seed=0).run(300, save_every=10, report_every=100)
    err = capsys.readouterr().err
    assert "\r" not in err and err.count("MD step") == 3 and err.endswith("steps/s\n")


@pytest.mark.parametrize("engine", [Simulation, ReplicaSimulation])
def test_progress_in_a_log_comes_by_the_clock(toy_model, start, engine, capsys, monkeypatch):
    """By default a log gets a progress line every 10 s and the last step's: `gdmlx md`
    wrote 50 lines for any run, a run of a second included. Below, with 0 s between lines,
    every chunk (1000 steps) or frame (replicas) reports."""
    from gdmlx import progress
    engine(toy_model, start, seed=0).run(3000, save_every=10)
    err = capsys.readouterr().err
    assert err.count("MD step") == 1 and "MD step 3000/3000" in err
    monkeypatch.setattr(progress, "LOG_EVERY_S", 0.0)
    engine(toy_model, start, seed=0).run(3000, save_every=10)
    assert capsys.readouterr().err.count("MD step") == (3 if engine is Simulation else 300)


def test_progress_on_a_terminal_covers_a_longer_line_before(monkeypatch):
    """A progress line redrawn over a longer one (a rate or an ETA with fewer digits) leaves
    none of the longer line's characters behind."""
    import io
    from gdmlx import progress

    class Terminal(io.StringIO):
        def isatty(self):
            return True
    term = Terminal()
    monkeypatch.setattr("sys.stderr", term)
    progress.show("MD step 10/20  100,000 steps/s")
    progress.show("MD step 20/20  99 steps/s")
    progress.finish()
    last = term.getvalue().split("\r")[-1]
    assert last == "MD step 20/20  99 steps/s".ljust(len("MD step 10/20  100,000 steps/s")) + "\n"


@pytest.mark.parametrize("engine", [Simulation, ReplicaSimulation])
def test_progress_says_how_long_the_rest_of_the_run_takes(toy_model, start, engine, capsys):
    from gdmlx.progress import time_left
    engine(toy_model, start, seed=0).run(300, save_every=10, report_every=100)
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 3 and all(" ETA " in line for line in lines[:2]) and "ETA" not in lines[2]
    assert [time_left(*a) for a in ((1, 2, 5.0), (1, 3, 100.0), (1, 2, 7300), (1, 2, 3e5), (2, 2, 1.0))] == [
        "  ETA 5 s", "  ETA 3 min 20 s", "  ETA 2 h 01 min", "  ETA 3.5 days", ""]


def test_interrupted_run_leaves_a_readable_file(toy_model, start, tmp_path, monkeypatch, capsys):
    path = tmp_path / "t.h5"
    sim = Simulation(toy_model, start, temperature_K=300, seed=0)
    calls = []

    def interrupt_second_chunk(n, *args):
        calls.append(n)                      # n = 0: the compile-only call before the timing
        if len(calls) == 3:
            raise KeyboardInterrupt
        return original(n, *args)

    original = sim._chunk
    monkeypatch.setattr(sim, "_chunk", interrupt_second_chunk)
    with pytest.raises(KeyboardInterrupt):
        sim.run(1000, trajectory=path, save_every=10, report_every=100, progress=False)
    traj = read_trajectory(path)
    assert len(traj["time_fs"]) == 10 and not traj["complete"]
    assert "keeps the 10 frames saved so far" in capsys.readouterr().err


def test_calculator_units_checks_and_bfgs(toy_model, start):
    atoms = Atoms(numbers=toy_model.z_, positions=start)
    atoms.calc = gdmlx.GDMLCalculator(toy_model)
    E, F = toy_model.predict_energy_forces(start)
    kcal = ase.units.kcal / ase.units.mol
    assert atoms.get_potential_energy() == pytest.approx(E[0] * kcal, rel=1e-12)
    np.testing.assert_allclose(atoms.get_forces(), F[0] * kcal, rtol=1e-12)
    opt = BFGS(atoms, logfile=None)
    assert opt.run(fmax=0.01, steps=500)
    assert np.abs(atoms.get_forces()).max() < 0.01
    wrong = Atoms(numbers=[6, 6, 8, 6, 8], positions=start)
    wrong.calc = gdmlx.GDMLCalculator(toy_model)
    with pytest.raises(gdmlx.InputError, match="do not match the model"):
        wrong.get_potential_energy()
    boxed = Atoms(numbers=toy_model.z_, positions=start, cell=[20, 20, 20], pbc=True)
    boxed.calc = gdmlx.GDMLCalculator(toy_model)
    with pytest.raises(gdmlx.InputError, match="without periodic images"):
        boxed.get_potential_energy()


def test_calculator_refuses_bad_positions_and_warns_once_outside_the_domain(toy_model, start):
    calc = gdmlx.GDMLCalculator(toy_model)
    for positions, message in ((np.r_[start, start[:1] + 2.0], "6 atoms per geometry, the model has 5"),
                               (np.where(np.arange(15).reshape(5, 3) == 4, np.nan, start), "NaN"),
                               (np.where(np.arange(15).reshape(5, 3) == 4, np.inf, start), "inf")):
        atoms = Atoms(numbers=np.resize(toy_model.z_, len(positions)), positions=positions, calculator=calc)
        with pytest.raises(gdmlx.InputError, match=message):
            atoms.get_potential_energy()
    with pytest.raises(gdmlx.InputError, match="a fitted gdmlx model or the path of a model file, got NoneType"):
        gdmlx.GDMLCalculator(None)
    swapped = Atoms(numbers=toy_model.z_, positions=start[[3, 1, 2, 0, 4]], calculator=calc)
    with pytest.warns(gdmlx.DomainWarning, match="atoms 0 and 4 .* in the model's order"):
        swapped.get_potential_energy()
    swapped.positions[0] += 0.01
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)     # once per calculator, not every step
        swapped.get_potential_energy()


def test_calculator_warns_at_stretched_bonds_and_relative_energies(toy_model, ethanol_model, toy_data, start):
    """Positions in bohr stretch every bond: a DomainWarning names one, pointing at the
    caller's line; a model fitted without energies says once that its energies are relative."""
    in_bohr = Atoms(numbers=ethanol_model.z_, positions=ethanol_model.R_train_[0] / ase.units.Bohr,
                    calculator=gdmlx.GDMLCalculator(ethanol_model))
    with pytest.warns(gdmlx.DomainWarning, match="bonded in the training data .* positions in Angstrom") as got:
        in_bohr.get_forces()
    assert got[0].filename == __file__
    R, F, E, z = toy_data
    force_only = gdmlx.GDMLRegressor(sigma=2.0, lam=1e-8).fit(R[:20], F[:20], z=z)
    atoms = Atoms(numbers=z, positions=start, calculator=gdmlx.GDMLCalculator(force_only))
    atoms.get_forces()                                  # forces alone: nothing to say
    with pytest.warns(UserWarning, match="fitted without energies"):
        atoms.get_potential_energy()
    atoms.positions[0, 0] += 1e-3
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)    # gdmlx's warnings, not a library's deprecations
        atoms.get_potential_energy()
        gdmlx.GDMLCalculator(toy_model).get_potential_energy(Atoms(numbers=z, positions=start))


def test_calculator_recalculates_exactly_when_the_geometry_changes(toy_model, start):
    atoms = Atoms(numbers=toy_model.z_, positions=start, calculator=gdmlx.GDMLCalculator(toy_model))
    F = atoms.get_forces()
    atoms.get_potential_energy()
    assert atoms.calc.calls == 1                        # energy and forces from one evaluation
    atoms.set_cell([10, 10, 10])                        # no pbc: the cell does not matter
    atoms.set_initial_charges(np.ones(5))
    atoms.get_forces()
    assert atoms.calc.calls == 1
    atoms.positions[2, 1] += 1e-12
    assert not np.array_equal(atoms.get_forces(), F) and atoms.calc.calls == 2
    atoms.numbers = [6, 6, 8, 6, 8]
    for _ in range(2):                                  # asked again: still refused, never computed
        with pytest.raises(gdmlx.InputError, match="do not match the model"):
            atoms.get_forces()


def test_calculator_uses_a_model_fitted_again(toy_data, start):
    """A model fitted again after the calculator was made: the calculator used the old fit,
    and returned its cached results for unchanged positions."""
    R, F, E, z = toy_data
    model = gdmlx.GDMLRegressor(sigma=2.0, lam=1e-8).fit(R[:10], F[:10], E[:10], z=z)
    atoms = Atoms(numbers=z, positions=start, calculator=gdmlx.GDMLCalculator(model))
    atoms.get_forces()
    model.fit(R[:30], F[:30], E[:30], z=z)
    kcal = ase.units.kcal / ase.units.mol
    np.testing.assert_allclose(atoms.get_forces(), model.predict(start)[0] * kcal, rtol=1e-12)
    atoms.positions[0, 0] += 1e-3
    np.testing.assert_allclose(atoms.get_forces(), model.predict(atoms.positions)[0] * kcal, rtol=1e-12)
    assert atoms.calc.calls == 3
    model.fit(R[:30], F[:30], z=z)                      # without energies: said at the first energy
    with pytest.warns(UserWarning, match="fitted without energies"):
        atoms.get_potential_energy()


@pytest.mark.parametrize("engine", [Simulation, ReplicaSimulation])
@pytest.mark.parametrize("setting, value", [
    ("dt_fs", 0.0), ("dt_fs", -0.5), ("dt_fs", float("nan")), ("temperature_K", -1.0),
    ("friction_per_fs", -0.01), ("slow_every", 0), ("slow_every", 1.5), ("max_bond_stretch", 0.9)])
def test_bad_engine_settings_are_refused(toy_model, start, engine, setting, value):
    with pytest.raises(gdmlx.InputError, match=setting):
        engine(toy_model, start, **{setting: value})


def test_start_from_ase_atoms_or_one_geometry(toy_model, start):
    atoms = Atoms(numbers=toy_model.z_, positions=start)
    np.testing.assert_array_equal(Simulation(toy_model, atoms).q, Simulation(toy_model, start).q)
    with pytest.raises(gdmlx.InputError, match="do not match the model"):
        Simulation(toy_model, Atoms(numbers=[6, 6, 6, 6, 1], positions=start))
    with pytest.raises(gdmlx.InputError, match="Simulation starts from one"):
        Simulation(toy_model, np.stack([start, start]))


@pytest.mark.parametrize("engine", [Simulation, ReplicaSimulation])
def test_an_atoms_masses_and_velocities_are_used_as_ase_uses_them(toy_model, start, engine):
    """An Atoms with isotope masses and its own velocities: the engines follow ASE's
    VelocityVerlet on it; constraints, which they cannot apply, are refused."""
    masses = ase.data.atomic_masses[toy_model.z_] * np.array([1.0, 2.0, 1.0, 3.0, 1.0])
    atoms = Atoms(numbers=toy_model.z_, positions=start, masses=masses)
    atoms.set_velocities(np.random.default_rng(4).normal(0.0, 0.01, (5, 3)) / ase.units.fs)  # A/fs
    sim = engine(toy_model, atoms, dt_fs=0.5)
    np.testing.assert_allclose(np.asarray(sim.masses).ravel(), masses)
    sim.run(100, save_every=10, report_every=100, progress=False)
    atoms.calc = gdmlx.GDMLCalculator(toy_model)
    VelocityVerlet(atoms, timestep=0.5 * ase.units.fs).run(100)
    np.testing.assert_allclose(np.asarray(sim.q).reshape(5, 3), atoms.positions, atol=1e-9)
    atoms.set_constraint(FixAtoms([0]))
    with pytest.raises(gdmlx.InputError, match="FixAtoms"):
        engine(toy_model, atoms)
    with pytest.raises(gdmlx.InputError, match="positive atomic masses"):
        engine(toy_model, start, masses=-masses)


@pytest.mark.parametrize("engine", [Simulation, ReplicaSimulation])
def test_a_start_with_another_atom_count_says_so(toy_model, start, engine):
    atoms = Atoms(numbers=toy_model.z_[:4], positions=start[:4])
    with pytest.raises(gdmlx.InputError, match=r"start geometry has 4 atoms \(C3O\); the model's molecule has 5 \(C3HO\)"):
        engine(toy_model, atoms)


@pytest.mark.parametrize("engine", [Simulation, ReplicaSimulation])
def test_an_absurdly_large_start_is_refused_before_velocities_are_drawn(toy_model, start, engine):
    """Positions scaled by 1e160 (garbage in a start file) are a broken bond, not numpy's
    'Eigenvalues did not converge' from the rotation removal of the drawn velocities."""
    with warnings.catch_warnings(), pytest.raises(gdmlx.GeometryError, match="bonded in the training data"):
        warnings.simplefilter("ignore", RuntimeWarning)             # the distances overflow
        engine(toy_model, start * 1e160, seed=0)


@pytest.mark.parametrize("engine", [Simulation, ReplicaSimulation])
def test_start_with_atoms_in_another_order_is_refused(toy_model, start, engine):
    """Swapping two carbons keeps the atomic numbers but puts atoms 0 and 4 at a bond length,
    where the training data never had them closer than about 4 A."""
    swapped = start[[3, 1, 2, 0, 4]]
    with pytest.raises(gdmlx.GeometryError, match="atoms 0 and 4 .* in the model's order"):
        engine(toy_model, swapped)


@pytest.mark.parametrize("engine", [Simulation, ReplicaSimulation])
def test_start_in_bohr_or_with_a_broken_bond_is_refused(toy_model, ethanol_model, start, engine):
    """Positions in bohr (a user error: the engines take Angstrom) stretch every bond 1.89x;
    such a start once ran into an energy jump a few steps later."""
    with pytest.raises(gdmlx.GeometryError, match="bonded in the training data .* in Angstrom"):
        engine(ethanol_model, ethanol_model.R_train_[0] / ase.units.Bohr)
    broken = start.copy()
    broken[4] += 3.0 * (start[4] - start[3])              # the hydrogen pulled off its carbon
    with pytest.raises(gdmlx.GeometryError, match="atoms 4 and 3, bonded in the training data"):
        engine(toy_model, broken)


@pytest.mark.parametrize("engine", [Simulation, ReplicaSimulation])
@pytest.mark.parametrize("lengths, named", [
    ((0, 10, 10), "n_steps"), ((-10, 10, 10), "n_steps"), ((100, 0, 100), "save_every"),
    ((100, 10, 0), "report_every"), ((100, 2.5, 100), "save_every"),
    ((95, 10, 10), r"n_steps \(95\) must be a multiple of save_every \(10\)")])
def test_bad_run_lengths_are_refused(toy_model, start, engine, lengths, named):
    """Refused before any step: report_every=0 once looped for ever, save_every=0 divided by zero."""
    sim = engine(toy_model, start)
    n_steps, save_every, report_every = lengths
    with pytest.raises(ValueError, match=named):
        sim.run(n_steps, save_every=save_every, report_every=report_every, progress=False)
    assert sim.step == 0


def test_drift_standard_error_covers_the_true_slope():
    """A known slope plus correlated noise: the block estimate brackets the truth, and its
    size matches the spread of fitted slopes over many noise draws."""
    from gdmlx.md.simulation import drift_standard_error
    t = np.linspace(0.0, 10.0, 2000)
    rng = np.random.default_rng(1)
    slopes, errors = [], []
    for _ in range(200):
        noise = np.convolve(rng.normal(size=len(t) + 49), np.ones(50) / 50, mode="valid")   # ~0.25 ps memory
        e = 3e-4 * t + 1e-3 * noise
        slopes.append(np.polyfit(t, e, 1)[0])
        errors.append(drift_standard_error(t, e))
    slopes, errors = np.array(slopes), np.array(errors)
    assert np.mean(np.abs(slopes - 3e-4) < 3 * errors) > 0.95
    assert 0.6 < np.median(errors) / slopes.std() < 1.6


INTERRUPTED_RUN = """
import sys, numpy as np, gdmlx
from gdmlx.md import ReplicaSimulation, Simulation
model = gdmlx.load_model(sys.argv[1])
engine = Simulation(model, model.R_train_[0], seed=0) if sys.argv[3] == "single" else \\
    ReplicaSimulation(model, model.R_train_[0], 4, seed=0)
engine.run(10, save_every=1, progress=False)          # compiled before the parent starts its clock
print("running", flush=True)
engine.run(10_000_000, trajectory=sys.argv[2], save_every=1, report_every=1_000_000, progress=False)
"""


@pytest.mark.parametrize("engine, signum", [("single", "SIGINT"), ("replicas", "SIGINT"), ("single", "SIGTERM")])
def test_ctrl_c_leaves_whole_frames_under_the_final_name(toy_model, tmp_path, engine, signum):
    """A real SIGINT (or SIGTERM, as a batch system's time limit sends) at a random moment
    of a run that writes every step: the process stops promptly, and the file has its final
    name and the same number of frames in every dataset (an interrupt between two datasets'
    writes once left them unequal)."""
    import signal
    import subprocess
    import sys
    import time
    toy_model.save(tmp_path / "m.h5")
    traj = tmp_path / "t.h5"
    for delay in (0.05, 0.3):
        proc = subprocess.Popen([sys.executable, "-c", INTERRUPTED_RUN, str(tmp_path / "m.h5"), str(traj), engine],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        assert proc.stdout.readline().strip() == "running"
        time.sleep(delay)
        sent = time.perf_counter()
        proc.send_signal(getattr(signal, signum))
        _, err = proc.communicate(timeout=60)
        assert time.perf_counter() - sent < 5.0 and "frames saved so far" in err
        assert ("Terminated" if signum == "SIGTERM" else "KeyboardInterrupt") in err
        with h5py.File(traj) as f:
            n = f.attrs["n_frames"]
            assert n > 0 and not f.attrs["complete"]
            assert [len(f[k]) for k in ("positions", "velocities", "time_fs", "epot", "ekin")] == [n] * 5
        assert not (tmp_path / "t.h5.part").exists()


def test_a_trajectory_locked_by_its_writer_is_named_as_being_written(toy_model, start, tmp_path):
    """A running gdmlx md holds its HDF5 file locked; reading it then says so (it said
    'not a readable HDF5 trajectory ... Resource temporarily unavailable')."""
    import fcntl
    import os
    path = tmp_path / "t.h5"
    Simulation(toy_model, start, seed=0).run(20, trajectory=path, progress=False)
    fd = os.open(path, os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)           # as HDF5 locks a file open for writing
        for read in (read_trajectory, read_last_state):
            with pytest.raises(gdmlx.InputError, match="being written by another process"):
                read(path)
    finally:
        os.close(fd)
    assert read_last_state(path).time_fs == 20 * 0.5


@pytest.mark.parametrize("ext", [".h5", ".xyz"])
def test_a_second_writer_of_a_running_trajectory_is_refused(toy_model, tmp_path, ext):
    """Two runs writing one trajectory at once: the second is refused and the first keeps
    its file (an .xyz was emptied under the first run, which then wrote past the new end,
    filling it with NUL bytes, and failed to rename it)."""
    from gdmlx.md.trajectory import open_trajectory
    path, z = tmp_path / f"t{ext}", toy_model.z_
    first = open_trajectory(path, z, ase.data.atomic_masses[z], {})
    q = toy_geometries(2)
    first.append([5.0], q[:1], np.zeros_like(q[:1]), [1.0], [0.5])
    with pytest.raises(OSError, match="another run writing"):
        open_trajectory(path, z, ase.data.atomic_masses[z], {})
    first.append([10.0], q[1:], np.zeros_like(q[1:]), [1.0], [0.5])
    first.close(complete=True, status=0)
    state = read_last_state(path)
    assert state.time_fs == 10.0 and state.complete
    np.testing.assert_allclose(state.positions, q[1], atol=1e-8)


FULL_DISK_RUN = """
import resource, sys, gdmlx
from gdmlx.md import ReplicaSimulation, Simulation, trajectory
trajectory.BUFFER_BYTES, trajectory.CHUNK_BYTES = 4096, 4096     # many small blocks
trajectory.RESERVE_BYTES = min(trajectory.RESERVE_BYTES, 8192)
model = gdmlx.load_model(sys.argv[1])
engine = Simulation(model, model.R_train_[0], seed=0) if sys.argv[3] == "single" else \\
    ReplicaSimulation(model, model.R_train_[0], 2, seed=0)
engine.run(10, save_every=1, progress=False)                     # compiled before the limit
resource.setrlimit(resource.RLIMIT_FSIZE, (100_000, resource.getrlimit(resource.RLIMIT_FSIZE)[1]))
try:                                # as a full disk or a quota: no file grows beyond 100 kB
    engine.run(20000, trajectory=sys.argv[2], save_every=10, progress=False)
except OSError as exc:
    print(exc)
"""


@pytest.mark.parametrize("engine, ext", [("single", ".h5"), ("replicas", ".h5"), ("single", ".xyz")])
def test_a_full_disk_stops_the_run_and_keeps_the_frames_written(toy_model, tmp_path, engine, ext):
    """A trajectory that cannot grow (a full disk, a quota, a file size limit) stops the run
    with a message, and the file keeps its frames (HDF5 failed in the middle of a block:
    h5py tracebacks, a file no reader could open, and a segmentation fault)."""
    import subprocess
    import sys
    toy_model.save(tmp_path / "m.h5")
    traj = tmp_path / f"t{ext}"
    proc = subprocess.run([sys.executable, "-c", FULL_DISK_RUN, str(tmp_path / "m.h5"), str(traj), engine],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert f"frames to {traj}" in proc.stdout and "keeps the" in proc.stdout, proc.stdout
    assert "Traceback" not in proc.stderr, proc.stderr[-2000:]
    state = read_last_state(traj)
    assert not state.complete and 0 < state.time_fs < 20000 * 0.5
    if ext == ".h5":
        assert str(len(read_trajectory(traj)["time_fs"])) in proc.stdout
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith("t.")] == [traj.name]


def test_a_full_disk_at_the_last_block_still_closes_and_renames_the_file(toy_model, start, tmp_path, monkeypatch):
    import errno
    from gdmlx.md import trajectory

    def full(fd, offset, length):
        raise OSError(errno.ENOSPC, "No space left on device")
    monkeypatch.setattr(trajectory.os, "posix_fallocate", full)
    with pytest.raises(OSError, match="keeps the 0 frames"):
        Simulation(toy_model, start, seed=0).run(20, trajectory=tmp_path / "t.h5", progress=False)
    assert [p.name for p in tmp_path.iterdir()] == ["t.h5"]
    t = read_trajectory(tmp_path / "t.h5")
    assert not t["complete"] and len(t["time_fs"]) == 0


def test_xyz_trajectories_are_written_where_files_cannot_be_locked(toy_model, start, tmp_path, monkeypatch):
    import errno
    import fcntl

    def no_locks(fd, op):
        raise OSError(errno.ENOLCK, "No locks available")
    monkeypatch.setattr(fcntl, "flock", no_locks)
    Simulation(toy_model, start, seed=0).run(20, trajectory=tmp_path / "t.xyz", progress=False)
    assert read_last_state(tmp_path / "t.xyz").time_fs == 10.0


def test_a_file_cut_between_datasets_is_read_to_its_whole_frames(tmp_path):
    """Files written before n_frames existed could hold one dataset a frame longer: the
    readers take the frames every dataset has."""
    path = tmp_path / "cut.h5"
    with h5py.File(path, "w") as f:
        f.attrs["format"] = "gdmlx-trajectory"
        f["z"] = np.array([6, 8])
        f["positions"] = np.arange(3 * 2 * 3, dtype=float).reshape(3, 2, 3)
        f["velocities"] = np.ones((2, 2, 3))
        for k in ("time_fs", "epot", "ekin"):
            f[k] = np.array([1.0, 2.0])
    assert read_trajectory(path)["positions"].shape == (2, 2, 3)
    state = read_last_state(path)
    assert state.time_fs == 2.0 and np.array_equal(state.positions, np.arange(6, 12.0).reshape(2, 3))


def test_long_runs_go_in_bounded_chunks(toy_model, start, monkeypatch):
    """Each compiled call runs at most MAX_CHUNK_STEPS steps, whatever report_every is: a
    Ctrl-C waits for one chunk only, and the noise and frame arrays stay small."""
    from gdmlx.md.simulation import MAX_CHUNK_STEPS
    sim = Simulation(toy_model, start, seed=0, thermostat="langevin")
    sizes, original = [], sim._chunk
    monkeypatch.setattr(sim, "_chunk", lambda n, *a: sizes.append(n) or original(n, *a))
    summary = sim.run(5000, save_every=10, report_every=5000, progress=False)
    assert max(sizes) == MAX_CHUNK_STEPS and sum(sizes) == 5000 and summary["steps"] == 5000


def test_frames_further_apart_than_a_chunk_still_run_in_bounded_chunks(toy_model, start, monkeypatch, tmp_path):
    """save_every above MAX_CHUNK_STEPS: the compiled calls stay at most MAX_CHUNK_STEPS long
    (they ran a whole save interval, holding Ctrl-C and allocating its Langevin noise), and
    the frames are those of one long call."""
    from gdmlx.md import simulation
    monkeypatch.setattr(simulation, "MAX_CHUNK_STEPS", 40)
    runs = {}
    for chunked in (True, False):
        sim = Simulation(toy_model, start, seed=0, thermostat="langevin")
        sizes, original = [], sim._chunk
        monkeypatch.setattr(sim, "_chunk", lambda n, *a: sizes.append(n) or original(n, *a))
        if not chunked:
            monkeypatch.setattr(simulation, "MAX_CHUNK_STEPS", 1000)
        summary = sim.run(300, save_every=100, report_every=300, progress=False,
                          trajectory=tmp_path / f"{chunked}.h5")
        runs[chunked] = (sizes, summary, sim.q.copy())
    sizes, summary, q = runs[True]
    assert max(sizes) == 40 and sum(sizes) == 300 and summary["steps"] == 300
    assert runs[False][0] == [0, 300]
    np.testing.assert_array_equal(q, runs[False][2])
    for key in ("mean_temperature_K", "etot_std_eV"):
        assert summary[key] == runs[False][1][key]
    chunked, whole = (read_trajectory(tmp_path / f"{c}.h5") for c in (True, False))
    np.testing.assert_array_equal(chunked["time_fs"], [50.0, 100.0, 150.0])
    np.testing.assert_array_equal(chunked["positions"], whole["positions"])


def _change_dataset(name, transform):
    def change(f):
        data = transform(f[name][()])
        del f[name]
        f[name] = data
    return change


@pytest.mark.parametrize("change, message", [
    (_change_dataset("time_fs", lambda t: t.astype(bytes)), r"'/time_fs' has type \|S"),   # read as numbers
    (_change_dataset("epot", lambda e: e.astype(complex)), "'/epot' has type complex128, expected real numbers"),
    (_change_dataset("ekin", lambda e: e[:, None]), r"'ekin' has shape \(\d+, 1\), expected \(frames\)"),
    (_change_dataset("time_fs", lambda t: t[0]), r"'time_fs' has shape \(\), expected \(frames\)"),
    (_change_dataset("z", lambda z: z + 200), "outside 1..118"),
    (lambda f: (f.__delitem__("masses"), f.create_dataset("masses", shape=(10**11,), dtype="f4")),   # 400 GB
     "'/masses' declares 400000000000 bytes but stores 0"),
])
def test_corrupted_trajectories_are_named(toy_model, start, tmp_path, change, message):
    """Entries the trajectory readers did not check: text or complex frame data, energies of
    another shape, a scalar time, atomic numbers out of range, masses declaring 400 GB."""
    path = tmp_path / "t.h5"
    Simulation(toy_model, start, temperature_K=300, seed=2).run(40, trajectory=path, save_every=10,
                                                                progress=False)
    with h5py.File(path, "a") as f:
        change(f)
    for read in (read_trajectory, read_last_state):
        with pytest.raises(gdmlx.InputError, match=message):
            read(path)
