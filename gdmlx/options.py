"""Performance settings: they change how fast or in how much memory, never the answer."""

import os
from dataclasses import dataclass

from gdmlx.backend import check_backend, resolve_backend
from gdmlx.errors import InputError
from gdmlx.validation import check_count, check_flag, check_number


@dataclass(frozen=True)
class ComputeOptions:
    """Settings that do not change results (beyond rounding).

    Attributes
    ----------
    memory_limit_gb : float or None
        Memory the analytic solver's system may take, in GB (1e9 bytes): the lower triangle
        of its matrix (the only part written) and the assembly's work arrays
        (:func:`gdmlx.solvers.analytic_memory_bytes`); for the iterative solver, its
        preconditioner and, on the CPU, the kernel operator's (M, M P) coefficient arrays.
        None: 90 % of the memory available when training starts.
    batch_size : int or None
        Geometries per chunk in batched prediction. None: sized so that the chunk's
        (batch x training points) work arrays stay near 32 MB.
    verbose : bool
        Print training stages and their timings to stderr.
    cg_tol : float
        Iterative solver: relative residual to reach. 1e-5 gave forces within 2e-4
        kcal/mol/A (mean) of the analytic solution on aspirin (docs/guide.md).
    cg_max_iter : int
        Iterative solver: iteration cap.
    preconditioner_points : int or None
        Iterative solver: training points in the Nystrom preconditioner. None: k = 0.6 M D P
        / (3N)^2 (:func:`gdmlx.training.preconditioner_points`), at most a quarter of them and
        fewer if its (3NM x 3Nk) matrix would exceed a sixth of the memory budget.
    cg_checkpoint : str or None
        Iterative solver: file to save the CG state to every 20 iterations, and to resume from.
    backend : {"cpu", "gpu", "auto"}
        Where batched prediction (more than one geometry) and the iterative solver's kernel
        products run (:mod:`gdmlx.backend`): "gpu" needs CuPy and a CUDA device, "auto"
        takes the GPU when there is one. One geometry (MD, optimisers) always runs on the
        CPU's fused kernel, which has the lower latency.
    """

    memory_limit_gb: float | None = None
    batch_size: int | None = None
    verbose: bool = False
    cg_tol: float = 1e-5
    cg_max_iter: int = 10_000
    preconditioner_points: int | None = None
    cg_checkpoint: str | None = None
    backend: str = "cpu"

    def __post_init__(self):
        check_backend(self.backend)
        if self.backend == "gpu":
            resolve_backend("gpu")             # no CuPy or device: say so now, not after training
        checked = {"verbose": check_flag(self.verbose, "verbose"),
                   "cg_tol": check_number(self.cg_tol, "cg_tol", strict=True),
                   "cg_max_iter": check_count(self.cg_max_iter, "cg_max_iter")}
        if checked["cg_tol"] >= 1.0:
            raise InputError(f"cg_tol is a relative residual and must be below 1 (1 is met by a zero "
                             f"solution), got {self.cg_tol!r}")
        if self.memory_limit_gb is not None:
            checked["memory_limit_gb"] = check_number(self.memory_limit_gb, "memory_limit_gb", strict=True)
        for name in ("batch_size", "preconditioner_points"):
            if getattr(self, name) is not None:
                checked[name] = check_count(getattr(self, name), name)
        if self.cg_checkpoint is not None and not (
                isinstance(self.cg_checkpoint, (str, os.PathLike)) and str(self.cg_checkpoint).strip()):
            raise InputError(f"cg_checkpoint must be a file name or None, got {self.cg_checkpoint!r}")
        for name, value in checked.items():          # the checked values: 1.0 for '1', 2 for 2.0
            object.__setattr__(self, name, value)
