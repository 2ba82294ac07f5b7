"""Fitting the coefficients of a GDML model: kernel assembly, solve, integration constant.

Pure functions; :class:`gdmlx.GDMLRegressor` is the user-facing shell around them.
"""

import sys
import time
import warnings

import numpy as np

from gdmlx.descriptor import descriptors
from gdmlx.errors import EnergyConsistencyWarning
from gdmlx.expansion import KernelExpansion
from gdmlx.kernels.assembly import assemble_energy_rows, assemble_force_blocks
from gdmlx.kernels.descriptor import gather_batch
from gdmlx.solvers import check_analytic_fits, solve_cholesky_lower


def training_matrix_size(n_train, n_atoms, use_energy_labels):
    """Rows of the training system: 3N per geometry, plus one per energy label."""
    return n_train * (3 * n_atoms + (1 if use_energy_labels else 0))


def assemble_kernel_matrix(X, G, pairs, n_atoms, sigma, use_energy_labels):
    """Lower triangle of the training matrix (see :mod:`gdmlx.kernels.assembly`)."""
    size = training_matrix_size(X.shape[0], n_atoms, use_energy_labels)
    K = np.empty((size, size))
    assemble_force_blocks(X, G, pairs, n_atoms, sigma, K)
    if use_energy_labels:
        assemble_energy_rows(X, G, pairs, n_atoms, sigma, K)
    return K


def fit_expansion(R, F, E, pairs, sigma, lam, use_energy_labels, options):
    """Fit a GDML model; returns ``(expansion, alphas, info)``.

    R (M, N, 3), F (M, N, 3) and E (M,) or None are validated training data; ``alphas``
    (M, N, 3) are the force coefficients and ``info`` a dict of timings and the energy
    consistency fit. Labels are scaled by the force standard deviation for the solve.
    """
    log = _Stages(options.verbose)
    M, N = R.shape[:2]
    with_e = use_energy_labels and E is not None
    check_analytic_fits(training_matrix_size(M, N, with_e), options.memory_limit_gb)
    X, G = descriptors(R, pairs)
    y_std = float(F.std()) or 1.0
    e_mean = float(E.mean()) if with_e else 0.0
    y = F.reshape(-1) / y_std
    if with_e:
        y = np.concatenate([y, (E - e_mean) / y_std])
    log.start(f"assembling the {len(y)} x {len(y)} kernel matrix")
    K = assemble_kernel_matrix(X, G, pairs, N, sigma, with_e)
    t_assemble = log.stop()
    log.start("Cholesky solve")
    sol = solve_cholesky_lower(K, y, lam) * y_std
    del K
    t_solve = log.stop()
    alphas = sol[:M * 3 * N].reshape(M, N, 3)
    a = sol[M * 3 * N:] if with_e else np.zeros(M)
    B = gather_batch(alphas, G, pairs)
    expansion = KernelExpansion(pairs, N, sigma, X, B, a, e_mean)
    info = {"t_assemble_s": t_assemble, "t_solve_s": t_solve}
    if E is not None and not with_e:
        E_model, _ = expansion.predict(R)
        c, info["energy_fit"] = integration_constant(E, E_model)
        expansion = KernelExpansion(pairs, N, sigma, X, B, a, c)
    return expansion, alphas, info


def integration_constant(E_ref, E_model):
    """Offset ``c = mean(E_ref - E_model)`` and a check that the two energies agree.

    Returns ``(c, fit)`` with ``fit = {"slope", "r"}`` of E_ref against E_model. A slope
    far from 1, a negative one, or a poor correlation means the energies and forces do not
    belong together (wrong units, a sign flip, mixed-up files); that is warned about loudly.
    """
    c = float(np.mean(E_ref - E_model))
    fit = {"slope": float("nan"), "r": float("nan")}
    if len(E_ref) >= 3 and np.std(E_model) > 0 and np.std(E_ref) > 0:
        dm, dr = E_model - E_model.mean(), E_ref - E_ref.mean()
        fit = {"slope": float(dm @ dr / (dm @ dm)), "r": float(np.corrcoef(dm, dr)[0, 1])}
        if not (0.5 < fit["slope"] < 1.5) or fit["r"] < 0.8:
            warnings.warn(
                f"training energies do not match the forces: fitting E_ref = slope * E_model + c "
                f"gives slope {fit['slope']:.3g} (expect ~1) and correlation {fit['r']:.3g}. "
                "Check that forces are -dE/dR (not gradients), that E and F use the same units, "
                "and that they come from the same calculations.",
                EnergyConsistencyWarning, stacklevel=3)
    return c, fit


class _Stages:
    """Prints training stages with their wall time to stderr when verbose."""

    def __init__(self, verbose):
        self.verbose = verbose
        self.t0 = 0.0

    def start(self, what):
        self.t0 = time.perf_counter()
        if self.verbose:
            print(f"gdmlx: {what} ...", end="", file=sys.stderr, flush=True)

    def stop(self):
        dt = time.perf_counter() - self.t0
        if self.verbose:
            print(f" {dt:.2f} s", file=sys.stderr, flush=True)
        return dt
