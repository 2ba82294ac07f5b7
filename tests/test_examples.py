"""The example scripts a new user copies from run as they are (the long-stride one, which
takes half a minute, excepted)."""

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
