"""The example scripts a new user copies from run as they are, and print what they say."""

import runpy
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    """A folder in which train_and_predict.py has written ethanol.h5, as the others expect."""
    path = tmp_path_factory.mktemp("examples")
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(path)
        runpy.run_path(str(EXAMPLES / "train_and_predict.py"), run_name="__main__")
    return path


def test_train_and_predict_writes_a_model(workdir):
    assert (workdir / "ethanol.h5").stat().st_size > 0


@pytest.mark.parametrize("script, printed, written", [
    ("md_native.py", "NVT: mean T", ["nve.h5", "nvt.xyz"]), ("md_with_ase.py", "after 0.5 ps:", [])])
def test_md_examples_run(workdir, script, printed, written, monkeypatch, capsys):
    monkeypatch.chdir(workdir)
    runpy.run_path(str(EXAMPLES / script), run_name="__main__")
    assert printed in capsys.readouterr().out
    for name in written:
        assert (workdir / name).stat().st_size > 0


def test_long_stride_example_learns_a_map_that_beats_verlet_at_its_stride(workdir, monkeypatch, capsys):
    """The slowest example (~20-40 s): its action model removes held-out error, and its map
    holds the total energy closer than velocity Verlet at the same 1-fs step, as it says."""
    import re
    monkeypatch.chdir(workdir)
    runpy.run_path(str(EXAMPLES / "long_stride_map.py"), run_name="__main__")
    out = capsys.readouterr().out
    assert "held-out error removed:" in out
    std = {name: float(v) for name, v in
           re.findall(r"(learned map|velocity Verlet) +stride 1.0 fs: E_tot std (\S+) eV", out)}
    assert set(std) == {"learned map", "velocity Verlet"} and std["learned map"] < std["velocity Verlet"]
    assert (workdir / "ethanol_action.h5").stat().st_size > 0
