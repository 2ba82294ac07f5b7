"""Every gdmlx file kind given where another is expected: each command and loader says what
the file is and where it goes; gdmlx info describes every kind."""

import json
import warnings
from pathlib import Path

import ase
import ase.io
import numpy as np
import pytest
from ase.calculators.singlepoint import SinglePointCalculator

import gdmlx
from gdmlx.cli.main import main
from gdmlx.expansion import force_model_fingerprint
from gdmlx.file_kinds import file_kind
from gdmlx.md.trajectory import open_trajectory
from gdmlx.units import energy_in_ev

SGDML_MODEL = Path(__file__).parent / "data" / "sgdml_ethanol20_model.npz"


def build_files(folder, model, data):
    """One small file of each kind in ``folder`` (a pathlib.Path), from a fitted toy ``model``
    and its ``data`` (R, F, E, z): a dict kind -> path (str)."""
    import h5py
    R, F, E, z = data
    files = {k: str(folder / name) for k, name in (
        ("dataset", "d.npz"), ("dataset h5", "d.h5"), ("dataset xyz", "d.xyz"), ("model", "m.h5"),
        ("multiscale", "ms.h5"), ("action", "act.h5"), ("trajectory", "t.h5"), ("replicas", "r.h5"),
        ("xyz trajectory", "t.xyz"), ("stopped", "stopped.h5"))}
    files["sgdml"] = str(SGDML_MODEL)
    gdmlx.Dataset(R=R, z=z, F=F, E=E, name="toy").save_npz(files["dataset"])
    with h5py.File(files["dataset h5"], "w") as f:
        f["R"], f["z"], f["F"], f["E"] = R, z, F, E
        f.attrs.update(e_unit="kcal/mol", r_unit="Ang")
    frames, ev = [], energy_in_ev("kcal/mol")          # ASE formats are in eV
    for r, e, forces in zip(R[:5], E, F):
        atoms = ase.Atoms(numbers=z, positions=r)
        atoms.calc = SinglePointCalculator(atoms, energy=e * ev, forces=forces * ev)
        frames.append(atoms)
    ase.io.write(files["dataset xyz"], frames, format="extxyz")
    model.save(files["model"])
    gdmlx.MultiscaleModel(fast=gdmlx.GDMLRegressor(sigma=1.5), slow=gdmlx.GDMLRegressor(sigma=2.0),
                          max_hops=1, n_fast=5).fit(R[:10], F[:10], E[:10], z=z).save(files["multiscale"])
    gdmlx.md.Simulation(model, R[0], dt_fs=0.125, temperature_K=300, seed=0).run(
        400, trajectory=files["trajectory"], save_every=2, progress=False)
    with warnings.catch_warnings():              # 10 pairs learn little: no matter here
        warnings.simplefilter("ignore", UserWarning)
        gdmlx.ActionModel(stride_fs=1.0, sigma=1.0, n_train=10, n_valid=10).fit(
            [files["trajectory"]], model, verbose=False).save(files["action"])
    masses = ase.data.atomic_masses[z]
    settings = {"dt_fs": 0.5, "temperature_K": 300.0, "gamma_per_fs": 0.01, "slow_every": 1,
                "force_model": force_model_fingerprint(model)}
    for kind, n_replicas, status in (("replicas", 2, 0), ("stopped", None, 1)):
        writer = open_trajectory(files[kind], z, masses, settings, n_replicas)
        lead = (3,) if n_replicas is None else (3, n_replicas)
        writer.append([5.0, 10.0, 15.0], np.broadcast_to(R[0], lead + R[0].shape), np.zeros(lead + R[0].shape),
                      np.zeros(lead), np.zeros(lead))
        writer.close(complete=status == 0, status=status)
    writer = open_trajectory(files["xyz trajectory"], z, masses, {})
    writer.append([5.0, 10.0], R[:2], np.zeros_like(R[:2]), [0.0, 0.0], [0.0, 0.0])
    writer.close(complete=True, status=0)
    return files


@pytest.fixture(scope="module")
def files(tmp_path_factory, toy_model, toy_data):
    return build_files(tmp_path_factory.mktemp("kinds"), toy_model, toy_data)


def test_file_kind_names_each_file(files, tmp_path):
    kinds = {k: file_kind(p) for k, p in files.items()}
    assert kinds == {"dataset": "dataset", "dataset h5": "dataset", "dataset xyz": "dataset", "model": "model",
                     "multiscale": "multiscale", "action": "action", "trajectory": "trajectory",
                     "replicas": "trajectory", "xyz trajectory": "xyz trajectory", "stopped": "trajectory",
                     "sgdml": "sgdml"}
    (tmp_path / "junk.h5").write_bytes(b"junk")
    ase.io.write(tmp_path / "plain.xyz", ase.Atoms("H2", positions=[[0, 0, 0], [0, 0, 0.7]]))
    assert file_kind(tmp_path / "junk.h5") is file_kind(tmp_path / "plain.xyz") is file_kind(tmp_path / "no") is None


IS = {"dataset": "is a dataset", "dataset h5": "is a dataset", "dataset xyz": "is a dataset",
      "model": "is a gdmlx model", "multiscale": "is a multiscale model", "action": "is an action model",
      "trajectory": "is an MD trajectory", "replicas": "is an MD trajectory",
      "xyz trajectory": "is an MD trajectory in extended XYZ", "sgdml": "is an sGDML model"}
MD = ["--steps", "10"]
CALC = ["--calculator", "emt"]
# (arguments with {kind} for the wrong file, its kinds, what the message says is expected or to run)
CASES = [
    (["train", "{}", "--n-train", "5", "-o", "{out}.h5"],
     ["model", "multiscale", "action", "trajectory", "xyz trajectory", "sgdml"], "not a dataset"),
    (["test", "{}", "{dataset}"], ["dataset", "dataset h5", "action", "trajectory", "xyz trajectory"],
     "not a force field"),
    (["test", "{model}", "{}"], ["model", "trajectory", "sgdml", "action"], "not a dataset"),
    (["md", "{}", *MD], ["dataset", "dataset xyz", "trajectory"], "not a force field"),
    (["md", "{action}", *MD], [], "--action"),
    (["md", "{model}", *MD, "--xyz", "{}"], ["dataset", "dataset h5", "model", "sgdml"], "not a"),
    (["md", "{model}", *MD, "--restart", "{}"], ["dataset", "dataset h5", "model", "action", "sgdml"],
     "not a gdmlx trajectory"),
    (["md", "{model}", *MD, "--action", "{}"], ["model", "dataset", "trajectory", "sgdml"],
     "not an action model"),
    (["split", "{}", "-o", "{out}.h5"], ["trajectory", "action", "xyz trajectory"], "not a model or dataset to split"),
    (["split", "{}", "-o", "{out}.h5"], ["sgdml"], "split its dataset"),
    (["reduce", "{}", "{dataset}", "-o", "{out}.h5"], ["dataset", "trajectory"], "not a force field"),
    (["reduce", "{model}", "{}", "-o", "{out}.h5"], ["model", "trajectory"], "not a dataset"),
    (["sample", "--xyz", "{}", *CALC, "--n", "2", "-o", "{out}.npz"], ["model", "dataset", "sgdml"], "not a"),
    (["validate", "{}", "{trajectory}", *CALC], ["trajectory", "dataset"], "not a force field"),
    (["validate", "{model}", "{}", *CALC], ["dataset", "dataset xyz", "model", "sgdml"], "trajectory"),
    (["validate", "{model}", "{trajectory}", *CALC, "--data", "{}"], ["trajectory", "model"], "not a dataset"),
    (["action", "train", "{}", "--model", "{model}", "--stride", "1", "-o", "{out}.h5"],
     ["dataset", "model", "xyz trajectory", "sgdml", "action"], "not a gdmlx trajectory"),
    (["action", "train", "{trajectory}", "--model", "{}", "--stride", "1", "-o", "{out}.h5"],
     ["trajectory", "dataset", "action"], "not a force field"),
]
PAIRS = [(argv, kind, expected) for argv, kinds, expected in CASES for kind in kinds]


@pytest.mark.parametrize("argv, kind, expected", PAIRS,
                         ids=[f"{' '.join(a[:2])}-{k}" for a, k, _ in PAIRS])
def test_each_command_says_what_a_wrong_file_is(files, tmp_path, capsys, argv, kind, expected):
    args = [a.format(files.get(kind), out=tmp_path / "out", **{k.replace(" ", "_"): p for k, p in files.items()})
            for a in argv]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and IS[kind] in err and expected in err, err


def test_an_action_model_given_as_the_force_field_says_how_to_run_it(files, capsys):
    assert main(["md", files["action"], "--steps", "10"]) == 2
    err = capsys.readouterr().err
    assert "is an action model" in err and f"gdmlx md FORCE_MODEL --action {files['action']}" in err


# (loader, the kinds it reads)
LOADERS = [
    (gdmlx.load_dataset, ("dataset", "dataset h5", "dataset xyz")),
    (gdmlx.load_model, ("model", "multiscale")),
    (gdmlx.load_any_model, ("model", "multiscale", "sgdml")),
    (gdmlx.md.read_trajectory, ("trajectory", "replicas", "stopped")),
    (gdmlx.ActionModel.load, ("action",)),
    (gdmlx.import_sgdml_model, ("sgdml",)),
]


@pytest.mark.parametrize("loader, accepted", LOADERS, ids=[f[0].__qualname__ for f in LOADERS])
def test_python_loaders_say_what_a_wrong_file_is(files, loader, accepted):
    for kind, path in files.items():
        if kind in accepted:
            loader(path)
        else:
            with pytest.raises((gdmlx.InputError, gdmlx.ModelFileError), match=IS.get(kind, "is an MD trajectory")):
                loader(path)


def test_action_fit_says_what_a_file_that_is_no_trajectory_is(files, toy_model):
    for kind in ("dataset", "dataset h5", "dataset xyz", "model", "multiscale", "action", "xyz trajectory", "sgdml"):
        with pytest.raises(gdmlx.InputError, match=f"{IS[kind]}.*, not a gdmlx trajectory"):
            gdmlx.ActionModel(stride_fs=1.0, n_train=5).fit(files[kind], toy_model, verbose=False)


def run_info(capsys, path):
    assert main(["info", path, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_info_describes_a_dataset(files, toy_data, capsys):
    R, F, E, z = toy_data
    for kind in ("dataset", "dataset h5", "dataset xyz"):
        d = run_info(capsys, files[kind])
        n = 5 if kind == "dataset xyz" else len(R)
        assert d["kind"] == "dataset" and d["formula"] == "C3HO" and d["n_atoms"] == 5 and d["n_geometries"] == n
        assert d["energies"] and d["forces"] and not d["periodic"]
        assert d["energy_range"] == pytest.approx([E[:n].min(), E[:n].max()])
        assert d["force_range"] == pytest.approx([F[:n].min(), F[:n].max()])
    assert d["energy_unit"] == "kcal/mol" and d["length_unit"] == "Ang"       # from ASE's eV
    assert main(["info", files["dataset"]]) == 0
    out = capsys.readouterr().out
    assert "C3HO (5 atoms): dataset of 60 geometries, energies and forces in kcal/mol and Ang" in out
    assert "name 'toy'" in out


def test_info_describes_trajectories(files, toy_model, capsys):
    d = run_info(capsys, files["trajectory"])
    assert d == {"kind": "trajectory", "formula": "C3HO", "n_atoms": 5, "z": [6, 6, 8, 6, 1], "n_frames": 200,
                 "n_replicas": None, "time_fs": [0.25, 50.0], "complete": True, "stopped": None, "dt_fs": 0.125,
                 "thermostat": "nve", "friction_per_fs": None, "temperature_K": 300.0,
                 "integrator": None, "slow_every": 1, "force_model": force_model_fingerprint(toy_model),
            "contact_wall": True}
    d = run_info(capsys, files["replicas"])
    assert d["n_replicas"] == 2 and d["n_frames"] == 3 and d["time_fs"] == [5.0, 15.0]
    assert d["thermostat"] == "langevin" and d["friction_per_fs"] == 0.01
    d = run_info(capsys, files["stopped"])
    assert not d["complete"] and "closer than half the shortest distance" in d["stopped"]
    d = run_info(capsys, files["xyz trajectory"])
    assert (d["n_frames"], d["time_fs"], d["complete"], d["force_model"], d["dt_fs"]) == (2, [5.0, 10.0], True,
                                                                                          None, None)
    assert main(["info", files["stopped"]]) == 0
    out = capsys.readouterr().out
    assert "MD trajectory, 3 frames, t = 5 to 15 fs; Langevin at 300 K, step 0.5 fs" in out
    assert "incomplete: two atoms came closer" in out and f"--restart {files['stopped']}" in out
    assert main(["info", files["model"]]) == 0
    assert force_model_fingerprint(toy_model)[:12] in capsys.readouterr().out


def test_info_json_says_the_kind_of_every_model(files, capsys):
    assert [run_info(capsys, files[k])["kind"] for k in ("model", "multiscale", "action", "sgdml")] == [
        "model", "multiscale", "action", "sgdml"]
