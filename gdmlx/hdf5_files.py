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


# A compressed dataset may expand this much at most when read (gzip of real data: < 10x)
MAX_EXPANSION = 1000


def read_array(group, name, error, kind="float", ndim=None):
    """``group[name]`` as a numpy array, checked before anything is read.

    It must be a dataset stored in this file (not a link to another file, a virtual or an
    externally stored dataset), of a real numeric type (``kind`` "float": integers or
    floats; "int": integers only), with ``ndim`` dimensions if given, and it must hold the
    bytes it declares, so that a truncated or crafted file cannot make the reader allocate
    gigabytes it does not contain. Raises ``error`` (an exception class) naming the file
    and the dataset.
    """
    where = f"{group.file.filename}: '{group.name.rstrip('/')}/{name}'"
    link = group.get(name, getlink=True)
    if link is None:
        raise error(f"{where} is missing; the file is truncated or was not written by gdmlx")
    if not isinstance(link, h5py.HardLink):
        raise error(f"{where} is a link ({type(link).__name__}), not data stored in this file")
    ds = group[name]
    if not isinstance(ds, h5py.Dataset):
        raise error(f"{where} is not a dataset")
    if ds.is_virtual or ds.external:
        raise error(f"{where} takes its data from other files (virtual or external storage)")
    allowed = "iu" if kind == "int" else "iuf"
    if ds.dtype.kind not in allowed:
        raise error(f"{where} has type {ds.dtype}, expected {'integers' if kind == 'int' else 'real numbers'}")
    if ndim is not None and ds.ndim != ndim:
        raise error(f"{where} has shape {ds.shape}, expected {ndim} dimension(s)")
    declared, stored = ds.size * ds.dtype.itemsize, ds.id.get_storage_size()
    if ds.compression is None and stored < declared and ds.size > 0 and ds.shape != ():
        raise error(f"{where} declares {declared} bytes but stores {stored}: the file is truncated or corrupt")
    if ds.compression is not None and declared > MAX_EXPANSION * stored + 2**20:
        raise error(f"{where} would expand from {stored} to {declared} bytes: corrupt or crafted")
    return ds[()]
