"""Preconditioned conjugate gradient that knows nothing about kernels (as in falkon).

Solves ``A x = b`` for a symmetric positive definite operator given as ``matvec``, with an
optional preconditioner ``precond(r) ~ A^-1 r``. The state can be checkpointed to a file
every few iterations and a solve resumed from it.
"""

import contextlib
import os

import numpy as np

from gdmlx.atomic_write import atomic_path
from gdmlx.interrupts import interrupts_deferred


class NotConvergedError(RuntimeError):
    """CG reached its iteration cap above the requested tolerance."""


def conjugate_gradient(matvec, b, precond=None, tol=1e-8, max_iter=1000, checkpoint=None,
                       checkpoint_every=20, checkpoint_key="", operator_key="", callback=None, notify=None):
    """``x`` with ``|A x - b| <= tol |b|``.

    checkpoint: path of an .npz holding the CG state; if it exists and was written for the
    same right-hand side (``checkpoint_key``, a string identifying b and the unknowns) the
    solve resumes from it: exactly where it was with the same operator and preconditioner
    (``operator_key``), otherwise restarted from its solution, with a fresh iteration
    count. It is rewritten every ``checkpoint_every`` iterations and removed once the
    solve converges.
    callback(iteration, relative_residual) is called after each iteration, ``notify(text)``
    (optional) with a resume or an interrupt.
    Raises NotConvergedError (with the residual reached) after ``max_iter`` iterations, or
    at once when a search direction has no positive curvature (a singular or indefinite A).
    """
    precond = precond or (lambda r: r)
    b_norm = np.linalg.norm(b) or 1.0
    state = _load(checkpoint, b.shape, checkpoint_key, operator_key)
    x, r, it, same = np.zeros_like(b), b.copy(), 0, False
    if state is not None:
        x, r, p, rz, it, same = state
        if notify:
            notify(f"resuming from {checkpoint} at iteration {it}" if same else
                   f"starting from the solution in {checkpoint} (written with another operator or "
                   "preconditioner)")
        if not same:                          # its search directions belong to the old solve
            r, it = b - matvec(x), 0
    if not same:
        z = precond(r)
        p = z.copy()
        rz = float(r @ z)
    saved = it if same else None              # the iteration the checkpoint file holds
    try:
        while it < max_iter:
            if np.linalg.norm(r) / b_norm <= tol:
                break
            Ap = matvec(p)
            pAp = float(p @ Ap)
            if not pAp > 0:                   # zero, negative or NaN: the search cannot go on
                raise NotConvergedError(
                    f"conjugate gradient broke down at iteration {it + 1} (p.Ap = {pAp:.3g}): the kernel "
                    "matrix is singular or not positive definite, e.g. duplicate geometries with too small "
                    "a lam: use a larger lam (gdmlx train --lam)")
            step = rz / pAp
            x += step * p
            r -= step * Ap
            z = precond(r)
            rz_new = float(r @ z)
            p = z + (rz_new / rz) * p
            rz = rz_new
            it += 1
            if callback:
                callback(it, np.linalg.norm(r) / b_norm)
            if checkpoint and it % checkpoint_every == 0:
                with interrupts_deferred():   # Ctrl-C in the save: the file and ``saved`` agree
                    _save(checkpoint, x, r, p, rz, it, checkpoint_key, operator_key)
                    saved = it
    except KeyboardInterrupt:
        # an interrupt during a save or just after the step that would be saved: the file
        # holds the last save, not the multiple of checkpoint_every below the iteration
        if notify and checkpoint and os.path.exists(checkpoint) and saved is not None:
            notify(f"stopped; {checkpoint} keeps the solve at iteration {saved}: "
                   "the same command resumes from there")
        raise
    res = np.linalg.norm(r) / b_norm
    if res <= tol:
        if checkpoint:
            with contextlib.suppress(FileNotFoundError):     # a twin run that finished first removed it
                os.remove(checkpoint)
        return x
    raise NotConvergedError(f"conjugate gradient did not reach relative residual {tol:g} in "
                            f"{max_iter} iterations (reached {res:.3g}): use a larger lam (gdmlx train "
                            "--lam), a larger preconditioner (ComputeOptions.preconditioner_points; "
                            "gdmlx train --preconditioner-points), or raise ComputeOptions.cg_max_iter "
                            "(gdmlx train --cg-max-iter)")


def _save(path, x, r, p, rz, it, key, operator_key):
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:
            np.savez(fh, x=x, r=r, p=p, rz=rz, it=it, key=key, operator_key=operator_key)


def _load(path, shape, key, operator_key=None):
    """The saved state ``(x, r, p, rz, it, same_operator)``, or None without a file."""
    if not path or not os.path.exists(path):
        return None
    with np.load(path, allow_pickle=False) as f:
        if f["x"].shape != shape or str(f["key"]) != key:
            raise ValueError(f"checkpoint {path} was written for another problem (another right-hand side: in a "
                             "fit, other training data); remove it to start afresh")
        same = operator_key is None or ("operator_key" in f.files and str(f["operator_key"]) == operator_key)
        return f["x"].copy(), f["r"].copy(), f["p"].copy(), float(f["rz"]), int(f["it"]), same
