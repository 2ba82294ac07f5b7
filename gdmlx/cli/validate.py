"""gdmlx validate: a model's errors on frames of its own trajectory, against the reference method."""

import os

from gdmlx.cli.arguments import fraction_below_one, positive_int
from gdmlx.cli.sample import add_calculator_arguments, make_calculator
from gdmlx.errors import InputError


def add_parser(sub):
    p = sub.add_parser("validate", help="errors on frames of an MD trajectory, against the reference method",
                       description="Label frames of a gdmlx trajectory with a reference calculator and "
                                   "report the model's force and energy errors there, for frames inside "
                                   "and outside the training domain (a pair closer than 0.8 x its "
                                   "shortest training distance). Held-out errors say how good a model "
                                   "is where its data are; this says how good it is where its MD goes.")
    p.add_argument("model", help="model file (gdmlx .h5 or sGDML .npz)")
    p.add_argument("trajectory", help="trajectory written by 'gdmlx md -o traj.h5' (or traj.xyz)")
    add_calculator_arguments(p)
    p.add_argument("--frames", type=positive_int, default=100,
                   help="frames to label, evenly spaced (default 100)")
    p.add_argument("--skip", type=fraction_below_one, default=0.1,
                   help="leave out this fraction at the start of the trajectory (default 0.1)")
    p.add_argument("--data", help="the model's dataset: also report its error on held-out geometries")
    p.add_argument("--json", action="store_true", help="print results as JSON on stdout")
    p.set_defaults(run=run)


def run(args):
    import numpy as np

    from gdmlx.cli.common import force_energy_errors, load_molecule_data, log, print_json
    from gdmlx.dataset import chemical_formula
    from gdmlx.expansion import force_model_fingerprint
    from gdmlx.md.reference_check import check_trajectory
    from gdmlx.md.trajectory import trajectory_summary
    from gdmlx.modelfile import load_any_model
    from gdmlx.splits import test_indices

    if args.frames < 1 or not 0 <= args.skip < 1:
        raise ValueError("--frames must be >= 1 and --skip in [0, 1)")
    model = load_any_model(args.model)
    z, positions = _trajectory_positions(args.trajectory)
    if positions.ndim != 3:
        raise ValueError(f"{args.trajectory} holds replicas (gdmlx md --replicas): validate checks one "
                         "trajectory at a time")
    if not len(positions):
        raise InputError(f"{args.trajectory} holds no whole frame (a run stopped or killed before its first "
                         "saved frame): there is nothing to validate")
    if not np.array_equal(z, np.asarray(model.z_)):
        raise InputError(f"{args.trajectory} holds {chemical_formula(z)} (atomic numbers {z.tolist()}), the model "
                         f"{args.model} {chemical_formula(model.z_)} ({np.asarray(model.z_).tolist()}): validate "
                         "a trajectory with the model that ran it")
    settings = trajectory_summary(args.trajectory)               # files from before these were recorded:
    ran_with = settings.get("force_model", "")                    # unknown model,
    wall = settings.get("contact_wall", True)                     # gdmlx md's default
    same_model = force_model_fingerprint(model) == ran_with if ran_with else None
    if same_model is False and not args.json:
        log(f"note: {args.trajectory} was run by another force model than {args.model} (fingerprint "
            f"{ran_with[:12]}, 'gdmlx info' shows a model's): these are {args.model}'s errors on the other's frames")
    ds = load_molecule_data(args.data, model) if args.data else None      # checked before the labelling
    res = check_trajectory(model, positions, make_calculator(args), args.frames, args.skip,
                           progress=not args.json, contact_wall=bool(wall))
    out = {k: v for k, v in res.items() if k not in ("frames", "outside", "f_mae")}
    out.update(calculator=args.calculator if args.calculator != "tblite" else f"tblite {args.method}",
               frames=res["frames"], outside=res["outside"], frame_f_mae=res["f_mae"])
    out.update(energy_unit=model.energy_unit_, length_unit=model.length_unit_, same_force_model=same_model,
               max_frame_f_mae=float(res["f_mae"].max()))
    if out["n_frames"] == 1:             # its energy error is the offset: nothing is left after it
        out.update(e_mae_inside=None, e_mae_outside=None)
    if ds is not None:
        idx = test_indices(model, ds, 500)
        out["held_out"] = (force_energy_errors(model, ds.R[idx], ds.F[idx], None if ds.E is None else ds.E[idx])
                           if len(idx) else None)
    if args.json:
        print_json(out)
        return
    f_unit = f"{model.energy_unit_}/{model.length_unit_}"
    fmt = lambda v: "-" if v is None else f"{v:.4g}"
    log(f"{out['n_frames']} frames, {out['n_outside']} outside the training domain")
    log(f"force MAE ({f_unit}): inside {fmt(out['f_mae_inside'])}, outside {fmt(out['f_mae_outside'])}"
        + (f", held-out data {out['held_out']['f_mae']:.4g}" if out.get("held_out") else ""))
    log(f"energy MAE ({model.energy_unit_}, after the offset {out['e_offset']:.3f}): inside "
        f"{fmt(out['e_mae_inside'])}, outside {fmt(out['e_mae_outside'])}"
        + (" (one frame: its energy error is the offset; label more frames)" if out["n_frames"] == 1 else ""))


def _trajectory_positions(path):
    """Atomic numbers (N,) and positions [A] of a gdmlx trajectory: HDF5 (frames, N, 3), or
    (frames, replicas, N, 3) for a replica run; extended XYZ written by ``gdmlx md``, also
    the ``.part`` file of a killed run, whose cut last frame is left out."""
    import numpy as np

    from gdmlx.md.trajectory import read_trajectory

    if str(path).lower().removesuffix(".part").endswith((".xyz", ".extxyz")):
        import io

        import ase.io

        from gdmlx.file_kinds import check_kind
        if not os.path.exists(path):
            raise FileNotFoundError(f"no such file: {path}")
        check_kind(path, ("xyz trajectory",), "an MD trajectory", InputError)
        text = _whole_xyz_frames(path)
        try:
            frames = ase.io.read(io.StringIO(text), index=":", format="extxyz")
        except Exception as exc:             # ASE raises many kinds for files it cannot parse
            raise InputError(f"{path}: not a readable extended XYZ trajectory ({type(exc).__name__}: {exc})") from None
        if not frames:
            return np.empty(0, np.int64), np.empty((0, 0, 3))
        if any(not np.array_equal(a.numbers, frames[0].numbers) for a in frames):
            raise InputError(f"{path}: frames of different atoms")
        return np.asarray(frames[0].numbers), np.array([a.positions for a in frames])
    traj = read_trajectory(path)
    return np.asarray(traj["z"]), traj["positions"]


def _whole_xyz_frames(path):
    """The text of the whole frames of the XYZ file at ``path``
    (:func:`gdmlx.md.trajectory.whole_xyz_frames`)."""
    from gdmlx.md.trajectory import whole_xyz_frames
    frames = whole_xyz_frames(path)
    if frames is None:
        with open(path, "rb") as fh:
            first = fh.readline()[:40].decode(errors="replace").strip()
        raise InputError(f"{path}: not an XYZ trajectory (its first line, {first!r}, is no atom count)")
    with open(path, "rb") as fh:
        return fh.read(frames[1]).decode(errors="replace")
