"""Bad values given to the commands' options and the Python API: each refused with an error
that names the input and what is wrong, before any work, file or traceback."""

import json
import os

import numpy as np
import pytest

import gdmlx
import gdmlx.cli.demo
from gdmlx.cli.main import main
from gdmlx.md import read_trajectory


@pytest.mark.parametrize("sigma", [1e300, 1e-300, 1e7])
def test_a_sigma_no_model_file_holds_is_refused_before_the_fit(toy_data, sigma):
    """sigma=1e300 raised OverflowError from the kernel, 1e-300 a SystemError from numba, and
    1e7 fitted a model whose file gdmlx then refused to read ('expansion sigma 1e+07 is
    outside (1e-06, 1000000.0)')."""
    R, F, E, z = toy_data
    with pytest.raises(gdmlx.InputError, match=r"sigma must be between 1e-06 and 1e\+06 .*got"):
        gdmlx.GDMLRegressor(sigma=sigma).fit(R[:10], F[:10], E[:10], z)


@pytest.mark.filterwarnings("ignore::gdmlx.EnergyConsistencyWarning")     # so wide a kernel fits nothing
def test_the_largest_sigma_allowed_fits_a_model_that_loads(toy_data, tmp_path):
    R, F, E, z = toy_data
    model = gdmlx.GDMLRegressor(sigma=1e6).fit(R[:10], F[:10], E[:10], z)
    model.save(tmp_path / "m.h5")
    assert gdmlx.load_model(tmp_path / "m.h5").sigma == 1e6


@pytest.mark.parametrize("name, scale", [("R", 1e300), ("R", 1e160), ("F", 1e300)])
def test_training_data_whose_squares_overflow_are_refused(toy_data, name, scale):
    """R x 1e160 fitted a model of zero descriptors that could not be saved; F x 1e300 one
    that predicted NaN: both without a word."""
    R, F, E, z = toy_data
    data = {"R": R[:10], "F": F[:10]}
    data[name] = data[name] * scale
    with pytest.raises(gdmlx.InputError, match=f"^{name} holds values up to .* where their squares overflow"):
        gdmlx.GDMLRegressor(sigma=2.0).fit(data["R"], data["F"], E[:10], z)


@pytest.mark.parametrize("options, message", [
    (dict(cg_tol=None), "cg_tol must be a number, got None"),
    (dict(cg_max_iter=None), "cg_max_iter must be a whole number, got None"),
    (dict(verbose="no"), "verbose must be True or False, got 'no'"),
    (dict(cg_checkpoint=""), "cg_checkpoint must be a file name or None, got ''"),
    (dict(cg_checkpoint=1), "cg_checkpoint must be a file name or None, got 1")])
def test_compute_options_name_a_setting_of_the_wrong_kind(options, message):
    """These raised TypeError from the solvers at fit time ('<' not supported between int and
    NoneType), or were taken: verbose='no' printed the stages, cg_checkpoint='' kept none."""
    with pytest.raises(gdmlx.InputError, match=message):
        gdmlx.ComputeOptions(**options)


def test_compute_options_keep_the_numbers_they_checked(toy_data):
    """memory_limit_gb='1' passed the check and raised TypeError deep in the solver ("can't
    multiply sequence by non-int of type 'float'"); cg_max_iter=2.0 stayed a float."""
    options = gdmlx.ComputeOptions(memory_limit_gb="1", cg_max_iter=2.0, batch_size=np.int64(7))
    assert (options.memory_limit_gb, options.cg_max_iter, options.batch_size) == (1.0, 2, 7)
    assert type(options.memory_limit_gb) is float and type(options.cg_max_iter) is int
    R, F, E, z = toy_data
    model = gdmlx.GDMLRegressor(sigma=2.0, solver="auto", options=options).fit(R[:10], F[:10], E[:10], z)
    assert model.fit_info_["solver"] == "analytic"


@pytest.mark.parametrize("argv, option", [
    (["split", "m.h5", "--n-fast", str(2**63), "-o", "x.h5"], "--n-fast"),
    (["split", "m.h5", "--max-hops", "1" + "0" * 22, "-o", "x.h5"], "--max-hops"),
    (["md", "m.h5", "--steps", "10", "--replicas", str(10**23)], "--replicas"),
    (["md", "m.h5", "--steps", "10", "--action", "a.h5", "--action-max-iter", str(10**23)], "--action-max-iter"),
    (["train", "d.npz", "--n-train", "5", "--seed", str(2**64), "-o", "m.h5"], "--seed")])
def test_whole_numbers_beyond_int64_are_refused_by_the_parser(argv, option, capsys):
    """They reached numpy and HDF5: --n-fast and --max-hops 1e22 trained both parts and then
    raised h5py's TypeError ('Object dtype has no native HDF5 equivalent') at the save,
    --replicas OverflowError ('Python int too large to convert to C long')."""
    with pytest.raises(SystemExit) as stop:
        main(argv)
    assert stop.value.code == 2
    assert f"argument {option}: expected a whole number >= " in capsys.readouterr().err


def test_the_largest_int64_is_a_whole_number_the_parser_takes():
    from gdmlx.cli.arguments import non_negative_int, positive_int
    assert positive_int(str(2**63 - 1)) == non_negative_int(str(2**63 - 1)) == 2**63 - 1


def test_more_replicas_than_memory_holds_name_the_option(toy_model, tmp_path, capsys):
    """numpy's MemoryError came out as a traceback, naming an array shape, not --replicas."""
    toy_model.save(tmp_path / "m.h5")
    assert main(["md", str(tmp_path / "m.h5"), "--steps", "10", "--replicas", str(10**13)]) == 2
    err = capsys.readouterr().err
    assert "gdmlx md: error: --replicas 10000000000000: the replicas' arrays do not fit in memory" in err


def test_a_directory_given_as_a_model_is_named(tmp_path, capsys):
    """HDF5's error came through: '/tmp: not a readable HDF5 model file ([Errno 21] Unable to
    synchronously open file (file read failed: time = ..., buf = 0x7ffe..., ...'."""
    for load in (gdmlx.load_model, gdmlx.load_any_model, gdmlx.ActionModel.load):
        with pytest.raises(IsADirectoryError, match=f"^{tmp_path} is a directory, not a model file$"):
            load(tmp_path)
    assert main(["md", str(tmp_path), "--steps", "10"]) == 2
    assert capsys.readouterr().err == f"gdmlx md: error: {tmp_path} is a directory, not a model file\n"


def test_a_directory_given_as_data_start_or_trajectory_is_named(toy_npz, tmp_path, capsys):
    """ASE's 'Not a BundleTrajectory: DIR' or HDF5's message with a time and a memory address
    came through for a directory given as a dataset, a start geometry or a trajectory; info
    on a garbled XYZ trajectory named neither the file nor the frame."""
    with pytest.raises(IsADirectoryError, match=f"^{tmp_path} is a directory, not a dataset$"):
        gdmlx.load_dataset(tmp_path)
    with pytest.raises(IsADirectoryError, match=f"^{tmp_path} is a directory, not a trajectory$"):
        read_trajectory(tmp_path)
    model = tmp_path / "m.h5"
    assert main(["train", str(toy_npz), "--n-train", "20", "--n-valid", "10", "-o", str(model), "--json"]) == 0
    capsys.readouterr()
    assert main(["md", str(model), "--steps", "10", "--xyz", str(tmp_path)]) == 2
    assert f"{tmp_path} is a directory, not a start geometry" in capsys.readouterr().err
    assert main(["md", str(model), "--steps", "20", "-o", str(tmp_path / "t.xyz")]) == 0
    lines = (tmp_path / "t.xyz").read_text().split("\n")
    lines[2] = lines[2].split()[0] + " abc" + lines[2].split(maxsplit=2)[2]     # a garbled first frame
    (tmp_path / "t.xyz").write_text("\n".join(lines))
    capsys.readouterr()
    assert main(["info", str(tmp_path / "t.xyz")]) == 2         # it said "could not convert ... 'abc'"
    assert "t.xyz: its first frame is not readable extended XYZ from gdmlx md" in capsys.readouterr().err


def test_every_sigma_of_a_scan_and_an_action_models_is_checked_first(toy_npz, tmp_path, capsys):
    """--sigma 10,1e7 trained sigma 10 before it failed; ActionModel(sigma=1e300) raised
    OverflowError from the kernel; masses given as text failed in numpy's conversion."""
    assert main(["train", str(toy_npz), "--n-train", "20", "--sigma", "2,1e7", "-o", str(tmp_path / "m.h5")]) == 2
    err = capsys.readouterr().err
    assert "--sigma '2,1e7': sigma must be between 1e-06 and 1e+06" in err and "validation force MAE" not in err
    with pytest.raises(gdmlx.InputError, match="sigma must be between"):
        gdmlx.ActionModel(sigma=1e300)._check_params()
    from gdmlx.md.simulation import start_state
    with pytest.raises(gdmlx.InputError, match="masses must be real numbers"):
        start_state(np.zeros((2, 3)) + [[0, 0, 0], [1, 0, 0]], np.array([1, 1]), masses="xx")


@pytest.fixture
def methanol_xyz(tmp_path):
    import ase.build
    import ase.io
    ase.io.write(tmp_path / "methanol.xyz", ase.build.molecule("CH3OH"))
    return str(tmp_path / "methanol.xyz")


def test_sample_refuses_a_langevin_step_ase_cannot_integrate(methanol_xyz, tmp_path, capsys):
    """--friction 10 --dt 1 heated the molecule until it broke apart ('lower --temperature or
    --dt', the friction unnamed); --dt 1e300 raised OverflowError from ASE."""
    for dt, friction in (("1", "10"), ("1e300", "0.02")):
        assert main(["sample", "--xyz", methanol_xyz, "--calculator", "emt", "--n", "2", "--dt", dt,
                     "--friction", friction, "-o", str(tmp_path / "d.npz")]) == 2
        assert f"x --friction {float(friction):g}/fs is " in capsys.readouterr().err
    assert not (tmp_path / "d.npz").exists()


def test_sample_says_how_far_a_piece_flew_in_few_digits(methanol_xyz, tmp_path, capsys):
    """At 1e23 K the distance came with all its digits and two decimals (at 1e300 K, 150 digits)."""
    assert main(["sample", "--xyz", methanol_xyz, "--calculator", "emt", "--n", "2", "--every", "2",
                 "--equilibrate", "0", "--temperature", "1e23", "-o", str(tmp_path / "d.npz")]) == 2
    err = capsys.readouterr().err
    assert "the molecule broke apart" in err
    distance = err.split(" A away")[0].rsplit(", ", 1)[1]
    assert "e+" in distance and len(distance) <= 9


@pytest.mark.parametrize("make", [
    lambda R, F, E, z: gdmlx.MultiscaleModel(max_hops=10**22).fit(R, F, E, z),
    lambda R, F, E, z: gdmlx.MultiscaleModel(n_fast=2**63).fit(R, F, E, z),
    lambda R, F, E, z: gdmlx.ComputeOptions(cg_max_iter=1e300)], ids=["max_hops", "n_fast", "cg_max_iter"])
def test_counts_beyond_int64_are_refused_by_name(toy_data, make):
    """MultiscaleModel(max_hops=10**22) fitted both parts, then its save raised h5py's
    TypeError ('Object dtype has no native HDF5 equivalent')."""
    R, F, E, z = toy_data
    with pytest.raises(gdmlx.InputError, match=r"^(max_hops|n_fast|cg_max_iter) must be below 2\^63, got"):
        make(R[:20], F[:20], E[:20], z)


def test_replicas_beyond_int64_are_refused_by_name(toy_model, toy_data):
    """ReplicaSimulation(n_replicas=10**23) raised OverflowError from numpy."""
    from gdmlx.md import ReplicaSimulation
    with pytest.raises(gdmlx.InputError, match=r"^n_replicas must be below 2\^63"):
        ReplicaSimulation(toy_model, toy_data[0][0], n_replicas=10**23)


def test_validate_on_one_frame_reports_no_energy_error(toy_model, tmp_path, capsys):
    """With one frame labelled (--frames 1, or a --skip leaving one), the energy error after
    removing the offset, the frame's own error, was reported as an MAE of 0."""
    toy_model.save(tmp_path / "m.h5")
    traj = str(tmp_path / "t.h5")
    assert main(["md", str(tmp_path / "m.h5"), "--steps", "40", "--temperature", "100", "--seed", "1",
                 "-o", traj]) == 0
    capsys.readouterr()
    for options in (["--frames", "1"], ["--skip", "0.9"]):
        assert main(["validate", str(tmp_path / "m.h5"), traj, "--calculator", "emt", *options]) == 0
        assert "inside -, outside - (one frame: its energy error is the offset" in capsys.readouterr().err
    assert main(["validate", str(tmp_path / "m.h5"), traj, "--calculator", "emt", "--frames", "1", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["n_frames"] == 1 and out["e_mae_inside"] is None and out["e_mae_outside"] is None


def test_an_output_directory_nothing_can_be_written_to_is_refused_first(toy_npz, toy_model, tmp_path, capsys):
    """A read-only or forbidden directory was found when the model was saved, after the
    training, and the error named the temporary file: '[Errno 13] Permission denied:
    'ro/.tmp-fmkkqy1h.h5''."""
    targets = []
    if os.path.isdir("/proc/self"):                  # no file can be created in /proc, even by root
        targets.append(("/proc", "No such file or directory"))
    if os.geteuid() != 0:                           # root writes into a chmod 555 directory
        (tmp_path / "ro").mkdir(mode=0o555)
        targets.append((str(tmp_path / "ro"), "Permission denied"))
    if not targets:
        pytest.skip("no directory this process cannot write to")
    for directory, reason in targets:
        out = f"{directory}/m.h5"
        assert main(["train", str(toy_npz), "--n-train", "20", "-o", out]) == 2
        err = capsys.readouterr().err
        assert err == f"gdmlx train: error: cannot write {out}: no file can be created in {directory} ({reason})\n"
    with pytest.raises(OSError, match=f"^cannot write {directory}/m.h5: no file can be created in {directory} "):
        toy_model.save(f"{directory}/m.h5")                 # the Python API: the same words


@pytest.mark.parametrize("argv, name", [
    (["test", "", "d.npz"], "model"), (["train", " ", "--n-train", "5", "-o", "m.h5"], "data"),
    (["info", ""], "file"), (["action", "train", "t.h5", "", "--model", "m.h5", "--stride", "1", "-o", "a.h5"],
                             "trajectories")])
def test_an_empty_file_name_is_named_by_its_argument(argv, name, capsys):
    """An unset variable in a script ('gdmlx test $MODEL data.npz') gave 'no such file: ',
    followed by nothing."""
    assert main(argv) == 2
    assert capsys.readouterr().err == f"gdmlx {argv[0]}: error: {name} was given an empty file name\n"


def test_model_files_are_read_by_their_contents_whatever_their_names(ethanol_model, tmp_path):
    """A gdmlx model saved as 'm.npz' was taken for an sGDML file by its name, and an sGDML
    export named 'e.h5' for a gdmlx model: load_any_model (and every command) refused both."""
    R = gdmlx.load_dataset(gdmlx.cli.demo.bundled_dataset_path()).R[50:52]
    ethanol_model.save(tmp_path / "m.npz")
    gdmlx.export_sgdml_model(ethanol_model, tmp_path / "e.h5")
    for name in ("m.npz", "e.h5"):
        np.testing.assert_allclose(gdmlx.load_any_model(tmp_path / name).predict(R), ethanol_model.predict(R),
                                   rtol=1e-12, atol=1e-12)


def test_small_api_misuses_are_named(ethanol_model):
    """Dataset.subset out of range gave numpy's bare IndexError, match_atom_order of an array
    AttributeError 'numbers', and an action tolerance of 1e300 'converged' without solving."""
    ds = gdmlx.load_dataset(gdmlx.cli.demo.bundled_dataset_path())
    with pytest.raises(IndexError, match=f"subset of a dataset of {len(ds)} geometries: index {len(ds)}"):
        ds.subset([len(ds)])
    with pytest.raises(gdmlx.InputError, match="atoms must be an ASE Atoms, got ndarray"):
        gdmlx.match_atom_order(ds.R[0], ethanol_model)
    from gdmlx.md.action_map import ActionSimulation
    with pytest.raises(gdmlx.InputError, match=r"tol \(1e\+300 A\) must be at most 0.0001 A"):
        ActionSimulation(ethanol_model, gdmlx.ActionModel(), ds.R[0], tol=1e300)


def test_reduce_given_a_path_and_flags_given_arrays_are_named(tmp_path):
    """gdmlx.reduce('m.h5', ds) raised AttributeError 'str' object has no attribute
    'force_parts'; contact_wall=np.array([True]) numpy's 'truth value is ambiguous'."""
    ds = gdmlx.load_dataset(gdmlx.cli.demo.bundled_dataset_path())
    with pytest.raises(gdmlx.InputError, match="model must be a fitted gdmlx model .* got str"):
        gdmlx.reduce(str(tmp_path / "m.h5"), ds)
    from gdmlx.validation import check_flag
    for value in (np.array([True]), 1.0, "yes"):
        with pytest.raises(gdmlx.InputError, match="contact_wall must be True or False"):
            check_flag(value, "contact_wall")
    assert check_flag(np.bool_(True), "x") is True and check_flag(0, "x") is False
