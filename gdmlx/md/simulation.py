"""MD driver: initial state, compiled chunks of steps, output, progress, stopping."""

import sys
import time

import ase.data
import ase.units
import numpy as np

from gdmlx.dataset import chemical_formula
from gdmlx.errors import GeometryError, InputError
from gdmlx.expansion import force_model_fingerprint
from gdmlx.md import integrator
from gdmlx.md.contact import model_wall
from gdmlx.md.domain import check_start_bonds, check_start_inside, model_floors, outside_limits_sq
from gdmlx.md.rigid_motion import kinetic_dof, without_rigid_motion
from gdmlx.interrupts import interrupts_deferred, terminate_as_interrupt
from gdmlx.md.trajectory import open_trajectory
from gdmlx.progress import Pacer, finish, show, time_left
from gdmlx.units import energy_in_ev, length_in_ang
from gdmlx.validation import (as_float_array, check_atomic_numbers, check_count, check_force_model,
                              check_geometries, check_number)

_STOP_REASONS = {
    integrator.TOO_CLOSE: "two atoms came closer than half the shortest distance in the training data",
    integrator.BOND_BROKEN: "a bond stretched beyond max_bond_stretch (default 2) times the sum of covalent radii",
    integrator.ENERGY_JUMP: "the potential energy jumped by more than max_energy_step_ev (default 1 eV) in one step",
    integrator.NOT_FINITE: "the energy became NaN or infinite",
}


MAX_CHUNK_STEPS = 1000   # steps per compiled call: Ctrl-C waits at most this long, memory is bounded

TIME_STEP_FAILED = 0.15
"""An NVE run whose total energy had moved from its start by more than this fraction of its
mean kinetic energy before it stopped was failed by its time step. Ethanol at 500 K (100-point
model, 50 ps, frames every 12 steps): up to 2 % at 0.5 fs, 7 % at 1 fs and 3 % at slow_every 3,
in runs that finished; 13-160 % at 1.5 fs and 40-60 % at slow_every 4, and 23-770 % in runs
that stopped at 2 fs or at slow_every 8."""


class MDInstabilityError(GeometryError):
    """The trajectory left the model's domain; the message says how and when, whether a
    too long time step threw it out (:func:`stop_cause`), and ``summary`` (when raised by
    :meth:`Simulation.run`) describes the run up to the stop."""


def stop_cause(etot_start, epot, ekin, nve, dt_fs, slow_every):
    """What an MD stop blames, from the total energy [eV] at the run's start and the
    potential and kinetic energies (frames,) [eV] saved before the stop: in NVE, a total
    energy that had moved from its start by more than :data:`TIME_STEP_FAILED` of the mean
    kinetic energy means the time step (``dt_fs``, the slow forces' ``slow_every`` x that) is
    too long; otherwise the model left its training domain."""
    if nve and len(ekin):
        change = np.asarray(epot) + np.asarray(ekin) - etot_start
        largest, scale = float(change[np.argmax(np.abs(change))]), float(np.mean(ekin))
        if scale > 0 and abs(largest) > TIME_STEP_FAILED * scale:
            if slow_every > 1:
                step = (f"the outer time step, {slow_every * dt_fs:g} fs (slow_every={slow_every} x dt_fs "
                        f"{dt_fs:g}), is too long: outer steps above 1.5-2 fs resonate (a smaller slow_every, "
                        "--mts, helps)")
            else:
                step = (f"the time step, {dt_fs:g} fs, is too long for this molecule's fastest motion (a smaller "
                        "dt_fs, --dt, helps)")
            return (f"the total energy, which NVE conserves, had already moved by up to {largest:+.3g} eV "
                    f"({abs(largest) / scale:.0%} of the kinetic energy) before the stop: {step}")
    return ("the model has left its training domain (more or closer training data, a smaller time step, or a "
            "lower temperature help)")


def force_groups(model, slow_every=1):
    """Force groups and their periods (inner steps) for the compiled loop.

    A plain model is one group evaluated every step; a model with a fast and a slow part
    (multiple time steps) gives two groups, the slow one every ``slow_every`` steps.
    """
    parts = model.force_parts()
    groups = tuple((e.pairs, e.X, e.B, e.X_sq, e.XB, e.a, e.sigma, e.c) for e in parts)
    return groups, force_periods(parts, slow_every)


def force_periods(parts, slow_every):
    """Periods (L,) int64 in inner steps of the force ``parts`` (1 for a plain model, ``[1,
    slow_every]`` for a fast and a slow part)."""
    if slow_every > 1 and len(parts) < 2:
        raise ValueError("slow_every > 1 (--mts) needs a multiscale model with a fast and a slow "
                         "part (gdmlx.MultiscaleModel, or 'gdmlx split')")
    return np.array([1, slow_every][:len(parts)], dtype=np.int64)


def start_state(positions, z, masses=None, velocities=None):
    """The start of a run, checked: ``(q (n, N, 3) [A], masses (N,) [amu], velocities
    (n, N, 3) [A/fs] or None)``.

    ``positions`` is an (N, 3) or (n, N, 3) array or an ASE ``Atoms`` (whose atomic numbers
    must be ``z``); an ``Atoms`` also gives the masses and velocities it has set, unless
    ``masses`` or ``velocities`` are given. Its constraints and periodic boundary
    conditions are refused: the engines apply neither. Masses default to ASE's standard
    atomic masses.
    """
    if hasattr(positions, "get_positions"):
        atoms = positions
        if len(atoms) != len(z):                # before the atomic numbers' own message
            raise InputError(f"the start geometry has {len(atoms)} atoms ({atoms.get_chemical_formula()}); "
                             f"the model's molecule has {len(z)} ({chemical_formula(z)})")
        check_atomic_numbers(atoms.numbers, len(z), z)
        if atoms.pbc.any():
            raise InputError(f"atoms.pbc is {atoms.pbc.tolist()}: gdmlx models describe one molecule without "
                             "periodic images, and the MD engines apply none; set atoms.pbc = False")
        if atoms.constraints:
            raise InputError(f"atoms.constraints ({', '.join(type(c).__name__ for c in atoms.constraints)}): "
                             "gdmlx's MD engines do not apply ASE constraints; run ASE's dynamics with "
                             "gdmlx.GDMLCalculator, or remove them (del atoms.constraints)")
        if masses is None and atoms.has("masses"):
            masses = atoms.get_masses()
        if velocities is None and atoms.has("momenta"):
            velocities = atoms.get_velocities() * ase.units.fs
        positions = atoms.get_positions()
    q = check_geometries(positions, len(z), "positions")
    if masses is None:
        masses = ase.data.atomic_masses[z]
    masses = as_float_array(masses, "masses")
    if masses.shape != (len(z),) or not np.all(np.isfinite(masses)) or np.any(masses <= 0):
        raise InputError(f"masses must be {len(z)} positive atomic masses (amu), got {np.round(masses, 3)}")
    v = None if velocities is None else check_geometries(velocities, len(z), "velocities")
    return q, masses, v


DEFAULT_FRICTION_PER_FS = 0.01   # Langevin friction [1/fs] when none is given


def check_settings(dt_fs, temperature_K, thermostat, friction_per_fs, slow_every, max_bond_stretch):
    """The engine's settings as numbers, checked: ``(dt_fs, temperature_K, friction_per_fs,
    slow_every, max_bond_stretch)``; a bad one raises InputError naming it. ``friction_per_fs``
    None is :data:`DEFAULT_FRICTION_PER_FS` for Langevin; a friction given with "nve" is
    refused (it was ignored: a user asking for a thermostat got NVE)."""
    if thermostat not in ("nve", "langevin"):
        raise InputError(f"thermostat must be 'nve' or 'langevin', got {thermostat!r}")
    if friction_per_fs is not None and thermostat != "langevin":
        raise InputError(f"friction_per_fs ({friction_per_fs!r}) applies to thermostat='langevin'; "
                         "thermostat='nve' (the default) has no friction")
    friction = DEFAULT_FRICTION_PER_FS if friction_per_fs is None else friction_per_fs
    return (check_number(dt_fs, "dt_fs", strict=True), check_number(temperature_K, "temperature_K"),
            check_number(friction, "friction_per_fs"), check_count(slow_every, "slow_every"),
            check_number(max_bond_stretch, "max_bond_stretch", 1.0, strict=True))


def check_run_lengths(n_steps, save_every, report_every, top):
    """``(n_steps, save_every, report_every)`` as ints, checked: positive, ``save_every`` a
    multiple of the slow period ``top``, and ``n_steps`` and ``report_every`` multiples of
    ``save_every``. None picks ``save_every`` = 10 rounded up to a multiple of ``top``;
    ``report_every`` None stays None (progress by the clock: :class:`gdmlx.progress.Pacer`)."""
    n_steps = check_count(n_steps, "n_steps")
    save_every = -(-10 // top) * top if save_every is None else check_count(save_every, "save_every")
    report_every = None if report_every is None else check_count(report_every, "report_every")
    for value, name, period, period_name in ((save_every, "save_every", top, "slow_every"),
                                             (n_steps, "n_steps", save_every, "save_every"),
                                             (report_every, "report_every", save_every, "save_every")):
        if value is not None and value % period:
            raise ValueError(f"{name} ({value}) must be a multiple of {period_name} ({period})")
    return n_steps, save_every, report_every


def say_interrupted(done, time_fs, trajectory, n_frames):
    """Tell stderr where an interrupted run stopped: after ``done`` ("120 steps") at
    ``time_fs``, and what ``trajectory`` (None: no file) keeps of its ``n_frames``."""
    print(f"MD interrupted after {done} (t = {time_fs / 1000:.4f} ps): "
          + (f"{trajectory} keeps the {n_frames} frames saved so far (marked incomplete)" if trajectory
             else "no trajectory file was given"), file=sys.stderr, flush=True)


def seeded_rng(seed):
    """The engine's random generator (start velocities, Langevin noise) from ``seed``: None
    (fresh entropy), a non-negative int, or a numpy Generator; anything else is refused
    naming ``seed`` (numpy's own error did not)."""
    try:
        return np.random.default_rng(seed)
    except (TypeError, ValueError):
        raise InputError(f"seed must be None or a non-negative integer, got {seed!r}") from None


class EngineClock:
    """Temperature and simulated time of an MD engine with ``ndof`` kinetic degrees of
    freedom (an int, or each replica's: (n_replicas,)), ``step`` steps of ``dt_fs`` taken
    from ``time0_fs``."""

    def temperature(self, ekin, replica=None):
        """Kinetic temperature (K) from kinetic energy (eV): ``ekin`` (..., n_replicas) of
        every replica, or of the one replica ``replica``."""
        ndof = self.ndof if replica is None else self.ndof[replica]
        return 2.0 * np.asarray(ekin) / (ndof * ase.units.kB)

    @property
    def time_fs(self):
        """Simulated time of the current state (fs)."""
        return self.time0_fs + self.step * self.dt_fs


class Simulation(EngineClock):
    """Molecular dynamics of one molecule with a fitted gdmlx model.

    Parameters
    ----------
    model : fitted GDMLRegressor, or any model with ``force_parts()``, ``z_`` and units (a path
        is refused: :func:`gdmlx.load_any_model` reads one)
    positions : (N, 3) start geometry in Angstrom, or an ASE ``Atoms`` of the model's molecule
    dt_fs : inner time step in fs
    temperature_K : initial velocities (Maxwell-Boltzmann, no net momentum or rotation)
        and the thermostat's target
    thermostat : "nve" (velocity Verlet) or "langevin" (BAOAB)
    friction_per_fs : Langevin friction gamma in 1/fs (default 0.01; thermostat="langevin" only)
    slow_every : multiple-time-step period of the slow force group (inner steps)
    seed : random seed for velocities and Langevin noise
    velocities : (N, 3) initial velocities in A/fs, instead of drawing them (ASE's
        ``atoms.get_velocities()`` is in A per ASE time unit: multiply it by ``ase.units.fs``);
        default: those of an ``Atoms`` that has them set, else drawn
    masses : (N,) atomic masses in amu (isotopes: deuterium 2.014); default: those of an
        ``Atoms`` that has them set, else ASE's standard masses
    time_fs : simulated time of the start state (fs); frame times count on from it (to
        continue a run: :func:`gdmlx.md.read_last_state`)
    max_bond_stretch, max_energy_step_ev : stop criteria (MDInstabilityError): a bond of the
        start geometry (closer than 1.25 x the sum of covalent radii) stretched beyond
        ``max_bond_stretch`` x that sum, or a force group's potential energy changing by
        more than ``max_energy_step_ev`` (eV) in one evaluation
    contact_wall : add a repulsive wall for the atom pairs no descriptor of the model covers
        (reduced and multiscale models), from van der Waals contact or from where the pair
        leaves its training range, whichever is closer (:mod:`gdmlx.md.contact`); zero
        inside the training domain. Needs the model's training geometries; without them (or
        with every pair covered) there is no wall.

    The state is ``q`` (N, 3) [A] and ``v`` (N, 3) in A per ASE time unit (``v * ase.units.fs``
    is A/fs), ``step`` the steps taken and ``time_fs`` the simulated time.
    """

    def __init__(self, model, positions, *, dt_fs=0.5, temperature_K=300.0, thermostat="nve",
                 friction_per_fs=None, slow_every=1, seed=None, velocities=None, masses=None, time_fs=0.0,
                 max_bond_stretch=2.0, max_energy_step_ev=1.0, contact_wall=True):
        dt_fs, temperature_K, friction_per_fs, slow_every, max_bond_stretch = check_settings(
            dt_fs, temperature_K, thermostat, friction_per_fs, slow_every, max_bond_stretch)
        max_energy_step_ev = check_number(max_energy_step_ev, "max_energy_step_ev", strict=True)
        check_force_model(model)
        self.groups, self.periods = force_groups(model, slow_every)     # NotFittedError for an unfitted model
        self.z = np.asarray(model.z_)
        q, self.masses, velocities = start_state(positions, self.z, masses, velocities)
        for name, a in (("positions", q), ("velocities", velocities)):     # not the first of several
            if a is not None and len(a) > 1:
                raise InputError(f"{name} hold {len(a)} molecules' states; Simulation starts from one "
                                 "(N, 3) (ReplicaSimulation runs several)")
        q = q[0].copy()
        self.force_model = force_model_fingerprint(model)
        self.r_scale = 1.0 / length_in_ang(model.length_unit_)
        self.e_scale = energy_in_ev(model.energy_unit_)
        self.dt = dt_fs * ase.units.fs
        self.dt_fs = dt_fs
        self.gamma = friction_per_fs / ase.units.fs if thermostat == "langevin" else 0.0
        self.kT = ase.units.kB * temperature_K
        self.temperature_K = temperature_K
        self.rng = seeded_rng(seed)
        self.q = q
        # outside the domain: any pair, in a descriptor or not, below 0.8 x its shortest training distance
        self.domain_pairs, floors, _ = model_floors(model)
        check_start_inside(q, self.domain_pairs, floors, continuing=velocities is not None)
        check_start_bonds(q, model)             # before velocities are drawn about this geometry
        self.v = self._initial_velocities(velocities)
        self.velocities_given = velocities is not None
        self.outside_sq = outside_limits_sq(floors)
        self.r_min = 0.5 * floors.min()          # half the shortest training distance [A], any pair
        self.wall = model_wall(model, contact_wall)
        self.contact_wall = bool(contact_wall)          # checked by model_wall; recorded in trajectories
        self.bonds, self.bond_max = _bonds(self.z, q, max_bond_stretch)
        self.max_energy_step = max_energy_step_ev
        dynamics = "langevin" if self.gamma > 0 else "nve"          # friction 0: NVE
        self.ndof = kinetic_dof(q, self.v, self.masses, dynamics)
        self.step = 0
        self.time0_fs = check_number(time_fs, "time_fs")
        self.stopped = ""                   # why the run stopped, once it has
        self.F = np.empty((len(self.groups), len(self.z), 3))
        self.E = np.empty(len(self.groups))
        self.ws = integrator.workspaces(self.groups)
        integrator.evaluate_groups(self.groups, self.q, self.r_scale, self.e_scale, self.ws, self.wall,
                                   self.F, self.E)

    def _initial_velocities(self, velocities):
        if velocities is not None:
            return velocities[0] / ase.units.fs
        return thermal_velocities(self.q, self.masses, self.temperature_K, self.rng)

    @terminate_as_interrupt()          # SIGTERM (a batch time limit) ends a run as Ctrl-C does
    def run(self, n_steps, trajectory=None, save_every=None, report_every=None, progress=True):
        """Run ``n_steps`` inner steps; returns a summary dict (see :func:`summarize`).

        Frames every ``save_every`` steps (default 10, rounded up to a multiple of
        ``slow_every``) go to ``trajectory`` (.h5 or .xyz) as the run goes; the file is
        closed properly if the run is interrupted or stopped. Progress goes to stderr every
        ``report_every`` steps (default None: every 10 s in a log file, redrawn every 0.25 s
        on a terminal) unless ``progress=False``. ``n_steps`` and ``report_every`` must be
        multiples of ``save_every`` (ValueError).
        Raises MDInstabilityError, with the summary so far as its ``summary``, when the run
        stops: two atoms closer than half the shortest training distance, a bond broken, an
        energy jump or a non-finite energy. Ctrl-C or SIGTERM end it with a KeyboardInterrupt
        that carries the summary up to there.
        """
        if self.stopped:
            raise MDInstabilityError(f"this simulation stopped earlier ({self.stopped}); its state is "
                                     "outside the model's domain: start a new Simulation")
        n_steps, save_every, report_every = check_run_lengths(n_steps, save_every, report_every,
                                                              int(self.periods[-1]))
        frames = FrameRecord()
        etot_start = float(self.E.sum()) + 0.5 * float(np.einsum("i,ij,ij->", self.masses, self.v, self.v))
        self._chunk(0, save_every, None, frames)        # compiles the loop outside the timing and the file
        status, done, t0, first_step = integrator.OK, 0, time.perf_counter(), self.step
        pacer = Pacer(n_steps, report_every)
        top = int(self.periods[-1])                     # chunks of whole slow steps, frames their own
        chunk_steps = (save_every * max(1, MAX_CHUNK_STEPS // save_every) if save_every <= MAX_CHUNK_STEPS
                       else top * max(1, MAX_CHUNK_STEPS // top))
        writer = None
        try:
            with interrupts_deferred():                 # a file opened is a file closed and renamed
                writer = trajectory is not None and open_trajectory(
                    trajectory, self.z, self.masses,
                    {"dt_fs": self.dt_fs, "temperature_K": recorded_temperature(self),
                     "gamma_per_fs": self.gamma * ase.units.fs, "force_model": self.force_model,
                     "slow_every": int(self.periods[-1]), "contact_wall": self.contact_wall})
            while done < n_steps and status == integrator.OK:
                n = min(chunk_steps, n_steps - done, report_every - done % report_every if report_every else n_steps)
                with interrupts_deferred():     # Ctrl-C acts after the chunk's frames are recorded
                    status, ran, saved = self._chunk(n, save_every, writer, frames, done % save_every)
                done += ran
                if progress and pacer.due(done, stopped=status != integrator.OK):
                    self._report(done, n_steps, frames, time.perf_counter() - t0)
        except KeyboardInterrupt as exc:
            if progress:
                finish()
            say_interrupted(f"{self.step - first_step} steps", self.time_fs, trajectory if writer else None,
                            frames.count)
            exc.summary = summarize(frames.arrays(), self.step - first_step, time.perf_counter() - t0,
                                    self.dt_fs, self.temperature)          # the run up to the interrupt
            raise
        finally:
            if writer:
                writer.close(complete=done == n_steps and status == integrator.OK, status=int(status))
        if progress:
            finish()
        wall = time.perf_counter() - t0
        kept = frames.arrays()
        summary = summarize(kept, done, wall, self.dt_fs, self.temperature)
        if status != integrator.OK:
            cause = stop_cause(etot_start, kept["epot"], kept["ekin"], self.gamma == 0, self.dt_fs,
                               int(self.periods[-1]))
            exc = MDInstabilityError(
                f"MD stopped at step {self.step} (t = {self.time_fs / 1000:.4f} ps): "
                f"{_STOP_REASONS[status]}; {cause}. {frames.count} frames were kept"
                + (f" in {trajectory}" if trajectory else " in the summary (no trajectory file was given)"))
            exc.summary = summary
            self.stopped = f"at step {self.step}: {_STOP_REASONS[status]}"
            raise exc
        return summary

    def _chunk(self, n, save_every, writer, frames, phase=0):
        """Run ``n`` steps, ``phase`` steps after the last saved frame (or the run's start)."""
        N = len(self.z)
        n_frames = (phase + n) // save_every
        out_q, out_v = np.empty((n_frames, N, 3)), np.empty((n_frames, N, 3))
        out_e, out_k, out_o = np.empty(n_frames), np.empty(n_frames), np.empty(n_frames, dtype=np.bool_)
        noise = self.rng.standard_normal((n, N, 3)) if self.gamma > 0 else np.empty((0, N, 3))
        status, ran, saved = integrator.run_chunk(
            self.q, self.v, self.F, self.E, self.groups, self.ws, self.wall, self.periods, self.masses, self.dt,
            self.step, n, save_every, phase, self.gamma, self.kT, noise, self.r_scale, self.e_scale,
            self.r_min, self.bonds, self.bond_max, self.max_energy_step, self.domain_pairs,
            self.outside_sq, out_q, out_v, out_e, out_k, out_o)
        time_fs = self.time0_fs + (self.step - phase + save_every * np.arange(1, saved + 1)) * self.dt_fs
        self.step += ran
        if saved:
            frames.add(time_fs, out_e[:saved], out_k[:saved], out_o[:saved])
            if writer:
                writer.append(time_fs, out_q[:saved], out_v[:saved], out_e[:saved], out_k[:saved])
        return status, ran, saved

    def _report(self, done, n_steps, frames, wall):
        if not frames.count:
            return
        epot, ekin = frames.last()
        show(f"MD step {done}/{n_steps}  t = {self.time_fs / 1000:.3f} ps  T = {self.temperature(ekin):6.1f} K  "
             f"E_tot = {epot + ekin:.5f} eV  {done / max(wall, 1e-9):,.0f} steps/s{time_left(done, n_steps, wall)}")


class FrameRecord:
    """Time [fs], potential and kinetic energy [eV] and the outside-domain flag of every
    saved frame, kept as one array per chunk (about 25 bytes a frame: long runs keep
    millions)."""

    def __init__(self):
        self.chunks = []
        self.count = 0

    def add(self, time_fs, epot, ekin, outside):
        """Record the frames of one chunk (arrays of equal length)."""
        self.chunks.append(tuple(np.array(a) for a in (time_fs, epot, ekin, outside)))
        self.count += len(time_fs)
        if len(self.chunks) >= 1024:               # many small arrays cost more than their data
            self.chunks = [tuple(self.arrays().values())]

    def last(self):
        """``(epot, ekin)`` of the last frame."""
        return float(self.chunks[-1][1][-1]), float(self.chunks[-1][2][-1])

    def arrays(self):
        """Dict of time_fs, epot, ekin and outside, each (frames,), for :func:`summarize`."""
        keys = ("time_fs", "epot", "ekin", "outside")
        if not self.chunks:
            return {k: np.empty(0) for k in keys}
        return {k: np.concatenate([c[i] for c in self.chunks]) for i, k in enumerate(keys)}


def recorded_temperature(engine):
    """The ``temperature_K`` a trajectory of ``engine`` records: the thermostat's target, or
    in NVE the temperature the start velocities were drawn at (NaN when they were given)."""
    return engine.temperature_K if engine.gamma > 0 or not engine.velocities_given else float("nan")


def thermal_velocities(q, masses, temperature_K, rng):
    """Velocities (N, 3) [A / ASE time] drawn from Maxwell-Boltzmann at ``temperature_K`` with
    ``rng``, less their net momentum and rotation about the centre of mass of ``q`` (N, 3)
    [A], not rescaled afterwards: their kinetic energy is ``kinetic_dof / 2 kT`` on average,
    as the engine's temperature counts it."""
    xi = rng.standard_normal((len(masses), 3))
    v = xi * np.sqrt(ase.units.kB * temperature_K / masses)[:, None]
    return without_rigid_motion(q, v, masses)[0]


def drift_standard_error(t_ps, e, n_blocks=10):
    """Standard error (eV/ps) of the E_tot(t) slope from ``n_blocks`` block means.

    Frames a few fs apart are correlated, so the least-squares error of the frame-wise fit is
    too small; block means over >= 1 ps are close to independent, and the scatter of the
    slope fitted through them measures how far the slope could move by chance.
    """
    edges = np.linspace(t_ps[0], t_ps[-1], n_blocks + 1)
    idx = np.searchsorted(edges, t_ps, side="right") - 1
    np.clip(idx, 0, n_blocks - 1, out=idx)
    counts = np.bincount(idx, minlength=n_blocks)
    tb = np.bincount(idx, weights=t_ps, minlength=n_blocks) / counts
    eb = np.bincount(idx, weights=e, minlength=n_blocks) / counts
    slope, intercept = _line(tb, eb)
    resid = eb - (slope * tb + intercept)
    return float(np.sqrt(resid @ resid / (n_blocks - 2) / np.sum((tb - tb.mean()) ** 2)))


def _line(t, e):
    """Least-squares ``(slope, intercept)`` of e(t), without the n x 2 matrices of
    ``np.polyfit`` (long runs have millions of frames)."""
    t_mean, e_mean = t.mean(), e.mean()
    tc = t - t_mean
    slope = float(tc @ (e - e_mean) / (tc @ tc))
    return slope, float(e_mean - slope * t_mean)


SUMMARY_KEYS = ("steps", "simulated_ps", "wall_s", "steps_per_s", "ns_per_day", "outside_fraction",
                "mean_temperature_K", "std_temperature_K", "etot_drift_eV_per_ps", "etot_std_eV",
                "etot_drift_se_eV_per_ps")


def summarize(frames, steps, wall_s, dt_fs, temperature):
    """Speed, temperature, energy conservation and time outside the training domain of a
    run (``outside_fraction``: saved frames with a pair, in the model's descriptors or not,
    below 0.8 x its shortest training distance, :mod:`gdmlx.md.domain`), as plain floats:
    the keys of ``SUMMARY_KEYS`` that the saved frames allow (temperatures from one frame,
    drift and spread from two, the drift's standard error from 50)."""
    t_ps = np.asarray(frames["time_fs"]) / 1000.0
    etot = np.asarray(frames["epot"]) + np.asarray(frames["ekin"])
    out = {"steps": int(steps), "simulated_ps": steps * dt_fs / 1000.0, "wall_s": wall_s,
           "steps_per_s": steps / wall_s if wall_s > 0 else float("nan")}
    out["ns_per_day"] = out["simulated_ps"] / 1000.0 / wall_s * 86400 if wall_s > 0 else float("nan")
    if len(t_ps):
        out["outside_fraction"] = float(np.mean(frames["outside"]))
        out["mean_temperature_K"] = float(np.mean(temperature(frames["ekin"])))
    if len(t_ps) >= 2:
        out.update(std_temperature_K=float(temperature(frames["ekin"]).std()),
                   etot_drift_eV_per_ps=_line(t_ps, etot)[0],
                   etot_std_eV=float(etot.std()))
    if len(t_ps) >= 50:
        out["etot_drift_se_eV_per_ps"] = drift_standard_error(t_ps, etot)
    return out


def _bonds(z, q, stretch):
    """Bonded pairs of ``q`` (closer than 1.25 x the sum of covalent radii) and their largest
    allowed length, ``stretch`` x the sum of covalent radii."""
    r_cov = ase.data.covalent_radii[z]
    i, j = np.triu_indices(len(z), 1)
    r_ref = r_cov[i] + r_cov[j]
    bonded = np.linalg.norm(q[i] - q[j], axis=1) < 1.25 * r_ref
    return (np.ascontiguousarray(np.stack([i[bonded], j[bonded]], 1), dtype=np.int64),
            stretch * r_ref[bonded])
