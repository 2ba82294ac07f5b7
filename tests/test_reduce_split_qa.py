"""Descriptor reduction and multiscale models as users drive them (gdmlx reduce, gdmlx split,
gdmlx.reduce): regressions found in QA."""

import json

import numpy as np
import pytest

import gdmlx
from gdmlx.cli.main import main


@pytest.fixture(scope="module")
def toy_files(tmp_path_factory, toy_data):
    """The toy data as a file, the same data converted to eV and bohr, and a model trained
    on the first by 'gdmlx train' (25 training, 15 validation, 20 test geometries)."""
    R, F, E, z = toy_data
    folder = tmp_path_factory.mktemp("qa_reduce")
    ds = gdmlx.Dataset(R=R, z=z, F=F, E=E, name="toy")
    ds.save_npz(folder / "toy.npz")
    ds.in_units("eV", "bohr").save_npz(folder / "toy_bohr.npz")
    assert main(["train", str(folder / "toy.npz"), "--n-train", "25", "--n-valid", "15", "--sigma", "2",
                 "--lam", "1e-8", "-o", str(folder / "m.h5"), "--json"]) == 0
    return folder


def run_json(capsys, *argv):
    capsys.readouterr()
    assert main([str(a) for a in argv]) == 0
    return json.loads(capsys.readouterr().out)


def test_reduce_with_the_training_data_in_other_units_keeps_the_models_split(toy_files, tmp_path, capsys):
    """The dataset the model was trained on, given in other units (converted back on
    loading, so its fingerprint differs in the last bits): reduce took it for another
    dataset, validated on geometries of the model's test split, reported test errors on its
    validation geometries, and replaced the recorded split, so that 'gdmlx test' of the
    reduced model on the original file then tested on the geometries that chose its pairs."""
    model = gdmlx.load_model(toy_files / "m.h5")
    out = run_json(capsys, "reduce", toy_files / "m.h5", toy_files / "toy_bohr.npz", "--tol", "0.2",
                   "-o", tmp_path / "r.h5", "--json")
    reduced = gdmlx.load_model(tmp_path / "r.h5")
    np.testing.assert_array_equal(reduced.indices_["valid"], model.indices_["valid"])
    np.testing.assert_array_equal(reduced.indices_["train"], model.indices_["train"])
    assert reduced.dataset_md5_ == model.dataset_md5_              # still the original file's split
    assert out["test_full"]["n"] == out["test_reduced"]["n"] == 60 - 25 - 15
    # the same as reducing with the original file
    same = run_json(capsys, "reduce", toy_files / "m.h5", toy_files / "toy.npz", "--tol", "0.2",
                    "-o", tmp_path / "r2.h5", "--json")
    assert same["pairs_kept"] == out["pairs_kept"]
    assert [r["n_pairs"] for r in same["rounds"]] == [r["n_pairs"] for r in out["rounds"]]
    assert same["test_reduced"]["f_mae"] == pytest.approx(out["test_reduced"]["f_mae"], rel=1e-6)
    test = run_json(capsys, "test", tmp_path / "r.h5", toy_files / "toy.npz", "--json")
    assert test["n"] == 60 - 25 - 15


def test_reduce_does_not_validate_on_the_fast_parts_training_geometries(toy_data):
    """A multiscale model from parts fitted on different geometries (from_parts): the
    validation geometries that choose the slow part's pairs were drawn from all geometries
    the slow part had not seen, the fast part's training geometries among them."""
    R, F, E, z = toy_data
    fast = gdmlx.GDMLRegressor(sigma=2.0, lam=1e-6).fit(R[30:45], F[30:45], E[30:45], z=z)
    slow = gdmlx.GDMLRegressor(sigma=2.0, lam=1e-8).fit(R[:30], F[:30] - fast.predict(R[:30]), None, z=z)
    ms = gdmlx.MultiscaleModel.from_parts(fast, slow)
    reduced = gdmlx.reduce(ms, gdmlx.Dataset(R=R, z=z, F=F, E=E), tol=0.0, progress=False)
    np.testing.assert_array_equal(reduced.slow_.indices_["valid"], np.arange(45, 60))


class CountingProbe:
    """A stand-in for StabilityProbe that records its (costly) runs."""
    n_runs = 3

    def __init__(self):
        self.runs = 0

    def measure(self, model, starts):
        self.runs += 1
        return {"outside": [0.0] * 3, "stopped_ps": [None] * 3}

    def passes(self, result, baseline):
        return True


@pytest.mark.parametrize("setting", [{"importance": "mask"}, {"tol": -0.1}, {"tol": float("nan")}])
def test_bad_settings_are_refused_before_the_md_checks_baseline_runs(toy_model, toy_data, setting):
    """reduce and reduce_slow_part ran the MD check's baseline (three 20-ps runs by
    default, minutes for a large molecule) before reduce_pairs refused the setting."""
    from gdmlx.reduction import reduce_slow_part
    R, F, E, z = toy_data
    probe = CountingProbe()
    with pytest.raises((ValueError, gdmlx.InputError), match="importance must be one of|tol must be"):
        gdmlx.reduce(toy_model, gdmlx.Dataset(R=R, z=z, F=F, E=E), probe=probe, progress=False, **setting)
    ms = gdmlx.MultiscaleModel.from_parts(toy_model, toy_model)
    with pytest.raises((ValueError, gdmlx.InputError), match="importance must be one of|tol must be"):
        reduce_slow_part(ms, R[40:], F[40:], probe=probe, progress=False, **setting)
    assert probe.runs == 0


def test_bond_graph_of_many_geometries_takes_memory_of_their_size():
    """bond_matrix (MultiscaleModel.fit on all training geometries, the symmetry search of
    --sym) formed all (n, N, N, 3) differences at once: 0.2 GB for 2000 geometries of a
    40-atom molecule, GBs for a large molecule's training set. The result is unchanged."""
    import tracemalloc

    from gdmlx.bonds import bond_matrix, mean_distances
    rng = np.random.default_rng(0)
    R = rng.standard_normal((50, 7, 3)) * 2
    direct = np.linalg.norm(R[:, :, None] - R[:, None], axis=-1).mean(axis=0)
    np.testing.assert_allclose(mean_distances(R, chunk_bytes=7 * 7 * 3 * 8 * 6), direct, rtol=1e-12)
    R = np.tile(np.arange(40.0)[:, None] * np.array([1.4, 0.0, 0.0]), (2000, 1, 1))   # a carbon chain
    tracemalloc.start()
    try:
        bonds = bond_matrix(np.full(40, 6), R)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 80e6, f"{peak / 1e6:.0f} MB for {R.nbytes / 1e6:.1f} MB of geometries"
    np.testing.assert_array_equal(np.flatnonzero(bonds[np.arange(1, 40), np.arange(39)]), np.arange(39))
    assert bonds.sum() == 2 * 39


def test_symmetric_model_reduces_when_the_fraction_is_smaller_than_an_orbit():
    """A symmetric model's features are dropped in whole orbits. Once the fraction to drop
    was smaller than the least important orbit, closing the kept pairs put it back,
    'nothing dropped' halved the fraction, and the reduction stopped: with any error
    accepted (tol 1e6) a methane-like model stayed at 10 of its 15 pairs (two orbits)."""
    from conftest import toy_energy_forces
    from gdmlx.reduction import reduce_pairs
    from gdmlx.symmetry import pair_orbits, pairs_closed
    corners = np.array([[1, 1, 1], [1, -1, -1], [-1, 1, -1], [-1, -1, 1]]) / np.sqrt(3) * 1.09
    R = np.vstack([[0, 0, 0], corners, [0, 0, 2.5]]) + 0.05 * np.random.default_rng(1).standard_normal((50, 6, 3))
    F = toy_energy_forces(R)[1]        # a chain's forces, not symmetric: no energies to check
    model = gdmlx.GDMLRegressor(sigma=2.0, lam=1e-8, perms="auto").fit(R[:25], F[:25], None,
                                                                       z=np.array([6, 1, 1, 1, 1, 18]))
    assert len(model.perms_) == 24 and len(np.unique(pair_orbits(model.pairs_, model.perms_))) == 4
    seen = []
    reduced, report = reduce_pairs(model, R[25:], F[25:], tol=1e6, progress=False,
                                   on_round=lambda trial, entry: seen.append(trial.pairs_))
    assert all(pairs_closed(p, model.perms_) for p in seen)
    assert len(np.unique(pair_orbits(reduced.pairs_, reduced.perms_))) == 1      # one orbit left
    assert len(reduced.pairs_) < 10 and report.n_local + report.n_nonlocal == len(reduced.pairs_)


def test_test_indices_leave_out_a_from_parts_fast_parts_geometries(toy_data):
    """gdmlx test of MultiscaleModel.from_parts(fast, slow) with the fast part fitted on
    other geometries than the slow part tested on the fast part's training geometries."""
    from gdmlx.splits import test_indices
    R, F, E, z = toy_data
    fast = gdmlx.GDMLRegressor(sigma=2.0, lam=1e-6).fit(R[30:45], F[30:45], E[30:45], z=z)
    slow = gdmlx.GDMLRegressor(sigma=2.0, lam=1e-8).fit(R[:30], F[:30] - fast.predict(R[:30]), None, z=z)
    ds = gdmlx.Dataset(R=R[:60], z=z, F=F[:60], E=E[:60])
    np.testing.assert_array_equal(test_indices(gdmlx.MultiscaleModel.from_parts(fast, slow), ds), np.arange(45, 60))
