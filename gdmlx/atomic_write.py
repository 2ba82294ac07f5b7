"""Write files so that an interrupted write never leaves a broken file behind."""

import contextlib
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


@contextlib.contextmanager
def atomic_path(path):
    """Yield a temporary path next to ``path``; rename it onto ``path`` only on success."""
    path = check_output_path(path)
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=os.path.splitext(path)[1], dir=directory)
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
