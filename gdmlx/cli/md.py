"""gdmlx md: molecular dynamics with a model, in the compiled engine."""

from gdmlx.cli.arguments import non_negative_float, non_negative_int, positive_float, positive_int
from gdmlx.errors import GeometryError, InputError, InsufficientMemoryError
from gdmlx.interrupts import Terminated

OUTSIDE_WARNING = 0.05   # fraction of frames outside the training domain worth a note


def add_parser(sub):
    p = sub.add_parser("md", help="run molecular dynamics with a model",
                       description="NVE (velocity Verlet) or NVT (Langevin BAOAB) molecular dynamics. "
                                   "Frames are written as the run goes; the run stops with a message "
                                   "if the molecule leaves the model's domain.")
    p.add_argument("model", help="model file (gdmlx .h5 or sGDML .npz)")
    p.add_argument("--xyz", help="start geometry (any ASE-readable file, or a gdmlx trajectory .h5: its "
                                 "last frame; default: the model's first training geometry); velocities "
                                 "are drawn at --temperature, not taken from the file (that is --restart)")
    p.add_argument("--reorder", action="store_true",
                   help="--xyz: put the start's atoms in the model's order, matched by bond graph and "
                        "elements (for a geometry from another program or ase.build.molecule)")
    p.add_argument("--restart", metavar="TRAJECTORY",
                   help="continue a run from the last frame of its trajectory (gdmlx .h5, or .xyz written "
                        "by gdmlx md): its positions, velocities and time, and for a replica run all its "
                        "replicas; the other settings come from this command line (a Langevin "
                        "continuation wants another --seed than the run before)")
    p.add_argument("--steps", type=positive_int, required=True,
                   help="number of time steps (strides with --action)")
    p.add_argument("--dt", type=positive_float, help="time step in fs (default 0.5)")
    p.add_argument("--temperature", type=non_negative_float, default=None,
                   help="initial velocities and Langevin target, K (default 300); in NVE the start "
                        "geometry's potential energy (by default a training frame's) adds to it")
    p.add_argument("--thermostat", choices=("nve", "langevin"), default="nve",
                   help="nve: velocity Verlet; langevin: BAOAB (default nve)")
    p.add_argument("--friction", type=non_negative_float, default=None,
                   help="Langevin friction, 1/fs (default 0.01; --thermostat langevin only)")
    p.add_argument("--mts", type=positive_int, default=1,
                   help="multiscale models: evaluate the slow part every this many steps (default 1)")
    p.add_argument("--action", help="action model file ('gdmlx action train'): integrate with its "
                                    "learned long-stride map; the step is its stride (no --dt)")
    p.add_argument("--action-tol", type=positive_float, default=None,
                   help="--action: convergence of each stride's implicit equation, A (default 1e-10; "
                        "looser tolerances show up as an energy drift)")
    p.add_argument("--action-max-iter", type=positive_int, default=None,
                   help="--action: iterations of each stride's implicit equation before the run stops "
                        "(default 100)")
    p.add_argument("--no-contact-wall", action="store_true",
                   help="no repulsive wall for atom pairs outside the model's descriptor (reduced and "
                        "multiscale models; see the guide); without it such atoms can pass through each other")
    p.add_argument("--replicas", type=positive_int, default=None,
                   help="run this many copies of the molecule at once, each with its own velocities, "
                        "with batched forces (default 1: the single-molecule engine; with --restart: "
                        "as many as the trajectory holds)")
    p.add_argument("--backend", choices=("cpu", "gpu", "auto"), default="cpu",
                   help="--replicas: where the batched forces run (gpu needs CuPy and a CUDA device; "
                        "default cpu; auto: the GPU from 100 replicas, if there is one). On an H100 the GPU "
                        "made 2.3x the CPU's (16 threads) replica-steps/s at 100 replicas and 25x at 1000; "
                        "one molecule runs 55x faster on the cpu (see the guide)")
    p.add_argument("--seed", type=non_negative_int, default=None, help="random seed for velocities and Langevin noise (default: a new one each run, so runs "
                        "differ; give one to repeat a run)")
    p.add_argument("--save-every", type=positive_int, default=None,
                   help="save a frame every this many steps, a multiple of --mts (default 10 rounded up "
                        "to one); --steps is rounded down to a multiple of it")
    p.add_argument("-o", "--output", default=None,
                   help="trajectory file: .h5 or .xyz (replica runs: .h5; default: none)")
    p.add_argument("--json", action="store_true", help="print the run summary as JSON on stdout")
    p.set_defaults(run=run)


def start_state(args, model):
    """``(start, state)``: the start geometry or geometries (ASE Atoms, whose atomic numbers
    the engines check, or an array) and, with ``--restart``, the :class:`gdmlx.md.MDState`
    it comes from."""
    import numpy as np

    from gdmlx.atom_order import match_atom_order
    from gdmlx.cli.common import log, read_start_atoms
    from gdmlx.expansion import force_model_fingerprint
    from gdmlx.md import read_last_state
    from gdmlx.units import in_angstrom

    if args.restart:
        if args.xyz:
            raise ValueError("--restart continues from a trajectory's last frame; --xyz starts from a "
                             "geometry with new velocities: give one of them")
        state = read_last_state(args.restart)
        if not state.complete:
            log(f"note: {args.restart} is the record of a run that did not finish (interrupted or stopped); "
                "going on from its last whole frame")
        n_file = 1 if state.positions.ndim == 2 else len(state.positions)
        if args.replicas is not None and args.replicas != n_file:
            raise ValueError(f"--replicas {args.replicas}: the trajectory {args.restart} holds "
                             f"{n_file} replica{'s' if n_file > 1 else ''}; leave --replicas out to continue them")
        if n_file > 1 and args.action:
            raise ValueError("--action runs one molecule; this trajectory holds replicas")
        if not np.array_equal(state.z, model.z_):
            raise InputError(f"--restart {args.restart}: its atomic numbers {state.z.tolist()} are not "
                             f"the model's {np.asarray(model.z_).tolist()}")
        if state.force_model and state.force_model != force_model_fingerprint(model):
            log(f"note: {args.restart} was run with another force model than {args.model}; going on with this one")
    if args.reorder and not args.xyz:
        raise ValueError("--reorder applies to a start geometry given with --xyz")
    if args.restart:
        if args.temperature is not None and args.thermostat == "nve":
            raise ValueError("--temperature: NVE from --restart goes on with the trajectory's velocities "
                             "(the temperature applies to --thermostat langevin)")
        return state.positions, state
    if args.xyz:
        start = read_start_atoms(args.xyz)
        if start.constraints:
            raise InputError(f"--xyz {args.xyz} holds ASE constraints "
                             f"({', '.join(type(c).__name__ for c in start.constraints)}), which gdmlx md cannot "
                             "apply: write the geometry without them, or run ASE's dynamics with "
                             "gdmlx.GDMLCalculator")
        if start.has("momenta"):          # an extended XYZ of a run: its geometry, new velocities
            del start.arrays["momenta"]
        return (match_atom_order(start, model) if args.reorder else start), None
    if getattr(model, "R_train_", None) is not None:
        return in_angstrom(model.R_train_[0], model.length_unit_), None
    raise ValueError("this model stores no training geometries: give a start geometry with --xyz")


def run(args):
    from gdmlx.cli.common import log, print_json
    from gdmlx.md import ReplicaSimulation, Simulation
    from gdmlx.md.replicas import md_backend
    from gdmlx.modelfile import load_any_model

    for option, value in (("--restart", args.restart), ("--xyz", args.xyz), ("--action", args.action)):
        if value is not None and not value.strip():     # "$UNSET" in a script: not the option left out
            raise ValueError(f"{option} was given an empty file name")
    if args.friction is not None and args.thermostat != "langevin":
        raise ValueError("--friction applies to --thermostat langevin only")
    _check_output_is_not_the_start(args)
    model = load_any_model(args.model)
    start, state = start_state(args, model)
    args.temperature = 300.0 if args.temperature is None else args.temperature
    if args.replicas is None:
        args.replicas = 1 if state is None or state.positions.ndim == 2 else len(state.positions)
    resumed = {} if state is None else {"velocities": state.velocities, "time_fs": state.time_fs,
                                        "masses": state.masses}
    if args.action:
        if args.mts != 1 or args.replicas != 1 or args.backend != "cpu":
            raise ValueError("--action runs one molecule on the CPU: it cannot be combined with --mts, "
                             "--replicas or --backend")
        if args.dt is not None:
            raise ValueError("--dt does not apply with --action: the step is the action model's stride "
                             "(gdmlx info ACTION_FILE shows it); leave --dt out")
        from gdmlx.action import ActionModel
        from gdmlx.md.action_map import ActionSimulation
        sim = ActionSimulation(model, ActionModel.load(args.action), start, temperature_K=args.temperature,
                               thermostat=args.thermostat, friction_per_fs=args.friction, seed=args.seed,
                               tol=1e-10 if args.action_tol is None else args.action_tol,
                               max_iter=100 if args.action_max_iter is None else args.action_max_iter,
                               contact_wall=not args.no_contact_wall, **resumed)
    else:
        if args.action_tol is not None or args.action_max_iter is not None:
            raise ValueError("--action-tol and --action-max-iter apply to --action runs only")
        settings = dict(dt_fs=0.5 if args.dt is None else args.dt, temperature_K=args.temperature,
                        thermostat=args.thermostat, friction_per_fs=args.friction, seed=args.seed, slow_every=args.mts,
                        contact_wall=not args.no_contact_wall, **resumed)
        if args.replicas > 1 or md_backend(args.backend, args.replicas) != "cpu":     # auto: the GPU from 100
            try:
                sim = ReplicaSimulation(model, start, args.replicas, backend=args.backend, **settings)
            except MemoryError as exc:        # numpy's names the array, not the option that sized it
                raise InsufficientMemoryError(f"--replicas {args.replicas}: the replicas' arrays do not fit in "
                                              f"memory ({exc}); run fewer replicas at a time") from None
        else:
            sim = Simulation(model, start, **settings)
    if args.save_every is None:
        args.save_every = -(-10 // args.mts) * args.mts
    if args.save_every % args.mts:
        raise ValueError(f"--save-every must be a multiple of --mts ({args.mts})")
    steps = args.steps - args.steps % args.save_every
    if steps != args.steps and steps and not args.json:
        log(f"running {steps} steps: --steps rounded down to a multiple of --save-every ({args.save_every})")
    if steps == 0:
        raise ValueError(f"--steps ({args.steps}) must be at least --save-every ({args.save_every})")
    try:
        summary = sim.run(steps, trajectory=args.output, save_every=args.save_every,
                          progress=not args.json)
    except (GeometryError, KeyboardInterrupt) as exc:      # MDInstabilityError, ActionMapError
        if args.json:                                 # the run up to the stop (none: stopped starting)
            why = str(exc) or ("terminated (SIGTERM)" if isinstance(exc, Terminated) else "interrupted")
            print_json({**_json_summary(getattr(exc, "summary", None) or {"steps": 0}), "stopped": why})
        raise
    summary.pop("frames", None)                   # replica runs: per-frame arrays (in the trajectory)
    if args.json:
        print_json(_json_summary(summary))
    else:
        log((f"{summary['n_replicas']} replicas: " if "n_replicas" in summary else "")
            + f"{summary['steps']} steps ({summary['simulated_ps']:.3f} ps"
            + (f" on from t = {state.time_fs / 1000:.3f} ps" if state else "") + f") in {summary['wall_s']:.2f} s: "
            f"{summary['steps_per_s']:,.0f} steps/s, {summary['ns_per_day']:.1f} ns/day; "
            f"mean T {summary.get('mean_temperature_K', float('nan')):.1f} K"
            + (f"; E_tot drift {_drift_text(summary)}, std {summary['etot_std_eV']:.2e} eV"
               if args.thermostat == "nve" and "etot_drift_eV_per_ps" in summary else "")
            + (f"; wrote {args.output}" if args.output else ""))
        outside = summary.get("outside_fraction", 0.0)
        if outside > OUTSIDE_WARNING:
            log(f"{outside:.0%} of the saved frames had a pair of atoms closer than the training data "
                "ever had it (0.8 x its shortest distance there): the model extrapolated"
                + (f"; check it there with 'gdmlx validate {args.model} {args.output}'"
                   if args.output and args.replicas == 1 else ""))      # validate reads one molecule's


def _drift_text(summary):
    """The E_tot drift with its standard error: a short run's drift is mostly noise (0.05 ps:
    "1.25e-02 eV/ps", at an energy std of 7.6e-04 eV)."""
    se = summary.get("etot_drift_se_eV_per_ps")
    return (f"{summary['etot_drift_eV_per_ps']:.2e} eV/ps (under 50 frames saved: no error estimate)" if se is None
            else f"{summary['etot_drift_eV_per_ps']:.2e} +- {se:.1e} eV/ps")


def _check_output_is_not_the_start(args):
    """Refuse ``-o PATH`` when the run starts from ``PATH.part`` (--restart or --xyz), the file
    it writes as it goes: the record of a killed run, which the new run would overwrite."""
    import os
    if not args.output:
        return
    part = args.output + ".part"
    for option, value in (("--restart", args.restart), ("--xyz", args.xyz)):
        if value and os.path.isfile(value) and os.path.isfile(part) and os.path.samefile(value, part):
            raise InputError(f"-o {args.output}: the run writes {part} as it goes, and that is the {option} "
                             f"file it starts from ({value}), which writing would destroy; choose another "
                             "output name")


def _json_summary(summary):
    """A run's summary with every key of ``SUMMARY_KEYS`` (null where the run allowed none)
    and without the replica runs' per-frame arrays."""
    from gdmlx.md.simulation import SUMMARY_KEYS
    return {**{k: None for k in SUMMARY_KEYS}, **{k: v for k, v in summary.items() if k != "frames"}}
