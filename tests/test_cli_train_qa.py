"""QA of the training-side commands: gdmlx train / test."""

import re

import pytest

from gdmlx.cli.main import main


def test_a_sigma_range_of_too_many_values_is_refused(toy_npz, tmp_path, capsys):
    """--sigma 10:1e-300:20 built a list of 1e301 sigmas: the command hung."""
    assert main(["train", str(toy_npz), "--n-train", "20", "--sigma", "1:1e-300:2",
                 "-o", str(tmp_path / "m.h5")]) == 2
    assert "--sigma '1:1e-300:2'" in capsys.readouterr().err
    assert not (tmp_path / "m.h5").exists()


@pytest.mark.parametrize("skip", ["1", "nan", "inf", "-0.1", "abc"])
def test_validate_skip_is_checked_as_an_argument(skip, capsys):
    """--skip was a plain float checked at run time ('--frames must be >= 1 and --skip in
    [0, 1)', after argparse, naming both options); now argparse names --skip."""
    with pytest.raises(SystemExit) as exc:
        main(["validate", "m.h5", "t.h5", "--calculator", "emt", "--skip", skip])
    assert exc.value.code == 2
    assert "argument --skip: expected a" in capsys.readouterr().err


@pytest.mark.parametrize("n_train", ["800", "801"])
def test_demo_refuses_a_training_set_that_leaves_nothing_to_test(n_train, capsys):
    """--n-train 801 said 'n_valid (--n-valid) must be between 1 and 199' (demo has no
    --n-valid); --n-train 800 trained 800 points and then failed on an empty test set."""
    assert main(["demo", "--n-train", n_train]) == 2
    err = capsys.readouterr().err
    assert f"--n-train {n_train}" in err and "at most 799" in err and "--n-valid" not in err


def test_the_cg_iteration_cap_is_an_option(toy_npz, tmp_path, capsys):
    """The solver's failure advised raising ComputeOptions.cg_max_iter, which the command line
    could not set."""
    argv = ["train", str(toy_npz), "--n-train", "20", "--solver", "cg", "--lam", "1e-10", "--cg-tol", "1e-12",
            "--sigma", "2", "-o", str(tmp_path / "m.h5")]
    assert main(argv + ["--cg-max-iter", "2"]) != 0
    err = capsys.readouterr().err
    assert "in 2 iterations" in err and "gdmlx train --cg-max-iter" in err
    assert not (tmp_path / "m.h5").exists()


def test_an_interrupted_sigma_scan_names_the_best_finished_sigma(toy_npz, tmp_path, capsys, monkeypatch):
    """Ctrl-C in a scan of sigmas (hours for a large molecule) said only 'interrupted': the
    finished sigmas' results were lost with it."""
    import gdmlx
    fit, calls = gdmlx.GDMLRegressor.fit, []

    def stop_at_the_third(self, *args, **kwargs):
        calls.append(self.sigma)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return fit(self, *args, **kwargs)
    monkeypatch.setattr(gdmlx.GDMLRegressor, "fit", stop_at_the_third)
    out = tmp_path / "m.h5"
    assert main(["train", str(toy_npz), "--n-train", "20", "--sigma", "1,2,4", "-o", str(out)]) == 130
    err = capsys.readouterr().err
    finished = {float(s): float(r) for s, r in re.findall(r"sigma (\S+): validation force MAE \S+, RMSE (\S+)", err)}
    best = min(finished, key=finished.get)
    assert sorted(finished) == [1.0, 2.0] and not out.exists()
    assert f"interrupted, {out} not written; best of the 2 finished sigma(s): {best:g}" in err
    assert f"--sigma {best:g} trains it alone" in err
