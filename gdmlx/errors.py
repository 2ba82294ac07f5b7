"""Typed errors and warnings raised by gdmlx.

Library code raises these (never exits); each message says what is wrong and what to do.
"""


class InputError(ValueError):
    """Input arrays have the wrong shape, contain NaN/inf, or do not match the model."""


class GeometryError(InputError):
    """A geometry is outside what the model can describe (e.g. atoms too close)."""


class ModelFileError(ValueError):
    """A model file is truncated, corrupted, of a foreign format or of an unknown version."""


class InsufficientMemoryError(MemoryError):
    """A dense computation would not fit in the memory budget."""


class BackendUnavailableError(RuntimeError):
    """The GPU backend was asked for, but CuPy or a CUDA device is missing."""


class EnergyConsistencyWarning(UserWarning):
    """Training energies and forces do not look like a function and its negative gradient."""


class DomainWarning(UserWarning):
    """A geometry is outside the model's training domain: the model extrapolates there."""
