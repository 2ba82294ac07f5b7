"""MD engine and trajectory checks from a QA session (Simulation, trajectories, gdmlx md)."""

import ase.data
import ase.io
import numpy as np
import pytest

import gdmlx
from conftest import toy_geometries
from gdmlx.md import MDInstabilityError, Simulation, read_last_state, read_trajectory


@pytest.fixture(scope="module")
def start():
    return toy_geometries(1, noise=0.0)[0]


def _stop_step(toy_model, start):
    sim = Simulation(toy_model, start, temperature_K=3000, seed=0, max_bond_stretch=1.2)
    with pytest.raises(MDInstabilityError):
        sim.run(5000, save_every=1, progress=False)
    return sim.step


@pytest.mark.parametrize("ext", [".h5", ".xyz"])
def test_a_run_that_stops_on_its_last_step_is_marked_incomplete(toy_model, start, tmp_path, ext):
    """A stop on the run's very last step left the file marked complete (status lost in .xyz)."""
    k = _stop_step(toy_model, start)
    path = tmp_path / f"t{ext}"
    sim = Simulation(toy_model, start, temperature_K=3000, seed=0, max_bond_stretch=1.2)
    with pytest.raises(MDInstabilityError, match="bond stretched"):
        sim.run(k, trajectory=path, save_every=1, progress=False)
    assert sim.step == k
    state = read_last_state(path)
    assert not state.complete and state.status == 2
    if ext == ".h5":
        assert read_trajectory(path)["status"] == 2


@pytest.fixture
def model_file(toy_model, tmp_path):
    path = tmp_path / "m.h5"
    toy_model.save(path)
    return path


def test_a_killed_runs_xyz_part_file_continues(toy_model, start, tmp_path, model_file, capsys):
    """A run killed outright (SIGKILL, out of memory) leaves t.xyz.part, its last frame cut;
    --restart and read_last_state took it for HDF5 ('not a readable HDF5 trajectory')."""
    from gdmlx.cli.main import main
    from gdmlx.md.trajectory import trajectory_summary
    sim = Simulation(toy_model, start, temperature_K=300, seed=2)
    sim.run(30, trajectory=tmp_path / "t.xyz", save_every=10, progress=False)
    text = (tmp_path / "t.xyz").read_bytes()
    part = tmp_path / "k.xyz.part"
    part.write_bytes(text[:-40])                      # killed while writing the third frame
    state = read_last_state(part)
    assert state.time_fs == 10.0 and not state.complete
    part.write_bytes(text)                            # killed after a whole frame: still unfinished
    state = read_last_state(part)
    assert state.time_fs == 15.0 and not state.complete
    np.testing.assert_allclose(state.positions, sim.q, atol=1e-7)
    summary = trajectory_summary(part)
    assert summary["n_frames"] == 3 and summary["time_fs"] == (5.0, 15.0) and not summary["complete"]
    assert main(["md", str(model_file), "--restart", str(part), "--steps", "10", "--json",
                 "-o", str(tmp_path / "k2.xyz")]) == 0
    assert "did not finish" in capsys.readouterr().err
    assert ase.io.read(tmp_path / "k2.xyz", ":")[-1].info["time_fs"] == 20.0
    # gdmlx info and --xyz read it too (file_kind and ASE looked at the .part suffix only)
    assert main(["info", str(part)]) == 0
    assert "3 frames" in capsys.readouterr().out
    assert main(["md", str(model_file), "--xyz", str(part), "--steps", "10", "-o", str(tmp_path / "k3.h5")]) == 0


@pytest.mark.parametrize("ext", [".h5", ".xyz"])
def test_restart_from_a_part_file_does_not_overwrite_it(toy_model, start, tmp_path, model_file, ext):
    """'gdmlx md M --restart t.h5.part -o t.h5' (the natural command after a killed run) wrote
    its frames into t.h5.part, its own input: the killed run's frames were lost."""
    from gdmlx.cli.main import main
    Simulation(toy_model, start, temperature_K=300, seed=2).run(30, trajectory=tmp_path / f"t{ext}",
                                                               save_every=10, progress=False)
    part = tmp_path / f"t{ext}.part"
    (tmp_path / f"t{ext}").rename(part)                 # what a killed run leaves
    before = part.read_bytes()
    for option in ("--restart", "--xyz"):
        assert main(["md", str(model_file), option, str(part), "--steps", "10", "-o", str(tmp_path / f"t{ext}")]) == 2
    assert part.read_bytes() == before and not (tmp_path / f"t{ext}").exists()
    assert main(["md", str(model_file), "--restart", str(part), "--steps", "10",
                 "-o", str(tmp_path / f"t2{ext}")]) == 0


def test_a_periodic_atoms_is_refused_as_the_calculator_and_md_xyz_refuse_it(toy_model, start):
    """Simulation and ReplicaSimulation ran an Atoms with pbc=True as if it had none, where
    GDMLCalculator and gdmlx md --xyz refuse periodic boundary conditions."""
    from ase import Atoms
    from gdmlx.md import ReplicaSimulation
    boxed = Atoms(numbers=toy_model.z_, positions=start, cell=[20, 20, 20], pbc=[True, False, False])
    with pytest.raises(gdmlx.InputError, match="without periodic images"):
        Simulation(toy_model, boxed, seed=0)
    with pytest.raises(gdmlx.InputError, match="without periodic images"):
        ReplicaSimulation(toy_model, boxed, 2, seed=0)
    boxed.pbc = False                                  # a cell alone is no periodicity
    assert Simulation(toy_model, boxed, seed=0).run(10, save_every=10, progress=False)["steps"] == 10


def test_an_unfitted_model_is_named_as_such(start):
    """Simulation of an unfitted model raised AttributeError ('no attribute z_')."""
    from sklearn.exceptions import NotFittedError
    from gdmlx.md import ReplicaSimulation
    for model in (gdmlx.GDMLRegressor(), gdmlx.MultiscaleModel()):
        with pytest.raises(NotFittedError, match="not fitted"):
            Simulation(model, start)
        with pytest.raises(NotFittedError, match="not fitted"):
            ReplicaSimulation(model, start, 2)


def test_start_from_a_trajectory_keeps_its_masses(toy_model, start, tmp_path, model_file):
    """--xyz run.h5 dropped the run's masses (isotopes): the next run had the elements' own."""
    from gdmlx.cli.main import main
    masses = ase.data.atomic_masses[toy_model.z_].copy()
    masses[-1] *= 2.0
    Simulation(toy_model, start, masses=masses, seed=2).run(10, trajectory=tmp_path / "d.h5", save_every=10,
                                                          progress=False)
    assert main(["md", str(model_file), "--xyz", str(tmp_path / "d.h5"), "--steps", "10",
                 "-o", str(tmp_path / "d2.h5")]) == 0
    np.testing.assert_array_equal(read_trajectory(tmp_path / "d2.h5")["masses"], masses)


def test_info_of_a_run_without_frames_does_not_offer_a_restart(toy_model, start, tmp_path, capsys):
    from gdmlx.cli.main import main
    sim = Simulation(toy_model, start, temperature_K=3000, seed=0, max_bond_stretch=1.2)
    with pytest.raises(MDInstabilityError):
        sim.run(5000, trajectory=tmp_path / "s.h5", save_every=5000, progress=False)
    assert main(["info", str(tmp_path / "s.h5")]) == 0
    out = capsys.readouterr().out
    assert "0 frames" in out and "holds no frame to go on from" in out and "--restart" not in out


def test_an_hdf5_file_that_cannot_be_created_is_not_blamed_on_another_run(toy_model, start, tmp_path,
                                                                          monkeypatch):
    """Any failure to create t.h5.part (no permission, a directory in the way) said 'is another
    run writing t.h5?'; only HDF5's lock of a file being written means that."""
    (tmp_path / "t.h5.part").mkdir()
    with pytest.raises(OSError, match="cannot create") as err:
        Simulation(toy_model, start, seed=0).run(10, trajectory=tmp_path / "t.h5", save_every=10, progress=False)
    assert "another run" not in str(err.value)
    import gdmlx.md.trajectory as trajectory

    def locked(*args, **kwargs):                # what h5py raises for a file another process writes
        raise BlockingIOError(11, "Unable to synchronously create file (unable to lock file, errno = 11, "
                                  "error message = 'Resource temporarily unavailable')")

    monkeypatch.setattr(trajectory.h5py, "File", locked)
    with pytest.raises(OSError, match="is another run writing"):
        Simulation(toy_model, start, seed=0).run(10, trajectory=tmp_path / "u.h5", save_every=10, progress=False)


def test_an_xyz_trajectory_records_its_force_model_and_settings(toy_model, toy_data, start, tmp_path, model_file,
                                                                capsys):
    """An .xyz trajectory recorded no force model, so --restart with another model went on
    without the note HDF5 gives, and gdmlx info said 'force model not recorded'; each frame
    now records the run's settings as an HDF5 trajectory's attributes do."""
    from gdmlx.cli.main import main
    from gdmlx.expansion import force_model_fingerprint
    from gdmlx.md.trajectory import trajectory_summary
    path = tmp_path / "t.xyz"
    sim = Simulation(toy_model, start, temperature_K=300, thermostat="langevin", seed=2, dt_fs=0.25)
    sim.run(30, trajectory=path, save_every=10, progress=False)
    frames = ase.io.read(path, ":")
    assert len(frames) == 3 and frames[0].info["dt_fs"] == frames[2].info["dt_fs"] == 0.25
    fingerprint = force_model_fingerprint(toy_model)
    assert read_last_state(path).force_model == fingerprint
    summary = trajectory_summary(path)
    assert (summary["force_model"], summary["dt_fs"], summary["temperature_K"], summary["slow_every"]) == (
        fingerprint, 0.25, 300.0, 1) and summary["gamma_per_fs"] > 0
    R, F, E, z = toy_data
    gdmlx.GDMLRegressor(sigma=2.0, lam=1e-8).fit(R[30:50], F[30:50], E[30:50], z=z).save(tmp_path / "other.h5")
    capsys.readouterr()
    assert main(["md", str(tmp_path / "other.h5"), "--restart", str(path), "--steps", "10", "--json"]) == 0
    assert "was run with another force model" in capsys.readouterr().err
    assert main(["md", str(model_file), "--restart", str(path), "--steps", "10", "--json"]) == 0
    assert "another force model" not in capsys.readouterr().err


def test_empty_file_names_are_refused(model_file, capsys):
    """--restart "" (a script's unset variable) started a fresh run from the training data, -o ""
    wrote no trajectory, --xyz "" and --action "" were ignored: all without a word."""
    from gdmlx.cli.main import main
    for option in ("--restart", "-o", "--xyz", "--action"):
        assert main(["md", str(model_file), "--steps", "10", option, ""]) == 2
        assert f"{option} was given an empty file name" in capsys.readouterr().err
