"""Holding Ctrl-C while a few steps that must not be cut run: a trajectory frame being
written to every dataset, a file being closed and renamed."""

import contextlib
import signal
import threading


@contextlib.contextmanager
def interrupts_deferred():
    """Run the block with SIGINT held back: a Ctrl-C during it takes effect (normally as
    KeyboardInterrupt) right after the block ends, not inside it. Outside the main thread,
    where Python cannot set signal handlers, the block runs as it is."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    received = []
    previous = signal.signal(signal.SIGINT, lambda _signum, frame: received.append(frame))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
    if received:
        if callable(previous):
            previous(signal.SIGINT, received[0])
        elif previous == signal.SIG_DFL:
            raise KeyboardInterrupt
