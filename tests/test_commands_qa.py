"""Quality checks of the smaller commands (validate, info, export) and the backend switch:
what a user sees on a killed run's files, damaged or odd inputs, models export refused, and
a CuPy that cannot be used."""

import copy
import importlib.util
import json
import subprocess
import sys
import types
from pathlib import Path

import numpy as np
import pytest

import gdmlx
import gdmlx.backend as backend
from conftest import toy_geometries
from gdmlx.cli.main import main
from gdmlx.errors import InputError
from gdmlx.md.reference_check import check_trajectory
from gdmlx.md.trajectory import open_trajectory

SGDML_MODEL = Path(__file__).parent / "data" / "sgdml_ethanol20_model.npz"


@pytest.fixture(scope="module")
def run_files(tmp_path_factory, toy_model):
    """A saved toy model and an extended XYZ trajectory of 8 frames of it (gdmlx md's layout)."""
    folder = tmp_path_factory.mktemp("qa")
    model = folder / "m.h5"
    toy_model.save(model)
    R = toy_geometries(8, seed=3, noise=0.05)
    writer = open_trajectory(str(folder / "run.xyz"), toy_model.z_, np.ones(5), {})
    writer.append(np.arange(1.0, 9.0), R, np.zeros_like(R), np.zeros(8), np.zeros(8))
    writer.close(complete=True, status=0)
    return folder, model, R


def validate_json(capsys, model, trajectory, frames=3):
    assert main(["validate", str(model), str(trajectory), "--calculator", "emt", "--frames", str(frames),
                 "--skip", "0", "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_validate_reads_the_whole_frames_of_a_killed_xyz_run(run_files, capsys):
    """A run killed while writing leaves run.xyz.part with a cut last frame (gdmlx info and
    md --restart read it): validate labels its whole frames, as those of a clean file."""
    folder, model, R = run_files
    lines = (folder / "run.xyz").read_bytes().splitlines(keepends=True)
    (folder / "first7.xyz").write_bytes(b"".join(lines[:7 * 7]))         # 5 atoms: 7 lines a frame
    cut = b"".join(lines[:7 * 7 + 4]) + lines[7 * 7 + 4][:20]              # the 8th frame cut mid-line
    for name in ("killed.xyz.part", "killed.xyz"):
        (folder / name).write_bytes(cut)
    clean = validate_json(capsys, model, folder / "first7.xyz", frames=7)
    assert clean["frames"] == list(range(7))
    for name in ("killed.xyz.part", "killed.xyz"):
        assert validate_json(capsys, model, folder / name, frames=7) == clean


@pytest.mark.parametrize("content, message", [
    (b"1000000\nProperties=species:S:1:pos:R:3:masses:R:1:momenta:R:3 time_fs=1.0\nC 0 0 0 1 0 0 0\n",
     "holds no whole frame"),            # ASE read on past the end: hours for a count of 10^12
    (b"hello\n", "is no atom count")])
def test_validate_says_what_is_wrong_with_a_damaged_xyz(run_files, tmp_path, capsys, content, message):
    path = tmp_path / "bad.xyz"
    path.write_bytes(content)
    assert main(["validate", str(run_files[1]), str(path), "--calculator", "emt"]) == 2
    assert message in capsys.readouterr().err


def test_validate_on_a_trajectory_without_frames_says_so(run_files, tmp_path, capsys):
    path = tmp_path / "empty.h5"
    open_trajectory(str(path), np.array([6, 6, 8, 6, 1]), np.ones(5), {}).close(complete=False, status=0)
    assert main(["validate", str(run_files[1]), str(path), "--calculator", "emt"]) == 2
    assert "empty.h5 holds no whole frame" in capsys.readouterr().err


@pytest.mark.parametrize("kwargs, message", [
    ({"skip": -0.5}, "skip must be"),       # was accepted: frame index -4, the run's 5th-last frame
    ({"skip": 1.0}, "skip is the fraction"), ({"n_frames": 0}, "n_frames must be at least 1"),
    ({"n_frames": 2.5}, "n_frames must be a whole number")])
def test_check_trajectory_refuses_settings_that_pick_no_or_wrong_frames(toy_model, run_files, kwargs, message):
    from ase.calculators.emt import EMT
    with pytest.raises(InputError, match=message):
        check_trajectory(toy_model, run_files[2], EMT(), **{"n_frames": 3, **kwargs})


def test_info_on_a_directory_or_an_empty_file_says_what_it_is(tmp_path, capsys):
    (tmp_path / "folder.h5").mkdir()
    (tmp_path / "empty.npz").write_bytes(b"")
    assert main(["info", str(tmp_path / "folder.h5")]) == 2
    assert "folder.h5 is a directory" in capsys.readouterr().err
    assert main(["info", str(tmp_path / "empty.npz")]) == 2
    assert "empty.npz is empty (0 bytes)" in capsys.readouterr().err


def test_info_on_a_trajectory_being_written_says_so(run_files, tmp_path, capsys):
    """gdmlx md writes run.h5.part and HDF5 locks it while the run goes: info said 'ASE could
    not read it as a trajectory (part)'."""
    path = tmp_path / "run.h5.part"
    gdmlx.md.Simulation(gdmlx.load_model(run_files[1]), run_files[2][0], temperature_K=50, seed=0).run(
        20, trajectory=str(tmp_path / "run.h5"), save_every=10, progress=False)
    (tmp_path / "run.h5").rename(path)
    holder = subprocess.Popen([sys.executable, "-c", "import h5py, sys, time; f = h5py.File(sys.argv[1], 'a'); "
                               "print('open', flush=True); time.sleep(60)", str(path)],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "open"
        assert main(["info", str(path)]) == 2
        assert "is being written by another process" in capsys.readouterr().err
    finally:
        holder.kill()
        holder.wait()
    assert main(["info", str(path), "--json"]) == 0             # once the writer is gone, it is read
    assert json.loads(capsys.readouterr().out)["n_frames"] == 2


@pytest.fixture
def fresh_cupy_check(monkeypatch):
    """The CuPy probe asked anew (its answer is cached per process), and again afterwards."""
    backend._cupy_status.cache_clear()
    yield monkeypatch
    monkeypatch.undo()
    backend._cupy_status.cache_clear()


def _cupy_without_a_device():
    def no_device():
        raise RuntimeError("cudaErrorInsufficientDriver: CUDA driver version is insufficient for CUDA runtime")
    return types.SimpleNamespace(cuda=types.SimpleNamespace(runtime=types.SimpleNamespace(getDeviceCount=no_device)))


class _BrokenCupyFinder:
    """An installed CuPy whose import fails as a build for another numpy or CUDA does."""

    def find_spec(self, name, path=None, target=None):
        if name != "cupy":
            return None
        return importlib.util.spec_from_loader(name, self)

    def create_module(self, spec):
        return None

    def exec_module(self, module):
        raise AttributeError("module 'numpy' has no attribute 'complex_'")


@pytest.mark.parametrize("module, reason", [
    (None, "CuPy is not installed"), (_cupy_without_a_device(), "CUDA driver version is insufficient"),
    ("broken", "does not import \\(AttributeError")])
def test_gpu_backend_says_why_cupy_cannot_be_used(fresh_cupy_check, toy_model, toy_data, module, reason):
    """CuPy installed for a driver it cannot use: the message said only to install CuPy; one
    whose import raised other than ImportError made even backend='auto' a traceback."""
    if module == "broken":
        fresh_cupy_check.delitem(sys.modules, "cupy", raising=False)
        fresh_cupy_check.setattr(sys, "meta_path", [_BrokenCupyFinder(), *sys.meta_path])
    else:
        fresh_cupy_check.setitem(sys.modules, "cupy", module)
    with pytest.raises(backend.BackendUnavailableError, match=reason):
        backend.resolve_backend("gpu")
    assert backend.resolve_backend("auto") == "cpu"
    R = toy_data[0][:4]
    auto = copy.deepcopy(toy_model).set_backend("auto")
    np.testing.assert_array_equal(auto.predict(R), toy_model.predict(R))


def test_info_says_when_a_model_was_trained_without_energies(toy_model, toy_data, tmp_path, capsys):
    """Such a model's energies are up to a constant: info called it 'energy labels offset only'."""
    R, F, E, z = toy_data
    forces_only = tmp_path / "forces_only.h5"
    gdmlx.GDMLRegressor(sigma=2.0).fit(R[:10], F[:10], z=z).save(forces_only)
    toy_model.save(tmp_path / "m.h5")
    assert main(["info", str(forces_only)]) == 0
    assert "no energy labels (trained on forces only" in capsys.readouterr().out
    gdmlx.export_sgdml_model(gdmlx.load_model(forces_only), tmp_path / "forces_only.npz")   # use_E False
    expected = {forces_only: False, tmp_path / "m.h5": True, SGDML_MODEL: None,       # None: no data kept
                tmp_path / "forces_only.npz": False}
    for path, trained in expected.items():
        assert main(["info", str(path), "--json"]) == 0
        assert json.loads(capsys.readouterr().out)["trained_with_energies"] is trained


def test_a_model_on_every_pair_in_another_order_is_exported(toy_data, tmp_path):
    """Every pair, as (i < j) or shuffled: sGDML's model is the same with its features in its
    own order. Export refused it ('use all 10 atom pairs; this model's descriptor has 10')."""
    R, F, E, z = toy_data
    pairs = np.array(np.triu_indices(5, 1)).T[np.random.default_rng(0).permutation(10)]
    pairs[::3] = pairs[::3, ::-1]
    model = gdmlx.GDMLRegressor(sigma=2.0, use_energy_labels=True, pairs=pairs).fit(R[:15], F[:15], E[:15], z=z)
    back = gdmlx.import_sgdml_model(gdmlx.export_sgdml_model(model, tmp_path / "m.npz"))
    E_back, F_back = back.predict_energy_forces(R[40:])
    E_ref, F_ref = model.predict_energy_forces(R[40:])
    np.testing.assert_allclose(E_back, E_ref, rtol=0, atol=1e-9 * np.abs(E_ref).max())
    np.testing.assert_allclose(F_back, F_ref, rtol=0, atol=1e-10 * np.abs(F_ref).max())
