"""Fitting the coefficients of a GDML model: kernel assembly, solve, integration constant.

Pure functions; :class:`gdmlx.GDMLRegressor` is the user-facing shell around them.
"""

import hashlib
import sys
import time
import warnings

import numpy as np

from gdmlx.backend import backend_module
from gdmlx.cg import conjugate_gradient
from gdmlx.errors import EnergyConsistencyWarning, InputError, InsufficientMemoryError
from gdmlx.expansion import KernelExpansion
from gdmlx.kernel_data import KernelData
from gdmlx.kernel_operator import ForceKernelOperator
from gdmlx.kernels.assembly import (
    assemble_energy_rows,
    assemble_force_blocks,
    assemble_symmetric_force_blocks,
)
from gdmlx.nystrom import NystromPreconditioner
from gdmlx.progress import Pacer, append, finish, show
from gdmlx.rigid import InternalCoordinates
from gdmlx.solvers import (
    analytic_memory_bytes,
    check_analytic_fits,
    large_zeros,
    memory_budget_bytes,
    solve_cholesky_lower,
)


def training_matrix_size(n_train, rows_per_point, use_energy_labels):
    """Rows of the training system: ``rows_per_point`` force rows per geometry (3N, or 3N - 6
    in internal coordinates), plus one per energy label."""
    return n_train * (rows_per_point + (1 if use_energy_labels else 0))


# Blocks per compiled call of the assembly: between calls Ctrl-C takes effect and progress
# is reported (a whole assembly in one call once kept Ctrl-C waiting for 17-53 s)
ASSEMBLY_CHUNKS = 100


def assemble_kernel_matrix(data, sigma, use_energy_labels, keep=None, progress=None):
    """Lower triangle of the training matrix for :class:`KernelData` ``data`` on the
    coordinates ``keep`` (M, r) of each training point, all 3N by default (see
    :mod:`gdmlx.kernels.assembly`). Returns the (M r [+ M]) square matrix. ``progress``
    (optional) is called with the fraction of the blocks done."""
    if keep is None:
        keep = np.tile(np.arange(3 * data.n_atoms, dtype=np.int64), (data.n_train, 1))
    size = training_matrix_size(data.n_train, keep.shape[1], use_energy_labels)
    K = large_zeros((size, size))
    if data.perms is None:
        def fill(b0, b1):
            assemble_force_blocks(data.X, data.G, data.pairs, data.n_atoms, sigma, keep, K, b0, b1)
    else:
        Xall, Gall = data.stacked()

        def fill(b0, b1):
            assemble_symmetric_force_blocks(Xall, Gall, data.pairs, data.perms, sigma, keep, K, b0, b1)
    n_blocks = data.n_train * (data.n_train + 1) // 2
    step = max(64, -(-n_blocks // ASSEMBLY_CHUNKS))
    for b0 in range(0, n_blocks, step):
        fill(b0, min(n_blocks, b0 + step))
        if progress:
            progress(min(n_blocks, b0 + step) / n_blocks)
    if use_energy_labels:
        assemble_energy_rows(data.X, data.G, data.pairs, data.n_atoms, sigma, keep, K)
    return K


def fit_expansion(R, F, E, pairs, sigma, lam, use_energy_labels, options, solver="analytic", perms=None,
                  length_in_angstrom=1.0):
    """Fit a GDML model; returns ``(expansion, alphas, info)``.

    R (M, N, 3), F (M, N, 3) and E (M,) or None are validated training data; ``alphas``
    (M, N, 3) are the force coefficients and ``info`` a dict of timings, the solver used and
    the energy consistency fit. Labels are scaled by the force standard deviation for the
    solve. ``solver``: "analytic" (dense Cholesky), "cg" (matrix-free conjugate gradient)
    or "auto" (analytic if its matrix fits in the memory budget). ``perms`` (P, N): sum the
    kernel over these atom permutations (a group, identity first; see :mod:`gdmlx.symmetry`).

    ``lam`` regularises the force rows; it scales with the length unit as the kernel's
    force blocks do (:func:`gdmlx.units.hyperparameters_in`), while the energy rows' block
    does not, so energy rows get ``lam / length_in_angstrom**2`` (the length unit of R in
    A): the same lam for data in A, and the same model from data in any length unit.
    """
    M, N = R.shape[:2]
    with_e = use_energy_labels and E is not None
    data = KernelData(R, pairs, perms)
    coords = InternalCoordinates(R) if solver != "cg" else None
    r = 3 * N if coords is None else coords.n_kept
    size = training_matrix_size(M, r, with_e)
    if solver == "auto":
        need = analytic_memory_bytes(size, r, triangle=True)
        budget = memory_budget_bytes(options.memory_limit_gb)
        solver = "analytic" if need <= budget or with_e else "cg"     # energy rows: analytic only
        if solver == "cg" and options.verbose:
            print(f"gdmlx: the analytic solver's {size} x {size} system needs {need / 1e9:.3g} GB, more than "
                  f"the {budget / 1e9:.3g} GB budget: solving with conjugate gradient, which converges "
                  "much faster with a larger lam than the default (about 1e-7 (10 / sigma)^2 for data "
                  "in A)", file=sys.stderr)
    if solver == "analytic":
        check_analytic_fits(size, options.memory_limit_gb, r, triangle=True, energy_rows=with_e)
    elif with_e:
        raise ValueError("energy labels in the linear system need the analytic solver for now "
                         "(solver='analytic'; gdmlx train --solver analytic)")
    elif not lam > 0:                   # the Nystrom preconditioner divides by it
        raise InputError(f"the iterative solver needs lam > 0 (its preconditioner is (K_nystrom + lam I)^-1), "
                         f"got lam={lam!r}: use e.g. lam=1e-10, or solver='analytic'")
    if with_e and data.perms is not None:
        raise ValueError("energy labels in the linear system cannot be combined with "
                         "permutational symmetries yet; use one or the other")
    y_std = float(F.std()) or 1.0
    e_mean = float(E.mean()) if with_e else 0.0
    y = F.reshape(-1) / y_std
    if with_e:
        y = np.concatenate([y, (E - e_mean) / y_std])
    if solver == "analytic":
        sol, info = _solve_analytic(data, sigma, lam, y, with_e, options, coords,
                                    lam / length_in_angstrom**2)
    else:
        sol, info = _solve_cg(data, sigma, lam, y, with_e, options)
    info["solver"] = solver
    sol *= y_std
    alphas = sol[:M * 3 * N].reshape(M, N, 3)
    a = sol[M * 3 * N:] if with_e else np.zeros(len(data.X_cols))
    B = data.betas(alphas)
    expansion = KernelExpansion(pairs, N, sigma, data.X_cols, B, a, e_mean)
    if E is not None and not with_e:
        E_model, _ = expansion.predict(R)
        c, info["energy_fit"] = integration_constant(E, E_model)
        expansion = KernelExpansion(pairs, N, sigma, data.X_cols, B, a, c)
    return expansion, alphas, info


def _solve_analytic(data, sigma, lam, y, with_e, options, coords, energy_lam):
    """Dense Cholesky solve in the internal coordinates ``coords`` (:mod:`gdmlx.rigid`; the
    same solution as the full system's, whose rigid part no prediction sees); ``energy_lam``
    regularises the energy rows (if any)."""
    log = Stages(options.verbose)
    M, n3, r = data.n_train, 3 * data.n_atoms, coords.n_kept
    y = np.concatenate([coords.labels(y[:M * n3].reshape(M, n3)), y[M * n3:]])
    log.start(f"assembling the {len(y)} x {len(y)} kernel matrix")
    K = assemble_kernel_matrix(data, sigma, with_e, coords.keep, log.progress)
    coords.subtract_rigid_regularisation(K, lam)
    e_rows = np.arange(M * r, len(y))
    K[e_rows, e_rows] += energy_lam - lam                  # the solve adds lam to every row
    t_assemble = log.stop()
    log.start("Cholesky solve")
    sol = solve_cholesky_lower(K, y, lam, log.progress)
    info = {"t_assemble_s": t_assemble, "t_solve_s": log.stop(), "system_rows": len(y)}
    return np.concatenate([coords.coefficients(sol[:M * r]).ravel(), sol[M * r:]]), info


def preconditioner_points(n_train, n_atoms, n_pairs, n_perms, budget_bytes):
    """Default number of training points of the Nystrom preconditioner.

    Each CG iteration applies the preconditioner (two products with its 3NM x 3Nk factor)
    and the kernel (about M^2 D P operations); k = 0.6 M D P / (3N)^2 balances the two.
    Measured (benchmarks/README.md section 4, lam 1e-10 and 1e-9): ethanol, 1000 points,
    104 s at k = 31 (the rule: 30) against 134-215 s at 62-250 (the old default, M / 4,
    was 250) and 214 s at 16; oleic acid, 300 points, 113 s at k = 8 (the rule: 10)
    against 130 s at 16 and 295 s at 4. Never more than M / 4 points, nor a factor beyond
    a sixth of the memory budget.
    """
    per_point = NystromPreconditioner.memory_bytes(n_train, n_atoms, 1)
    balanced = 0.6 * n_train * n_pairs * n_perms / (3 * n_atoms) ** 2
    return max(1, int(min(n_train // 4, budget_bytes / 6 / per_point, round(balanced))))


def _solve_cg(data, sigma, lam, y, with_e, options):
    log = Stages(options.verbose)
    M = data.n_train
    k = options.preconditioner_points
    if k is None:
        k = preconditioner_points(M, data.n_atoms, len(data.pairs), 1 if data.perms is None else len(data.perms),
                                  memory_budget_bytes(options.memory_limit_gb))
    k = min(k, M)                             # it takes each training point at most once
    xp = backend_module(options.backend)
    _check_cg_fits(data, k, xp is np, options.memory_limit_gb)
    log.start(f"Nystrom preconditioner on {k} of {M} training points")
    op = ForceKernelOperator(data, sigma, lam, xp)
    pc = NystromPreconditioner(data, sigma, lam, k)
    t_pc = log.stop()
    log.start(f"conjugate gradient to relative residual {options.cg_tol:g}")

    # "... [100: 8.2e-05] 12.3 s" at iteration 50, then by the clock: a line per 50 iterations
    # wrote 16 lines a second to a log for 200 ethanol geometries, and products of seconds
    # each (thousands of points) showed nothing for minutes before iteration 50
    pacer = Pacer(options.cg_max_iter, first=50)

    def progress(it, res):
        if pacer.due(it):
            log.report(f"[{it}: {res:.1e}]")

    # the same labels: a checkpoint can start the solve; the same operator and preconditioner
    # too (sigma, lam, pairs, permutations, Nystrom points): it resumes where it stopped
    key = hashlib.sha256(y.tobytes()).hexdigest()
    operator_key = hashlib.sha256(b"".join(np.ascontiguousarray(a).tobytes() for a in (
        np.array([sigma, lam]), data.pairs, np.zeros(0) if data.perms is None else data.perms,
        np.asarray(pc.points, dtype=np.int64)))).hexdigest()
    sol = conjugate_gradient(op.matvec, y, pc.apply, tol=options.cg_tol, max_iter=options.cg_max_iter,
                             checkpoint=options.cg_checkpoint, checkpoint_key=key, operator_key=operator_key,
                             callback=progress, notify=log.note)
    return sol, {"t_preconditioner_s": t_pc, "t_solve_s": log.stop(), "cg_products": op.n_products,
                 "preconditioner_points": len(pc.points)}


def _check_cg_fits(data, n_points, operator_on_host, memory_limit_gb):
    """Raise InsufficientMemoryError before the iterative solver allocates more than the
    budget: the preconditioner's factor, and the kernel operator's arrays when they live in
    host memory (with the GPU backend they are on the device)."""
    M, n_cols = data.n_train, len(data.X_cols)
    parts = {f"the preconditioner's factor ({n_points} point{'s' if n_points != 1 else ''})":
             NystromPreconditioner.memory_bytes(M, data.n_atoms, n_points)}
    if operator_on_host:
        parts[f"the kernel operator's {M} x {n_cols} coefficient arrays"] = ForceKernelOperator.memory_bytes(M, n_cols)
    need, limit = sum(parts.values()), memory_budget_bytes(memory_limit_gb)
    if need > limit:
        what = " and ".join(f"{b / 1e9:.3g} GB for {name}" for name, b in parts.items())
        raise InsufficientMemoryError(
            f"the iterative solver needs {what}, but only {limit / 1e9:.3g} GB may be used; train on "
            "fewer points (the operator grows with their square), use fewer permutational symmetries "
            "or preconditioner points, or raise the budget if you know the memory is there "
            "(ComputeOptions.memory_limit_gb; gdmlx train --memory-limit-gb)")


MIN_CHECKED_ENERGIES = 20
"""Training geometries below which the slope check of :func:`integration_constant` is not
made: the model's energies from so few geometries' forces are too loose for it. Consistent
ethanol data (bundled set, sigma 10, 20 random draws each; benchmarks/energy_check_small_n.py)
failed it in 11, 8, 11, 13, 10, 5 and 6 of 20 fits of 3, 4, 5, 6, 8, 10 and 15 geometries
(slopes -1.1 to 1.4), in none of 10 of 20, 30, 50 or 100 (slopes 0.66-1.12, correlation at
least 0.86)."""


def integration_constant(E_ref, E_model):
    """Offset ``c = mean(E_ref - E_model)`` and a check that the two energies agree.

    Returns ``(c, fit)`` with ``fit = {"slope", "r"}`` of E_ref against E_model (from 3
    geometries on). A slope
    far from 1, a negative one, or a poor correlation means the energies and forces do not
    belong together (wrong units, a sign flip, mixed-up files); that is warned about loudly,
    from :data:`MIN_CHECKED_ENERGIES` geometries on.
    """
    c = float(np.mean(E_ref - E_model))
    fit = {"slope": float("nan"), "r": float("nan")}
    if len(E_ref) >= 3 and np.ptp(E_ref) == 0 and np.std(E_model) > 0:
        warnings.warn(f"the training energies are all {E_ref[0]:g}: placeholders, not energies? The model's "
                      "energies then have only their offset from them; train without energies "
                      "(energies=None) if there are none", EnergyConsistencyWarning, stacklevel=3)
    if len(E_ref) >= 3 and np.std(E_model) > 0 and np.std(E_ref) > 0:
        dm, dr = E_model - E_model.mean(), E_ref - E_ref.mean()
        fit = {"slope": float(dm @ dr / (dm @ dm)), "r": float(np.corrcoef(dm, dr)[0, 1])}
        if len(E_ref) >= MIN_CHECKED_ENERGIES and (not (0.5 < fit["slope"] < 1.5) or fit["r"] < 0.8):
            warnings.warn(
                f"training energies do not match the forces: fitting E_ref = slope * E_model + c "
                f"gives slope {fit['slope']:.3g} (expect ~1) and correlation {fit['r']:.3g}. "
                "Check that forces are -dE/dR (not gradients), that E and F use the same units, "
                "and that they come from the same calculations. If they do and the forces fit "
                "well, lam may be too large for this sigma (the kernel's scale falls as "
                "1/sigma^2): try a 10-100x smaller lam, or energy labels.",
                EnergyConsistencyWarning, stacklevel=3)
    return c, fit


class Stages:
    """Prints training stages with their wall time to stderr when verbose: on a terminal
    "gdmlx: stage ... 45% 90% 3.21 s" on one line, in a log file one line per report."""

    def __init__(self, verbose):
        self.verbose = verbose
        self.t0 = 0.0
        self._last = ""
        self.prefix = ""
        self._line = ""          # the stage's line on a terminal, without its latest report

    def start(self, what):
        self.t0 = time.perf_counter()
        self._last = ""
        self.prefix = f"gdmlx: {what}"
        self._line = f"{self.prefix} ..."
        if self.verbose:
            append(self._line)

    def progress(self, fraction):
        """Percentage of the current stage done, when verbose and the stage is long."""
        text = f" {100 * fraction:.0f}%"
        if self.verbose and time.perf_counter() - self.t0 > 5.0 and text != self._last:
            append(text, self.prefix)
            self._last = text

    def note(self, text):
        """Add ``text`` to the current stage's report (e.g. where a solve resumed)."""
        self._line += f" {text}"
        if self.verbose:
            append(f" {text}", self.prefix)

    def report(self, text):
        """Show ``text`` as the current stage's latest state (an iteration's residual): in
        place of the previous one on a terminal (a solve of thousands of iterations drew a
        line of hundreds of reports), a line of its own in a log file."""
        if self.verbose:
            show(f"{self._line} {text}")

    def stop(self):
        dt = time.perf_counter() - self.t0
        if self.verbose:
            append(f" {dt:.2f} s", self.prefix)
            finish()
        return dt