"""Trajectory files written chunk by chunk while MD runs.

A run writes ``PATH.part`` and renames it to ``PATH`` when the writer is closed, also when
the run was interrupted or stopped early: what was computed is kept, and a file under the
final name is always complete and readable. Units: positions A, velocities A/fs, energies eV.
"""

import errno
import os
import shutil
from typing import NamedTuple

import h5py
import numpy as np
import ase.data
import ase.io
import ase.units

from gdmlx.atomic_write import check_output_path
from gdmlx.errors import InputError
from gdmlx.file_kinds import check_kind
from gdmlx.hdf5_files import check_dataset, open_hdf5, read_array, read_errors
from gdmlx.interrupts import interrupts_deferred
from gdmlx.validation import check_atomic_numbers, check_xyz_atom_counts


def open_trajectory(path, z, masses, metadata, n_replicas=None):
    """A writer for ``path``: HDF5 for .h5/.hdf5, extended XYZ for .xyz/.extxyz (one
    molecule only: replica runs, ``n_replicas`` not None, write HDF5)."""
    ext = os.path.splitext(check_output_path(path))[1].lower()
    if ext in (".h5", ".hdf5"):
        return HDF5Trajectory(path, z, masses, metadata, n_replicas)
    if n_replicas is not None:
        raise ValueError(f"replica trajectories are written as HDF5: name the file .h5, not {path}")
    if ext not in (".xyz", ".extxyz"):
        raise ValueError(f"{path}: trajectories are written as HDF5 (.h5, .hdf5) or extended XYZ "
                         "(.xyz, .extxyz); name the file so")
    return XYZTrajectory(path, z, masses, metadata)


FRAME_DATASETS = ("positions", "velocities", "time_fs", "epot", "ekin")
BUFFER_BYTES = 8 << 20       # frames are written in blocks of up to this size (one frame at least)
CHUNK_BYTES = 256 << 10      # HDF5 chunk size: few chunks to index in long runs, little to read per frame
# Disk space is reserved for each block before HDF5 writes it: a write that fails (a full disk, a
# quota) leaves an HDF5 file unreadable, with every frame written before, and crashed h5py.
RESERVE_BYTES = 2 * len(FRAME_DATASETS) * CHUNK_BYTES + (1 << 20)   # new chunks, metadata


class HDF5Trajectory:
    """Resizable HDF5 datasets: positions, velocities (n, N, 3), time_fs, epot, ekin (n,);
    with ``n_replicas`` R: positions, velocities (n, R, N, 3), epot, ekin (n, R).

    Frames are buffered and written in blocks; the attribute ``n_frames`` is raised only
    after a block is in every dataset, and Ctrl-C is held while a block is written
    (:func:`gdmlx.interrupts.interrupts_deferred`), so readers never see half a frame.

    The disk space of each block (and ``RESERVE_BYTES``) is reserved before it is written; a
    block without it (a full disk, a quota, a file size limit) is not written: OSError, and
    the file keeps the frames before it (a failed write can leave an HDF5 file unreadable).
    A write that fails nevertheless is an OSError naming the file, which then stays under
    its ``.part`` name.
    """

    def __init__(self, path, z, masses, metadata, n_replicas=None):
        self.path = os.fspath(path)
        try:
            _refuse_a_locked_file(self.path + ".part")     # "w" empties a file before it locks it
            self.f = h5py.File(self.path + ".part", "w")
        except OSError as exc:        # another writer: HDF5's lock, or open in this process
            locked = isinstance(exc, BlockingIOError) or "already open" in str(exc)
            raise OSError(f"cannot create {self.path}.part ({exc})"
                          + (f"; is another run writing {self.path}?" if locked else "")) from None
        self.f.attrs.update(format="gdmlx-trajectory", complete=False, n_frames=0, **metadata)
        self.f["z"], self.f["masses"] = z, masses
        lead = () if n_replicas is None else (n_replicas,)
        N = len(z)
        for name, shape in zip(FRAME_DATASETS, (lead + (N, 3), lead + (N, 3), (), lead, lead)):
            frames_per_chunk = max(1, CHUNK_BYTES // (8 * int(np.prod(shape))))
            self.f.create_dataset(name, (0,) + shape, maxshape=(None,) + shape,
                                  chunks=(frames_per_chunk,) + shape, dtype="f8")
        self.frame_bytes = 8 * (2 * 3 * N + 2) * (n_replicas or 1)
        self.buffer = []
        self.failed = ""          # "space": a block was not written; "write": a write failed

    def append(self, time_fs, q, v, epot, ekin):
        """Add frames (positions [A], velocities [A per ASE time unit], energies [eV]); copied,
        since the caller may go on updating its arrays in place."""
        frames = (q, v * ase.units.fs, time_fs, epot, ekin)
        self.buffer.append(tuple(np.array(a, dtype=np.float64) for a in frames))
        if sum(len(b[2]) for b in self.buffer) * self.frame_bytes >= BUFFER_BYTES:
            self.flush()

    def flush(self):
        """Write the buffered frames to every dataset, then count them in ``n_frames``."""
        if not self.buffer or self.failed:
            return
        with interrupts_deferred():
            block = [np.concatenate([np.asarray(b[k]) for b in self.buffer]) for k in range(5)]
            n0 = int(self.f.attrs["n_frames"])
            self._reserve(sum(a.nbytes for a in block), n0)
            why = self._write(block, n0)
            if why:
                self.failed = "write"
                raise OSError(f"cannot write frames to {self.path}.part ({why}): is its disk full or over "
                              "quota? The run stopped; the file keeps its .part name, as a failed write can "
                              "leave an HDF5 file unreadable")
            self.buffer = []

    def _write(self, block, n0):
        """Write ``block`` after frame ``n0`` and flush: "" or, when a write failed, why."""
        try:
            for name, data in zip(FRAME_DATASETS, block):
                ds = self.f[name]
                ds.resize(n0 + len(data), axis=0)
                ds[n0:] = data
            self.f.attrs["n_frames"] = n0 + len(block[2])
            self.f.flush()
        except (OSError, RuntimeError) as exc:          # what h5py raises for a failed write
            return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return ""

    def _reserve(self, block_bytes, n_written):
        """Reserve ``block_bytes + RESERVE_BYTES`` on disk at the end of the file (HDF5 writes
        into it and trims what it does not use); raise OSError, marking the writer failed,
        when the disk, a quota or a file size limit does not allow it. Where the file system
        cannot reserve, the disk's free space is checked instead."""
        need = block_bytes + RESERVE_BYTES
        try:
            fd = os.open(self.path + ".part", os.O_WRONLY)
            try:                                # from where HDF5's data end: no reservation twice
                os.posix_fallocate(fd, self.f.id.get_filesize(), need)
            finally:
                os.close(fd)
            return
        except AttributeError:                 # no posix_fallocate on this system
            short = shutil.disk_usage(os.path.dirname(os.path.abspath(self.path))).free < need
            why = "not enough free space"
        except OSError as exc:
            short = exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)
            why = exc.strerror
        if not short:                           # a file system that cannot reserve space
            return
        self.failed = "space"
        raise OSError(f"cannot write the next {need / 1e6:.1f} MB of frames to {self.path} ({why}): the run "
                      f"stopped, and the file keeps the {n_written} frames written before (marked "
                      f"incomplete); make space, then 'gdmlx md --restart {self.path}' goes on from its last frame")

    def close(self, complete, status):
        """Write what is buffered, mark the file, rename it to its final name (after a failed
        write: close it as it is, under its .part name)."""
        try:
            self.flush()                        # no space for the last block: closed all the same
        finally:
            with interrupts_deferred():
                if self.failed != "write":      # closing the file then crashed HDF5 (segfault)
                    self.f.attrs.update(complete=complete and not self.failed, status=status)
                    self.f.flush()
                    os.truncate(self.path + ".part", self.f.id.get_filesize())    # space reserved, not used
                    self.f.close()
                    os.replace(self.path + ".part", self.path)


class XYZTrajectory:
    """Extended XYZ frames as ASE writes them: species, positions [A], masses and momenta
    (ASE units) per atom; the potential energy as ASE's ``energy``
    (``atoms.get_potential_energy()`` after ``ase.io.read``), and time_fs, epot_eV and
    ekin_eV in each frame's info, with the run's settings (those of :data:`SETTINGS` in
    ``metadata``: the force model's fingerprint, the time step, ...). Formatted here rather
    than by ``ase.io.write``, which took 7x as long as the MD itself for a small molecule."""

    def __init__(self, path, z, masses, metadata):
        self.path = os.fspath(path)
        self.fh = _locked_for_writing(self.path + ".part", self.path)
        self.symbols = [ase.data.chemical_symbols[int(k)] for k in z]
        self.masses = np.asarray(masses, dtype=float)
        self.row = "%-2s" + " %16.8f" * 3 + " %16.8f" + " %16.8f" * 3 + "\n"
        self.last = None          # (file offset, header, atom lines) of the last frame written
        self.settings = "".join(f" {k}={_xyz_value(metadata[k])}" for k in SETTINGS if k in metadata)

    def append(self, time_fs, q, v, epot, ekin):
        """Add frames (positions [A], velocities [A per ASE time unit], energies [eV])."""
        frames = []
        for t, qi, vi, ep, ek in zip(time_fs, q, v, epot, ekin):
            header = (f"{len(self.symbols)}\nProperties=species:S:1:pos:R:3:masses:R:1:momenta:R:3 "
                      f"energy={float(ep)!r} time_fs={float(t)!r} epot_eV={float(ep)!r} "
                      f"ekin_eV={float(ek)!r} pbc=\"F F F\"" + self.settings)
            p = vi * self.masses[:, None]
            frames.append((header, "".join(self.row % (s, *r, m, *pm)
                                           for s, r, m, pm in zip(self.symbols, qi, self.masses, p))))
        if not frames:
            return
        with interrupts_deferred():
            try:
                self.fh.write("".join(f"{h}\n{body}" for h, body in frames[:-1]))
                self.last = (self.fh.tell(), *frames[-1])
                self.fh.write(f"{frames[-1][0]}\n{frames[-1][1]}")
                self.fh.flush()
            except OSError as exc:
                raise OSError(f"cannot write frames to {self.path} ({exc.strerror or exc}): is its disk full or "
                              f"over quota? The run stopped, and the file keeps the frames written before "
                              "(marked incomplete)") from None

    def close(self, complete, status):
        """Close and rename the file; a run that did not complete marks its last frame
        ``complete=F status=...`` (read back by :func:`read_last_state`)."""
        with interrupts_deferred():
            if not complete and self.last is not None:
                offset, header, body = self.last
                self.fh.seek(offset)
                self.fh.truncate()
                self.fh.write(f"{header} complete=F status={int(status)}\n{body}")
            self.fh.close()
            os.replace(self.path + ".part", self.path)


def _xyz_value(value):
    """A setting as an extended XYZ comment-line value: text quoted, numbers as Python writes them."""
    if isinstance(value, (str, bytes)):
        return '"' + (value.decode() if isinstance(value, bytes) else value) + '"'
    value = np.asarray(value).item()
    return repr(value) if isinstance(value, (int, float)) else f'"{value}"'


def _xyz_settings(info):
    """The run's settings (:data:`SETTINGS`) in the info of a frame of an extended XYZ
    trajectory ({} for files written before frames recorded them)."""
    out = {k: np.asarray(info[k]).item() for k in SETTINGS if k in info}
    for k in ("force_model", "integrator"):          # text; ASE reads a number-like one as a number
        if k in out and not isinstance(out[k], str):
            del out[k]
    return out


def _refuse_a_locked_file(part):
    """Raise HDF5's OSError when another process holds ``part`` open for writing (h5py's
    mode "w" truncates the file before it finds the lock: a second run with the same -o
    emptied a running one's trajectory); an unreadable leftover is overwritten as before."""
    if os.path.exists(part):
        try:
            h5py.File(part, "r").close()
        except BlockingIOError:             # errno 11: another process holds the lock
            raise


def _locked_for_writing(part, path):
    """``part`` opened for writing, emptied, and locked against a second writer (as HDF5
    locks its files): two runs writing one file at once cut each other's frames into it."""
    fh = open(os.open(part, os.O_WRONLY | os.O_CREAT, 0o666), "w")   # emptied only once the lock is ours
    try:
        import fcntl
    except ImportError:                  # no flock here (Windows): no lock
        fcntl = None
    if fcntl is not None:
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            if exc.errno in (errno.EAGAIN, errno.EWOULDBLOCK, errno.EACCES):
                fh.close()
                raise OSError(f"cannot create {part} ({exc}); is another run writing {path}?") from None
            # a file system without locks (ENOLCK, EOPNOTSUPP): written unlocked, as before
    fh.truncate(0)
    return fh


def read_trajectory(path):
    """Read an HDF5 trajectory written by gdmlx into a dict of numpy arrays and attributes
    (its whole frames: :func:`complete_frames`)."""
    with _open_trajectory(path) as f, read_errors(path, InputError):
        n = complete_frames(f)
        out = {k: f[k][:n] if k in FRAME_DATASETS else read_array(f, k, InputError)
               for k in f if isinstance(f[k], h5py.Dataset)}
        out.update(dict(f.attrs))
    return out


def _open_trajectory(path):
    """The trajectory at ``path`` open for reading, its layout checked (:func:`_check_layout`)."""
    hint = ("; extended XYZ trajectories are read by ase.io.read(path, ':')"
            if _is_xyz(path) else "")
    check_kind(path, ("trajectory",), "a gdmlx trajectory (.h5)", InputError)
    try:
        return open_hdf5(path, "trajectory", InputError, hint, check=_check_layout)
    except InputError as exc:
        if "unable to lock file, errno = 11," not in str(exc):   # another writer (37: no locks on this file system)
            raise
        raise InputError(f"{path} is being written by another process (a gdmlx md run still going?), and "
                         "HDF5 locks a file while it is written: read it once the run has ended (Ctrl-C "
                         "or SIGTERM end a run and keep its frames), or write an .xyz trajectory to "
                         "follow a run as it goes") from None


def _check_layout(f, path):
    """Raise InputError unless open file ``f`` has z (N,) atomic numbers and frame datasets
    of real numbers shaped for them: positions and velocities (T, N, 3) or, for replicas,
    (T, R, N, 3), time_fs (T,), epot and ekin (T,) or (T, R) where present, each holding
    the bytes it declares; and a whole ``n_frames``."""
    if not isinstance(f.get("positions"), h5py.Dataset):
        raise InputError(f"{path}: not a gdmlx trajectory (it has no 'positions' dataset)")
    missing = [k for k in ("z", "velocities", "time_fs") if k not in f]
    if missing:
        raise InputError(f"{path}: a gdmlx trajectory needs {missing} as well as 'positions'; the file "
                         "is damaged or was not written by gdmlx")
    z = read_array(f, "z", InputError, "int", 1)
    try:
        check_atomic_numbers(z, len(z))
    except InputError as exc:
        raise InputError(f"{path}: {exc}") from None
    lead = f["positions"].shape[1:-2][:1]                   # () or (n_replicas,)
    shapes = {"positions": lead + (len(z), 3), "velocities": lead + (len(z), 3), "time_fs": (),
              "epot": lead, "ekin": lead}
    for k in [k for k in shapes if k in f]:
        ds = check_dataset(f, k, InputError)
        if ds.ndim != 1 + len(shapes[k]) or ds.shape[1:] != shapes[k]:
            raise InputError(f"{path}: trajectory dataset '{k}' has shape {ds.shape}, expected "
                             f"(frames{''.join(f', {d}' for d in shapes[k])}) for {len(z)} atoms"
                             f"{f' and {lead[0]} replicas' if lead else ''}")
    complete_frames(f)


def complete_frames(f):
    """Number of frames in every dataset of the open trajectory ``f``: its ``n_frames``, or
    for files from before that attribute the shortest frame dataset (a run cut while
    writing could leave one frame longer than another)."""
    lengths = [len(f[k]) for k in FRAME_DATASETS if k in f]
    n = f.attrs.get("n_frames", min(lengths))
    if np.ndim(n) != 0 or not np.issubdtype(np.asarray(n).dtype, np.integer) or n < 0:
        raise InputError(f"{f.filename}: its n_frames attribute ({n}) is not a count of frames")
    return min([int(n)] + lengths)


class MDState(NamedTuple):
    """Where a run ended: atomic numbers (N,), positions [A] and velocities [A/fs], (N, 3)
    or, for a replica run, (R, N, 3), the simulated time [fs], whether the run that
    wrote it finished (False for an interrupted or stopped run), the masses (N,) [amu]
    it ran with, the fingerprint of its force model ("" when unknown), and the
    engine's stop code (0: none; else :mod:`gdmlx.md.integrator`'s, or 1 for a replica run)."""
    z: np.ndarray
    positions: np.ndarray
    velocities: np.ndarray
    time_fs: float
    complete: bool = True
    masses: np.ndarray = None
    force_model: str = ""
    status: int = 0


def read_last_state(path):
    """The last frame of a trajectory written by gdmlx (HDF5, or extended XYZ from a
    single-molecule run) as an :class:`MDState`, to continue the run from it."""
    if not _is_xyz(path):
        # only the last frame is read: files can be gigabytes
        with _open_trajectory(path) as f, read_errors(path, InputError):
            n = complete_frames(f)
            if n == 0:
                raise InputError(f"{path} holds no frames (a run that stopped before its first saved "
                                 "frame): there is no state to continue from")
            return MDState(f["z"][()], f["positions"][n - 1], f["velocities"][n - 1], float(f["time_fs"][n - 1]),
                           bool(f.attrs.get("complete", True)) and not str(path).endswith(".part"),
                           read_array(f, "masses", InputError, ndim=1) if "masses" in f else None,
                           str(f.attrs.get("force_model", "")), _status(f.attrs))
    if not os.path.exists(path):
        raise FileNotFoundError(f"no such file: {path}")
    whole = True
    try:
        check_xyz_atom_counts(path)      # also a cut last frame: the whole frames are read below
        atoms = ase.io.read(path, index=-1, format="extxyz")
    except StopIteration:
        raise InputError(f"{path} holds no frames: there is no state to continue from") from None
    except Exception as exc:             # ASE raises many kinds for files it cannot parse
        atoms, whole = _last_whole_xyz_frame(path), False
        if atoms is None:
            raise InputError(f"{path}: not a readable extended XYZ file ({type(exc).__name__}: {exc})") from None
    if "momenta" not in atoms.arrays or "time_fs" not in atoms.info:
        raise InputError(f"{path}: its last frame has no velocities or no time_fs, so it is not a "
                         "trajectory written by gdmlx md; start from its geometry instead (--xyz)")
    return MDState(atoms.numbers, atoms.get_positions(), atoms.get_velocities() * ase.units.fs,
                   float(atoms.info["time_fs"]),
                   whole and atoms.info.get("complete", True) is not False and not str(path).endswith(".part"),
                   masses=atoms.get_masses(), force_model=_xyz_settings(atoms.info).get("force_model", ""),
                   status=_status(atoms.info))


def _is_xyz(path):
    """Whether ``path`` names an extended XYZ trajectory: .xyz or .extxyz, also as the
    ``.part`` file a run writes (left under that name by a run that was killed)."""
    name = str(path).lower()
    return name.removesuffix(".part").endswith((".xyz", ".extxyz"))


def _status(record):
    """The stop code in a trajectory's attributes or last frame's info (0 when absent)."""
    status = record.get("status", 0)
    return int(status) if np.ndim(status) == 0 and np.issubdtype(np.asarray(status).dtype, np.integer) else 0


# the run's settings an HDF5 trajectory records, as trajectory_summary gives them
SETTINGS = ("dt_fs", "temperature_K", "gamma_per_fs", "slow_every", "integrator", "force_model", "contact_wall")


def trajectory_summary(path):
    """What the gdmlx trajectory at ``path`` (HDF5, or extended XYZ from gdmlx md) holds, its
    frames left unread: ``z``, ``n_frames``, ``n_replicas`` (None for one molecule),
    ``time_fs`` (first and last; None without frames), ``complete``, ``status`` (as in
    :class:`MDState`) and the settings of :data:`SETTINGS` the file records."""
    if _is_xyz(path):
        last = read_last_state(path)
        try:
            first = ase.io.read(path, index=0, format="extxyz")
            float(first.info["time_fs"])
        except Exception as exc:             # ASE raises many kinds for lines it cannot parse
            raise InputError(f"{path}: its first frame is not readable extended XYZ from gdmlx md "
                             f"({type(exc).__name__}: {exc})") from None
        with open(path, "rb") as fh:
            lines = sum(line.endswith(b"\n") for line in fh)
        return {"z": np.asarray(last.z), "n_frames": lines // (len(last.z) + 2), "n_replicas": None,
                "time_fs": (float(first.info["time_fs"]), last.time_fs), "complete": last.complete,
                "status": last.status, **_xyz_settings(first.info)}
    with _open_trajectory(path) as f, read_errors(path, InputError):
        n, shape, attrs = complete_frames(f), f["positions"].shape, f.attrs
        return {"z": read_array(f, "z", InputError), "n_frames": n,
                "n_replicas": shape[1] if len(shape) == 4 else None,
                "time_fs": (float(f["time_fs"][0]), float(f["time_fs"][n - 1])) if n else None,
                "complete": bool(attrs.get("complete", True)) and not str(path).endswith(".part"),
                "status": _status(attrs), **{k: np.asarray(attrs[k]).item() for k in SETTINGS if k in attrs}}


def whole_xyz_frames(path):
    """Byte offsets ``(starts, end)`` of the whole frames of the XYZ file at ``path``, each
    as long as its first line's atom count says (that count, a comment line, the atoms): a
    last frame cut by a killed run is left out, and a count beyond the file's end reads no
    further. None when the first line is no atom count."""
    with open(path, "rb") as fh:
        try:
            frame_lines = int(fh.readline()) + 2
        except ValueError:
            return None
        if frame_lines < 3:
            return None
        fh.seek(0)
        starts, offset, n_whole, end = [], 0, 0, 0
        for k, line in enumerate(fh):
            if not line.endswith(b"\n"):          # a cut last line is no line
                break
            if k % frame_lines == 0:
                starts.append(offset)
            offset += len(line)
            if (k + 1) % frame_lines == 0:
                n_whole, end = n_whole + 1, offset
    return starts[:n_whole], end


def _last_whole_xyz_frame(path):
    """The last whole frame of an extended XYZ file whose end was cut (a run killed while
    writing), or None when it has none (:func:`whole_xyz_frames`)."""
    import io
    frames = whole_xyz_frames(path)
    if not frames or not frames[0]:
        return None
    (*_, last), end = frames
    with open(path, "rb") as fh:
        fh.seek(last)
        text = fh.read(end - last).decode()
    try:
        return ase.io.read(io.StringIO(text), format="extxyz")
    except Exception:                    # ASE raises many kinds for files it cannot parse
        return None
