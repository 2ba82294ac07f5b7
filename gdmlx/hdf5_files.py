"""Opening HDF5 files for reading, with errors that say what the file should have been.

Files gdmlx reads hold their own data: links (to other files, or soft links within the
file), datasets stored in other files (external storage, virtual datasets) are refused
when the file is opened (:func:`open_hdf5`), and each dataset is checked against the
bytes it holds before it is read (:func:`check_dataset`), so that a crafted or damaged
file cannot make gdmlx read another file or allocate memory for data it does not contain.
Files gdmlx writes whole (model files) carry a SHA-256 of their contents
(:func:`write_content_digest`), checked when they are opened (:func:`check_content_digest`).
"""

import hashlib
import os
from contextlib import contextmanager

import h5py
import numpy as np

from gdmlx.errors import InputError, ModelFileError


def open_hdf5(path, what, error, hint="", check=None):
    """``h5py.File(path, "r")``; FileNotFoundError when there is no file, ``error`` (an
    exception class) naming ``what`` the file should be when HDF5 cannot read it or the
    file is not self-contained (:func:`check_self_contained`). ``hint`` is appended to
    the unreadable-file message. ``check(f, path)``, if given, is the reader's own check
    of the open file (its h5py errors become ``error``s); the file is closed when a check
    fails."""
    if not os.path.exists(path):
        raise FileNotFoundError(f"no such file: {path}")
    if os.path.isdir(path):
        raise IsADirectoryError(f"{path} is a directory, not a {what}")
    try:
        f = h5py.File(path, "r")
    except OSError as exc:
        raise error(f"{path}: not a readable HDF5 {what} ({exc}){hint}") from None
    try:
        check_self_contained(f, error)
        if check is not None:
            with read_errors(path, error):
                check(f, path)
    except BaseException:
        f.close()
        raise
    return f


def check_self_contained(f, error):
    """Raise ``error`` if open file ``f`` has a link other than a hard link (anywhere in
    it, also to groups) or a dataset whose data lie in other files."""
    links, datasets = [], []         # collected: h5py's visit callbacks must not raise
    with read_errors(f.filename, error):
        f.visititems_links(lambda name, link: None if isinstance(link, h5py.HardLink)
                           else links.append((name, link)))
        f.visititems(lambda name, obj: datasets.append((name, obj)) if isinstance(obj, h5py.Dataset) else None)
    for name, link in links:
        target = f"{getattr(link, 'filename', None) or ''}:{link.path}".lstrip(":")
        raise error(f"{f.filename}: '/{name}' is a link ({type(link).__name__} to {target}); gdmlx reads "
                    "only data stored in the file itself")
    for name, ds in datasets:
        if ds.is_virtual or ds.external:
            raise error(f"{f.filename}: '/{name}' takes its data from other files "
                        f"({'virtual dataset' if ds.is_virtual else 'external storage'})")


@contextmanager
def read_errors(path, error):
    """Raise ``error`` (an exception class) naming ``path`` for what h5py and numpy raise
    while reading a damaged or foreign file (bytes that do not decode, offsets out of
    bounds, unknown types, missing entries); ``error`` itself passes, gdmlx's other errors
    (a check's InputError while reading a model file) become ``error``."""
    try:
        yield
    except error:
        raise
    except (InputError, ModelFileError) as exc:
        raise error(f"{path}: {exc}") from None
    except KeyError as exc:
        raise error(f"{path}: lacks an entry ({exc}); the file is truncated or was not written "
                    "by gdmlx") from None
    except (OSError, RuntimeError, SystemError, ValueError, TypeError, IndexError) as exc:
        raise error(f"{path}: unreadable ({type(exc).__name__}: {exc}); the file is truncated, corrupt "
                    "or was not written by gdmlx") from None


# A compressed dataset may expand this much at most when read (gzip of real data: < 10x)
MAX_EXPANSION = 1000


def check_dataset(group, name, error, kind="float", ndim=None):
    """``group[name]``, an h5py Dataset checked before anything is read: of a real numeric
    type (``kind`` "float": integers or floats; "int": integers only), with ``ndim``
    dimensions if given, holding the bytes it declares, so that a truncated or crafted file
    cannot make the reader allocate gigabytes it does not contain. Raises ``error`` (an
    exception class) naming the file and the dataset. The file must have been opened with
    :func:`open_hdf5` (which refuses links and data in other files)."""
    where = f"{group.file.filename}: '{group.name.rstrip('/')}/{name}'"
    ds = group.get(name)
    if ds is None:
        raise error(f"{where} is missing; the file is truncated or was not written by gdmlx")
    if not isinstance(ds, h5py.Dataset):
        raise error(f"{where} is not a dataset")
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
    return ds


def check_group(obj, error):
    """``obj`` (an entry of an open file), which must be an HDF5 group; ``error`` (an
    exception class) naming the file and the entry otherwise."""
    if not isinstance(obj, h5py.Group):
        raise error(f"{obj.file.filename}: '{obj.name}' is not a group")
    return obj


def read_array(group, name, error, kind="float", ndim=None):
    """``group[name]`` as a numpy array, checked first (:func:`check_dataset`)."""
    return check_dataset(group, name, error, kind, ndim)[()]


# Root attribute holding the SHA-256 of everything else in a file gdmlx wrote whole
DIGEST_ATTR = "content_sha256"


def content_digest(f, error):
    """SHA-256 (hex) of open file ``f``: every group's and dataset's name, attributes (but
    the root's ``DIGEST_ATTR``) and data, in sorted order. Datasets are checked
    (:func:`check_dataset`, ``error`` naming a bad one) before they are read."""
    h = hashlib.sha256()
    names = []
    f.visit(names.append)
    for name in [""] + sorted(names):
        obj = f[name] if name else f
        h.update(f"/{name}\0".encode())
        for key in sorted(obj.attrs):
            if not (obj is f and key == DIGEST_ATTR):
                h.update(f"{key}\0".encode() + _value_bytes(obj.attrs[key]))
        if isinstance(obj, h5py.Dataset):
            parent, _, leaf = obj.name.rpartition("/")
            h.update(_value_bytes(read_array(f[parent or "/"], leaf, error)))
    return h.hexdigest()


def _value_bytes(value):
    """Bytes that stand for an attribute's or dataset's value (type, shape and contents)."""
    a = np.asarray(value)
    if a.dtype.kind in "OSU":
        return f"{a.dtype.kind}{a.shape}{a.tolist()!r}".encode()
    return f"{a.dtype.str}{a.shape}".encode() + np.ascontiguousarray(a).tobytes()


def write_content_digest(f, error):
    """Store :func:`content_digest` of ``f`` (open for writing, complete) in ``f``."""
    f.flush()
    f.attrs[DIGEST_ATTR] = content_digest(f, error)


def check_content_digest(f, path, error):
    """Raise ``error`` unless open file ``f``'s contents match the digest stored in it.
    Files without one (written before gdmlx stored it) pass."""
    stored = f.attrs.get(DIGEST_ATTR)
    if stored is None:
        return
    if not isinstance(stored, str) or stored != content_digest(f, error):
        raise error(f"{path}: its contents do not match the checksum stored in it: the file is corrupt "
                    "or was changed after gdmlx wrote it")
