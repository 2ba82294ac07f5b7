"""gdmlx in the environments users run it in: an installed package numba cannot write its
cache into, a damaged cache, the command line with its output going nowhere (a closed pipe,
a full disk, closed streams), thread settings, a deleted working directory, a file system
without file locks. Most checks run in a fresh interpreter."""

import errno
import json
import os
import subprocess
import sys
from pathlib import Path

import h5py
import pytest

import gdmlx
from gdmlx.cli.main import main

ROOT = str(Path(gdmlx.__file__).parents[1])


def run_python(code, stderr=subprocess.PIPE):
    """Run ``code`` in a fresh interpreter with this checkout's gdmlx, its stderr going to
    ``stderr`` (CompletedProcess)."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([ROOT, os.environ.get("PYTHONPATH", "")])}
    env.pop("NUMBA_CACHE_DIR", None)
    return subprocess.run([sys.executable, "-c", code], env=env, text=True, stdout=subprocess.PIPE,
                          stderr=stderr, timeout=120)


# every folder numba tries for its cache refuses its test file, but a temporary one of gdmlx's
READ_ONLY_CACHE_FOLDERS = """
import os, tempfile, warnings
import numpy as np
from numba.core import caching

ensure_cache_path = caching._CacheLocator.ensure_cache_path
temporary = os.path.join(tempfile.gettempdir(), "gdmlx-numba-cache-")

def read_only(locator):
    if not locator.get_cache_path().startswith(temporary):
        raise PermissionError(13, "Read-only file system", locator.get_cache_path())
    ensure_cache_path(locator)

caching._CacheLocator.ensure_cache_path = read_only
"""


def test_kernels_compile_when_no_folder_is_writable_for_numbas_cache():
    """A read-only installed package and a read-only home: the kernels compile into a
    temporary cache folder, with one warning that says how to keep them, and the folder is
    removed at exit (numba raised RuntimeError 'no locator available' on import)."""
    code = READ_ONLY_CACHE_FOLDERS + """
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    from gdmlx.kernels.descriptor import descriptor_batch
x, _ = descriptor_batch(np.array([[[0.0, 0, 0], [1, 0, 0], [0, 2, 0]]]), np.array([[1, 0], [2, 0], [2, 1]]))
assert np.allclose(x, [[1, 0.5, 1 / np.sqrt(5)]]), x
folder = os.environ["NUMBA_CACHE_DIR"]
assert any(name.endswith(".nbi") for _, _, names in os.walk(folder) for name in names), "nothing cached"
print(folder)
print(*[str(w.message) for w in caught], sep="\\n")
"""
    res = run_python(code)
    assert res.returncode == 0, res.stderr
    folder, *messages = res.stdout.splitlines()
    assert not os.path.exists(folder)
    assert len(messages) == 1 and "NUMBA_CACHE_DIR not set" in messages[0], messages
    assert "set NUMBA_CACHE_DIR to a writable folder to keep them" in messages[0]


@pytest.mark.parametrize("module", ["gdmlx.matern", "gdmlx.action", "gdmlx.md.contact"])
def test_modules_compiling_outside_the_kernels_package_find_the_cache_folder_too(module):
    """The Matern kernel, the action model and the MD engine's modules compile kernels of
    their own: imported first, they raised 'cannot cache function' (gdmlx action train)."""
    res = run_python(READ_ONLY_CACHE_FOLDERS + f"import {module}\nprint('imported')")
    assert res.returncode == 0 and res.stdout == "imported\n", res.stderr


def test_no_writable_cache_nor_temporary_folder_is_a_message():
    """Nor a temporary folder to be had: the command says to set NUMBA_CACHE_DIR."""
    code = READ_ONLY_CACHE_FOLDERS + """
tempfile.tempdir = os.path.join(tempfile.gettempdir(), "no such folder")
from gdmlx.cli.main import main
raise SystemExit(main(["demo"]))
"""
    res = run_python(code)
    assert res.returncode == 2
    assert res.stderr.startswith("gdmlx demo: error: numba has no writable folder to cache gdmlx's compiled kernels")
    assert res.stderr.rstrip().endswith("set NUMBA_CACHE_DIR to a writable folder"), res.stderr


def run_gdmlx(argv, stderr=subprocess.PIPE, before=""):
    """``gdmlx argv`` in a fresh interpreter with ``stderr`` (a file descriptor), after the
    Python statements ``before`` (CompletedProcess)."""
    code = f"import sys\n{before}\nfrom gdmlx.cli.main import main\nsys.exit(main({argv!r}))"
    return run_python(code, stderr=stderr)


@pytest.mark.parametrize("stderr", ["a pipe nobody reads", "a full disk", "closed"])
def test_train_and_md_finish_when_their_messages_cannot_be_written(stderr, toy_npz, tmp_path):
    """'gdmlx train ... 2>&1 | head -1': the progress line after the first ended the
    training with exit code 0 and no model; 2>/dev/full: exit code 1 and no model; with
    stderr closed, md raised AttributeError. Now both write their files and exit with 0."""
    model, trajectory = str(tmp_path / "m.h5"), str(tmp_path / "t.h5")
    read, write = os.pipe()
    os.close(read)
    fd = {"a pipe nobody reads": write, "a full disk": os.open("/dev/full", os.O_WRONLY),
          "closed": subprocess.DEVNULL}[stderr]
    before = "sys.stderr = None" if stderr == "closed" else ""
    try:
        assert run_gdmlx(["train", str(toy_npz), "--n-train", "20", "--sigma", "1,2", "-o", model],
                         fd, before).returncode == 0
        assert run_gdmlx(["md", model, "--steps", "100", "-o", trajectory], fd, before).returncode == 0
    finally:
        os.close(write)
        if fd != write and fd != subprocess.DEVNULL:
            os.close(fd)
    assert gdmlx.load_model(model).sigma in (1.0, 2.0)
    frames = gdmlx.md.read_trajectory(trajectory)
    assert frames["complete"] and len(frames["positions"]) == 10


def test_md_runs_with_stderr_closed(toy_model, toy_data, monkeypatch):
    """Under pythonw or a service started without stderr, ``sys.stderr`` is None: asking it
    whether it is a terminal for the progress line raised AttributeError."""
    monkeypatch.setattr(sys, "stderr", None)
    sim = gdmlx.md.Simulation(toy_model, toy_data[0][0], dt_fs=0.5, temperature_K=300, seed=0)
    assert sim.run(20, progress=True)["steps"] == 20


def test_md_json_finishes_with_stdout_closed(toy_model, tmp_path):
    """With stdout closed (``sys.stdout`` None), ``--json`` ended the command with a traceback
    of AttributeError after its work was done."""
    model, trajectory = tmp_path / "m.h5", str(tmp_path / "t.h5")
    gdmlx.save_model(toy_model, model)
    res = run_gdmlx(["md", str(model), "--steps", "100", "-o", trajectory, "--json"], before="sys.stdout = None")
    assert res.returncode == 0, res.stderr
    assert gdmlx.md.read_trajectory(trajectory)["complete"]


def test_a_damaged_numba_cache_file_is_named(toy_npz, tmp_path):
    """A cache file cut short (a crash while numba wrote it): numba raised UnpicklingError
    from deep in its cache in every run; now the command names the folder to clear."""
    cache = tmp_path / "numba cache"
    code = f"""
import errno
import json
import os
os.environ["NUMBA_CACHE_DIR"] = {str(cache)!r}
import numpy as np
from gdmlx.kernels.descriptor import descriptor_batch
descriptor_batch(np.eye(3)[None], np.array([[1, 0], [2, 0], [2, 1]]))
"""
    assert run_python(code).returncode == 0
    damaged = list(cache.rglob("*.nbi"))
    for path in damaged:
        path.write_bytes(path.read_bytes()[:5])
    res = run_gdmlx(["train", str(toy_npz), "--n-train", "20", "-o", str(tmp_path / "m.h5")],
                    before=f"import os\nos.environ['NUMBA_CACHE_DIR'] = {str(cache)!r}")
    assert res.returncode == 2, res.stderr
    assert res.stderr.splitlines()[-1] == (
        f"gdmlx train: error: a file of numba's cache of compiled kernels in {damaged[0].parent} is damaged "
        "(UnpicklingError: pickle data was truncated): delete the *.nbi and *.nbc files there and run again")


def test_numba_threads_below_one_are_named():
    """NUMBA_NUM_THREADS=0 ('0 for all cores'): numba's 'Number of threads specified must be
    > 0.' named no setting."""
    res = run_gdmlx(["demo"], before="import os\nos.environ['NUMBA_NUM_THREADS'] = '0'")
    assert res.returncode == 2
    assert res.stderr == ("gdmlx demo: error: NUMBA_NUM_THREADS=0: the threads of gdmlx's compiled kernels must be "
                          "1 or more; unset it to use all cores\n")


def test_a_deleted_working_directory_is_named(tmp_path):
    """A working directory deleted after the shell entered it: numba compiling a kernel
    failed with '[Errno 2] No such file or directory', every file named being there."""
    gone = tmp_path / "gone"
    res = run_gdmlx(["demo"], before=f"import os\nos.mkdir({str(gone)!r})\nos.chdir({str(gone)!r})\n"
                                     f"os.rmdir({str(gone)!r})")
    assert res.returncode == 2
    assert res.stderr == ("gdmlx demo: error: the working directory was deleted after the shell entered it: cd to "
                          "an existing folder and run again\n")


def test_notes_stay_out_of_the_json_when_stderr_is_closed(toy_model, toy_data, tmp_path):
    """With stderr closed, print sent a note (data converted to the model's units) to stdout,
    ahead of the JSON that scripts read."""
    R, F, E, z = toy_data
    model, data = tmp_path / "m.h5", tmp_path / "in_ev.npz"
    gdmlx.save_model(toy_model, model)
    gdmlx.Dataset(R=R, z=z, F=F, E=E).in_units("eV", "Ang").save_npz(data)
    res = run_gdmlx(["test", str(model), str(data), "--json"], before="sys.stderr = None")
    assert res.returncode == 0
    assert json.loads(res.stdout)["f_mae"] > 0


def test_a_file_system_without_locks_is_named_before_training(toy_npz, tmp_path, monkeypatch, capsys):
    """NFS without lockd: HDF5 cannot lock the model file, which train found after the
    training ('[Errno 37] Unable to synchronously create file', no file named); now before
    it, with the setting that turns HDF5's locks off."""
    fcntl = pytest.importorskip("fcntl")

    def no_locks(fd, operation):
        raise OSError(errno.ENOLCK, "No locks available")

    monkeypatch.setattr(fcntl, "flock", no_locks)
    model = tmp_path / "m.h5"
    assert main(["train", str(toy_npz), "--n-train", "20", "-o", str(model)]) == 2
    assert capsys.readouterr().err == (f"gdmlx train: error: cannot write {model}: the file system of {tmp_path} does "
                                       "not support file locks, which HDF5 takes: set HDF5_USE_FILE_LOCKING=FALSE\n")
    monkeypatch.setenv("HDF5_USE_FILE_LOCKING", "FALSE")
    assert main(["train", str(toy_npz), "--n-train", "20", "-o", str(model)]) == 0


def test_a_file_hdf5_cannot_lock_names_the_setting(toy_model, toy_npz, tmp_path, monkeypatch, capsys):
    """A model on a file system without locks: 'not a readable HDF5 model file' (HDF5's
    ENOLCK), and nothing on how to read it."""
    model = tmp_path / "m.h5"
    gdmlx.save_model(toy_model, model)

    def no_locks(*args, **kwargs):
        raise OSError(errno.ENOLCK, "Unable to synchronously open file (unable to lock file, "
                                    f"errno = {errno.ENOLCK}, error message = 'No locks available')")

    monkeypatch.setattr(h5py, "File", no_locks)
    assert main(["test", str(model), str(toy_npz)]) == 2
    assert capsys.readouterr().err.endswith(
        "; this file system does not support file locks: set HDF5_USE_FILE_LOCKING=FALSE\n")


def test_python_dash_m_gdmlx_runs_the_command():
    """`python -m gdmlx`, the way in when pip put the gdmlx script off PATH (`pip install
    --user`): 'No module named gdmlx.__main__'."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([ROOT, os.environ.get("PYTHONPATH", "")])}
    res = subprocess.run([sys.executable, "-m", "gdmlx", "--version"], env=env, text=True, capture_output=True,
                         timeout=60)
    assert res.returncode == 0 and res.stdout.startswith("gdmlx "), res.stderr


def test_a_verbose_cg_fit_runs_with_stderr_closed(monkeypatch, capsys):
    """pythonw or a service without stderr (sys.stderr None): the CG solve's progress asked
    sys.stderr.isatty() and raised AttributeError, and the stages' lines went to stdout."""
    import numpy as np
    from gdmlx.cli.demo import bundled_dataset_path
    ds = gdmlx.load_dataset(bundled_dataset_path())
    monkeypatch.setattr(sys, "stderr", None)
    model = gdmlx.GDMLRegressor(sigma=10.0, solver="cg", options=gdmlx.ComputeOptions(verbose=True)).fit(
        ds.R[:30], ds.F[:30], z=ds.z)
    assert np.isfinite(model.predict(ds.R[40:41])).all()
    assert capsys.readouterr().out == ""
