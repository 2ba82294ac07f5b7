"""gdmlx info: what a gdmlx file holds (a model, an action model, a dataset or an MD trajectory)."""


def add_parser(sub):
    p = sub.add_parser("info", help="describe a model, dataset or trajectory file",
                       description="What a gdmlx file holds. A model: molecule, units, training geometries, "
                                   "pair features, sigma, lam and permutations of each part; an action model: "
                                   "its stride and the force model it belongs to; a dataset: molecule, "
                                   "geometries, labels, units, energy and force ranges; an MD trajectory: "
                                   "molecule, frames, replicas, time span, whether the run finished (and why "
                                   "not) and the force model it ran with.")
    p.add_argument("file", help="model (gdmlx .h5 or sGDML .npz), action model (.h5), dataset (.npz, .h5, "
                                "extended XYZ) or MD trajectory (.h5, .xyz written by gdmlx md)")
    p.add_argument("--json", action="store_true", help="print as JSON on stdout")
    p.set_defaults(run=run)


def describe(model):
    """Plain-data description of a fitted model."""
    from gdmlx.calculator import energies_are_relative
    from gdmlx.dataset import chemical_formula
    from gdmlx.expansion import force_model_fingerprint
    from gdmlx.md.domain import model_floors
    regressors = [model.fast_, model.slow_] if hasattr(model, "fast_") else [model]
    main = regressors[-1]                        # a multiscale model's global part
    covered = model_floors(model)[2]
    return {
        "formula": chemical_formula(model.z_),
        "n_atoms": len(model.z_), "z": [int(z) for z in model.z_],
        "parts": [{"name": name, "n_train": r.expansion_.n_train // len(r.perms_),
                   "n_permutations": len(r.perms_), "n_pairs": len(r.pairs_), "sigma": r.expansion_.sigma,
                   "lam": r.lam}
                  for name, r in zip(["fast", "slow"] if len(regressors) == 2 else ["model"], regressors)],
        **({"lam": main.lam} if len(regressors) == 1 else {}),   # a multiscale model's: per part
        "energy_unit": model.energy_unit_, "length_unit": model.length_unit_,
        "use_energy_labels": bool(main.use_energy_labels),
        # an imported sGDML model keeps no data: its file's use_E says only when it had none
        "trained_with_energies": (False if energies_are_relative(model)
                                  else None if getattr(main, "R_train_", None) is None else True),
        "energy_fit": main.energy_fit_, "train_hash": main.train_hash_,
        "keeps_training_data": getattr(model, "R_train_", None) is not None,
        "n_pairs_covered": int(covered.sum()), "n_pairs_total": len(model.z_) * (len(model.z_) - 1) // 2,
        "force_model": force_model_fingerprint(model),
    }


def describe_action(action):
    """Plain-data description of a fitted :class:`gdmlx.action.ActionModel`."""
    from gdmlx.dataset import chemical_formula
    return {"kind": "action", "formula": chemical_formula(action.z_), "n_atoms": len(action.z_),
            "stride_fs": action.stride_fs, "sigma": action.sigma, "lam": action.lam,
            "n_train_pairs": action.expansion_.n_train // (2 * len(action.perms_)),   # copies: the
            "n_permutations": len(action.perms_), "force_model": action.force_model_}  # momentum flip, perms


def describe_dataset(ds):
    """Plain-data description of a :class:`gdmlx.Dataset`."""
    from gdmlx.dataset import chemical_formula
    return {"kind": "dataset", "formula": chemical_formula(ds.z), "n_atoms": len(ds.z), "z": [int(z) for z in ds.z],
            "n_geometries": len(ds), "energies": ds.E is not None, "forces": True,
            "energy_unit": ds.energy_unit, "length_unit": ds.length_unit,
            "energy_range": None if ds.E is None else [float(ds.E.min()), float(ds.E.max())],
            "force_range": [float(ds.F.min()), float(ds.F.max())],
            "name": ds.name, "theory": ds.theory, "periodic": ds.lattice is not None,
            "unknown_units": _unknown_units(ds)}


def _unknown_units(ds):
    """The names of the dataset's units that gdmlx does not know (the commands refuse them)."""
    from gdmlx.errors import InputError
    from gdmlx.units import energy_in_ev, length_in_ang
    unknown = []
    for unit, value_of in ((ds.energy_unit, energy_in_ev), (ds.length_unit, length_in_ang)):
        try:
            value_of(unit)
        except InputError:
            unknown.append(unit)
    return unknown


def describe_geometry(path):
    """Plain-data description of a file of geometries without energies and forces (a start
    geometry for gdmlx md --xyz, not a dataset), or None when ASE does not read it so or its
    frames hold numbers that may be labels under other names (per-atom arrays, real numbers
    in their info or an ASE database's key-value pairs: load_dataset's energy_key=... reads them)."""
    import numpy as np

    from gdmlx.dataset import chemical_formula, read_ase_frames
    try:
        frames = list(read_ase_frames(path))
    except Exception:                    # ASE raises many kinds for files it cannot parse
        return None
    if not frames or any(a.calc is not None or set(a.arrays) - {"numbers", "positions"}
                         or any(isinstance(v, (float, np.floating)) for v in a.info.values()) for a in frames):
        return None
    return {"kind": "geometry", "formula": chemical_formula(frames[0].numbers), "n_atoms": len(frames[0]),
            "z": [int(z) for z in frames[0].numbers], "n_frames": len(frames)}


def describe_trajectory(path):
    """Plain-data description of a gdmlx MD trajectory (:func:`gdmlx.md.trajectory.trajectory_summary`)."""
    from gdmlx.dataset import chemical_formula
    from gdmlx.md.trajectory import trajectory_summary
    t = trajectory_summary(path)
    gamma = t.get("gamma_per_fs")
    return {"kind": "trajectory", "formula": chemical_formula(t["z"]), "n_atoms": len(t["z"]),
            "z": [int(z) for z in t["z"]], "n_frames": t["n_frames"], "n_replicas": t["n_replicas"],
            "time_fs": t["time_fs"], "complete": t["complete"], "stopped": _stop_reason(t),
            "dt_fs": t.get("dt_fs"), "thermostat": None if gamma is None else "langevin" if gamma > 0 else "nve",
            "friction_per_fs": gamma or None, "temperature_K": t.get("temperature_K"),
            "integrator": t.get("integrator"),                     # recorded by action-map runs only
            "slow_every": t.get("slow_every"), "force_model": t.get("force_model") or None,
            "contact_wall": t.get("contact_wall")}                # None: not recorded (before 2026-11-24)


def _stop_reason(t):
    """Why a trajectory's run ended before its last step, or None when it finished."""
    if t["complete"]:
        return None
    if t["status"] == 0:
        return ("interrupted or stopped before its last step (Ctrl-C, SIGTERM, a full disk, a failed "
                "action-map solve)")
    if t["n_replicas"] is not None:
        return "a replica left the model's domain"
    from gdmlx.md.simulation import _STOP_REASONS
    return _STOP_REASONS.get(t["status"], f"stop code {t['status']}")


def run(args):
    import os

    from gdmlx.cli.common import print_json
    from gdmlx.errors import InputError
    from gdmlx.file_kinds import file_kind
    if os.path.isdir(args.file):
        raise InputError(f"{args.file} is a directory: give a model, dataset or trajectory file")
    if os.path.isfile(args.file) and os.path.getsize(args.file) == 0:
        raise InputError(f"{args.file} is empty (0 bytes): it holds no model, dataset or trajectory")
    kind = file_kind(args.file)
    if kind is None and _locked_hdf5(args.file):
        raise InputError(f"{args.file} is being written by another process (a gdmlx md run still going?), and "
                         "HDF5 locks a file while it is written: ask again once the run has ended, or write "
                         "an .xyz trajectory to follow a run as it goes")
    if kind in ("trajectory", "xyz trajectory"):
        d = describe_trajectory(args.file)
    elif kind == "dataset" or kind is None and not args.file.lower().endswith((".h5", ".hdf5", ".npz")):
        from gdmlx.dataset import load_dataset      # also ASE formats (.traj, .db), of no known kind
        try:
            d = describe_dataset(load_dataset(args.file))
        except InputError:
            d = describe_geometry(args.file) if kind is None else None
            if d is None:
                raise
    elif kind == "action":
        from gdmlx.action import ActionModel
        d = describe_action(ActionModel.load(args.file))
    else:
        from gdmlx.errors import ModelFileError
        from gdmlx.modelfile import load_any_model
        try:
            d = {"kind": kind or "model", **describe(load_any_model(args.file))}
        except (InputError, ModelFileError) as exc:
            if kind is not None:
                raise
            raise InputError(f"{args.file}: neither a readable model nor a dataset or trajectory; as a model: "
                             f"{str(exc).removeprefix(f'{args.file}: ')}") from None
    if args.json:
        print_json(d)
    else:
        print("\n".join(TEXT[d["kind"]](d, args.file)))


def _locked_hdf5(path):
    """Whether ``path`` is an HDF5 file that another process holds open for writing (HDF5
    locks it then: it cannot be read, nor its kind told)."""
    import h5py
    try:
        if h5py.is_hdf5(path):
            with h5py.File(path, "r"):
                pass
    except OSError as exc:
        return isinstance(exc, BlockingIOError)   # errno 11: another process holds the lock (37: the file system has none)
    return False


def _model_text(d, path):
    uncovered = d["n_pairs_total"] - d["n_pairs_covered"]
    return ([f"{d['formula']} ({d['n_atoms']} atoms), units {d['energy_unit']} and {d['length_unit']}"]
            + [f"  {p['name'] + ' part' if p['name'] != 'model' else 'kernel expansion'}: {p['n_train']} "
               f"training geometries, {p['n_pairs']} pair features, sigma {p['sigma']:g}, lam {p['lam']:g}, "
               f"{p['n_permutations']} permutation(s)" for p in d["parts"]]
            + [f"  {_energy_labels(d)}, "
               f"training data {'kept' if d['keeps_training_data'] else 'not stored'}; force model "
               f"{d['force_model'][:12]} (fingerprint, recorded in its trajectories)"]
            + ([f"  {d['n_pairs_covered']} of {d['n_pairs_total']} atom pairs in a descriptor; MD adds a "
                f"contact wall for the other {uncovered}"] if uncovered else []))


def _energy_labels(d):
    """How a model's energies were fitted, as its text says it."""
    if d["use_energy_labels"]:
        return "energy labels fitted"
    if d["trained_with_energies"] is False:
        return "no energy labels (trained on forces only: its energies are up to a constant)"
    return "energy labels offset only"


def _action_text(d, path):
    return [f"{d['formula']} ({d['n_atoms']} atoms): learned long-stride map, stride {d['stride_fs']:g} fs, "
            f"{d['n_train_pairs']} training pairs, sigma {d['sigma']:g}, lam {d['lam']:g}, "
            f"{d['n_permutations']} permutation(s)",
            f"  force model {d['force_model'][:12] or 'not recorded'} (fingerprint; run it with "
            f"gdmlx md FORCE_MODEL --action {path})"]


def _dataset_text(d, path):
    from gdmlx.cli.common import SET_UNITS
    f_unit = f"{d['energy_unit']}/{d['length_unit']}"
    about = ", ".join(f"{k} {d[k]!r}" for k in ("name", "theory") if d[k])
    energies = (f"energies {d['energy_range'][0]:.6g} to {d['energy_range'][1]:.6g} {d['energy_unit']}, "
                if d["energies"] else "no energies, ")
    return ([f"{d['formula']} ({d['n_atoms']} atoms): dataset of {d['n_geometries']} "
             f"geometr{'y' if d['n_geometries'] == 1 else 'ies'}, "
             f"{'energies and ' if d['energies'] else ''}forces in {d['energy_unit']} and {d['length_unit']}"
             + (", periodic (with a lattice)" if d["periodic"] else ""),
             f"  {energies}force components {d['force_range'][0]:.4g} to {d['force_range'][1]:.4g} {f_unit}"]
            + ([f"  {about}"] if about else [])
            + ([f"  unknown unit name(s) {', '.join(map(repr, d['unknown_units']))}: gdmlx train and test refuse "
                f"the file; {SET_UNITS}"] if d["unknown_units"] else []))


def _geometry_text(d, path):
    return [f"{d['formula']} ({d['n_atoms']} atoms): {d['n_frames']} geometr{'y' if d['n_frames'] == 1 else 'ies'} "
            f"without energies or forces: a start geometry (gdmlx md MODEL --xyz {path}), not a dataset"]


def _trajectory_text(d, path):
    head = (f"{d['formula']} ({d['n_atoms']} atoms): MD trajectory, {d['n_frames']} frames"
            + (f" of {d['n_replicas']} replicas" if d["n_replicas"] is not None else "")
            + (f", t = {d['time_fs'][0]:g} to {d['time_fs'][1]:g} fs" if d["time_fs"] else ""))
    if d["dt_fs"] is not None:                  # recorded in HDF5 trajectories
        head += ("; " + (f"Langevin at {d['temperature_K']:g} K" if d["thermostat"] == "langevin" else "NVE")
                 + (", action-map stride" if d["integrator"] == "action map" else ", step") + f" {d['dt_fs']:g} fs"
                 + (f", slow part every {d['slow_every']} steps" if (d["slow_every"] or 1) > 1 else "")
                 + (", without the contact wall" if d["contact_wall"] is False else ""))
    return [head,
            "  complete: the run finished" if d["complete"] else
            f"  incomplete: {d['stopped']}; "
            + (f"gdmlx md MODEL --restart {path} goes on from its last frame" if d["n_frames"] else
               "it holds no frame to go on from (start anew)"),
            f"  run with force model {d['force_model'][:12]} (fingerprint, as gdmlx info MODEL shows it)"
            if d["force_model"] else "  force model not recorded"]


TEXT = {"model": _model_text, "multiscale": _model_text, "sgdml": _model_text, "action": _action_text,
        "dataset": _dataset_text, "trajectory": _trajectory_text, "geometry": _geometry_text}
