"""The gdmlx command, end to end on small data."""

import json
import warnings
import re

import ase
import ase.data
import ase.io
import ase.units
import h5py
import numpy as np
import pytest

import gdmlx
from conftest import toy_geometries
from gdmlx.cli.common import parse_sigmas
from gdmlx.cli.main import main
from gdmlx.md.trajectory import open_trajectory


def run_json(capsys, *argv):
    assert main(list(argv)) == 0
    return json.loads(capsys.readouterr().out)


def test_train_test_info_md(toy_npz, tmp_path, capsys):
    model = tmp_path / "m.h5"
    out = run_json(capsys, "train", str(toy_npz), "--n-train", "25", "--n-valid", "10",
                   "--sigma", "0.5,2", "--lam", "1e-8", "-o", str(model), "--json")
    assert out["sigma"] == 2.0 and len(out["grid"]) == 2
    loaded = gdmlx.load_model(model)
    assert len(loaded.indices_["train"]) == 25 and len(loaded.indices_["valid"]) == 10

    test = run_json(capsys, "test", str(model), str(toy_npz), "--json")
    assert test["n"] == 60 - 35                     # training and validation geometries left out
    assert test["f_mae"] < 0.2 * np.abs(gdmlx.load_dataset(toy_npz).F).mean()

    info = run_json(capsys, "info", str(model), "--json")
    assert info["n_atoms"] == 5 and info["parts"][0]["n_train"] == 25

    traj = tmp_path / "t.h5"
    md = run_json(capsys, "md", str(model), "--steps", "200", "--temperature", "100",
                  "--seed", "1", "-o", str(traj), "--json")
    assert md["steps"] == 200 and len(gdmlx.md.read_trajectory(traj)["time_fs"]) == 20

    reps = run_json(capsys, "md", str(model), "--steps", "100", "--temperature", "100", "--seed", "1",
                    "--replicas", "4", "-o", str(tmp_path / "r.h5"), "--json")
    assert reps["n_replicas"] == 4 and len(reps["replicas"]) == 4
    assert gdmlx.md.read_trajectory(tmp_path / "r.h5")["positions"].shape == (10, 4, 5, 3)


def test_gpu_backend_without_a_gpu_is_a_message(toy_npz, tmp_path, capsys, monkeypatch):
    import gdmlx.backend
    monkeypatch.setattr(gdmlx.backend, "_cupy", lambda: None)
    model = tmp_path / "m.h5"
    assert main(["train", str(toy_npz), "--n-train", "20", "--sigma", "2", "-o", str(model), "--json"]) == 0
    capsys.readouterr()
    assert main(["md", str(model), "--steps", "20", "--replicas", "2", "--backend", "gpu"]) == 2
    assert "needs CuPy and a CUDA device" in capsys.readouterr().err


def test_errors_are_messages_not_tracebacks(toy_npz, tmp_path, capsys):
    junk = tmp_path / "junk.h5"
    junk.write_bytes(b"junk")
    assert main(["info", str(junk)]) == 2
    assert "not a readable HDF5 model file" in capsys.readouterr().err
    assert main(["train", str(toy_npz), "--n-train", "100", "-o", str(tmp_path / "x.h5")]) == 2
    assert "n_train (--n-train) must be between" in capsys.readouterr().err
    assert main(["train", str(toy_npz), "--n-train", "5", "--sigma", "a:b", "-o", "x.h5"]) == 2
    assert "range 'start:step:stop'" in capsys.readouterr().err


@pytest.mark.parametrize("argv, option", [
    (["md", "m.h5", "--steps", "0"], "--steps"), (["md", "m.h5", "--steps", "10", "--dt", "-1"], "--dt"),
    (["md", "m.h5", "--steps", "10", "--save-every", "0"], "--save-every"),
    (["md", "m.h5", "--steps", "10", "--mts", "0"], "--mts"),
    (["md", "m.h5", "--steps", "10", "--temperature", "nan"], "--temperature"),
    (["md", "m.h5", "--steps", "10", "--replicas", "0"], "--replicas"),
    (["train", "d.npz", "--n-train", "2.5", "-o", "m.h5"], "--n-train"),
    (["train", "d.npz", "--n-train", "5", "--cg-tol", "0", "-o", "m.h5"], "--cg-tol"),
    (["reduce", "m.h5", "d.npz", "--tol", "-1"], "--tol"), (["split", "m.h5", "--n-fast", "0"], "--n-fast"),
    (["train", "d.npz", "--n-train", "5", "--seed", "-1", "-o", "m.h5"], "--seed")])
def test_bad_numbers_on_the_command_line_name_the_option(argv, option, capsys):
    """Refused by the parser (exit status 2) before any file is read."""
    with pytest.raises(SystemExit) as stop:
        main(argv)
    assert stop.value.code == 2
    assert f"argument {option}: expected" in capsys.readouterr().err


def test_periodic_datasets_are_refused(toy_data, tmp_path, capsys):
    R, F, E, z = toy_data
    path = tmp_path / "periodic.npz"
    gdmlx.Dataset(R=R, z=z, F=F, E=E, lattice=10.0 * np.eye(3)).save_npz(path)
    assert main(["train", str(path), "--n-train", "20", "-o", str(tmp_path / "m.h5")]) == 2
    assert "has a lattice" in capsys.readouterr().err


def test_an_output_that_is_an_input_is_refused(toy_npz, tmp_path, capsys):
    model = tmp_path / "m.h5"
    run_json(capsys, "train", str(toy_npz), "--n-train", "20", "--sigma", "2", "-o", str(model), "--json")
    before = model.read_bytes()
    assert main(["md", str(model), "--steps", "20", "-o", str(model)]) == 2
    assert "is also the command's input model" in capsys.readouterr().err
    assert model.read_bytes() == before
    assert main(["reduce", str(model), str(toy_npz), "-o", str(toy_npz)]) == 2
    assert "input data" in capsys.readouterr().err


def test_data_with_atoms_in_another_order_are_warned_about(toy_data, toy_npz, tmp_path, capsys):
    R, F, E, z = toy_data
    model = tmp_path / "m.h5"
    run_json(capsys, "train", str(toy_npz), "--n-train", "20", "--sigma", "2", "-o", str(model), "--json")
    swapped = tmp_path / "swapped.npz"
    order = [3, 1, 2, 0, 4]                        # two carbons: same atomic numbers
    gdmlx.Dataset(R=R[:, order], z=z[order], F=F[:, order], E=E).save_npz(swapped)
    with pytest.warns(UserWarning, match=r"60 of 60 geometries checked lie outside .* the model's order"):
        run_json(capsys, "test", str(model), str(swapped), "--json")
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)    # gdmlx's warnings, not a library's deprecations
        run_json(capsys, "test", str(model), str(toy_npz), "--json")


def test_validation_leaves_out_copies_of_training_geometries(toy_data, tmp_path, capsys):
    R, F, E, z = toy_data
    twice = tmp_path / "twice.npz"
    gdmlx.Dataset(R=np.concatenate([R, R]), z=z, F=np.concatenate([F, F]), E=np.concatenate([E, E])).save_npz(twice)
    with pytest.warns(UserWarning, match=r"of the 30 validation geometries are copies of training geometries"):
        out = run_json(capsys, "train", str(twice), "--n-train", "40", "--n-valid", "30", "--sigma", "2",
                       "-o", str(tmp_path / "m.h5"), "--json")
    from gdmlx.splits import found_in
    model = gdmlx.load_model(tmp_path / "m.h5")
    valid = model.indices_["valid"]
    assert 0 < out["n_valid"] == out["validation"]["n"] == len(valid) < 30
    assert not found_in(np.concatenate([R, R])[valid], model.R_train_).any()


def test_energy_errors_of_a_force_only_model_are_relative(toy_data, tmp_path, capsys):
    R, F, E, z = toy_data
    forces_only, full = tmp_path / "f.npz", tmp_path / "full.npz"
    gdmlx.Dataset(R=R, z=z, F=F).save_npz(forces_only)
    gdmlx.Dataset(R=R, z=z, F=F, E=E + 1000.0).save_npz(full)
    run_json(capsys, "train", str(forces_only), "--n-train", "30", "--sigma", "2", "-o", str(tmp_path / "m.h5"), "--json")
    err = run_json(capsys, "test", str(tmp_path / "m.h5"), str(full), "--json")
    from gdmlx.splits import test_indices
    model = gdmlx.load_model(tmp_path / "m.h5")
    idx = test_indices(model, gdmlx.load_dataset(full))
    dE = model.predict_energy(R[idx]) - (E[idx] + 1000.0)
    assert err["energy_offset_removed"] and err["e_mae"] == pytest.approx(np.abs(dE - dE.mean()).mean())
    assert main(["test", str(tmp_path / "m.h5"), str(full)]) == 0
    assert "relative: the model was fitted without energies" in capsys.readouterr().err


def test_data_of_another_molecule_is_refused_and_other_units_converted(toy_npz, tmp_path, capsys):
    """Same atom count, other elements: a silently wrong test error before. Data in other
    known units are converted to the model's (the same errors); unknown units are refused."""
    model = tmp_path / "m.h5"
    assert main(["train", str(toy_npz), "--n-train", "20", "--sigma", "2", "-o", str(model), "--json"]) == 0
    ds = gdmlx.load_dataset(toy_npz)
    other = tmp_path / "other.npz"
    gdmlx.Dataset(R=ds.R, z=ds.z[::-1].copy(), F=ds.F, E=ds.E).save_npz(other)
    ev, unknown = tmp_path / "ev.npz", tmp_path / "u.npz"
    ds.in_units("eV", "bohr").save_npz(ev)
    gdmlx.Dataset(R=ds.R, z=ds.z, F=ds.F, E=ds.E, energy_unit="u").save_npz(unknown)
    capsys.readouterr()
    for argv in (["test", str(model), str(other)], ["reduce", str(model), str(other), "-o", "r.h5"],
                 ["split", str(model), "--test-data", str(other), "-o", str(tmp_path / "s.h5")]):
        assert main(argv) == 2
        assert "do not match the model" in capsys.readouterr().err
    converted = run_json(capsys, "test", str(model), str(ev), "--json")
    fitted = gdmlx.load_model(model)
    # the same geometries in other units: the recorded split holds (its validation geometries
    # chose sigma and were tested on when only the fingerprint counted)
    held_out = np.setdiff1d(np.arange(len(ds)), np.r_[fitted.indices_["train"], fitted.indices_["valid"]])
    dF = fitted.predict(ds.R[held_out]) - ds.F[held_out]
    assert converted["n"] == len(held_out) and converted["f_mae"] == pytest.approx(np.abs(dF).mean(), rel=1e-9)
    assert main(["test", str(model), str(ev)]) == 0
    assert "ev.npz was read in eV and bohr: converted to the model's kcal/mol and Ang" in capsys.readouterr().err
    assert main(["test", str(model), str(unknown)]) == 2
    assert "unknown energy unit 'u'" in capsys.readouterr().err
    xyz = tmp_path / "start.xyz"
    ase.io.write(xyz, ase.Atoms(numbers=ds.z[::-1], positions=ds.R[0]))
    assert main(["md", str(model), "--steps", "20", "--xyz", str(xyz)]) == 2
    assert "do not match the model" in capsys.readouterr().err
    assert main(["validate", str(model), str(other)]) == 2
    assert "is a dataset (geometries with forces), not a gdmlx trajectory" in capsys.readouterr().err
    assert main(["test", str(model), str(model)]) == 2                    # a model as the dataset
    assert "is a gdmlx model (a force field), not a dataset" in capsys.readouterr().err


def test_md_ended_by_sigterm_keeps_its_file_and_prints_its_summary(toy_model, tmp_path):
    """A batch system's time limit sends SIGTERM: gdmlx md stops as at Ctrl-C, with its file
    renamed and marked incomplete, the --json summary up to there, and exit code 143."""
    import signal
    import subprocess
    import sys
    import time
    toy_model.save(tmp_path / "m.h5")
    traj = tmp_path / "t.h5"
    proc = subprocess.Popen([sys.executable, "-c", "import sys; from gdmlx.cli.main import main; sys.exit(main())",
                             "md", str(tmp_path / "m.h5"), "--steps", "100000000", "--save-every", "1",
                             "--temperature", "100", "-o", str(traj), "--json"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    part = tmp_path / "t.h5.part"
    deadline = time.time() + 60
    while not (part.exists() and part.stat().st_size > 100_000) and time.time() < deadline:
        time.sleep(0.1)                  # running and writing frames
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 143 and "terminated (SIGTERM)" in err, err
    summary = json.loads(out)
    assert summary["stopped"] == "terminated (SIGTERM)" and summary["steps"] > 0
    with h5py.File(traj) as f:
        assert not f.attrs["complete"] and f.attrs["n_frames"] == summary["steps"]
    assert not part.exists()


def test_md_starts_from_a_trajectory_and_names_unreadable_starts(toy_npz, tmp_path, capsys):
    model, traj = tmp_path / "m.h5", tmp_path / "t.h5"
    assert main(["train", str(toy_npz), "--n-train", "20", "--sigma", "2", "-o", str(model), "--json"]) == 0
    capsys.readouterr()
    run_json(capsys, "md", str(model), "--steps", "50", "--temperature", "100", "-o", str(traj), "--json")
    again = run_json(capsys, "md", str(model), "--steps", "50", "--xyz", str(traj), "--json")
    assert again["steps"] == 50
    assert main(["md", str(model), "--steps", "10", "--xyz", str(toy_npz)]) == 2
    assert "is a dataset (geometries with forces), not a start geometry" in capsys.readouterr().err
    empty = tmp_path / "empty.h5"                    # what a run that stopped before its first frame keeps
    z = gdmlx.load_model(model).z_
    open_trajectory(empty, z, ase.data.atomic_masses[z], {}).close(complete=False, status=2)
    for argv in (["md", str(model), "--steps", "10", "--xyz", str(empty)],
                 ["md", str(model), "--steps", "10", "--restart", str(empty)],
                 ["action", "train", str(empty), "--model", str(model), "--stride", "1", "-o", "a.h5"]):
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert "no frames" in err or "holds 0 frame(s)" in err, err


def test_md_restart_continues_positions_velocities_time_and_replicas(toy_npz, tmp_path, capsys):
    model = tmp_path / "m.h5"
    assert main(["train", str(toy_npz), "--n-train", "20", "--sigma", "2", "-o", str(model), "--json"]) == 0
    capsys.readouterr()
    for name, replicas in (("one", []), ("reps", ["--replicas", "3"])):
        first, second = tmp_path / f"{name}1.h5", tmp_path / f"{name}2.h5"
        run_json(capsys, "md", str(model), "--steps", "50", "--temperature", "100", "--seed", "2",
                 "-o", str(first), "--json", *replicas)
        out = run_json(capsys, "md", str(model), "--steps", "50", "--restart", str(first), "-o", str(second),
                       "--json")
        a, b = gdmlx.md.read_trajectory(first), gdmlx.md.read_trajectory(second)
        assert b["positions"].shape[1:] == a["positions"].shape[1:] and out["steps"] == 50
        np.testing.assert_allclose(b["time_fs"], a["time_fs"] + 25.0)
        assert a["temperature_K"] == 100 and np.isnan(b["temperature_K"])    # NVE on from given velocities
    for argv, message in (
            (["--restart", str(first), "--replicas", "2"], "holds 3 replicas; leave --replicas out"),
            (["--replicas", "2", "--action", str(first)], "cannot be combined with --mts, --replicas"),
            (["--restart", str(first), "-o", str(first)], "is also the command's input restart"),
            (["--restart", str(first), "--xyz", str(first)], "give one of them"),
            (["--restart", str(first), "--reorder"], "--reorder applies to a start geometry given with --xyz"),
            (["--restart", str(first), "--temperature", "500"], "NVE from --restart goes on with"),
            (["--restart", str(model)], "not a gdmlx trajectory")):
        assert main(["md", str(model), "--steps", "10", *argv]) == 2
        assert message in capsys.readouterr().err
    other = tmp_path / "other.h5"
    run_json(capsys, "train", str(toy_npz), "--n-train", "25", "--sigma", "2", "-o", str(other), "--json")
    assert main(["md", str(other), "--steps", "10", "--restart", str(tmp_path / "one1.h5"), "-o",
                 str(tmp_path / "o.h5")]) == 0
    assert "was run with another force model than" in capsys.readouterr().err
    assert main(["md", str(model), "--steps", "10", "--backend", "auto"]) == 0
    assert "replicas" not in capsys.readouterr().err           # one molecule: the CPU engine, GPU or not


def test_missing_files_and_directories_are_named(toy_npz, tmp_path, capsys):
    model = tmp_path / "m.h5"
    assert main(["train", str(toy_npz), "--n-train", "20", "--sigma", "2", "-o", str(model), "--json"]) == 0
    capsys.readouterr()
    for argv, message in (
            (["train", str(tmp_path / "no.npz"), "--n-train", "5", "-o", "x.h5"], "no such file: .*no.npz"),
            (["md", str(tmp_path / "no.h5"), "--steps", "10"], "no such file: .*no.h5"),
            (["test", str(tmp_path / "no.npz"), str(toy_npz)], "no such file: .*no.npz"),
            (["md", str(model), "--steps", "10", "-o", str(tmp_path / "no" / "t.h5")],
             "cannot write .*t.h5: there is no directory"),
            (["train", str(toy_npz), "--n-train", "20", "-o", str(tmp_path / "no" / "m.h5")],
             "cannot write .*m.h5: there is no directory")):
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert re.search(message, err)
        assert "gdmlx: " not in err                  # refused before any training stage began
    summary = run_json(capsys, "md", str(model), "--steps", "10", "--json")     # one frame
    assert summary["mean_temperature_K"] > 0
    assert summary["std_temperature_K"] is None and summary["etot_drift_se_eV_per_ps"] is None  # every key


def test_md_with_fewer_steps_than_one_frame_is_a_message(toy_npz, tmp_path, capsys):
    model = tmp_path / "m.h5"
    assert main(["train", str(toy_npz), "--n-train", "20", "--sigma", "2", "-o", str(model), "--json"]) == 0
    capsys.readouterr()
    assert main(["md", str(model), "--steps", "5"]) == 2
    assert "--steps (5) must be at least --save-every (10)" in capsys.readouterr().err


def test_sigma_specs():
    assert parse_sigmas("10") == [10.0]
    assert parse_sigmas("5:5:20") == [5.0, 10.0, 15.0, 20.0]
    assert parse_sigmas("2.5,7") == [2.5, 7.0]
    for bad in ("50:10:10", "10:0:30", "10:-5:0"):           # empty, endless or reversed ranges
        with pytest.raises(ValueError, match="step > 0"):
            parse_sigmas(bad)


@pytest.mark.parametrize("argv, message", [
    (["train", "d.npz", "--n-train", "5", "-o", "m.npz"], "models are written as .h5 or .hdf5"),
    (["sample", "--xyz", "a.xyz", "--calculator", "emt", "--n", "2", "-o", "d.h5"], "datasets .* .npz"),
    (["md", "m.h5", "--steps", "10", "--friction", "0.1"], "--friction applies to --thermostat langevin")])
def test_output_names_and_option_combinations_are_checked_first(argv, message, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 2
    assert re.search(message, capsys.readouterr().err)


def test_sample_with_emt_writes_an_sgdml_dataset(tmp_path, capsys):
    import ase.build
    import ase.io
    ase.io.write(tmp_path / "methanol.xyz", ase.build.molecule("CH3OH"))
    out = tmp_path / "d.npz"
    summary = run_json(capsys, "sample", "--xyz", str(tmp_path / "methanol.xyz"), "--calculator", "emt",
                       "--n", "5", "--every", "2", "--equilibrate", "0.005", "-o", str(out), "--json")
    ds = gdmlx.load_dataset(out)
    assert summary["frames"] == 5 and ds.R.shape == (5, 6, 3)
    assert np.load(out)["md5"] == ds.md5()
    # the recorded forces are the calculator's, in kcal/mol/A
    from ase import Atoms
    from ase.calculators.emt import EMT
    atoms = Atoms(numbers=ds.z, positions=ds.R[2], calculator=EMT())
    np.testing.assert_allclose(ds.F[2], atoms.get_forces() * 23.060548012069496, rtol=1e-6)
    for option in (["--method", "GFN1-xTB"], ["--threads", "2"]):        # tblite's, ignored by EMT
        assert main(["sample", "--xyz", str(tmp_path / "methanol.xyz"), "--calculator", "emt", "--n", "2",
                     "-o", str(tmp_path / "e.npz"), *option]) == 2
        assert f"{option[0]} set up tblite; --calculator emt takes neither" in capsys.readouterr().err


def test_sample_shows_its_equilibration_and_the_time_left(tmp_path, capsys):
    """The equilibration (1 ps by default: minutes with xTB for a larger molecule) has
    progress lines, and the frames' lines say how long the rest will take."""
    import ase.build
    import ase.io
    ase.io.write(tmp_path / "methanol.xyz", ase.build.molecule("CH3OH"))
    assert main(["sample", "--xyz", str(tmp_path / "methanol.xyz"), "--calculator", "emt", "--n", "20",
                 "--every", "2", "--equilibrate", "0.1", "-o", str(tmp_path / "d.npz")]) == 0
    lines = capsys.readouterr().err.splitlines()
    assert lines[0].startswith("sample: equilibrating, 100/200 steps") and " ETA " in lines[0]
    assert lines[1].startswith("sample: equilibrating, 200/200 steps")
    assert lines[2].startswith("sample: 10/20 frames") and " ETA " in lines[2]


def test_sample_stops_when_the_molecule_breaks_apart(tmp_path, capsys):
    """At a temperature that tears the molecule apart, frames of its pieces are no use for a
    model of the molecule: sample stops, says which atom left and when, and keeps only the
    frames before it (exit status 1), or writes nothing when it broke before the first."""
    import ase.build
    import ase.io
    from gdmlx.bonds import fragments
    ase.io.write(tmp_path / "methanol.xyz", ase.build.molecule("CH3OH"))
    argv = ["sample", "--xyz", str(tmp_path / "methanol.xyz"), "--calculator", "emt", "--n", "50",
            "--every", "2", "--temperature", "20000", "-o", str(tmp_path / "d.npz")]
    assert main(argv + ["--equilibrate", "0.2"]) == 2
    assert re.search(r"broke apart after [0-9.]+ ps at 20000 K: a piece with atom [A-Z]\d left it \(nearest "
                     r"atom [A-Z]\d, [0-9.]+ A away\), during the equilibration: no frames recorded; lower "
                     r"--temperature", capsys.readouterr().err)
    assert not (tmp_path / "d.npz").exists()
    assert main(argv + ["--equilibrate", "0"]) == 1
    m = re.search(r"broke apart .* writing the (\d+) frames before it", capsys.readouterr().err)
    ds = gdmlx.load_dataset(tmp_path / "d.npz")
    assert m and 0 < len(ds) == int(m.group(1)) < 50
    assert all(fragments(ds.z, R).max() == 0 for R in ds.R)     # every kept frame is one molecule


def test_fragments_keep_a_proton_in_transfer_and_lose_a_leaving_atom():
    """A proton halfway between two oxygens (1.23 A from each, as in malonaldehyde's
    transfer) keeps the molecule whole; the same proton 3 A from both has left it; an atom
    on top of another has collided."""
    from gdmlx.bonds import fragments, topology_change
    z = np.array([6, 8, 1, 8, 6, 6])                      # C-O...H...O-C, the carbons joined by a third
    R = np.array([[-1.8, -1.0, 0], [-1.2, 0.0, 0], [0.0, 0.25, 0], [1.2, 0.0, 0], [1.8, -1.0, 0],
                  [0.0, -1.6, 0]])
    assert fragments(z, R).max() == 0 and topology_change(z, 1, R) is None
    R[2] = [0.0, 3.0, 0.0]
    i, j, r, what = topology_change(z, 1, R)
    assert what == "broke" and i == 2 and z[j] == 8 and r > 3.0
    assert topology_change(z, 2, R) is None               # a complex of two pieces from the start
    R[2] = [-1.2, 0.2, 0.0]                               # onto the oxygen
    assert topology_change(z, 1, R)[3] == "collided"


def test_sample_stopped_by_sigterm_keeps_its_frames_and_says_so(tmp_path, capsys, monkeypatch):
    import ase.build
    import ase.io
    from ase.md.langevin import Langevin
    from gdmlx.interrupts import Terminated
    ase.io.write(tmp_path / "methanol.xyz", ase.build.molecule("CH3OH"))
    calls, run = [], Langevin.run

    def stop_at_the_fourth_frame(self, steps):
        calls.append(steps)
        if len(calls) == 5:                      # the equilibration, then three frames
            raise Terminated
        return run(self, steps)

    monkeypatch.setattr(Langevin, "run", stop_at_the_fourth_frame)
    argv = ["sample", "--xyz", str(tmp_path / "methanol.xyz"), "--calculator", "emt", "--n", "10",
            "--every", "2", "--equilibrate", "0.005", "-o", str(tmp_path / "d.npz")]
    assert main(argv) == 143
    assert "interrupted after 3 frames; writing those" in capsys.readouterr().err
    assert len(gdmlx.load_dataset(tmp_path / "d.npz")) == 3
    calls.clear()
    calls.extend([0, 0, 0])                      # the next call stops: no frame yet
    assert main(argv[:-1] + [str(tmp_path / "e.npz")]) == 143
    assert "writing those" not in capsys.readouterr().err and not (tmp_path / "e.npz").exists()


def test_sample_from_smiles(tmp_path, capsys):
    pytest.importorskip("rdkit")
    summary = run_json(capsys, "sample", "--smiles", "CO", "--calculator", "emt", "--n", "2",
                       "--every", "1", "--equilibrate", "0", "-o", str(tmp_path / "d.npz"), "--json")
    assert summary["n_atoms"] == 6
    assert main(["sample", "--smiles", "C1CC", "--calculator", "emt", "--n", "1", "-o", "x.npz"]) == 2
    assert "cannot parse the SMILES" in capsys.readouterr().err


def test_demo_on_bundled_data(capsys):
    out = run_json(capsys, "demo", "--n-train", "100", "--json")
    assert out["n_atoms"] == 9 and out["test"]["n"] == 1000 - 300
    assert out["test"]["f_mae"] < 2.5                          # kcal/mol/A; 1.2 with 200 points
    assert abs(out["md"]["etot_drift_eV_per_ps"]) < 1e-3


def test_reduce_command(toy_npz, tmp_path, capsys):
    model = tmp_path / "m.h5"
    run_json(capsys, "train", str(toy_npz), "--n-train", "25", "--n-valid", "15", "--sigma", "2",
             "--lam", "1e-8", "-o", str(model), "--json")
    out = run_json(capsys, "reduce", str(model), str(toy_npz), "--tol", "0.1", "-o",
                   str(tmp_path / "r.h5"), "--md-temperature", "300", "--md-ps", "0.5", "--json")
    reduced = gdmlx.load_model(tmp_path / "r.h5")
    assert out["n_pairs_kept"] == len(reduced.pairs_) <= 10 and out["pairs_kept"] == reduced.pairs_.tolist()
    assert out["output"] == str(tmp_path / "r.h5") and out["tol"] == 0.1 and out["importance"] == "masking"
    accepted = [r for r in out["rounds"] if r["accepted"]]
    assert accepted and all(r["check"]["md"]["stopped_ps"] == [None] * 3 for r in accepted)
    assert out["test_full"]["n"] == 60 - 40                       # test set excludes train and valid
    # it went as far as it could: down to one pair, or a smaller subset was rejected
    assert out["n_pairs_kept"] == 1 or any(not r["accepted"] and r["n_pairs"] < out["n_pairs_kept"]
                                           for r in out["rounds"])
    assert main(["reduce", str(model), str(toy_npz), "--md-mts", "3", "-o", str(tmp_path / "r2.h5")]) == 2
    assert "which --md-temperature turns on" in capsys.readouterr().err


def test_reduce_when_no_test_geometries_are_left(toy_npz, tmp_path, capsys):
    """Training and validation splits hold the whole dataset: the reduced model is still
    written, and the report says there is no test error instead of failing."""
    model = tmp_path / "m.h5"
    run_json(capsys, "train", str(toy_npz), "--n-train", "30", "--n-valid", "30", "--sigma", "2",
             "--lam", "1e-8", "-o", str(model), "--json")
    assert len(gdmlx.load_model(model).indices_["valid"]) == 30
    out = run_json(capsys, "reduce", str(model), str(toy_npz), "--tol", "0.1", "-o",
                   str(tmp_path / "r.h5"), "--json")
    assert out["test_full"] is None and out["test_reduced"] is None
    assert len(gdmlx.load_model(tmp_path / "r.h5").pairs_) == out["n_pairs_kept"]


# the slow part refitted on few pairs fits the toy energies loosely, which the fit warns about
@pytest.mark.filterwarnings("ignore::gdmlx.errors.EnergyConsistencyWarning")
def test_split_and_mts_md(toy_npz, tmp_path, capsys):
    model = tmp_path / "m.h5"
    run_json(capsys, "train", str(toy_npz), "--n-train", "30", "--n-valid", "15", "--sigma", "2",
             "--lam", "1e-8", "-o", str(model), "--json")
    out = run_json(capsys, "split", str(model), "--max-hops", "1", "--n-fast", "20",
                   "--fast-sigma", "1.5", "-o", str(tmp_path / "ms.h5"), "--json")
    assert out["n_pairs_fast"] == 4 and out["n_pairs_slow"] == 10 and out["n_train_fast"] == 20
    md = run_json(capsys, "md", str(tmp_path / "ms.h5"), "--steps", "200", "--mts", "2",
                  "--temperature", "50", "--seed", "0", "--json")
    assert md["steps"] == 200
    red = run_json(capsys, "reduce", str(tmp_path / "ms.h5"), str(toy_npz), "--tol", "0.2", "-o", str(tmp_path / "ms_red.h5"), "--json")
    reduced = gdmlx.load_model(tmp_path / "ms_red.h5")
    assert isinstance(reduced, gdmlx.MultiscaleModel) and len(reduced.fast_.pairs_) == 4
    assert red["n_pairs_full"] == 10 and red["n_pairs_kept"] == len(reduced.slow_.pairs_) < 10
    assert red["test_full"]["n"] == 60 - 30 - 15      # the model's validation split chose the pairs
    md = run_json(capsys, "md", str(tmp_path / "ms_red.h5"), "--steps", "200", "--mts", "4",
                  "--temperature", "50", "--json")
    assert md["steps"] == 192                          # frames every 12 steps: 10 rounded up to 4s
    test = run_json(capsys, "test", str(tmp_path / "ms.h5"), str(toy_npz), "--json")
    assert test["n"] == 60 - 30 - 15                   # the slow part's recorded split is left out
    assert main(["split", str(tmp_path / "ms.h5"), "-o", str(tmp_path / "twice.h5")]) == 2
    assert "already a multiscale model" in capsys.readouterr().err
    assert main(["split", str(model), "--sigma", "3", "--seed", "1", "-o", str(tmp_path / "x.h5")]) == 2
    assert "--sigma --seed: for a dataset source only" in capsys.readouterr().err
    assert main(["reduce", str(model), str(toy_npz), "--figure", str(tmp_path / "no" / "f.png"),
                 "-o", str(tmp_path / "r.h5")]) == 2
    assert "cannot write" in capsys.readouterr().err and not (tmp_path / "r.h5").exists()
    reps = tmp_path / "reps.h5"
    run_json(capsys, "md", str(model), "--steps", "20", "--replicas", "2", "-o", str(reps), "--json")
    assert main(["validate", str(model), str(reps), "--calculator", "emt"]) == 2
    assert "holds replicas" in capsys.readouterr().err
    assert main(["md", str(model), "--steps", "20", "--mts", "2"]) == 2
    assert "needs a multiscale model" in capsys.readouterr().err


def test_info_describes_a_multiscale_model(toy_data, tmp_path, capsys):
    R, F, E, z = toy_data
    ms = gdmlx.MultiscaleModel(fast=gdmlx.GDMLRegressor(sigma=1.5), slow=gdmlx.GDMLRegressor(sigma=2.0),
                               max_hops=1, n_fast=10).fit(R[:20], F[:20], E[:20], z=z)
    ms.save(tmp_path / "ms.h5")
    info = run_json(capsys, "info", str(tmp_path / "ms.h5"), "--json")
    assert [p["n_pairs"] for p in info["parts"]] == [4, 10]
    assert [p["n_train"] for p in info["parts"]] == [10, 20]
    assert "lam" not in info and [p["lam"] for p in info["parts"]] == [ms.fast_.lam, ms.slow_.lam]
    assert info["n_pairs_covered"] == info["n_pairs_total"] == 10
    reduced = gdmlx.GDMLRegressor(sigma=2.0, pairs=np.array([[1, 0], [2, 1], [3, 2], [4, 3]]))
    reduced.fit(R[:20], F[:20], E[:20], z=z).save(tmp_path / "r.h5")
    assert main(["info", str(tmp_path / "r.h5")]) == 0
    assert "4 of 10 atom pairs in a descriptor; MD adds a contact wall for the other 6" in capsys.readouterr().out


def model_and_reference_run(capsys, toy_npz, tmp_path, steps):
    """A toy model file and a 300 K run of ``steps`` steps of 0.125 fs with it (frames every
    two steps): what an action model is trained on."""
    model = tmp_path / "m.h5"
    run_json(capsys, "train", str(toy_npz), "--n-train", "30", "--sigma", "2", "--lam", "1e-8",
             "-o", str(model), "--json")
    traj = tmp_path / "ref.h5"
    run_json(capsys, "md", str(model), "--steps", str(steps), "--dt", "0.125", "--save-every", "2",
             "--temperature", "300", "--seed", "0", "-o", str(traj), "--json")
    return model, traj


def test_action_train_and_md_with_the_learned_map(toy_npz, tmp_path, capsys):
    model, traj = model_and_reference_run(capsys, toy_npz, tmp_path, 4000)
    act = tmp_path / "act.h5"
    fit = run_json(capsys, "action", "train", str(traj), "--model", str(model), "--stride", "1",
                   "--sigma", "1", "--n-train", "40", "--n-valid", "50", "-o", str(act), "--json")
    assert fit["valid_rms_dq_learned_A"] < fit["valid_rms_dq_midpoint_A"]
    md = run_json(capsys, "md", str(model), "--action", str(act), "--steps", "100", "--save-every", "5",
                  "--temperature", "300", "--seed", "0", "-o", str(tmp_path / "a.h5"), "--json")
    assert md["steps"] == 100 and md["simulated_ps"] == pytest.approx(0.1)
    assert len(gdmlx.md.read_trajectory(tmp_path / "a.h5")["time_fs"]) == 20
    run_json(capsys, "md", str(model), "--action", str(act), "--steps", "10", "--save-every", "5",
             "--restart", str(tmp_path / "a.h5"), "-o", str(tmp_path / "b.h5"), "--json")
    np.testing.assert_allclose(gdmlx.md.read_trajectory(tmp_path / "b.h5")["time_fs"], [105.0, 110.0])
    assert main(["action", "train", str(traj), "--model", str(model), "--stride", "0.3", "-o", "x.h5"]) == 2
    assert "not a multiple" in capsys.readouterr().err
    info = run_json(capsys, "info", str(act), "--json")
    assert info["kind"] == "action" and info["stride_fs"] == 1.0 and info["n_train_pairs"] == 40
    assert info["n_permutations"] == 1
    assert main(["md", str(model), "--action", str(act), "--steps", "10", "--dt", "2"]) == 2
    assert "--dt does not apply with --action" in capsys.readouterr().err   # the stride is the step
    # the solver's iteration cap: the error message named a Python-only max_iter
    assert main(["md", str(model), "--action", str(act), "--steps", "10", "--action-max-iter", "1",
                 "--temperature", "300", "--seed", "0"]) == 2
    assert "did not converge in 1 iterations" in capsys.readouterr().err
    assert main(["md", str(model), "--steps", "10", "--action-max-iter", "50"]) == 2
    assert "apply to --action runs only" in capsys.readouterr().err
    assert main(["md", str(act), "--steps", "10"]) == 2                  # not a force field
    assert f"--action {act}" in capsys.readouterr().err
    other = tmp_path / "other.h5"
    run_json(capsys, "train", str(toy_npz), "--n-train", "30", "--sigma", "3", "-o", str(other), "--json")
    assert main(["md", str(other), "--action", str(act), "--steps", "10"]) == 2
    assert "trained with another force model" in capsys.readouterr().err


def test_train_with_symmetries_and_info(tmp_path, capsys):
    from gdmlx.cli.demo import bundled_dataset_path
    model = tmp_path / "sym.h5"
    out = run_json(capsys, "train", str(bundled_dataset_path()), "--n-train", "10", "--n-valid", "20",
                   "--sigma", "10", "--sym", "-o", str(model), "--json")
    assert out["n_permutations"] == 12                         # ethanol: CH3 rotor x CH2 swap
    info = run_json(capsys, "info", str(model), "--json")
    assert info["parts"][0]["n_train"] == 10 and info["parts"][0]["n_permutations"] == 12


def test_data_in_bohr_give_the_same_bonds_symmetries_and_md_start(tmp_path, capsys):
    """Bond graphs (symmetries, local pairs) and MD starts work in Angstrom: data in bohr
    must be converted first (they once found 48 'symmetries', no local pairs, and an MD
    start 1.89x too large)."""
    from gdmlx.cli.demo import bundled_dataset_path
    ds = gdmlx.load_dataset(bundled_dataset_path())
    bohr = tmp_path / "bohr.npz"
    gdmlx.Dataset(R=ds.R[:60] / ase.units.Bohr, z=ds.z, F=ds.F[:60] * ase.units.Bohr, E=ds.E[:60],
                  name="ethanol in bohr", length_unit="bohr").save_npz(bohr)
    out = run_json(capsys, "train", str(bohr), "--n-train", "30", "--n-valid", "10",
                   "--sym", "-o", str(tmp_path / "m.h5"), "--json")
    assert out["n_permutations"] == 12 and out["length_unit"] == "bohr"
    assert out["sigma"] == pytest.approx(10 * ase.units.Bohr)       # the default, 10 for data in A
    run_json(capsys, "split", str(tmp_path / "m.h5"), "-o", str(tmp_path / "ms.h5"), "--json")
    local = gdmlx.multiscale.bond_graph_pairs(ds.z, ds.R[:60], 2)                  # from Angstrom
    ms = gdmlx.load_model(tmp_path / "ms.h5")
    assert len(local) == 21 and np.array_equal(ms.fast_.pairs_, local)
    assert len(ms.fast_.perms_) == 12                             # the slow part's symmetry, kept
    assert ms.fast_.sigma == pytest.approx(4 * ase.units.Bohr)
    run_json(capsys, "split", str(bohr), "--n-train", "30", "--sym", "-o", str(tmp_path / "ds.h5"), "--json")
    ms = gdmlx.load_model(tmp_path / "ds.h5")                     # from the dataset: defaults converted
    assert ms.slow_.lam == pytest.approx(1e-10 * ase.units.Bohr ** 2) and len(ms.slow_.perms_) == 12
    md = run_json(capsys, "md", str(tmp_path / "m.h5"), "--steps", "200", "--seed", "0", "--json")
    assert md["steps"] == 200 and md["outside_fraction"] < 0.5
    from gdmlx.md.probe import StabilityProbe             # reduce's MD check starts from data in bohr
    check = StabilityProbe(ps=0.1, n_runs=2).measure(gdmlx.load_model(tmp_path / "m.h5"),
                                                    gdmlx.load_dataset(bohr).R[40:])
    assert check["stopped_ps"] == [None, None] and max(check["outside"]) < 0.5


# 30 points: the slow part fits the residual energies loosely, which the fit warns about
@pytest.mark.filterwarnings("ignore::gdmlx.errors.EnergyConsistencyWarning")
def test_split_of_a_small_dataset_keeps_geometries_to_test_on(tmp_path, capsys):
    """split (and train) leave half of what the training set leaves for testing: on a
    60-geometry dataset split once wrote its model, then failed on an empty test set."""
    from gdmlx.cli.demo import bundled_dataset_path
    ds = gdmlx.load_dataset(bundled_dataset_path())
    small = tmp_path / "small.npz"
    gdmlx.Dataset(R=ds.R[:60], z=ds.z, F=ds.F[:60], E=ds.E[:60]).save_npz(small)
    out = run_json(capsys, "split", str(small), "--n-train", "30", "-o", str(tmp_path / "ms.h5"), "--json")
    assert out["test"]["n"] == 15 and out["energy_unit"] == "kcal/mol"
    test = run_json(capsys, "test", str(tmp_path / "ms.h5"), str(small), "--json")
    assert test["n"] == 15 and test["f_mae"] == pytest.approx(out["test"]["f_mae"])


def test_validate_a_trajectory_against_a_reference(toy_npz, tmp_path, capsys):
    """gdmlx validate labels the asked-for frames (here with ASE's EMT, a stand-in reference)
    and reports errors inside and outside the domain, and the held-out error."""
    model, traj = tmp_path / "m.h5", tmp_path / "t.h5"
    assert main(["train", str(toy_npz), "--n-train", "30", "--n-valid", "10", "--sigma", "2",
                 "-o", str(model)]) == 0
    assert main(["md", str(model), "--steps", "400", "--temperature", "300", "--seed", "2",
                 "-o", str(traj)]) == 0
    capsys.readouterr()
    out = run_json(capsys, "validate", str(model), str(traj), "--calculator", "emt", "--frames", "8",
                   "--data", str(toy_npz), "--json")
    assert out["n_frames"] == 8 and 0 <= out["n_outside"] <= 8 and out["calculator"] == "emt"
    assert out["same_force_model"] is True
    assert len(out["frames"]) == len(out["outside"]) == len(out["frame_f_mae"]) == 8 == len(set(out["frames"]))
    assert out["held_out"]["n"] == 60 - 30 - 10
    inside = [v for v in (out["f_mae_inside"], out["f_mae_outside"]) if v is not None]
    assert inside and all(np.isfinite(inside)) and out["max_frame_f_mae"] >= max(inside)
    xyz = tmp_path / "t.xyz"                               # the same run as extended XYZ
    assert main(["md", str(model), "--steps", "400", "--temperature", "300", "--seed", "2", "-o", str(xyz)]) == 0
    capsys.readouterr()
    as_xyz = run_json(capsys, "validate", str(model), str(xyz), "--calculator", "emt", "--frames", "8", "--json")
    assert as_xyz["n_frames"] == 8 and as_xyz["max_frame_f_mae"] == pytest.approx(out["max_frame_f_mae"], rel=1e-5)
    assert as_xyz["same_force_model"] is True
    refit = tmp_path / "m2.h5"               # another model's errors on this run's frames: said, not refused
    assert main(["train", str(toy_npz), "--n-train", "30", "--n-valid", "10", "--sigma", "3", "-o", str(refit)]) == 0
    capsys.readouterr()
    assert main(["validate", str(refit), str(xyz), "--calculator", "emt", "--frames", "2"]) == 0
    assert f"note: {xyz} was run by another force model than {refit}" in capsys.readouterr().err
    other = tmp_path / "other.h5"                          # a trajectory of a 4-atom molecule
    writer = open_trajectory(str(other), np.array([6, 6, 8, 6]), np.ones(4), {})
    writer.append([0.5], np.zeros((1, 4, 3)), np.zeros((1, 4, 3)), [0.0], [0.0])
    writer.close(complete=True, status=0)
    assert main(["validate", str(model), str(other), "--calculator", "emt"]) == 2
    assert "atomic numbers" in capsys.readouterr().err


def test_md_json_describes_a_run_that_stopped(toy_npz, tmp_path, capsys):
    model = tmp_path / "m.h5"
    assert main(["train", str(toy_npz), "--n-train", "30", "--sigma", "2", "-o", str(model)]) == 0
    capsys.readouterr()
    assert main(["md", str(model), "--steps", "5000", "--temperature", "50000", "--seed", "1", "--json"]) == 2
    out = capsys.readouterr()
    stopped = json.loads(out.out)
    assert "MD stopped at step" in stopped["stopped"] and stopped["steps"] < 5000
    assert "MD stopped at step" in out.err


def test_md_says_when_the_run_left_the_training_domain(toy_npz, tmp_path, capsys):
    model, traj = tmp_path / "m.h5", tmp_path / "t.h5"
    assert main(["train", str(toy_npz), "--n-train", "30", "--n-valid", "10", "--sigma", "2",
                 "-o", str(model)]) == 0
    start = tmp_path / "start.xyz"                         # the unstrained chain, cold: stays inside
    ase.io.write(start, ase.Atoms(numbers=[6, 6, 8, 6, 1], positions=toy_geometries(1, noise=0.0)[0]))
    assert main(["md", str(model), "--xyz", str(start), "--steps", "2000", "--temperature", "50",
                 "--seed", "4"]) == 0
    assert "extrapolated" not in capsys.readouterr().err
    assert main(["md", str(model), "--steps", "3000", "--temperature", "1500", "--thermostat", "langevin",
                 "--seed", "4", "-o", str(traj)]) == 0
    err = capsys.readouterr().err
    assert "the model extrapolated" in err and f"gdmlx validate {model} {traj}" in err
    xyz = tmp_path / "t.xyz"                               # validate reads extended XYZ too
    assert main(["md", str(model), "--steps", "3000", "--temperature", "1500", "--thermostat", "langevin",
                 "--seed", "4", "-o", str(xyz)]) == 0
    assert f"gdmlx validate {model} {xyz}" in capsys.readouterr().err


def test_cli_reference_matches_the_parser():
    """docs/cli.md has every subcommand, each of its options and each help text (whitespace
    aside, so that another Python's line wrapping does not matter)."""
    import argparse
    from pathlib import Path

    from gdmlx.cli.main import build_parser
    from gdmlx.cli.reference import _subcommands
    def flat(s):                                  # whitespace aside; lines may also break after a hyphen
        return re.sub(r"-\s+", "-", " ".join(s.split()))

    text = (Path(__file__).parents[1] / "docs" / "cli.md").read_text()
    sections = {s.split("\n", 1)[0]: flat(s) for s in text.split("\n## ")[1:]}
    hint = "regenerate it: python -m gdmlx.cli.reference > docs/cli.md"
    for name, sub in _subcommands(build_parser(), "gdmlx"):
        if name.count(" ") == 1:                  # the list of commands names each, with its help line
            assert re.search(rf"\b{name.split()[1]}\b", sections["gdmlx"]), f"{name} not in gdmlx --help; {hint}"
        assert name in sections, f"docs/cli.md lacks {name}; {hint}"
        for action in sub._actions:
            if isinstance(action, argparse._SubParsersAction):
                continue
            help_text = (action.help or "") % dict(vars(action), prog=sub.prog)    # as argparse expands it
            for item in list(action.option_strings) + [help_text]:
                assert flat(item) in sections[name], f"{name}: {item!r} not in docs/cli.md; {hint}"


def test_md_seed_default_draws_new_velocities(toy_npz, tmp_path, capsys):
    """gdmlx md without --seed draws new velocities each run (as its help says); with one,
    a run repeats exactly."""
    model = tmp_path / "m.h5"
    run_json(capsys, "train", str(toy_npz), "--n-train", "20", "--sigma", "2", "--lam", "1e-8",
             "-o", str(model), "--json")
    args = ("md", str(model), "--steps", "50", "--temperature", "100", "--json")
    unseeded = [run_json(capsys, *args)["mean_temperature_K"] for _ in range(2)]
    seeded = [run_json(capsys, *args, "--seed", "3")["mean_temperature_K"] for _ in range(2)]
    assert unseeded[0] != unseeded[1]
    assert seeded[0] == seeded[1]


def test_reduce_figure_names_the_importance_used(toy_npz, tmp_path, capsys, monkeypatch):
    """--figure labels the importance axis with the --importance that ranked the pairs."""
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    from matplotlib.figure import Figure
    labels = []
    monkeypatch.setattr(Figure, "savefig", lambda fig, path, **kw: labels.append(fig.axes[0].get_ylabel()))
    model = tmp_path / "m.h5"
    run_json(capsys, "train", str(toy_npz), "--n-train", "25", "--n-valid", "15", "--sigma", "2",
             "--lam", "1e-8", "-o", str(model), "--json")
    for method in ("own-term", "masking"):
        run_json(capsys, "reduce", str(model), str(toy_npz), "--importance", method, "--figure",
                 str(tmp_path / "f.png"), "-o", str(tmp_path / "r.h5"), "--json")
    assert labels == ["importance: RMS of its own force term", "importance: force RMSE change when masked"]


def test_md_xyz_start_with_velocities_draws_new_ones_at_the_temperature(toy_npz, tmp_path, capsys):
    """--xyz is a start geometry: its velocities (an extended XYZ written by gdmlx md or ASE's
    dynamics carries momenta) are not used, --temperature draws new ones, as for --xyz t.h5;
    going on with a run's velocities is --restart."""
    model, traj, plain = tmp_path / "m.h5", tmp_path / "t.xyz", tmp_path / "plain.xyz"
    run_json(capsys, "train", str(toy_npz), "--n-train", "20", "--sigma", "2", "--lam", "1e-8",
             "-o", str(model), "--json")
    run_json(capsys, "md", str(model), "--steps", "50", "--temperature", "100", "--seed", "1",
             "-o", str(traj), "--json")
    last = ase.io.read(traj)
    assert last.has("momenta")
    ase.io.write(plain, ase.Atoms(numbers=last.numbers, positions=last.positions))
    args = ("md", str(model), "--steps", "50", "--temperature", "20", "--seed", "3", "--json")
    from_traj = run_json(capsys, *args, "--xyz", str(traj))
    from_plain = run_json(capsys, *args, "--xyz", str(plain))
    assert from_traj["mean_temperature_K"] == from_plain["mean_temperature_K"]


def test_md_xyz_start_with_constraints_names_the_file(toy_npz, tmp_path, capsys):
    from ase.constraints import FixAtoms
    model, start = tmp_path / "m.h5", tmp_path / "fixed.traj"
    run_json(capsys, "train", str(toy_npz), "--n-train", "20", "--sigma", "2", "-o", str(model), "--json")
    atoms = ase.Atoms(numbers=[6, 6, 8, 6, 1], positions=toy_geometries(1, noise=0.0)[0])
    atoms.set_constraint(FixAtoms([0]))
    ase.io.write(start, atoms)
    assert main(["md", str(model), "--steps", "10", "--xyz", str(start)]) == 2
    err = capsys.readouterr().err
    assert f"--xyz {start} holds ASE constraints (FixAtoms)" in err and "del atoms" not in err


def test_inputs_a_user_mixes_up_in_action_validate_and_reduce(toy_npz, tmp_path, capsys):
    """action train -o naming one of its trajectories overwrote that trajectory (the check of
    -o against the inputs saw single paths only); validate given a dataset for the trajectory,
    or a trajectory of another molecule, and reduce --md-mts with a one-part model (blamed on
    --mts) now say what is wrong and what to do."""
    model, traj = model_and_reference_run(capsys, toy_npz, tmp_path, 400)
    before = traj.read_bytes()
    assert main(["action", "train", str(traj), "--model", str(model), "--stride", "1", "--n-train", "20",
                 "-o", str(traj)]) == 2
    assert f"-o {traj} is also the command's input trajectories ({traj})" in capsys.readouterr().err
    assert traj.read_bytes() == before
    assert main(["validate", str(model), str(toy_npz), "--calculator", "emt"]) == 2
    assert "is a dataset (geometries with forces), not a gdmlx trajectory" in capsys.readouterr().err
    other = tmp_path / "other.h5"
    writer = open_trajectory(str(other), np.array([6, 6, 8, 6]), np.ones(4), {})
    writer.append([0.5], np.zeros((1, 4, 3)), np.zeros((1, 4, 3)), [0.0], [0.0])
    writer.close(complete=True, status=0)
    assert main(["validate", str(model), str(other), "--calculator", "emt"]) == 2
    assert "holds C3O (atomic numbers [6, 6, 8, 6]), the model" in capsys.readouterr().err
    assert main(["reduce", str(model), str(toy_npz), "--md-temperature", "300", "--md-mts", "3",
                 "-o", str(tmp_path / "r.h5")]) == 2
    assert "--md-mts 3: " in capsys.readouterr().err


def test_export_writes_what_sgdml_import_reads_back(toy_npz, tmp_path, capsys):
    """gdmlx export: the sGDML file predicts what the model does; a reduced model is refused
    with the reason, an output that is not .npz before any work."""
    model, out = tmp_path / "m.h5", tmp_path / "m.npz"
    run_json(capsys, "train", str(toy_npz), "--n-train", "20", "--sigma", "3", "-o", str(model), "--json")
    done = run_json(capsys, "export", str(model), "-o", str(out), "--json")
    assert done["n_train"] == 20 and done["energy_unit"] == "kcal/mol" and not done["energy_labels"]
    ds = gdmlx.load_dataset(toy_npz)
    E0, F0 = gdmlx.load_model(model).predict_energy_forces(ds.R[40:45])
    E1, F1 = gdmlx.import_sgdml_model(out).predict_energy_forces(ds.R[40:45])
    np.testing.assert_allclose(E1, E0, rtol=1e-13)
    np.testing.assert_allclose(F1, F0, rtol=0, atol=1e-12 * np.abs(F0).max())
    gdmlx.GDMLRegressor(sigma=3.0, pairs=[[1, 0], [2, 1]]).fit(ds.R[:10], ds.F[:10], z=ds.z).save(tmp_path / "r.h5")
    assert main(["export", str(tmp_path / "r.h5"), "-o", str(tmp_path / "r.npz")]) == 2
    assert "use all 10 atom pairs; this model's descriptor has 2" in capsys.readouterr().err
    assert main(["export", str(model), "-o", str(tmp_path / "m.h5x")]) == 2
    assert ".npz" in capsys.readouterr().err and not (tmp_path / "r.npz").exists()


def test_sample_with_emt_names_the_elements_it_has_no_parameters_for(tmp_path, capsys):
    """ASE's EMT knows a few elements; a molecule with sulfur got a NotImplementedError
    traceback from inside the first MD step, and no file."""
    import ase.build
    ase.io.write(tmp_path / "methanethiol.xyz", ase.build.molecule("CH3SH"))
    assert main(["sample", "--xyz", str(tmp_path / "methanethiol.xyz"), "--calculator", "emt", "--n", "2",
                 "--equilibrate", "0", "-o", str(tmp_path / "d.npz")]) == 2
    err = capsys.readouterr().err
    assert "--calculator emt has no parameters for S (it knows only" in err and "--calculator tblite" in err
    assert not (tmp_path / "d.npz").exists()


def test_a_bad_sigma_in_a_list_is_refused_before_any_training(toy_npz, tmp_path, capsys):
    """--sigma 10,-5 trained sigma 10 (minutes on real data) and then failed on -5 with the
    estimator's message, which did not name --sigma."""
    for spec, bad in (("2,-5", "-5"), ("0:2:4", "0"), ("2,nan", "nan"), ("2,1e400", "inf")):
        assert main(["train", str(toy_npz), "--n-train", "20", "--sigma", spec, "-o", str(tmp_path / "m.h5")]) == 2
        captured = capsys.readouterr().err
        assert f"--sigma '{spec}': every sigma must be a positive finite number, got {bad}" in captured
        assert "validation force MAE" not in captured and not (tmp_path / "m.h5").exists()


def test_energy_labels_without_energies_name_the_option_and_the_file(toy_data, tmp_path, capsys):
    """The command line said 'use_energy_labels=True needs energies', the estimator's words."""
    R, F, E, z = toy_data
    gdmlx.Dataset(R=R, z=z, F=F).save_npz(tmp_path / "forces_only.npz")
    assert main(["train", str(tmp_path / "forces_only.npz"), "--n-train", "20", "--use-energy-labels",
                 "-o", str(tmp_path / "m.h5")]) == 2
    assert ("--use-energy-labels fits energies, and " + str(tmp_path / "forces_only.npz") + " holds none"
            in capsys.readouterr().err)
    with pytest.raises(gdmlx.InputError, match="none were given: pass them .* or set use_energy_labels=False"):
        gdmlx.GDMLRegressor(use_energy_labels=True).fit(R[:10], F[:10], z=z)
