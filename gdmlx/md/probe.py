"""Short Langevin runs that check a model keeps its molecule inside its training domain.

Validation force errors measure a model where the data are; molecular dynamics goes where
the model leads. A model can match held-out forces and still wander into geometries its
data never covered, and then stop (measured for reduced alanine-dipeptide models:
benchmarks/README.md section 3). A probe runs a few short trajectories from given start
geometries and measures, for each, the fraction of its planned length spent outside the
training domain (:mod:`gdmlx.md.domain`), counting the part a stopped run did not reach as
outside. Descriptor reduction uses it to refuse reductions that make MD worse.
"""

from dataclasses import dataclass

import numpy as np

from gdmlx.md.simulation import MDInstabilityError, Simulation
from gdmlx.units import in_angstrom

_SAVE_EVERY = 20


@dataclass(frozen=True)
class StabilityProbe:
    """``n_runs`` Langevin runs of ``ps`` picoseconds at ``temperature_K`` (inner step
    ``dt_fs``, the slow part every ``slow_every`` steps for multiscale models); seeds 1..n_runs.
    A model passes against a baseline if no more of its runs stop and its mean outside
    fraction exceeds the baseline's by at most ``tolerance``."""

    temperature_K: float = 300.0
    ps: float = 20.0
    n_runs: int = 3
    dt_fs: float = 0.5
    slow_every: int = 1
    friction_per_fs: float = 0.01
    tolerance: float = 0.05

    def measure(self, model, starts):
        """Runs from ``starts`` (n, N, 3) in the model's length unit (geometries of its data),
        evenly spaced picks; returns a dict with per-run
        ``outside`` fractions and ``stopped_ps`` (None for runs that finished)."""
        every = _SAVE_EVERY * self.slow_every
        steps = every * max(1, round(self.ps * 1000 / self.dt_fs / every))
        picks = np.linspace(0, len(starts) - 1, self.n_runs).round().astype(int)
        outside, stopped = [], []
        for seed, k in enumerate(picks, start=1):
            sim = Simulation(model, in_angstrom(starts[k], model.length_unit_), dt_fs=self.dt_fs, temperature_K=self.temperature_K,
                             thermostat="langevin", friction_per_fs=self.friction_per_fs,
                             slow_every=self.slow_every, seed=seed)
            try:
                summary = sim.run(steps, save_every=every, report_every=steps, progress=False)
                stop = None
            except MDInstabilityError as exc:
                summary, stop = exc.summary, sim.step * self.dt_fs / 1000.0
            reached = summary["steps"] / steps
            outside.append(summary.get("outside_fraction", 1.0) * reached + (1.0 - reached))
            stopped.append(stop)
        return {"outside": outside, "stopped_ps": stopped}

    def passes(self, result, baseline):
        """Whether ``result`` (from :meth:`measure`) is no worse than ``baseline``."""
        def n_stopped(r):
            return sum(s is not None for s in r["stopped_ps"])
        return bool(n_stopped(result) <= n_stopped(baseline)
                    and np.mean(result["outside"]) <= np.mean(baseline["outside"]) + self.tolerance)
