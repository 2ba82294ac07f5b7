"""Long commands in a log file: how often they report, what an interruption or a stop
leaves and says, and how a run goes on."""

import os

import numpy as np
import pytest

import gdmlx
from conftest import toy_energy_forces, toy_geometries

DATA = os.path.join(os.path.dirname(gdmlx.__file__), "data", "ethanol_gfn2_500K.npz")


def test_iterative_solver_writes_few_lines_to_a_log(capsys):
    """In a log file the solve wrote a line every 50 iterations: 16 lines a second (ethanol,
    200 geometries), thousands in an hour. Now iteration 50's, then one every 10 s."""
    R = toy_geometries(12, seed=5)
    _, F = toy_energy_forces(R)
    opts = gdmlx.ComputeOptions(verbose=True, preconditioner_points=1, cg_tol=1e-14)
    model = gdmlx.GDMLRegressor(sigma=2.0, lam=1e-10, solver="cg", options=opts).fit(
        R, F, z=np.array([6, 6, 8, 6, 1]))
    assert model.fit_info_["cg_products"] >= 150                   # iterations 50, 100, 150 passed
    reports = [line for line in capsys.readouterr().err.splitlines() if "conjugate gradient" in line and "[" in line]
    assert len(reports) == 1 and "[50: " in reports[0]


def test_sample_writes_few_progress_lines_to_a_log(tmp_path, capsys):
    """gdmlx sample wrote a progress line every 10 frames and every 5 % of the equilibration,
    however fast they came: 3 lines a second with EMT. Now the first (with its ETA), then
    paced as MD's (a line every 10 s in a log file), and the last."""
    import ase
    import ase.io

    from gdmlx.cli.main import main
    ds = gdmlx.load_dataset(DATA)
    ase.io.write(tmp_path / "start.xyz", ase.Atoms(numbers=ds.z, positions=ds.R[0]))
    out = tmp_path / "s.npz"
    assert main(["sample", "--xyz", str(tmp_path / "start.xyz"), "--calculator", "emt", "--temperature", "300",
                 "--n", "40", "--every", "2", "--equilibrate", "0.2", "-o", str(out)]) == 0
    lines = [line for line in capsys.readouterr().err.splitlines() if line.startswith("sample: ")]
    assert [line.split(" steps")[0].split(" frames")[0] for line in lines] == [
        "sample: equilibrating, 100/400", "sample: equilibrating, 400/400", "sample: 10/40", "sample: 40/40"]
    assert len(gdmlx.load_dataset(out)) == 40


def test_a_solve_stopped_at_the_iteration_cap_names_its_checkpoint_and_goes_on(toy_npz, tmp_path, capsys):
    """gdmlx train --solver cg stopped at --cg-max-iter advised a larger cap, and left
    m.h5.cg-sigma2.npz beside the output without a word. The error now names it, and the
    command with a larger cap goes on from there."""
    from gdmlx.cli.main import main
    out = tmp_path / "m.h5"
    argv = ["train", str(toy_npz), "--n-train", "20", "--solver", "cg", "--lam", "1e-4", "--cg-tol", "1e-8",
            "--sigma", "2", "--preconditioner-points", "1", "-o", str(out)]
    assert main(argv + ["--cg-max-iter", "30"]) == 2
    checkpoint = f"{out}.cg-sigma2.npz"
    assert f"{checkpoint} keeps the solve" in capsys.readouterr().err and os.path.exists(checkpoint)
    assert main(argv) == 0
    assert f"resuming from {checkpoint} at iteration 20" in capsys.readouterr().err
    assert not os.path.exists(checkpoint) and gdmlx.load_model(out).sigma == 2


def test_split_shows_its_parts_training(toy_npz, toy_model, tmp_path, capsys):
    """gdmlx split trains two models, the slow one as large as gdmlx train's, and said
    nothing until both were done. Now each part's stages are shown, as train shows them;
    --json keeps stdout pure JSON and stderr free of them."""
    import json

    from gdmlx.cli.main import main
    toy_model.save(tmp_path / "m.h5")
    for source in (["--n-train", "30", str(toy_npz)], [str(tmp_path / "m.h5")]):
        assert main(["split", *source, "--n-fast", "20", "-o", str(tmp_path / "ms.h5")]) == 0
        solves = [line for line in capsys.readouterr().err.splitlines()
                  if line.startswith("gdmlx: Cholesky solve ") and line.endswith(" s")]
        assert len(solves) == 2                       # the fast part's and the slow part's
    assert main(["split", str(tmp_path / "m.h5"), "--n-fast", "20", "-o", str(tmp_path / "ms.h5"), "--json"]) == 0
    out, err = capsys.readouterr()
    assert json.loads(out)["n_train_fast"] == 20 and "gdmlx: " not in err


@pytest.mark.parametrize("command, target", [("reduce", "gdmlx.reduction.reduce"),
                                             ("split", "gdmlx.multiscale.MultiscaleModel.fit"),
                                             ("action", "gdmlx.action.ActionModel.fit")])
def test_a_stopped_command_says_its_output_is_not_written(command, target, toy_npz, toy_model, tmp_path,
                                                          capsys, monkeypatch):
    """Ctrl-C or SIGTERM in gdmlx reduce, split or action train said only 'interrupted':
    was a part of the output kept, and can the run go on? Now it says."""
    from gdmlx.cli.main import main
    from gdmlx.interrupts import Terminated

    def stop(*args, **kwargs):
        raise Terminated
    monkeypatch.setattr(target, stop)
    model, out = str(tmp_path / "m.h5"), tmp_path / "out.h5"
    toy_model.save(model)
    argv = {"reduce": ["reduce", model, str(toy_npz)], "split": ["split", model],
            "action": ["action", "train", str(tmp_path / "ref.h5"), "--model", model, "--stride", "2"]}[command]
    assert main(argv + ["-o", str(out)]) == 143
    name = "action train" if command == "action" else command
    assert f"gdmlx {name}: stopped, {out} not written; the same command starts over" in capsys.readouterr().err
    assert not out.exists()


def test_reduce_first_reports_the_unreduced_model(toy_npz, toy_model, tmp_path, capsys):
    """gdmlx reduce's first line came after the importance ranking and a whole round's
    retraining (53 s for a 300-geometry aspirin model), and no line gave the MAE the rounds'
    percentages refer to. Now the unreduced model's comes first."""
    from gdmlx.cli.main import main
    toy_model.save(tmp_path / "m.h5")
    assert main(["reduce", str(tmp_path / "m.h5"), str(toy_npz), "--n-valid", "15", "--n-test", "10",
                 "-o", str(tmp_path / "r.h5")]) == 0
    lines = [line for line in capsys.readouterr().err.splitlines() if line.startswith("reduce: ")]
    assert lines[0].startswith(f"reduce: {len(toy_model.pairs_)} pairs, validation force MAE ")
    assert "(unreduced)" in lines[0] and "(unreduced)" not in "".join(lines[1:]) and len(lines) > 1


def test_a_stopped_sigma_scan_with_json_prints_the_finished_sigmas(toy_npz, tmp_path, capsys, monkeypatch):
    """gdmlx train --json stopped by SIGTERM (a batch system's time limit) printed nothing on
    stdout, not even JSON: the finished sigmas were lost to a script. Now, as md --json does,
    it prints what was done, with no model."""
    import json

    from gdmlx.cli.main import main
    from gdmlx.interrupts import Terminated
    fit = gdmlx.GDMLRegressor.fit

    def stop_at_the_second(self, *args, **kwargs):
        if self.sigma == 3:
            raise Terminated
        return fit(self, *args, **kwargs)
    monkeypatch.setattr(gdmlx.GDMLRegressor, "fit", stop_at_the_second)
    out = tmp_path / "m.h5"
    assert main(["train", str(toy_npz), "--n-train", "20", "--sigma", "2,3", "--json", "-o", str(out)]) == 143
    summary = json.loads(capsys.readouterr().out)
    assert summary["model"] is None and summary["stopped"] == "terminated (SIGTERM)"
    assert [err["sigma"] for err in summary["grid"]] == [2] and summary["grid"][0]["f_mae"] > 0
    assert not out.exists()


def test_a_second_run_on_the_same_hdf5_output_leaves_the_first_ones_file_alone(tmp_path):
    """h5py's mode "w" empties a file before HDF5 finds its lock: a second `gdmlx md -o c.h5`
    was refused, but the running one's c.h5.part was already cut to nothing ('bad local heap
    signature' when read). The second writer is refused before it touches the file."""
    import subprocess
    import sys

    from gdmlx.md.trajectory import HDF5Trajectory
    path = tmp_path / "c.h5"
    holder = subprocess.Popen([sys.executable, "-c", (
        "import sys, time, numpy as np\n"
        "from gdmlx.md.trajectory import HDF5Trajectory\n"
        f"w = HDF5Trajectory({str(path)!r}, np.array([1, 1]), np.ones(2), {{}})\n"
        "w.append([0.5], np.zeros((1, 2, 3)), np.zeros((1, 2, 3)), [0.0], [0.0]); w.f.flush()\n"
        "print('ready', flush=True); time.sleep(60)\n")], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "ready"
        part = tmp_path / "c.h5.part"
        size = part.stat().st_size
        with pytest.raises(OSError, match="is another run writing"):
            HDF5Trajectory(str(path), np.array([1, 1]), np.ones(2), {})
        assert part.stat().st_size == size > 0
    finally:
        holder.kill()
        holder.wait()


def test_ctrl_c_inside_a_checkpoint_save_names_the_iteration_the_file_holds(tmp_path, monkeypatch):
    """Ctrl-C arriving just after the checkpoint file was replaced, before the solve noted
    it: the note named the previous save (iteration 5) while the file held 10, from which the
    next run resumed."""
    import signal

    from gdmlx.cg import conjugate_gradient
    rng = np.random.default_rng(0)
    Q = rng.standard_normal((40, 40))
    A = Q @ Q.T + 1e-3 * np.eye(40)
    path = str(tmp_path / "solve.npz")
    real_replace, saves, notes = os.replace, [], []

    def replace_then_ctrl_c(src, dst):
        real_replace(src, dst)
        saves.append(dst)
        if len(saves) == 2:
            signal.raise_signal(signal.SIGINT)
    monkeypatch.setattr(os, "replace", replace_then_ctrl_c)
    with pytest.raises(KeyboardInterrupt):
        conjugate_gradient(lambda v: A @ v, np.ones(40), tol=1e-14, max_iter=100, checkpoint=path,
                           checkpoint_every=5, checkpoint_key="k", notify=notes.append)
    with np.load(path) as f:
        assert int(f["it"]) == 10
    assert notes == [f"stopped; {path} keeps the solve at iteration 10: the same command resumes from there"]
