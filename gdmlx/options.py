"""Performance settings: they change how fast or in how much memory, never the answer."""

from dataclasses import dataclass


@dataclass(frozen=True)
class ComputeOptions:
    """Settings that do not change results (beyond rounding).

    Attributes
    ----------
    memory_limit_gb : float or None
        Largest dense matrix the analytic solver may allocate, in GB (1e9 bytes).
        None: 90 % of the memory available when training starts.
    batch_size : int or None
        Geometries per chunk in batched prediction. None: sized so that the chunk's
        (batch x training points) work arrays stay near 32 MB.
    verbose : bool
        Print training stages and their timings to stderr.
    """

    memory_limit_gb: float | None = None
    batch_size: int | None = None
    verbose: bool = False
