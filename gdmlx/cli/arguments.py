"""Checks of the command line's arguments as argparse reads them. Imports nothing heavy:
building the parser (``gdmlx --help``) must not wait for numpy, scikit-learn or numba."""

import argparse
import math

from gdmlx.errors import InputError


# whole numbers go to numpy and HDF5 as int64: larger ones raised OverflowError or h5py's TypeError
INT_MAX = 2**63 - 1


def _number_type(convert, minimum, strict, what, maximum=math.inf):
    """An argparse ``type``: ``convert(text)``, refused unless finite, >= ``minimum`` (> if
    ``strict``) and <= ``maximum``; argparse then names the option in its error."""
    def parse(text):
        try:
            value = convert(text)
            ok = math.isfinite(value) and (value > minimum if strict else value >= minimum) and value <= maximum
        except (ValueError, OverflowError):        # not a number; a whole number beyond any float
            ok = False
        if not ok:
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}")
        return value
    return parse


positive_int = _number_type(int, 1, False, "a whole number >= 1 (below 2^63)", INT_MAX)
non_negative_int = _number_type(int, 0, False, "a whole number >= 0 (below 2^63)", INT_MAX)
positive_float = _number_type(float, 0.0, True, "a number > 0")
non_negative_float = _number_type(float, 0.0, False, "a number >= 0")


def relative_tolerance(text):
    """An argparse ``type`` for a relative residual: a number in (0, 1)."""
    value = positive_float(text)
    if value >= 1.0:
        raise argparse.ArgumentTypeError(f"expected a relative residual in (0, 1), got {text!r}")
    return value


def check_suffix(path, suffixes, what):
    """Raise InputError unless ``path`` ends with one of ``suffixes`` (what is written there
    would otherwise be misread by its name)."""
    if not str(path).lower().endswith(suffixes):
        raise InputError(f"{path}: {what} are written as {' or '.join(suffixes)}; name the file so")


def fraction_below_one(text):
    """An argparse ``type`` for a fraction in [0, 1) (validate --skip)."""
    value = non_negative_float(text)
    if value >= 1.0:
        raise argparse.ArgumentTypeError(f"expected a fraction in [0, 1), got {text!r}")
    return value
