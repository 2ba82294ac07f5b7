"""Learned long-stride maps: the action S(qm, pm) as a gradient-domain kernel model.

A map (q, p) -> (q', p') over a stride ``tau`` written with the midpoint generating function
(qm = (q + q')/2, pm = (p + p')/2)::

    q' - q =  dS/dp (qm, pm),        p' - p = -dS/dq (qm, pm)

is symplectic for any scalar S and time-reversible when S is even in p. gdmlx uses::

    S = tau H(qm, pm) + C(qm, pm)

``tau H`` alone is the implicit midpoint rule for the force field the data came from; the
correction C, a GDML-style kernel model learned from the residual gradients of pairs of
states a stride apart in short-step MD, is what the midpoint rule gets wrong. Learning
only the residual keeps C small and smooth, and far from the data the map falls back to
the midpoint rule of the true force field instead of to nothing.

C is a function of the phase-space pair features (1/r_ij and its rate of change over a
stride, :mod:`gdmlx.kernels.phase_features`): invariant under rotation and translation.
Its kernel is summed over the momentum flip (features y -> -y), so C is exactly even in p
and the map exactly time-reversible. Momenta are rescaled, p_hat = kappa p (a canonical
change of variables), so that the two halves of the gradient labels have equal spread and
weigh the same in the fit.

Units: ASE's (Angstrom, eV, amu, time in ASE units); p = m v. Trajectories in gdmlx's HDF5
format (positions in Angstrom, velocities in Angstrom/fs).
"""

import os
import time
import warnings

import ase.data
import ase.units
import h5py
import numpy as np
from sklearn.exceptions import NotFittedError

from gdmlx._version import __version__
from gdmlx.atomic_write import atomic_path
from gdmlx.dense_kernel import assemble_dense
from gdmlx.descriptor import all_pairs
from gdmlx.errors import InputError, ModelFileError
from gdmlx.expansion import KernelExpansion, force_model_fingerprint
from gdmlx.file_kinds import check_kind
from gdmlx.hdf5_files import read_array, write_content_digest
from gdmlx.kernels.phase_features import phase_features_dense
from gdmlx.md.trajectory import read_trajectory
from gdmlx.modelfile import open_model_file, read_expansion, write_expansion
from gdmlx.solvers import check_analytic_fits, solve_cholesky_lower
from gdmlx.training import Stages
from gdmlx.symmetry import check_permutations, find_permutations, pair_permutation
from gdmlx.units import energy_in_ev, length_in_ang
from gdmlx.validation import check_atomic_numbers, check_count, check_force_model, check_number, check_sigma


class ActionModel:
    """Learned correction to the implicit-midpoint action of a force field.

    Parameters
    ----------
    stride_fs : float
        Time between the two states of a training pair, and the map's step (fs).
    sigma : float
        Kernel length scale in feature units (1/Angstrom); the default 5 (as ``gdmlx action
        train``'s) is what benchmarks/README.md section 6 measured.
    lam : float
        Regularisation, relative to the label spread.
    n_train : int
        Number of training pairs (drawn at random from all pairs in the trajectories).
    n_valid : int
        Held-out pairs for the error report in ``fit_info_``.
    seed : int >= 0 or None
        Random seed of the draw (None: a new one each fit).
    perms : None, "auto" or (P, N) array of int
        Atom permutations to sum the kernel over, as :class:`gdmlx.GDMLRegressor`'s: "auto"
        finds the bond graph's (methyl rotors, ring flips) in the training midpoints. The
        correction is then invariant under them, so pairs learned in one methyl orientation
        serve the equivalent others; prediction costs P times as much.

    Fitted attributes: ``z_``, ``masses_`` (amu), ``kappa_`` (momentum scale),
    ``expansion_`` (the kernel model of kappa C over features of 2 x D dimensions, its
    training points copied under the momentum flip and ``perms_``, the (P, N) permutations,
    identity first), ``force_model_`` (the
    :func:`force_model_fingerprint` of the force field it corrects; "" in files written
    before it was stored), ``reach_`` (the largest feature-space distance from a held-out
    pair to its nearest training pair: how far the data reach; None without held-out pairs
    or in files written before it was stored) and ``fit_info_``.
    """

    def __init__(self, stride_fs=2.0, sigma=5.0, lam=1e-8, n_train=100, n_valid=200, seed=0, perms=None):
        self.stride_fs = stride_fs
        self.sigma = sigma
        self.lam = lam
        self.n_train = n_train
        self.n_valid = n_valid
        self.seed = seed
        self.perms = perms

    @property
    def tau(self):
        """Stride in ASE time units."""
        return self.stride_fs * ase.units.fs

    def _check_params(self):
        check_number(self.stride_fs, "stride_fs", strict=True)
        check_sigma(self.sigma)
        check_number(self.lam, "lam")
        check_count(self.n_train, "n_train")
        check_count(self.n_valid, "n_valid", minimum=0)
        if self.seed is not None:
            check_count(self.seed, "seed", minimum=0)

    def fit(self, trajectories, force_model, verbose=True):
        """Learn C from pairs of states ``stride_fs`` apart.

        trajectories : paths to gdmlx HDF5 trajectories (``gdmlx md -o x.h5``), or dicts
            with ``positions`` (T, N, 3) [A], ``velocities`` (T, N, 3) [A/fs], ``time_fs``
            (T,) and ``z`` (N,) (one, or a list); frames must be evenly spaced and the stride
            a multiple of their spacing. They must be NVE runs of the force field's own
            dynamics at one time step: what a trajectory records (``gamma_per_fs``,
            ``slow_every``, ``integrator``, ``force_model``, as gdmlx's engines write) is
            checked, and Langevin, multiple-time-step and action-map runs are refused.
        force_model : fitted gdmlx model (the force field the trajectories were run with).
        verbose : show the kernel matrix's size and the assembly's and solve's progress and
            times on stderr.
        """
        t0 = time.perf_counter()
        self._check_params()
        check_force_model(force_model, "the force model")
        force_model.force_parts()                        # NotFittedError for unfitted models
        self._set_molecule(force_model.z_)
        q0, v0, q1, v1 = _pairs_from_trajectories(trajectories, self.stride_fs, self.z_,
                                                  force_model_fingerprint(force_model))
        rng = np.random.default_rng(None if self.seed is None else int(self.seed))   # 2.0 passes the check
        order = rng.permutation(len(q0))
        if len(order) < self.n_train + 1:
            raise InputError(f"the trajectories hold {len(order)} pairs {self.stride_fs} fs apart; "
                             f"n_train={self.n_train} needs more (longer runs or more trajectories)")
        train, valid = order[:self.n_train], order[self.n_train:self.n_train + self.n_valid]
        qm, vm, gq, gp = self._residual_gradients(q0[train], v0[train], q1[train], v1[train], force_model)
        self.force_model_ = force_model_fingerprint(force_model)
        self.fit_gradients(self.z_, qm, vm, gq, gp, verbose)
        M = len(train)
        self.reach_ = None if len(valid) == 0 else float(self.data_distance(
            0.5 * (q0[valid] + q1[valid]), 0.5 * (v0[valid] + v1[valid])).max())
        self.fit_info_ = {"n_train": M, "n_pairs_available": len(order), "fit_s": time.perf_counter() - t0,
                          "kappa": self.kappa_, "reach": self.reach_, "n_permutations": len(self.perms_),
                          **self._errors(q0[valid], v0[valid], q1[valid], v1[valid], force_model)}
        info = self.fit_info_
        if info.get("n_valid") and (info["valid_rms_dq_learned_A"] > info["valid_rms_dq_midpoint_A"]
                                    or info["valid_rms_dp_learned"] > info["valid_rms_dp_midpoint"]):
            warnings.warn("on held-out pairs the learned correction leaves larger errors than the plain "
                          f"midpoint rule (dq {info['valid_rms_dq_learned_A']:.2e} against "
                          f"{info['valid_rms_dq_midpoint_A']:.2e} A, dp "
                          f"{info['valid_rms_dp_learned'] * ase.units.fs:.2e} against "
                          f"{info['valid_rms_dp_midpoint'] * ase.units.fs:.2e} amu A/fs): try another sigma "
                          "or more pairs", UserWarning, stacklevel=2)
        return self

    def fit_gradients(self, z, qm, vm, gq, gp, verbose=False):
        """Fit C to gradient labels ``gq`` = dC/dq and ``gp`` = dC/dp (n, N, 3) given at
        midpoints ``qm`` [A] and velocities ``vm`` (n, N, 3) [A/T] of a molecule with atomic
        numbers ``z``. Sets ``kappa_`` so that the two halves have equal spread, ``perms_``
        (from ``qm`` for perms="auto") and no ``reach_`` (that needs held-out pairs, which
        :meth:`fit` keeps); ``verbose`` shows the stages on stderr, as :meth:`fit`."""
        self._check_params()
        self._set_molecule(z)
        self.perms_ = self._permutations(qm)
        self.reach_ = None
        if not (np.all(np.isfinite(gq)) and np.all(np.isfinite(gp))) or not np.any(gq) or not np.any(gp):
            raise InputError("action labels are not finite, or one half is all zero: the "
                             "trajectories do not move (check positions and velocities)")
        self.kappa_ = float(np.sqrt(np.mean(gp**2) / np.mean(gq**2)))
        M, N = qm.shape[:2]
        check_analytic_fits(M * 6 * N)
        f, J = self._features(qm, vm)
        y = -np.concatenate([self.kappa_ * gq, gp], axis=1).reshape(-1)   # "forces" = -grad
        y_std = float(y.std()) or 1.0
        log = Stages(verbose)             # minutes of assembly and solve at a few hundred pairs
        log.start(f"action: {M} pairs, assembling the {M * 6 * N} x {M * 6 * N} kernel matrix")
        K = assemble_dense(f, J, self.sigma, *self._transforms())
        log.stop()
        log.start("action: Cholesky solve")
        alpha = solve_cholesky_lower(K, y / y_std, self.lam, log.progress) * y_std
        log.stop()
        B = np.einsum("afn,an->af", J, alpha.reshape(M, 6 * N))
        self.expansion_ = self._expansion(f, B)
        return self

    # ------------------------------------------------------------------ the model
    def correction_gradient(self, qm, pm):
        """``(dC/dq, dC/dp)`` at midpoints ``qm`` (n, N, 3) [A] and ``pm`` (n, N, 3) [amu A/T]."""
        self.check_fitted()
        f, J = self._features(qm, pm / self.masses_[:, None])
        _, fd = self.expansion_.predict_desc(f)                      # fd = -d(kappa C)/df
        g = -np.einsum("nf,nfk->nk", fd, J).reshape(len(qm), 2, -1, 3)
        return g[:, 0] / self.kappa_, g[:, 1]

    def data_distance(self, q, v):
        """Feature-space distance from states ``q`` [A] and ``v`` [A/T] (n, N, 3) to the
        nearest training pair (n,): the correction is learned only near its data, and far
        from them does worse than none (ethanol: a map learned in one orientation of the
        methyl group, run in another)."""
        self.check_fitted()
        f, _ = self._features(q, v)
        X = self.expansion_.X
        d2 = (f * f).sum(axis=1)[:, None] + (X * X).sum(axis=1)[None, :] - 2.0 * f @ X.T
        return np.sqrt(np.maximum(d2.min(axis=1), 0.0))

    def _set_molecule(self, z):
        self.z_ = np.asarray(z, dtype=np.int64)
        self.masses_ = ase.data.atomic_masses[self.z_].astype(np.float64)
        self.pairs_ = all_pairs(len(self.z_))

    def _features(self, q, v):
        """Features (n, 2D) and Jacobians (n, 2D, 6N) with respect to (q, p_hat)."""
        f, J = phase_features_dense(q, v, self.pairs_, self.tau)
        n, F, _ = J.shape
        J = J.reshape(n, F, 2, -1, 3)
        J[:, :, 1] /= (self.kappa_ * self.masses_)[None, None, :, None]   # dv/dp_hat = 1/(kappa m)
        return f, J.reshape(n, F, -1)

    def _permutations(self, q):
        """``perms_`` (P, N) for parameter ``perms``, with geometries ``q`` (n, N, 3) [A] for "auto"."""
        if self.perms is None:
            return np.arange(len(self.z_))[None]
        if isinstance(self.perms, str):
            if self.perms != "auto":
                raise ValueError(f"perms must be None, 'auto' or a (P, N) array, got {self.perms!r}")
            return find_permutations(q, self.z_)
        return check_permutations(self.perms, self.z_)

    def _transforms(self):
        """The kernel's symmetry group on the features (x, y) (2D,): ``(index (G, 2D), signs
        (G, 2D))``, each atom permutation of ``perms_`` with and without the momentum flip
        (which negates y), identity first (:func:`gdmlx.dense_kernel.assemble_dense`)."""
        D = len(self.pairs_)
        flip = np.r_[np.ones(D), -np.ones(D)]
        index = [np.r_[s, D + s] for s in (pair_permutation(self.pairs_, p) for p in self.perms_)]
        return np.repeat(index, 2, axis=0), np.tile([np.ones(2 * D), flip], (len(index), 1))

    def _expansion(self, f, B):
        """Kernel expansion over the training points and their copies under :meth:`_transforms`."""
        X, BB = (np.concatenate([a[:, i] * s for i, s in zip(*self._transforms())]) for a in (f, B))
        return KernelExpansion(self.feature_pairs, len(self.z_), self.sigma, X, BB, np.zeros(len(X)), 0.0)

    @property
    def feature_pairs(self):
        """(2D, 2): the atom pair of each feature (x_k and y_k belong to pair k)."""
        return np.concatenate([self.pairs_, self.pairs_])

    def _residual_gradients(self, q0, v0, q1, v1, force_model):
        """Midpoints and what the midpoint rule misses: ``dC/dq``, ``dC/dp`` for each pair."""
        m = self.masses_[:, None]
        tau = self.tau
        p0, p1 = m * v0, m * v1
        qm, pm = 0.5 * (q0 + q1), 0.5 * (p0 + p1)
        F = model_forces(force_model, qm)
        gp = (q1 - q0) - tau * pm / m               # dC/dp
        gq = tau * F - (p1 - p0)                    # dC/dq
        return qm, pm / m, gq, gp

    def _errors(self, q0, v0, q1, v1, force_model):
        """RMS of the correction labels on held-out pairs, and of what the model leaves."""
        if len(q0) == 0:
            return {}
        qm, vm, gq, gp = self._residual_gradients(q0, v0, q1, v1, force_model)
        cq, cp = self.correction_gradient(qm, vm * self.masses_[:, None])
        rms = lambda a: float(np.sqrt(np.mean(a**2)))
        return {"n_valid": len(q0),
                "valid_rms_dq_midpoint_A": rms(gp), "valid_rms_dq_learned_A": rms(gp - cp),
                "valid_rms_dp_midpoint": rms(gq), "valid_rms_dp_learned": rms(gq - cq)}

    def check_fitted(self):
        """Raise NotFittedError unless the model has been fitted or loaded."""
        if not hasattr(self, "expansion_"):
            raise NotFittedError("this ActionModel is not fitted yet; call fit or ActionModel.load")

    # ------------------------------------------------------------------ files
    def save(self, path):
        """Write the fitted action model to ``path`` (HDF5, no pickle), atomically."""
        self.check_fitted()
        with atomic_path(path) as tmp, h5py.File(tmp, "w") as f:
            f.attrs.update(format="gdmlx-model", format_version=1, gdmlx_version=__version__,
                           kind="action", stride_fs=float(self.stride_fs), sigma=float(self.sigma),
                           lam=float(self.lam), kappa=self.kappa_,
                           force_model=getattr(self, "force_model_", ""))
            if getattr(self, "reach_", None) is not None:
                f.attrs["reach"] = float(self.reach_)
            f["z"] = self.z_
            f["perms"] = self.perms_
            write_expansion(f.create_group("expansion"), self.expansion_)
            write_content_digest(f, ModelFileError)

    @classmethod
    def load(cls, path):
        """Read an action model written by :meth:`save`."""
        check_kind(path, ("action",), "an action model (written by gdmlx action train)", ModelFileError)
        with open_model_file(path) as f:
            if f.attrs.get("kind") != "action":
                raise ModelFileError(f"{path}: not an action model (kind {f.attrs.get('kind', 'gdml')!r}): give "
                                     "the file that 'gdmlx action train' wrote")
            try:
                a = dict(f.attrs)
                model = cls(stride_fs=float(a["stride_fs"]), sigma=float(a["sigma"]), lam=float(a["lam"]))
                model._check_params()
                z = read_array(f, "z", ModelFileError, "int", 1)
                model._set_molecule(check_atomic_numbers(z, len(z)))
                model.perms_ = (check_permutations(read_array(f, "perms", ModelFileError, "int", 2), model.z_)
                                if "perms" in f else np.arange(len(z))[None])     # older files: none
                model.expansion_ = read_expansion(f["expansion"], len(model.z_), force_model=False)
                model.kappa_ = float(a["kappa"])
                model.force_model_ = str(a.get("force_model", ""))
                model.reach_ = float(a["reach"]) if "reach" in a else None
            except ModelFileError:
                raise
            except KeyError as exc:
                raise ModelFileError(f"{path}: action model file lacks {exc}; truncated or foreign") from None
            except (TypeError, ValueError) as exc:         # InputError included
                raise ModelFileError(f"{path}: {exc}") from None
        if (not np.array_equal(model.expansion_.pairs, model.feature_pairs) or not np.isfinite(model.kappa_)
                or model.expansion_.n_train % (2 * len(model.perms_))
                or model.kappa_ <= 0 or (model.reach_ is not None and not model.reach_ >= 0)):
            raise ModelFileError(f"{path}: action model pairs or momentum scale are inconsistent")
        model.fit_info_ = {}
        return model


def model_forces(model, q):
    """Forces (n, N, 3) [eV/A] of a gdmlx model at positions ``q`` (n, N, 3) [A]."""
    r_scale = 1.0 / length_in_ang(model.length_unit_)
    F = model.predict(q * r_scale)
    return F * energy_in_ev(model.energy_unit_) * r_scale


def _pairs_from_trajectories(trajectories, stride_fs, z, fingerprint):
    """States ``stride_fs`` apart: q0, v0, q1, v1 (n, N, 3) in A and A/T (ASE time), from
    trajectories of the force model with ``fingerprint`` (where they record theirs)."""
    out = [[], [], [], []]
    if isinstance(trajectories, (str, os.PathLike, dict)) or not hasattr(trajectories, "__iter__"):
        trajectories = [trajectories]
    for traj in trajectories:
        is_file = isinstance(traj, (str, os.PathLike))
        if not (is_file or isinstance(traj, dict)):
            raise InputError(f"trajectories must be paths of gdmlx HDF5 trajectories or dicts of their arrays, "
                             f"got {type(traj).__name__}: action models learn from states a stride apart in "
                             "NVE runs, with velocities (gdmlx md MODEL --dt 0.25 --save-every 2 -o ref.h5)")
        t = read_trajectory(traj) if is_file else traj
        name = str(traj) if is_file else "trajectory"
        missing = [k for k in ("z", "positions", "velocities", "time_fs") if k not in t]
        if missing:
            raise InputError(f"{name} lacks {missing}: action models learn from states (positions and "
                             "velocities) a stride apart, at known times, as gdmlx md writes them")
        if not np.array_equal(np.asarray(t["z"]), z):
            raise InputError(f"{name}: atomic numbers do not match the force model's")
        if t.get("force_model", fingerprint) != fingerprint:
            raise InputError(f"{name} was run with another force model than the one given: an action "
                             "model learns the difference between the force model's own dynamics and "
                             "the midpoint rule, so both must be the same")
        if float(t.get("gamma_per_fs", 0.0)) > 0 or int(t.get("slow_every", 1)) > 1 or "integrator" in t:
            raise InputError(f"{name} is not an NVE run of the force field's own dynamics (it records "
                             f"gamma_per_fs={float(t.get('gamma_per_fs', 0.0)):g}, "
                             f"slow_every={int(t.get('slow_every', 1))}, integrator="
                             f"{t.get('integrator', 'velocity Verlet')!r}): an action model learns that flow; "
                             "its Langevin variant adds the thermostat between strides")
        if "masses" in t and not np.allclose(t["masses"], ase.data.atomic_masses[z]):
            raise InputError(f"{name} was run with other masses than the standard ones (isotopes?); "
                             "action models are learned for standard masses")
        time_fs = np.asarray(t["time_fs"], dtype=float)
        if len(time_fs) < 2:
            raise InputError(f"{name} holds {len(time_fs)} frame(s); pairs of states need at least two "
                             "(a run that stopped early may have kept none)")
        if not np.all(np.isfinite(time_fs)):
            raise InputError(f"{name}: time_fs contains NaN or infinity")
        spacing = np.diff(time_fs)
        if not spacing.min() > 0 or np.ptp(spacing) > 1e-6 * spacing.mean():
            raise InputError(f"{name}: frames must be evenly spaced in time, one after another (time_fs has "
                             f"spacings from {spacing.min():g} to {spacing.max():g} fs)")
        k = stride_fs / spacing[0]
        if abs(k - round(k)) > 1e-6 or round(k) < 1:
            raise InputError(f"{name}: stride {stride_fs} fs is not a multiple of the frame "
                             f"spacing {spacing[0]:g} fs")
        k = round(k)
        if float(t.get("dt_fs", 0.0)) >= stride_fs:
            raise InputError(f"{name} was run with time step {float(t['dt_fs']):g} fs, not shorter than the "
                             f"stride ({stride_fs:g} fs): a map learned from it is velocity Verlet at the stride, "
                             "not the force field's own flow; run the reference with a step several times "
                             "shorter (gdmlx md MODEL --dt 0.25 --save-every 2 -o ref.h5 for a 1-fs stride)")
        q, v = np.asarray(t["positions"], float), np.asarray(t["velocities"], float) / ase.units.fs
        if q.ndim == 3:                        # one molecule; a replica run (gdmlx md --replicas) is 4-d
            q, v = q[:, None], v[:, None]
        if q.shape != v.shape or q.ndim != 4 or q.shape[2:] != (len(z), 3) or q.shape[0] != len(time_fs):
            raise InputError(f"{name}: positions {q.shape}, velocities {v.shape} and {len(time_fs)} "
                             f"times do not fit together for {len(z)} atoms")
        if not (np.all(np.isfinite(q)) and np.all(np.isfinite(v))):
            raise InputError(f"{name}: positions or velocities contain NaN or infinity")
        for r in range(q.shape[1]):            # each replica is a run of its own
            for lst, arr in zip(out, (q[:-k, r], v[:-k, r], q[k:, r], v[k:, r])):
                lst.append(arr)
    if not out[0]:
        raise InputError("no trajectories given: action models learn from states a stride apart in NVE runs, "
                         "with velocities (gdmlx md MODEL --dt 0.25 --save-every 2 -o ref.h5)")
    return [np.concatenate(a) for a in out]
