"""How accurate is a model where its own MD went? Reference energies and forces on frames of
a trajectory, against the model's.

Held-out errors measure a model where its reference data are. A long run goes further (a
chain folds, a ring flips) and the model extrapolates there; whether it extrapolates well
only the reference method can tell. This module labels frames of a trajectory with any ASE
calculator (the DFT, xTB, ... code the training data came from) and reports the model's
errors on them, split into frames inside and outside the training domain
(:mod:`gdmlx.md.domain`). Measured for oleic acid: 2.3 kcal/mol/A held-out, 3.0 inside and
3.4 outside on its own 50-ps run (benchmarks/README.md section 3).
"""


import numpy as np

from gdmlx.errors import InputError
from gdmlx.md.contact import model_wall, wall_energy_forces
from gdmlx.md.domain import model_floors, outside_frames
from gdmlx.progress import Pacer, finish, show
from gdmlx.units import energy_in_ev, length_in_ang
from gdmlx.validation import check_count, check_geometries, check_number


def reference_labels(calculator, z, R, energy_unit="kcal/mol", length_unit="Ang", progress=False):
    """Energies (n,) and forces (n, N, 3) of geometries ``R`` (n, N, 3) of atomic numbers
    ``z`` (N,) from an ASE ``calculator``, all in ``energy_unit`` and ``length_unit`` (those of
    the model's training data; ``R`` too); progress to stderr with ``progress``."""
    from ase import Atoms
    e_unit, r_unit = energy_in_ev(energy_unit), length_in_ang(length_unit)
    atoms = Atoms(numbers=z, positions=R[0] * r_unit)
    atoms.calc = calculator
    E, F = np.empty(len(R)), np.empty(R.shape)
    pacer = Pacer(len(R))
    for k, r in enumerate(R):
        atoms.positions = r * r_unit
        E[k] = atoms.get_potential_energy() / e_unit
        F[k] = atoms.get_forces() * r_unit / e_unit
        if progress and pacer.due(k + 1):
            show(f"reference: {k + 1}/{len(R)} frames")
    if progress:
        finish()
    return E, F


def check_trajectory(model, positions, calculator, n_frames=100, skip=0.1, progress=False, contact_wall=True):
    """Errors of ``model`` against ``calculator`` on ``n_frames`` frames of ``positions``
    (T, N, 3) [A], evenly spaced after the first ``skip`` fraction (equilibration). With
    ``contact_wall`` (as the MD ran) the model's energies and forces include the engine's
    wall for pairs no descriptor covers (:mod:`gdmlx.md.contact`): the forces that drove the run.

    Returns a dict: ``frames`` (indices), ``outside`` (bool per frame), ``f_mae`` (per
    frame, model units), ``e_offset`` (median of model minus reference energy: codes differ
    by a constant), ``n_frames``, ``n_outside`` and the summaries ``f_mae_inside``,
    ``f_mae_outside``, ``e_mae_inside``, ``e_mae_outside`` (energies after removing the
    offset; None where no frame is). Progress to stderr with ``progress``.
    """
    positions = check_geometries(positions, len(model.z_), "positions")
    n_frames = check_count(n_frames, "n_frames")
    if check_number(skip, "skip") >= 1:
        raise InputError(f"skip is the fraction of the trajectory left out at its start, in [0, 1), got {skip!r}")
    start = int(skip * len(positions))
    frames = np.unique(np.linspace(start, len(positions) - 1, min(n_frames, len(positions) - start))
                       .round().astype(int))
    q = positions[frames]
    pairs, floors, _ = model_floors(model)
    outside = outside_frames(q, pairs, floors)
    r_scale = 1.0 / length_in_ang(model.length_unit_)
    E_ref, F_ref = reference_labels(calculator, model.z_, q * r_scale, model.energy_unit_,
                                    model.length_unit_, progress)
    E, F = model.predict_energy_forces(q * r_scale)
    wall = model_wall(model, contact_wall)
    if len(wall[0]):
        e_scale = energy_in_ev(model.energy_unit_)
        for t, qt in enumerate(q):                      # eV and eV/A, to the model's units
            E_wall, F_wall = wall_energy_forces(qt, *wall)
            E[t] += E_wall / e_scale
            F[t] += F_wall / (e_scale * r_scale)
    f_mae = np.abs(F - F_ref).mean(axis=(1, 2))
    e_err = E - E_ref
    offset = float(np.median(e_err))

    def mean(values, mask):
        return float(values[mask].mean()) if mask.any() else None
    return {"frames": frames, "outside": outside, "f_mae": f_mae, "e_offset": offset,
            "n_frames": len(frames), "n_outside": int(outside.sum()),
            "f_mae_inside": mean(f_mae, ~outside), "f_mae_outside": mean(f_mae, outside),
            "e_mae_inside": mean(np.abs(e_err - offset), ~outside),
            "e_mae_outside": mean(np.abs(e_err - offset), outside)}
