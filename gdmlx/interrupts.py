"""Stopping long work cleanly: Ctrl-C (SIGINT) and SIGTERM (a batch system's time limit,
``kill``) end runs the same way, with files closed and renamed; a few steps that must not
be cut (a trajectory frame being written to every dataset, a file being closed) hold both
back until they are done."""

import contextlib
import signal
import sys
import threading

HELD = (signal.SIGINT, signal.SIGTERM)


class Terminated(KeyboardInterrupt):
    """SIGTERM turned into an interrupt (:func:`terminate_as_interrupt`), so that whatever
    handles Ctrl-C handles it too."""


def _raise_terminated(_signum, _frame):
    raise Terminated


def _in_main_thread():
    return threading.current_thread() is threading.main_thread()


@contextlib.contextmanager
def terminate_as_interrupt():
    """Within the block, SIGTERM raises :class:`Terminated` instead of ending the process
    at once; nothing changes outside the main thread or where a SIGTERM handler is set."""
    if not _in_main_thread() or signal.getsignal(signal.SIGTERM) != signal.SIG_DFL:
        yield
        return
    signal.signal(signal.SIGTERM, _raise_terminated)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)


@contextlib.contextmanager
def interrupts_deferred():
    """Run the block with SIGINT and SIGTERM held back: one that arrives during it takes
    effect (normally as KeyboardInterrupt, or :class:`Terminated`) right after the block
    ends, not inside it. Outside the main thread, where Python cannot set signal handlers,
    the block runs as it is."""
    if not _in_main_thread():
        yield
        return
    received = []
    previous = {s: signal.signal(s, lambda signum, frame: received.append((signum, frame))) for s in HELD}
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
    if received:
        signum, frame = received[0]
        handler = previous[signum]
        if callable(handler):
            handler(signum, frame)
        elif handler == signal.SIG_DFL:
            if signum == signal.SIGINT:
                raise KeyboardInterrupt
            signal.raise_signal(signum)


@contextlib.contextmanager
def said_when_stopped(note):
    """Within the block, an interrupt (Ctrl-C, :class:`Terminated`) first ends an open
    progress line and prints ``note`` (what the stopped command keeps) to stderr."""
    from gdmlx.progress import finish
    try:
        yield
    except KeyboardInterrupt:
        finish()
        print(note, file=sys.stderr, flush=True)
        raise
