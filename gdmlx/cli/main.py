"""Entry point of the ``gdmlx`` command: builds the parser, runs a subcommand, maps errors
to exit codes (only here does gdmlx exit). Building the parser imports nothing heavy; a
subcommand imports what it needs when it runs, so Ctrl-C during those imports ends it
like Ctrl-C during its work."""

import argparse
import contextlib
import errno
import os
import pickle
import sys
import warnings

from gdmlx._version import __version__
from gdmlx.atomic_write import check_output_path, check_writable
from gdmlx.cli.arguments import check_suffix
from gdmlx.cli import action, demo, export, info, md, reduce, sample, split, test, train, validate
from gdmlx.interrupts import Terminated, terminate_as_interrupt
from gdmlx.progress import finish
from gdmlx.errors import BackendUnavailableError, InputError, InsufficientMemoryError, ModelFileError

SUBCOMMANDS = (demo, train, test, md, action, reduce, split, sample, validate, info, export)


def build_parser():
    parser = argparse.ArgumentParser(
        prog="gdmlx", description="Train GDML kernel force fields and run molecular dynamics with them.")
    parser.add_argument("--version", action="version", version=f"gdmlx {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in SUBCOMMANDS:
        module.add_parser(sub)
    return parser


def _warning_line(message, category, filename, lineno, line=None):
    """Warnings on the command line: what and why, not the library's source line."""
    return f"gdmlx: {category.__name__}: {message}\n"


def _check_not_an_input(args):
    """Refuse an output file that is one of the command's input files (which writing it
    would destroy, e.g. gdmlx md m.h5 -o m.h5)."""
    if not os.path.exists(args.output):
        return
    for name, given in vars(args).items():
        for value in given if isinstance(given, list) else [given]:       # nargs="+" inputs too
            if name != "output" and isinstance(value, str) and os.path.isfile(value) \
                    and os.path.samefile(value, args.output):
                raise InputError(f"-o {args.output} is also the command's input {name.replace('_', ' ')} "
                                 f"({value}): writing it would destroy that file; choose another output name")


def _reported_errors():
    """The exceptions that end a command with a message and exit code 2 (called only when
    one is raised: :mod:`gdmlx.cg` imports numpy)."""
    from gdmlx.cg import NotConvergedError
    return (InputError, ModelFileError, InsufficientMemoryError, BackendUnavailableError,
            NotConvergedError, OSError, ValueError)


def _check_file_names_given(parser, args):
    """Raise ValueError naming a positional argument (each names a file: model, data, ...)
    given as an empty text ("$UNSET" in a script), which the readers reported as 'no such
    file: ' followed by nothing."""
    for argument in parser._actions:                  # argparse keeps subparsers only here
        if isinstance(argument, argparse._SubParsersAction):
            _check_file_names_given(argument.choices[getattr(args, argument.dest)], args)
        elif not argument.option_strings:
            given = getattr(args, argument.dest)
            if any(not value.strip() for value in (given if isinstance(given, list) else [given])):
                raise ValueError(f"{argument.dest} was given an empty file name")


def _check_environment():
    """Raise naming what is wrong with the process's surroundings that numba reports without
    naming it: ``NUMBA_NUM_THREADS`` a whole number below 1 ('Number of threads specified
    must be > 0.' on import), a working directory that was deleted ('[Errno 2] No such file
    or directory' when a kernel compiles, with every file named present)."""
    text = os.environ.get("NUMBA_NUM_THREADS", "").strip()
    if text.lstrip("+-").isdigit() and int(text) < 1:
        raise ValueError(f"NUMBA_NUM_THREADS={text}: the threads of gdmlx's compiled kernels must be 1 or more; "
                         "unset it to use all cores")
    try:
        os.getcwd()
    except FileNotFoundError:
        raise FileNotFoundError("the working directory was deleted after the shell entered it: cd to an "
                                "existing folder and run again") from None


def _damaged_numba_cache(exc):
    """The folder of the numba cache file whose reading raised ``exc``, or None when numba
    did not raise it. numba raises on a cache file cut short (a crash while it was written)
    instead of compiling again (numba issue 10434), in every run until the file is gone."""
    folder, tb = None, exc.__traceback__
    while tb is not None:
        if tb.tb_frame.f_globals.get("__name__") == "numba.core.caching":
            folder = getattr(tb.tb_frame.f_locals.get("self"), "_cache_path", folder)
        tb = tb.tb_next
    return folder


class _Diagnostics:
    """``sys.stderr`` while a command runs: text that cannot be written there (a pipe whose
    reader is gone, as in ``gdmlx train ... 2>&1 | head -1``; a full disk; stderr closed) is
    dropped. A lost progress line ended a training or MD run there, with exit code 0 and no
    output file; with stderr closed, print sent the notes to stdout, among the results."""

    def __init__(self, stream):
        self.stream = stream

    def write(self, text):
        if self.stream is not None:
            try:
                self.stream.write(text)
            except OSError:
                pass
        return len(text)

    def flush(self):
        if self.stream is not None:
            try:
                self.stream.flush()
            except OSError:
                pass

    def isatty(self):
        return self.stream is not None and self.stream.isatty()

    def __getattr__(self, name):                # encoding, fileno, ...: the stream's
        return getattr(self.stream, name)


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    warnings.formatwarning = _warning_line
    with contextlib.redirect_stderr(_Diagnostics(sys.stderr)):
        return _run(parser, args)


def _run(parser, args):
    """Run the command ``args`` (parsed by ``parser``): its exit code."""
    try:
        _check_environment()
        _check_file_names_given(parser, args)
        if getattr(args, "output", None) is not None:   # before hours of training or sampling, not after
            if not args.output.strip():                  # "$UNSET" in a script: not -o left out
                raise ValueError("-o was given an empty file name")
            check_output_path(args.output)
            check_writable(args.output, locks=args.output.lower().endswith((".h5", ".hdf5")))
            _check_not_an_input(args)
            if hasattr(args, "output_suffixes"):
                check_suffix(args.output, args.output_suffixes, args.output_kind)
        with terminate_as_interrupt():
            return args.run(args) or 0
    except Terminated:
        finish()                               # a stage's progress line still open
        print("gdmlx: terminated (SIGTERM)", file=sys.stderr)
        return 143
    except KeyboardInterrupt:
        finish()
        print("gdmlx: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:                    # stdout's: e.g. 'gdmlx info m.h5 --json | head'
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())   # no error at exit's flush
        return 0
    except (EOFError, pickle.UnpicklingError) as exc:
        folder = _damaged_numba_cache(exc)
        if folder is None:
            raise
        return _error(args, f"a file of numba's cache of compiled kernels in {folder} is damaged "
                            f"({type(exc).__name__}: {exc}): delete the *.nbi and *.nbc files there and run again")
    except _reported_errors() as exc:
        return _error(args, exc)


def _error(args, message):
    """Print the command's error ``message`` on stderr, with the way out where HDF5 could not
    lock a file because the file system has no locks (some NFS and parallel file systems,
    where every model, dataset and trajectory file failed to open): exit code 2."""
    message = str(message)
    if "unable to lock file" in message and any(f"errno = {code}," in message for code in (errno.ENOLCK, errno.ENOSYS)):
        message += "; this file system does not support file locks: set HDF5_USE_FILE_LOCKING=FALSE"
    finish()
    print(f"gdmlx {args.command}: error: {message}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
