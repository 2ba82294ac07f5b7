"""Typed errors and warnings raised by gdmlx.

Library code raises these (never exits); each message says what is wrong and what to do.
"""

import sys


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


def user_stacklevel():
    """``stacklevel`` for a warning issued by the calling gdmlx function that points at the
    first frame outside ASE, gdmlx and contextlib (gdmlx's decorators made with it: the
    user's script)."""
    frame, level = sys._getframe(1), 1
    while frame is not None and frame.f_globals.get("__name__", "").split(".")[0] in ("gdmlx", "ase", "contextlib"):
        frame, level = frame.f_back, level + 1
    return level
