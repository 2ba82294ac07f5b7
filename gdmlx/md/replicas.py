"""Molecular dynamics of many replicas of one molecule at once, with batched forces.

Each step evaluates the forces of all replicas in one batched call per force group
(:class:`gdmlx.device_expansion.DeviceExpansion`: matrix products), which gives a GPU
(``backend="gpu"``, CuPy) enough work per step; with ``backend="cpu"`` the same code runs on
numpy and the CPU's BLAS. The state stays on the device; only saved frames come back.

The integrator is the single-molecule engine's (:mod:`gdmlx.md.integrator`), step for step:
impulse r-RESPA velocity Verlet over the model's force groups, optionally Langevin BAOAB
with the O step inside the innermost drift and each replica's centre-of-mass velocity
removed after it; the contact wall on group 0; ASE units inside. Two differences: the
domain checks (atoms too close, bonds broken, energy not finite) run at saved frames, not
every step, and a replica that fails them stops the whole run (its index is in the message).
"""

import functools
import time

import ase.data
import ase.units
import numpy as np

from gdmlx.backend import backend_module, resolve_backend, to_host
from gdmlx.errors import InputError
from gdmlx.expansion import force_model_fingerprint
from gdmlx.interrupts import interrupts_deferred, terminate_as_interrupt
from gdmlx.kernels.pair_arrays import incidence
from gdmlx.md.contact import model_wall, wall_energy_forces_batch
from gdmlx.md.domain import check_start_bonds, check_start_inside, model_floors, outside_limits_sq
from gdmlx.md.rigid_motion import kinetic_dof
from gdmlx.md import simulation
from gdmlx.md.simulation import (EngineClock, MDInstabilityError, _bonds, check_run_lengths, check_settings,
                                 force_periods, recorded_temperature, say_interrupted, seeded_rng, start_state,
                                 stop_cause, summarize, thermal_velocities)
from gdmlx.md.trajectory import open_trajectory
from gdmlx.progress import Pacer, finish, show, time_left
from gdmlx.units import energy_in_ev, length_in_ang
from gdmlx.validation import check_count, check_force_model, check_number


GPU_FROM_REPLICAS = 100
"""backend="auto" runs replicas on the GPU from this many: on an H100 against 16 CPU threads,
aspirin, the GPU made 0.24x the replica-steps/s at 10 replicas, 2.3x at 100 and 25x at 1000
(benchmarks/README.md section 8)."""


def md_backend(backend, n_replicas):
    """"cpu" or "gpu" for MD of ``n_replicas``: "auto" takes the GPU (when there is one) only
    from :data:`GPU_FROM_REPLICAS` replicas; "gpu" and "cpu" as asked."""
    resolved = resolve_backend(backend)
    return "cpu" if backend == "auto" and n_replicas < GPU_FROM_REPLICAS else resolved


class ReplicaSimulation(EngineClock):
    """MD of ``n_replicas`` copies of one molecule, advanced together.

    Parameters
    ----------
    model : fitted GDMLRegressor or MultiscaleModel (anything with ``force_parts()``)
    positions : (N, 3) start geometry of every replica, or (n_replicas, N, 3), in Angstrom; or
        an ASE ``Atoms`` of the model's molecule, as in :class:`gdmlx.md.Simulation` (velocities
        it has set are one replica's: refused for more replicas)
    n_replicas : number of replicas when ``positions`` is one geometry (default: one per
        geometry, or per row of ``velocities``)
    masses : (N,) atomic masses in amu, as in :class:`gdmlx.md.Simulation`
    velocities : (n_replicas, N, 3) initial velocities in A/fs; default: each replica drawn
        from Maxwell-Boltzmann (no net momentum or rotation), replica by replica from ``seed``
        (replica 0 gets the velocities :class:`gdmlx.md.Simulation` draws with that seed)
    backend : "cpu", "gpu" or "auto" (:mod:`gdmlx.backend`; "auto" takes the GPU from
        :data:`GPU_FROM_REPLICAS` replicas, where it was measured to pay)
    time_fs : simulated time of the start state (fs), as in :class:`gdmlx.md.Simulation`
    dt_fs, temperature_K, thermostat, friction_per_fs, slow_every, seed, max_bond_stretch,
    contact_wall : as in :class:`gdmlx.md.Simulation`. Langevin noise comes from ``seed``
        as well: on the CPU a run of one replica follows the single-molecule engine's
        trajectory with the same seed (with more replicas, replica 0 does so in NVE only:
        the Langevin noise of all replicas comes from one stream).
    fused_steps : run whole steps in one GPU kernel launch per saved frame
        (:mod:`gdmlx.kernels.fused_md`; needs ``backend="gpu"`` and a one-part model), its
        Langevin noise from the GPU's own generator. Off by default: checked under numba's
        CUDA simulator and compiled for sm_90, not yet run on a GPU (benchmarks/README.md).
    blocks_per_replica : GPU thread blocks that share each replica's work in fused steps
        (default: one per 16 training points, at most as many as the GPU runs at once)
    """

    def __init__(self, model, positions, n_replicas=None, *, velocities=None, masses=None, backend="cpu", time_fs=0.0,
                 dt_fs=0.5, temperature_K=300.0, thermostat="nve", friction_per_fs=None,
                 slow_every=1, seed=None, max_bond_stretch=2.0, contact_wall=True, fused_steps=False,
                 blocks_per_replica=None):
        dt_fs, temperature_K, friction_per_fs, slow_every, max_bond_stretch = check_settings(
            dt_fs, temperature_K, thermostat, friction_per_fs, slow_every, max_bond_stretch)
        check_force_model(model)
        model.force_parts()                     # NotFittedError for an unfitted model, not AttributeError z_
        self.z = np.asarray(model.z_)
        N = len(self.z)
        q, masses, v = start_state(positions, self.z, masses, velocities)
        v = None if v is None else v / ase.units.fs
        n = self.n_replicas = (len(q) if v is None else len(v)) if n_replicas is None else check_count(
            n_replicas, "n_replicas")
        if velocities is None and v is not None and len(v) != n:     # an Atoms' own: one molecule's
            raise InputError(f"the Atoms given as positions has velocities set, one molecule's, and the run has "
                             f"{n} replicas: give velocities ({n}, N, 3), or positions=atoms.positions to draw "
                             "each replica's")
        if len(q) not in (1, n) or (v is not None and len(v) != n):
            raise ValueError(f"positions hold {len(q)} geometries and velocities "
                             f"{'none' if v is None else len(v)} for {n} replicas")
        q = np.repeat(q, n, axis=0) if len(q) == 1 else q.copy()     # the run moves its own copy
        xp = self.xp = backend_module(md_backend(backend, n))
        parts = model.force_parts()
        self.force_model = force_model_fingerprint(model)
        self.periods = force_periods(parts, slow_every)
        self.parts = [p.on_device(xp) for p in parts]
        self.work = [p.work(n) for p in self.parts]     # each group's (n x training points) work arrays
        self.r_scale = 1.0 / length_in_ang(model.length_unit_)
        self.e_scale = energy_in_ev(model.energy_unit_)
        self.dt_fs, self.dt = dt_fs, dt_fs * ase.units.fs
        self.gamma = friction_per_fs / ase.units.fs if thermostat == "langevin" else 0.0
        self.kT, self.temperature_K = ase.units.kB * temperature_K, temperature_K
        self.rng = seeded_rng(seed)
        self.velocities_given = v is not None
        domain_pairs, floors, _ = model_floors(model)
        check_start_inside(q, domain_pairs, floors, continuing=self.velocities_given)
        check_start_bonds(q, model)             # before velocities are drawn about these geometries
        if v is None:
            v = np.stack([thermal_velocities(r, masses, temperature_K, self.rng) for r in q])
        # device Langevin noise: its own generator, seeded from the host one
        self.noise_rng = self.rng if xp is np else xp.random.RandomState(int(self.rng.integers(2**63)))
        self.m_tot = float(masses.sum())
        self.masses = xp.asarray(masses)[:, None]
        self.inv_m = 1.0 / self.masses
        self.q, self.v = xp.asarray(q), xp.asarray(v)
        self.scratch = xp.empty_like(self.q)    # (n, N, 3) work array of _group and advance
        self.S_domain = incidence(domain_pairs, N, xp)
        self.r_min_sq = (0.5 * floors.min()) ** 2
        self.outside_sq = xp.asarray(outside_limits_sq(floors))
        bonds, bond_max = _bonds(self.z, q[0], max_bond_stretch)
        self.S_bonds, self.bond_max_sq = incidence(bonds, N, xp), xp.asarray(bond_max ** 2)
        self.wall_pairs, self.wall_r0, self.wall_k = model_wall(model, contact_wall)
        self.contact_wall = bool(contact_wall)          # checked by model_wall; recorded in trajectories
        self.wall = (incidence(self.wall_pairs, N, xp), xp.asarray(self.wall_r0)) if len(self.wall_pairs) else None
        P = len(self.wall_pairs)
        self.wall_work = (xp.empty((3, n, P)), xp.empty((2, n, P, 3)))   # wall_energy_forces_batch's
        dynamics = "langevin" if self.gamma > 0 else "nve"          # friction 0: NVE
        self.ndof = np.array([kinetic_dof(r, vr, masses, dynamics) for r, vr in zip(q, v)])    # (n_replicas,)
        self.step = 0
        self.time0_fs = check_number(time_fs, "time_fs")
        self.stopped = ""                   # why the run stopped, once it has
        E, F = zip(*(self._group(l, self.q) for l in range(len(self.parts))))
        self.E, self.F = list(E), list(F)
        self.fused = self._fused_steps(fused_steps, parts, blocks_per_replica)

    def _fused_steps(self, fused_steps, parts, blocks_per_replica):
        """The :class:`gdmlx.kernels.fused_md.FusedSteps` that advances this run, or None
        (whole-array steps)."""
        if not fused_steps:
            if blocks_per_replica is not None:
                raise ValueError("blocks_per_replica applies to fused steps only: give fused_steps=True")
            return None
        if self.xp is np or len(parts) != 1:
            raise ValueError("fused_steps=True needs backend='gpu' and a model of one part "
                             "(not a multiscale model)")
        from gdmlx.kernels.fused_md import FusedSteps      # numba.cuda: only when used
        return FusedSteps(parts[0], self, blocks_per_replica)

    def _group(self, l, q):
        """Energies (n,) [eV] and forces (n, N, 3) [eV/A] of force group ``l`` at ``q``."""
        E, F = self.parts[l].energy_forces(self.xp.multiply(q, self.r_scale, out=self.scratch),
                                           self.work[l])
        E *= self.e_scale
        F *= self.e_scale * self.r_scale
        if l == 0 and self.wall is not None:
            E_wall, F_wall = wall_energy_forces_batch(q, *self.wall, self.wall_k, self.wall_work)
            E += E_wall
            F += F_wall
        return E, F

    def _kick(self, l, h):
        """``v += h F_l / m`` of every replica, through the scratch array (no new arrays)."""
        dv = self.xp.multiply(self.F[l], h, out=self.scratch)
        dv *= self.inv_m
        self.v += dv

    def _drift(self, h):
        """``q += h v`` of every replica, through the scratch array."""
        self.q += self.xp.multiply(self.v, h, out=self.scratch)

    def _thermostat(self, c1, c2):
        """O step for every replica, then remove each replica's centre-of-mass velocity."""
        noise = self.xp.asarray(self.noise_rng.standard_normal(self.v.shape))
        self.v = c1 * self.v + (c2 * (self.kT * self.inv_m) ** 0.5) * noise
        self.v -= (self.masses * self.v).sum(axis=1, keepdims=True) / self.m_tot

    def advance(self, n_steps):
        """``n_steps`` inner steps of every replica, on the device, without checks."""
        if self.fused is not None:
            self.fused.advance(n_steps)
            self.step += n_steps
            return
        dt, periods = self.dt, self.periods
        c1 = float(np.exp(-self.gamma * dt))
        c2 = float(np.sqrt(1.0 - c1 * c1))
        for s in range(n_steps):
            t = self.step + s
            for l, period in enumerate(periods):
                if t % period == 0:
                    self._kick(l, 0.5 * dt * period)
            if self.gamma > 0.0:
                self._drift(0.5 * dt)
                self._thermostat(c1, c2)
                self._drift(0.5 * dt)
            else:
                self._drift(dt)
            for l, period in enumerate(periods):
                if (t + 1) % period == 0:
                    self.E[l], self.F[l] = self._group(l, self.q)
                    self._kick(l, 0.5 * dt * period)
        self.step += n_steps

    def frame(self):
        """Potential and kinetic energies (n,) [eV] and the outside-domain flags (n,) of the
        current state, and the replicas that left the domain: ``(epot, ekin, outside, failed)``,
        numpy arrays, ``failed`` a dict of reason -> replica indices."""
        xp = self.xp
        diff = self.S_domain @ self.q
        d2 = (diff * diff).sum(axis=2)
        bond = self.S_bonds @ self.q
        epot = sum(self.E)
        ekin = 0.5 * (self.masses * self.v * self.v).sum(axis=(1, 2))
        checks = {
            "the energy became NaN or infinite": ~xp.isfinite(epot) | ~xp.isfinite(self.q).all(axis=(1, 2)),
            "two atoms came closer than half the shortest distance in the training data":
                (d2 < self.r_min_sq).any(axis=1),
            "a bond stretched beyond max_bond_stretch (default 2) times the sum of covalent radii":
                ((bond * bond).sum(axis=2) > self.bond_max_sq).any(axis=1),
        }
        failed = {why: np.flatnonzero(to_host(bad)) for why, bad in checks.items()}
        outside = (d2 < self.outside_sq).any(axis=1)
        return to_host(epot), to_host(ekin), to_host(outside), {k: v for k, v in failed.items() if len(v)}

    @property
    def positions(self):
        """Current positions (n_replicas, N, 3) in Angstrom (a numpy copy)."""
        return to_host(self.q).copy() if self.xp is np else to_host(self.q)

    @property
    def velocities(self):
        """Current velocities (n_replicas, N, 3) in A/fs (numpy)."""
        return to_host(self.v) * ase.units.fs

    @terminate_as_interrupt()          # SIGTERM (a batch time limit) ends a run as Ctrl-C does
    def run(self, n_steps, trajectory=None, save_every=None, report_every=None, progress=True):
        """Run ``n_steps`` inner steps; returns a summary dict.

        Every ``save_every`` steps the energies of every replica are recorded (the summary's
        ``frames``), the frame is written to
        ``trajectory`` (.h5, all replicas: :class:`gdmlx.md.trajectory.HDF5Trajectory`) and
        the domain is checked; a replica outside it raises MDInstabilityError (with
        ``summary``). The summary has the single engine's keys (:func:`gdmlx.md.simulation.summarize`,
        medians or means over the replicas), ``replica_steps_per_s``, and each replica's own
        summary under ``replicas``. ``save_every``, ``report_every`` (their defaults and the
        multiples they must be) and ``progress`` as for :meth:`gdmlx.md.Simulation.run`.
        """
        if self.stopped:
            raise MDInstabilityError(f"this simulation stopped earlier ({self.stopped}); its state is "
                                     "outside the model's domain: start a new ReplicaSimulation")
        n_steps, save_every, report_every = check_run_lengths(n_steps, save_every, report_every,
                                                              int(self.periods[-1]))
        frames = {"time_fs": [], "epot": [], "ekin": [], "outside": []}
        etot_start = np.add(*self.frame()[:2])      # each replica's, for what a stop blames
        failed, start, t0, writer = {}, self.step, time.perf_counter(), None
        pacer = Pacer(n_steps, report_every)
        try:
            with interrupts_deferred():                 # a file opened is a file closed and renamed
                writer = trajectory is not None and open_trajectory(
                    trajectory, self.z, to_host(self.masses)[:, 0],
                    {"dt_fs": self.dt_fs, "temperature_K": recorded_temperature(self),
                     "gamma_per_fs": self.gamma * ase.units.fs, "force_model": self.force_model,
                     "slow_every": int(self.periods[-1]), "contact_wall": self.contact_wall},
                    n_replicas=self.n_replicas)
            top = int(self.periods[-1])
            piece = top * max(1, simulation.MAX_CHUNK_STEPS // top)   # Ctrl-C waits for one piece at most
            while self.step - start < n_steps and not failed:
                left = save_every
                while left > piece:             # frames further apart than a piece
                    with interrupts_deferred():
                        self.advance(piece)
                    left -= piece
                with interrupts_deferred():     # Ctrl-C acts between frames, never inside one
                    self.advance(left)
                    epot, ekin, outside, failed = self.frame()
                    for key, value in zip(frames, (self.time_fs, epot, ekin, outside)):
                        frames[key].append(value)
                    if writer:
                        writer.append([self.time_fs], self.positions[None], to_host(self.v)[None],
                                      epot[None], ekin[None])
                if progress and pacer.due(self.step - start, stopped=bool(failed)):
                    self._report(self.step - start, n_steps, frames, time.perf_counter() - t0)
        except KeyboardInterrupt as exc:
            if progress:
                finish()
            say_interrupted(f"{self.step - start} steps", self.time_fs, trajectory if writer else None,
                            len(frames["time_fs"]))
            exc.summary = self._summary(frames, self.step - start, time.perf_counter() - t0)
            raise
        finally:
            if writer:
                writer.close(complete=self.step - start == n_steps and not failed, status=int(bool(failed)))
            if progress:
                finish()
        summary = self._summary(frames, self.step - start, time.perf_counter() - t0)
        if failed:
            why, which = next(iter(failed.items()))
            r = which[0]                        # its energies before the failing frame
            cause = stop_cause(etot_start[r], np.array(frames["epot"])[:-1, r], np.array(frames["ekin"])[:-1, r],
                               self.gamma == 0, self.dt_fs, int(self.periods[-1]))
            exc = MDInstabilityError(
                f"MD stopped at step {self.step} (t = {self.time_fs / 1000:.4f} ps): {why} "
                f"in replica(s) {which.tolist()[:10]}; {cause}. {len(frames['time_fs'])} frames were kept"
                + (f" in {trajectory}" if trajectory else " in the summary (no trajectory file was given)"))
            exc.summary = summary
            self.stopped = f"at step {self.step}: {why} in replica(s) {which.tolist()[:10]}"
            raise exc
        return summary

    def _summary(self, frames, steps, wall):
        """The single-engine summary of each replica (``replicas``), their medians (mean
        temperature and outside fraction: means) under the single engine's keys, and the
        energies per frame and replica (``frames``: time_fs (F,), epot, ekin (F, n_replicas))."""
        epot, ekin, outside = (np.array(frames[k]).reshape(-1, self.n_replicas)
                               for k in ("epot", "ekin", "outside"))
        per = [summarize({"time_fs": frames["time_fs"], "epot": epot[:, r], "ekin": ekin[:, r],
                          "outside": outside[:, r]}, steps, wall, self.dt_fs,
                         functools.partial(self.temperature, replica=r))
               for r in range(self.n_replicas)]
        out = dict(per[0], n_replicas=self.n_replicas, replica_steps_per_s=steps * self.n_replicas / wall,
                   replicas=per, frames={"time_fs": np.array(frames["time_fs"]), "epot": epot, "ekin": ekin})
        for key in ("etot_drift_eV_per_ps", "etot_std_eV", "etot_drift_se_eV_per_ps"):
            if key in per[0]:
                out[key] = float(np.median([p[key] for p in per]))
        for key in ("mean_temperature_K", "outside_fraction"):
            if key in per[0]:
                out[key] = float(np.mean([p[key] for p in per]))
        out.pop("std_temperature_K", None)
        return out

    def _report(self, done, n_steps, frames, wall):
        T = self.temperature(frames["ekin"][-1]).mean()
        show(f"MD step {done}/{n_steps} of {self.n_replicas} replicas  "
             f"t = {self.time_fs / 1000:.3f} ps  mean T = {T:6.1f} K  "
             f"{done * self.n_replicas / max(wall, 1e-9):,.0f} replica-steps/s{time_left(done, n_steps, wall)}")
