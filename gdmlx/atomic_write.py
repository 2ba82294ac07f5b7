"""Write files so that an interrupted write never leaves a broken file behind."""

import contextlib
import errno
import os
import tempfile


def check_output_path(path):
    """``path`` as a string, after checking that a file can be created there: its directory
    exists and it is not itself a directory (the errors name the path, not a temporary file)."""
    path = os.fspath(path)
    if not path.strip():                    # abspath('') is the working directory: the file would be
        raise ValueError(f"cannot write {path!r}: an empty file name")      # its parent's temporary
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise FileNotFoundError(f"cannot write {path}: there is no directory {directory}")
    if os.path.isdir(path):
        raise IsADirectoryError(f"cannot write {path}: it is a directory")
    return path


def check_writable(path, locks=False):
    """Raise naming ``path`` (checked by :func:`check_output_path`) unless a file can be
    created in its directory and, with ``locks``, locked there as HDF5 locks its files: a
    read-only or forbidden directory, or a file system without locks (some NFS and parallel
    file systems), was found when the result was written, after the work."""
    path = check_output_path(path)
    fd, probe = _temporary_file(path)
    try:
        if locks and os.environ.get("HDF5_USE_FILE_LOCKING", "").upper() not in ("FALSE", "0"):
            _check_file_locks(fd, path)
    finally:
        os.close(fd)
        os.remove(probe)


def _check_file_locks(fd, path):
    """Raise OSError naming ``path`` when the file system of the open file ``fd`` (beside
    ``path``) cannot lock files."""
    try:
        import fcntl
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except ImportError:                 # Windows: no flock, nor the problem
        return
    except OSError as exc:
        if exc.errno == errno.ENOLCK:      # HDF5 goes on without locks where they are off (ENOSYS)
            raise OSError(f"cannot write {path}: the file system of {os.path.dirname(os.path.abspath(path))} "
                          "does not support file locks, which HDF5 takes: set HDF5_USE_FILE_LOCKING=FALSE") from None


def _temporary_file(path):
    """``(fd, name)`` of a new temporary file beside ``path``; an error names ``path`` and its
    directory, not the temporary name."""
    directory = os.path.dirname(os.path.abspath(path))
    try:
        return tempfile.mkstemp(prefix=".tmp-", suffix=os.path.splitext(path)[1], dir=directory)
    except OSError as exc:
        raise type(exc)(f"cannot write {path}: no file can be created in {directory} ({exc.strerror})") from None


@contextlib.contextmanager
def atomic_path(path):
    """Yield a temporary path next to ``path``; rename it onto ``path`` only on success."""
    path = check_output_path(path)
    fd, tmp = _temporary_file(path)
    os.close(fd)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)      # mkstemp makes 0600; give the file the usual permissions
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
