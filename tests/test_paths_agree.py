"""Every code path that evaluates a fitted model gives the same energies and forces.

For each kind of model (plain, fitted with energy labels, on forces only, summed over
permutational symmetries, on a reduced pair list, in eV and bohr, multiscale, imported from
a file sGDML wrote) the public one-geometry and batched predictions (with the inputs users
give: (N, 3), (1, N, 3), lists, float32, strided views), the whole-array path of the GPU
backend run on numpy, the ASE calculator, the force calls of both MD engines and the model
after a file round trip, pickling and sGDML export are held to a plain numpy evaluation of
the kernel expansion; forces to minus the energy gradient, energies to rotations and
translations and, for symmetric models, to permutations of equivalent atoms. The existing
tests hold most of these paths together for one kind of model; these hold them for all.
"""

import copy
import pickle
import warnings
from pathlib import Path

import ase.units
import numpy as np
import pytest
from ase import Atoms
from sklearn.base import clone

import gdmlx
from conftest import toy_energy_forces, toy_geometries
from gdmlx import reference
from gdmlx.descriptor import descriptors
from gdmlx.expansion import KernelExpansion
from gdmlx.kernels.masking import masked_force_change_sq
from gdmlx.kernels.predict import MIN_ELEMENTS_PER_THREAD, predict_one
from gdmlx.md import ReplicaSimulation, Simulation
from gdmlx.symmetry import pair_orbits
from gdmlx.units import energy_in_ev, length_in_ang

RTOL = 1e-10
DATA = Path(__file__).parent / "data"
REDUCED = np.array([[1, 0], [2, 1], [3, 2], [4, 3], [2, 0], [4, 1], [3, 0]])
KINDS = ["plain", "energy_labels", "forces_only", "symmetric", "reduced", "ev_bohr", "multiscale", "sgdml",
         "sgdml_energy_labels"]


def methane_data(n):
    """(R, F, E, z) of ``n`` perturbed methane geometries labelled by ASE's EMT (eV, A)."""
    from ase.build import molecule
    from ase.calculators.emt import EMT
    atoms = molecule("CH4")
    rng = np.random.default_rng(0)
    R, F, E = [], [], []
    for _ in range(n):
        a = atoms.copy()
        a.positions += 0.08 * rng.standard_normal(a.positions.shape)
        a.calc = EMT()
        E.append(a.get_potential_energy())
        F.append(a.get_forces())
        R.append(a.positions)
    return np.array(R), np.array(F), np.array(E), atoms.numbers


def fitted(kind, tmp_path=None):
    """A small fitted model of ``kind`` and four geometries (model units) to predict; files
    go to ``tmp_path``."""
    G = gdmlx.GDMLRegressor
    R = toy_geometries(50)
    E, F = toy_energy_forces(R)
    z = np.array([6, 6, 8, 6, 1])
    train, test = (R[:30], F[:30], E[:30]), R[40:44]
    if kind == "plain":
        return G(sigma=2.0, lam=1e-8).fit(*train, z=z), test
    if kind == "energy_labels":
        return G(sigma=2.0, lam=1e-8, use_energy_labels=True).fit(*train, z=z), test
    if kind == "forces_only":
        return G(sigma=2.0, lam=1e-8).fit(R[:30], F[:30], z=z), test
    if kind == "reduced":
        return G(sigma=2.0, lam=1e-8, pairs=REDUCED).fit(*train, z=z), test
    if kind == "ev_bohr":
        bohr = length_in_ang("bohr")
        return G(sigma=2.0 * bohr, lam=1e-8 * bohr**2).fit(
            R[:30] / bohr, 0.5 * F[:30], 0.5 * E[:30], z=z, energy_unit="eV", length_unit="bohr"), test / bohr
    if kind == "symmetric":
        Rm, Fm, Em, zm = methane_data(16)
        return G(sigma=3.0, lam=1e-8, perms="auto").fit(Rm[:12], Fm[:12], Em[:12], z=zm,
                                                        energy_unit="eV"), Rm[12:]
    if kind == "multiscale":
        Rc = toy_geometries(90, n_atoms=8, seed=4, noise=0.06)
        Ec, Fc = toy_energy_forces(Rc)
        return gdmlx.MultiscaleModel(fast=G(sigma=2.0, lam=1e-6), slow=G(sigma=3.0, lam=1e-8), max_hops=1,
                                     n_fast=20).fit(Rc[:40], Fc[:40], Ec[:40], z=np.full(8, 6)), Rc[80:84]
    R = np.load(DATA / "sgdml_ethanol20_sym_pred.npz")["R"][:4]
    if kind == "sgdml":             # sGDML's own model: 6 permutations, no training data kept
        return gdmlx.import_sgdml_model(DATA / "sgdml_ethanol20_sym_model.npz"), R
    assert kind == "sgdml_energy_labels"    # the same with energy-label coefficients, one per training point
    arrays = dict(np.load(DATA / "sgdml_ethanol20_sym_model.npz", allow_pickle=True))
    arrays["alphas_E"] = np.random.default_rng(0).standard_normal(arrays["R_desc"].shape[1])
    np.savez(tmp_path / "sgdml_e.npz", **arrays)
    return gdmlx.import_sgdml_model(tmp_path / "sgdml_e.npz"), R


@pytest.fixture(scope="module", params=KINDS)
def kind_model(request, tmp_path_factory):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")             # energy-consistency warnings of the toy data
        return (request.param, *fitted(request.param, tmp_path_factory.mktemp(request.param)))


def expansion_reference(exp, R):
    """Energy and forces (N, 3) of expansion ``exp`` at ``R`` (N, 3): the formulas of
    :mod:`gdmlx.kernels.predict` with dense Jacobians, a loop over training points."""
    x, J = reference.descriptor_dense(R, exp.pairs)
    E, F_desc = exp.c, np.zeros(len(x))
    for xm, beta, am in zip(exp.X, exp.B, exp.a):
        d = x - xm
        phi, c2, _ = reference.matern_terms(d @ d, exp.sigma)
        E += -c2 * d @ beta + phi * am
        F_desc += reference.force_covariance(d, exp.sigma) @ beta + c2 * d * am
    return E, (J.T @ F_desc).reshape(-1, 3)


def model_reference(model, R):
    """Energies (n,) and forces (n, N, 3) of ``model``'s force parts summed, at ``R`` (n, N, 3)."""
    out = [[expansion_reference(p, r) for p in model.force_parts()] for r in np.asarray(R, dtype=np.float64)]
    return np.array([sum(e for e, _ in o) for o in out]), np.array([sum(f for _, f in o) for o in out])


def assert_same(E, F, E_ref, F_ref, what, rtol=RTOL):
    E, F = np.reshape(E, np.shape(E_ref)), np.reshape(F, np.shape(F_ref))
    assert np.abs(E - E_ref).max() <= rtol * max(1.0, np.abs(E_ref).max()), what
    assert np.abs(F - F_ref).max() <= rtol * np.abs(F_ref).max(), what


def other_paths(model, R):
    """``{path: (E (n,), F (n, N, 3))}`` of every way to evaluate ``model`` at ``R`` (n, N, 3),
    in model units."""
    out = {"batch": model.predict_energy_forces(R),
           "predict / predict_energy": (model.predict_energy(R), model.predict(R)),
           "batch as a list": model.predict_energy_forces(R.tolist()),
           "batch strided": model.predict_energy_forces(np.repeat(R, 2, axis=0)[::2]),
           "whole-array (GPU code on numpy)": tuple(sum(v) for v in zip(*(p.on_device(np).predict(R, 3)
                                                                            for p in model.force_parts())))}
    for name, one in (("(N, 3)", lambda r: r), ("(1, N, 3)", lambda r: r[None]), ("list", lambda r: r.tolist()),
                      ("Fortran-ordered", np.asfortranarray), ("strided", lambda r: np.repeat(r, 2, axis=1)[:, ::2])):
        E, F = zip(*(model.predict_energy_forces(one(r)) for r in R))
        out["one geometry " + name] = (np.concatenate(E), np.concatenate(F))
    a, e = length_in_ang(model.length_unit_), energy_in_ev(model.energy_unit_)
    calc, E, F = gdmlx.GDMLCalculator(model), [], []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")                 # the forces-only model's relative energies
        for r in R:
            atoms = Atoms(numbers=model.z_, positions=r * a, calculator=calc)
            E.append(atoms.get_potential_energy() / e)
            F.append(atoms.get_forces() * a / e)
    out["ASE calculator"] = (np.array(E), np.array(F))
    sims = [Simulation(model, r * a, velocities=np.zeros_like(r)) for r in R]
    out["MD engine"] = (np.array([s.E.sum() for s in sims]) / e, np.array([s.F.sum(axis=0) for s in sims]) * a / e)
    replicas = ReplicaSimulation(model, R * a, velocities=np.zeros_like(R))
    out["replica engine"] = (sum(replicas.E) / e, sum(replicas.F) * a / e)
    return out


def test_every_path_gives_the_reference_energies_and_forces(kind_model, tmp_path):
    kind, model, R = kind_model
    E_ref, F_ref = model_reference(model, R)
    for path, (E, F) in other_paths(model, R).items():
        assert_same(E, F, E_ref, F_ref, f"{kind}: {path}")
    E32, F32 = model_reference(model, R.astype(np.float32))
    E, F = zip(*(model.predict_energy_forces(r.astype(np.float32)) for r in R))
    assert_same(np.concatenate(E), np.concatenate(F), E32, F32, f"{kind}: float32 input")
    model.save(tmp_path / "m.h5")
    copies = {"h5 file": gdmlx.load_model(tmp_path / "m.h5"), "pickle": pickle.loads(pickle.dumps(model)),
              "deepcopy": copy.deepcopy(model)}
    if kind not in ("reduced", "multiscale"):           # sGDML has neither
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")             # sigma not whole, units sGDML assumes otherwise
            gdmlx.export_sgdml_model(model, tmp_path / "m.npz")
        copies["sGDML export and import"] = gdmlx.import_sgdml_model(tmp_path / "m.npz")
    if isinstance(model, gdmlx.GDMLRegressor) and model.R_train_ is not None:
        copies["refit"] = model.refit()
    elif kind == "multiscale":
        copies["cloned and fitted"] = clone(model).fit(model.R_train_, *fitted_labels(model), z=model.z_)
    for path, other in copies.items():
        assert_same(*other.predict_energy_forces(R), E_ref, F_ref, f"{kind}: {path}")
        assert_same(*other.predict_energy_forces(R[0]), E_ref[:1], F_ref[:1], f"{kind}: {path}, one geometry")


def fitted_labels(model):
    """Forces and energies a multiscale ``model`` was fitted on (its slow part's residual plus
    the fast part's prediction)."""
    E_f, F_f = model.fast_.expansion_.predict(model.R_train_)
    return model.slow_.F_train_ + F_f, model.slow_.E_train_ + E_f


def test_expansion_is_the_fitted_coefficients(kind_model):
    """The expansion's beta rows are J_m alpha_m of the force coefficients the fit found."""
    kind, model, R = kind_model
    if getattr(model, "alphas_", None) is None or len(model.perms_) > 1:
        pytest.skip("no force coefficients kept, or summed over permutations (test_symmetry)")
    exp = model.expansion_
    for r, (E, F) in zip(R, zip(*model_reference(model, R))):
        assert_same(*reference.predict(r, exp.pairs, model.R_train_, model.alphas_.reshape(exp.n_train, -1),
                                       exp.a, exp.sigma, exp.c), E, F, kind)


@pytest.mark.parametrize("kind", ["ev_bohr", "symmetric", "multiscale"])
def test_one_md_step_is_velocity_verlet_on_the_calculators_forces(kind):
    """One step of the compiled engine and of the replica engine, against velocity Verlet
    written out with the ASE calculator's forces (eV/A): the engines' unit conversions."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model, R = fitted(kind)
    q0 = R[0] * length_in_ang(model.length_unit_)
    v0 = 0.01 * np.random.default_rng(0).standard_normal(q0.shape)         # A/fs
    atoms = Atoms(numbers=model.z_, positions=q0, calculator=gdmlx.GDMLCalculator(model))
    m, F0 = atoms.get_masses()[:, None], atoms.get_forces()
    dt, v = 0.05 * ase.units.fs, v0 / ase.units.fs
    atoms.positions = q1 = q0 + dt * v + 0.5 * dt**2 * F0 / m
    v1 = v + 0.5 * dt * (F0 + atoms.get_forces()) / m
    sim = Simulation(model, q0, dt_fs=0.05, velocities=v0)
    sim.run(1, save_every=1, progress=False)
    replicas = ReplicaSimulation(model, q0, velocities=v0[None], dt_fs=0.05)
    replicas.advance(1)
    for q, v in ((sim.q, sim.v), (replicas.q[0], replicas.v[0])):
        assert np.abs(q - q1).max() <= 1e-10 * np.abs(q1 - q0).max()
        assert np.abs(v - v1).max() <= 1e-10 * np.abs(v1).max()


def test_forces_are_minus_the_energy_gradient_and_symmetric(kind_model):
    kind, model, R = kind_model
    r = R[0]
    E, F = model.predict_energy_forces(r)
    h = 1e-5 * np.abs(r).max()
    F_fd = np.empty(r.size)
    for c in range(r.size):
        step = np.zeros(r.size)
        step[c] = h
        F_fd[c] = -np.diff(model.predict_energy(r + np.stack([-step, step]).reshape(2, *r.shape)))[0] / (2 * h)
    assert np.abs(F_fd - F.ravel()).max() <= 1e-6 * np.abs(F).max(), kind
    rng = np.random.default_rng(1)
    Q, _ = np.linalg.qr(rng.standard_normal((3, 3)))
    assert_same(*model.predict_energy_forces(r @ Q.T + rng.standard_normal(3)), E, F @ Q.T, f"{kind}: rotated")
    perms = getattr(model, "perms_", np.empty((1, 0)))
    for p in perms[1:]:
        assert_same(*model.predict_energy_forces(r[p]), E, F[:, p], f"{kind}: atoms permuted by {p}")


@pytest.mark.parametrize("kind", ["energy_labels", "symmetric"])
def test_masking_matches_masked_predictions(kind):
    """The masking kernel's force changes against predictions of the expansion without the
    masked features: with energy-label coefficients, and with permutation orbits as groups."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model, R = fitted(kind)
    exp = model.expansion_
    groups = pair_orbits(exp.pairs, model.perms_ if len(model.perms_) > 1 else None)
    x, G = descriptors(R, exp.pairs)
    for t, r in enumerate(R):
        got = masked_force_change_sq(x[t], G[t], exp.pairs, exp.n_atoms, exp.X, exp.B, exp.a, exp.sigma, groups)
        F = exp.predict_one(r)[1]
        want = []
        for g in range(groups.max() + 1):
            keep = groups != g
            masked = KernelExpansion(exp.pairs[keep], exp.n_atoms, exp.sigma, exp.X[:, keep], exp.B[:, keep],
                                     exp.a, exp.c)
            want.append(((masked.predict_one(r)[1] - F) ** 2).sum())
        np.testing.assert_allclose(got, want, rtol=1e-8, atol=1e-12 * np.abs(F).max() ** 2)


@pytest.mark.parametrize("n_parts", [1, 2, 3])
def test_one_geometry_kernel_on_a_model_large_enough_to_split(n_parts):
    """predict_one with room for ``n_parts`` forces splits a model of at least
    MIN_ELEMENTS_PER_THREAD elements a part among them (numba threads, however many this
    process has): the same numbers as the reference."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model, R = fitted("symmetric")
    exp = model.expansion_
    copies = -(-3 * MIN_ELEMENTS_PER_THREAD // exp.X.size)           # enough rows for 3 parts
    big = KernelExpansion(exp.pairs, exp.n_atoms, exp.sigma, np.tile(exp.X, (copies, 1)),
                          np.tile(exp.B, (copies, 1)) / copies, np.tile(exp.a, copies) / copies, exp.c)
    D = len(big.pairs)
    for r in R[:2]:
        F = np.empty_like(r)
        E = predict_one(r, big.pairs, big.X, big.B, big.X_sq, big.XB, big.a, big.sigma, big.c, np.empty(D),
                        np.empty((D, 3)), np.empty(D), np.empty(n_parts * D), F)
        assert_same(E, F, *expansion_reference(exp, r), f"{n_parts} parts")
