"""Small helpers shared by the subcommands as they run (their arguments are checked by
:mod:`gdmlx.cli.arguments`)."""

import json
import os
import sys
import warnings

import numpy as np

from gdmlx.calculator import energies_are_relative
from gdmlx.dataset import load_dataset, read_by_ase
from gdmlx.errors import InputError
from gdmlx.file_kinds import file_kind, kind_error
from gdmlx.md.trajectory import read_last_state
from gdmlx.units import energy_in_ev, in_angstrom, length_in_ang, same_unit
from gdmlx.validation import check_data_for_model, check_min_distance, check_sigma, check_xyz_atom_counts


# how to give a dataset units the commands know
SET_UNITS = ("set the dataset's units in Python: ds = gdmlx.load_dataset(path); ds.energy_unit, ds.length_unit "
             "= 'kcal/mol', 'Ang'; ds.save_npz('fixed.npz')")


def load_molecule_data(path, model=None):
    """:func:`gdmlx.load_dataset`, refusing periodic data (gdmlx models describe one molecule
    without periodic images, so a lattice would be silently ignored) and units it does not
    know, and, with a ``model``, data of another molecule; data in other known units than
    the model's are converted to them (with a note)."""
    ds = load_dataset(path)
    if ds.lattice is not None:
        raise InputError(f"{path} has a lattice (periodic boundary conditions); gdmlx models describe "
                         "one molecule without periodic images: for a molecule in a box, write the "
                         "frames whole and without the cell (pbc=False)")
    try:
        energy_in_ev(ds.energy_unit), length_in_ang(ds.length_unit)
    except InputError as exc:
        raise InputError(f"{path}: {exc}; {SET_UNITS}") from None
    # here, where the index is the file's: later checks see subsets (training, test geometries)
    check_min_distance(in_angstrom(ds.R, ds.length_unit), 1e-3, "atoms coincide", name=f"{path}: R", unit="Ang")
    warn_if_not_bond_lengths(ds, path)
    if model is not None:
        ds = conformed(ds, model, path)
        warn_if_mostly_outside(ds, model, path)
    return ds


def warn_if_not_bond_lengths(ds, path, n_check=200):
    """Warn when the atoms' nearest neighbours (mean distances over up to ``n_check``
    geometries, in A) are not near covalent bond lengths: positions in bohr labelled A (or
    the other way round) train and test without any other complaint."""
    import ase.data
    from gdmlx.bonds import mean_distances
    r_cov = ase.data.covalent_radii[np.asarray(ds.z)]
    ratio = mean_distances(in_angstrom(ds.R[:n_check], ds.length_unit)) / (r_cov[:, None] + r_cov[None])
    np.fill_diagonal(ratio, np.inf)
    typical = float(np.median(ratio.min(axis=1)))    # about 1 for a molecule in its units
    if not 0.65 < typical < 1.5:
        warnings.warn(f"{path}: with positions in {ds.length_unit}, the atoms' nearest neighbours are typically "
                      f"{typical:.2f} x a covalent bond length away (about 1 in a molecule): are the positions in "
                      "another length unit (1 bohr = 0.529 A)? If so, set it in Python: ds = "
                      "gdmlx.load_dataset(path); ds.length_unit = 'bohr' (or 'Ang'); ds.save_npz('fixed.npz')",
                      UserWarning, stacklevel=2)


def conformed(ds, model, path):
    """Dataset ``ds`` (from file ``path``) in the units of ``model`` (anything with ``z_``,
    ``energy_unit_`` and ``length_unit_``), converted with a note where they differ; refused
    when its atoms are not the model's."""
    if not (same_unit(ds.energy_unit, model.energy_unit_, "energy")
            and same_unit(ds.length_unit, model.length_unit_, "length")) and "u" not in (
            str(model.energy_unit_).lower(), str(model.length_unit_).lower()):
        log(f"gdmlx: {path} was read in {ds.energy_unit} and {ds.length_unit}"
            + (" (load_dataset converts ASE files' eV and A)" if read_by_ase(path) else "")
            + f": converted to the model's {model.energy_unit_} and {model.length_unit_}")
        ds = ds.in_units(model.energy_unit_, model.length_unit_)
    check_data_for_model(ds, model, path)
    return ds


def warn_if_mostly_outside(ds, model, path, n_check=200):
    """Warn when most of (up to ``n_check`` random) geometries of ``ds`` lie outside the
    model's training domain: atoms in another order, or another molecule's data with the
    same elements, pass every other check."""
    from gdmlx.md.domain import OUTSIDE_FACTOR, model_floors, outside_frames
    idx = np.random.default_rng(0).permutation(len(ds))[:n_check]
    pairs, floors, _ = model_floors(model)
    outside = outside_frames(in_angstrom(ds.R[idx], model.length_unit_), pairs, floors)
    if outside.mean() > 0.5:
        warnings.warn(f"{path}: {int(outside.sum())} of {len(idx)} geometries checked lie outside the "
                      f"model's training domain (a pair closer than {OUTSIDE_FACTOR} x its shortest "
                      "training distance): are the atoms in the model's order (gdmlx.match_atom_order), "
                      "and is this the molecule the model was trained on? Errors there say little "
                      "about the model", UserWarning, stacklevel=2)


def read_start_atoms(path):
    """ASE ``Atoms`` of a start geometry: the last frame of a gdmlx HDF5 trajectory (to go on
    from a run), or any file ASE reads."""
    import ase
    import ase.io
    if not os.path.exists(path):
        raise FileNotFoundError(f"no such file: {path}")
    if os.path.isdir(path):
        raise IsADirectoryError(f"{path} is a directory, not a start geometry")
    if str(path).lower().endswith((".h5", ".hdf5")):
        state = read_last_state(path)
        if state.positions.ndim != 2:
            raise InputError(f"{path} holds replicas: give one geometry")
        return ase.Atoms(numbers=state.z, positions=state.positions, masses=state.masses)   # its isotopes
    check_xyz_atom_counts(path)
    try:                                 # a killed run's t.xyz.part is extended XYZ too
        atoms = ase.io.read(path, format="extxyz" if str(path).lower().endswith(".xyz.part") else None)
    except Exception as exc:             # ASE raises many kinds for files it cannot parse
        kind = file_kind(path)
        if kind:
            raise kind_error(path, kind, "a start geometry (.xyz or a gdmlx trajectory .h5)", InputError) from None
        raise InputError(f"{path}: ASE cannot read a geometry from it ({type(exc).__name__}: {exc}); "
                         "give an .xyz file, another format ASE reads, or a gdmlx trajectory .h5") from None
    if atoms.pbc.any():
        raise InputError(f"{path} has periodic boundary conditions (pbc {atoms.pbc.tolist()}); gdmlx models "
                         "describe one molecule without periodic images: give the molecule whole, without a cell")
    return atoms


def parse_sigmas(text):
    """'10' -> [10.0]; '5:5:50' -> [5, 10, ..., 50] (start:step:stop, stop included);
    '2.5,10,20' -> [2.5, 10.0, 20.0]. Every value must be positive and finite (checked
    here, before the first of them is trained)."""
    usage = f"--sigma {text!r}: give a number, a list 'a,b,c' or a range 'start:step:stop' with step > 0"
    try:
        if ":" in text:
            start, step, stop = (float(v) for v in text.split(":"))
            if not step > 0 or stop < start:
                raise ValueError(usage)
            n = int(np.floor((stop - start) / step + 1e-9)) + 1
            sigmas = [start + k * step for k in range(n)]
        else:
            sigmas = [float(v) for v in text.split(",")]
    except ValueError:
        raise ValueError(usage) from None
    bad = [v for v in sigmas if not (np.isfinite(v) and v > 0)]
    if bad:
        raise ValueError(f"--sigma {text!r}: every sigma must be a positive finite number, got {bad[0]:g}")
    for value in sigmas:                   # all of them before the first training
        try:
            check_sigma(value)
        except InputError as exc:
            raise InputError(f"--sigma {text!r}: {exc}") from None
    return sigmas


def force_energy_errors(model, R, F, E):
    """Energy and force MAE / RMSE of ``model`` on a test set (E may be None). A model
    fitted without energies predicts them up to an arbitrary offset: its energy errors are
    those of the energies less their mean difference (``energy_offset_removed``)."""
    E_pred, F_pred = model.predict_energy_forces(R)
    dF = F_pred - F
    out = {"n": int(len(R)), "f_mae": float(np.abs(dF).mean()), "f_rmse": float(np.sqrt((dF**2).mean()))}
    if E is not None:
        dE = E_pred - E
        if energies_are_relative(model):
            dE -= dE.mean()
            out["energy_offset_removed"] = True
        out.update(e_mae=float(np.abs(dE).mean()), e_rmse=float(np.sqrt((dE**2).mean())),
                   e_mean_error=float(dE.mean()))
    return out


def energy_errors_text(err, unit):
    """"; energy MAE ... RMSE ... unit" for a report line, or "" without energy errors."""
    if "e_mae" not in err:
        return ""
    relative = (" (relative: the model was fitted without energies, the mean offset is removed)"
                if err.get("energy_offset_removed") else "")
    offset = err.get("e_mean_error", 0.0)
    if err["n"] > 1 and offset**2 > 0.9 * err["e_rmse"]**2:   # sGDML fitted without energies: 1.2e4 kcal/mol;
                                                              # one geometry's error is always its mean
        relative = (f" (mostly a constant offset, mean error {offset:.4g} {unit}: the model's energies and the "
                    "data's have different zeros, e.g. a model fitted without energies or data from other settings)")
    return f"; energy MAE {err['e_mae']:.4g} RMSE {err['e_rmse']:.4g} {unit}{relative}"


def print_json(obj):
    """``obj`` as strict JSON on stdout: numpy numbers as numbers, NaN and infinities as null;
    nothing when stdout is closed (``sys.stdout`` None, where json.dump raised AttributeError
    after the command's work was done)."""
    print(json.dumps(_strict(obj), indent=2, default=float))


def _strict(obj):
    if isinstance(obj, dict):
        return {k: _strict(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_strict(v) for v in obj]
    if isinstance(obj, (float, np.floating)):
        return float(obj) if np.isfinite(obj) else None
    if isinstance(obj, np.ndarray):
        return _strict(obj.tolist())
    return obj


def log(msg):
    print(msg, file=sys.stderr, flush=True)
