"""Reading .npz archives (sGDML models and datasets) safely: no pickle, and no array
larger than what the archive holds."""

import tokenize
import zipfile
import zlib

import numpy as np

from gdmlx.hdf5_files import MAX_EXPANSION

# what numpy and zipfile raise for a damaged .npz (a damaged deflate stream: zlib.error; a
# garbled .npy header fails in numpy's header parser: SyntaxError, tokenize.TokenError; a
# garbled 'version needed' or compression method: zipfile's NotImplementedError)
NPZ_READ_ERRORS = (ValueError, OSError, EOFError, SyntaxError, tokenize.TokenError, zipfile.BadZipFile,
                   zlib.error, NotImplementedError)


def read_npz(path, keys, error, what):
    """Dict of the arrays ``keys`` (those present) of the .npz archive at ``path``, and the
    set of every key in it: ``(arrays, all_keys)``.

    Each member's header is checked against the bytes the archive holds before it is read,
    so that a corrupt or crafted file cannot make numpy allocate what is not there; object
    (pickled) arrays are never loaded. Raises ``error`` (an exception class) naming the file
    and ``what`` it should have been.
    """
    if not zipfile.is_zipfile(path):
        raise error(f"{path}: not an .npz archive (a zip file of arrays), or a truncated one: not a readable {what}")
    try:
        with np.load(path, allow_pickle=False) as npz:
            present = [k for k in keys if k in npz.files]
            for k in present:            # numpy reads a member 'R' as well as 'R.npy', 'R' first
                if _check_member(npz.zip.getinfo(_member(npz, k)), npz.zip, path, k, error).hasobject:
                    raise error(f"{path}: not a readable {what}: '{k}' holds object (pickled) arrays, which "
                                "gdmlx never loads (np.savez stores a None so): store numbers or text")
            return {k: npz[k] for k in present}, set(npz.files)
    except NPZ_READ_ERRORS as exc:
        if isinstance(exc, error):
            raise
        why = ("it holds object (pickled) arrays, which gdmlx never loads" if "allow_pickle" in str(exc)
               else f"{type(exc).__name__}: {exc}")
        raise error(f"{path}: not a readable {what} ({why})") from None


def _member(npz, key):
    """The archive member numpy reads for ``key``: 'R' before 'R.npy'."""
    return key if key in npz.zip.namelist() else f"{key}.npy"


def _check_member(info, archive, path, key, error):
    """The member's dtype, once its header is checked against the bytes it holds."""
    if info.file_size > MAX_EXPANSION * info.compress_size + 2**20:
        raise error(f"{path}: '{key}' would expand from {info.compress_size} to {info.file_size} bytes: "
                    "corrupt or crafted")
    with archive.open(info) as fp:
        version = np.lib.format.read_magic(fp)
        read_header = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                       else np.lib.format.read_array_header_2_0)
        shape, _, dtype = read_header(fp)
        held = info.file_size - fp.tell()
    declared = int(np.prod(shape, dtype=object)) * dtype.itemsize
    if not dtype.hasobject and declared > held:
        raise error(f"{path}: '{key}' declares {declared} bytes but holds {held}: the file is truncated "
                    "or corrupt")
    return dtype
