"""Progress lines on stderr: redrawn in place on a terminal, one line each in a log file
(carriage returns would glue a whole run, and any error after it, into one line)."""

import sys
import time

TERMINAL_EVERY_S = 0.25  # a terminal's line is redrawn at most this often by a clock-paced loop
LOG_EVERY_S = 10.0       # a log file or pipe gets a line at most this often from one

_line_open = False       # a terminal line was drawn and still needs its newline
_shown = 0               # length of the line show() drew last on the terminal


def on_terminal():
    """Whether stderr is a terminal (not when it is closed: ``sys.stderr`` None, e.g. under
    pythonw or a service started without it, where asking it raised AttributeError)."""
    return sys.stderr is not None and sys.stderr.isatty()


def show(text):
    """Write the progress line ``text``: over the previous one on a terminal (padded to
    cover a longer one), as a line of its own when stderr is a file or a pipe."""
    global _line_open, _shown
    if sys.stderr is None:               # closed: print would write to stdout instead
        return
    if on_terminal():
        print(f"\r{text.ljust(_shown if _line_open else 0)}", end="", file=sys.stderr, flush=True)
        _line_open, _shown = True, len(text)
    else:
        print(text, file=sys.stderr, flush=True)


def finish():
    """End a run of :func:`show` lines (the terminal's line still needs its newline); a
    second call adds nothing."""
    global _line_open
    if _line_open:
        print(file=sys.stderr, flush=True)
        _line_open = False


def append(text, prefix=""):
    """Add ``text`` to the open line on a terminal (a stage's "... 45%"); in a file or pipe
    write ``prefix + text`` as a line of its own, so that the log reads one line per report
    and an error after it starts on a line of its own."""
    global _line_open
    if sys.stderr is None:               # closed: print would write to stdout instead
        return
    if on_terminal():
        print(text, end="", file=sys.stderr, flush=True)
        _line_open = True
    else:
        print(f"{prefix}{text}", file=sys.stderr, flush=True)


class Pacer:
    """When a loop over ``total`` units of work (MD steps, frames) reports its progress:
    after every ``every`` units when ``every`` is given, else by the clock (every 0.25 s on a
    terminal, every 10 s in a log file or pipe: a short run writes a line or two to a log, a
    long one a line every 10 s); always after the last unit and when the loop stops early,
    and after unit ``first`` when given (an early line, with the first estimate of the time left)."""

    def __init__(self, total, every=None, first=None):
        self.total, self.every, self.first = total, every, first
        self.interval = TERMINAL_EVERY_S if on_terminal() else LOG_EVERY_S
        self.last = time.perf_counter()

    def due(self, done, stopped=False):
        """True when a report is due after ``done`` units (``stopped``: the loop ends here)."""
        if stopped or done >= self.total or done == self.first:
            self.last = time.perf_counter()
            return True
        if self.every is not None:
            return done % self.every == 0
        now = time.perf_counter()
        if now - self.last < self.interval:
            return False
        self.last = now
        return True


def time_left(done, total, elapsed_s):
    """``"  ETA 2 min 05 s"``: the time the rest of ``total`` units of work will take at
    the rate so far (``done`` in ``elapsed_s`` seconds), for a progress line; "" when
    nothing or everything is done."""
    if done <= 0 or done >= total or elapsed_s <= 0:
        return ""
    s = round(elapsed_s * (total - done) / done)
    if s < 60:
        text = f"{s} s"
    elif s < 3600:
        text = f"{s // 60} min {s % 60:02d} s"
    elif s < 48 * 3600:
        text = f"{s // 3600} h {s % 3600 // 60:02d} min"
    else:
        text = f"{s / 86400:.1f} days"
    return f"  ETA {text}"
