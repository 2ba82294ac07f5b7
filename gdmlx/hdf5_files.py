"""Opening HDF5 files for reading, with errors that say what the file should have been."""

import os

import h5py


def open_hdf5(path, what, error, hint=""):
    """``h5py.File(path, "r")``; FileNotFoundError when there is no file, ``error`` (an
    exception class) naming ``what`` the file should be when HDF5 cannot read it. ``hint``
    is appended to that message."""
    if not os.path.exists(path):
        raise FileNotFoundError(f"no such file: {path}")
    try:
        return h5py.File(path, "r")
    except OSError as exc:
        raise error(f"{path}: not a readable HDF5 {what} ({exc}){hint}") from None
