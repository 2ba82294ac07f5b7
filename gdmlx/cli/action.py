"""gdmlx action: learn a long-stride map (an action model) from short-step trajectories."""

from gdmlx.cli.arguments import non_negative_float, non_negative_int, positive_float, positive_int
from gdmlx.interrupts import said_when_stopped


def add_parser(sub):
    p = sub.add_parser("action", help="learn a long-stride MD map from short-step trajectories",
                       description="Learn the correction C of the action S = stride * H + C from pairs "
                                   "of states a stride apart in gdmlx MD trajectories (HDF5, with "
                                   "velocities). Run it with 'gdmlx md MODEL --action FILE'.")
    act = p.add_subparsers(dest="action_command", required=True, metavar="ACTION_COMMAND")
    t = act.add_parser("train", help="fit an action model",
                       description="Fit an action model. The trajectories must be NVE runs (no "
                                   "thermostat, one time step) of the force model given with --model, "
                                   "e.g. 'gdmlx md MODEL --steps 20000 --dt 0.25 --temperature 500 "
                                   "--save-every 2 -o ref.h5' (velocities drawn at 500 K, then NVE), "
                                   "with frames evenly spaced; the stride must be a multiple of their "
                                   "spacing. Start several runs from different geometries: the map is "
                                   "learned only where they went.")
    t.add_argument("trajectories", nargs="+",
                   help="gdmlx HDF5 trajectories (.h5); each replica of a --replicas run counts as a run")
    t.add_argument("--model", required=True, help="the force model the trajectories were run with")
    t.add_argument("--stride", type=positive_float, required=True, help="stride in fs")
    t.add_argument("--sigma", type=positive_float, default=5.0, help="kernel length scale, 1/A (default 5)")
    t.add_argument("--lam", type=non_negative_float, default=1e-8, help="regularisation (default 1e-8)")
    t.add_argument("--n-train", type=positive_int, default=100,
                   help="training pairs; the kernel matrix has 6N x n-train rows (default 100)")
    t.add_argument("--n-valid", type=positive_int, default=200,
                   help="held-out pairs for the error report (default 200)")
    t.add_argument("--seed", type=non_negative_int, default=0, help="seed of the pair draw (default 0)")
    t.add_argument("--sym", action="store_true",
                   help="sum the kernel over the molecule's permutational symmetries (methyl rotors, "
                        "ring flips; from the bond graph): pairs learned in one methyl orientation then "
                        "serve the equivalent others; the map's cost x the group size")
    t.add_argument("-o", "--output", required=True, help="action model file (.h5)")
    t.add_argument("--json", action="store_true", help="print the fit report as JSON on stdout")
    t.set_defaults(run=run_train, output_suffixes=(".h5", ".hdf5"), output_kind="action models")


def run_train(args):
    import ase.units

    from gdmlx.action import ActionModel
    from gdmlx.cli.common import log, print_json
    from gdmlx.modelfile import load_any_model

    model = load_any_model(args.model)
    act = ActionModel(stride_fs=args.stride, sigma=args.sigma, lam=args.lam, n_train=args.n_train,
                      n_valid=args.n_valid, seed=args.seed, perms="auto" if args.sym else None)
    with said_when_stopped(f"gdmlx action train: stopped, {args.output} not written; the same command starts over"):
        act.fit(args.trajectories, model, verbose=not args.json)
    act.save(args.output)
    i = act.fit_info_
    if args.json:
        print_json(i)
    else:
        log(f"fitted on {i['n_train']} of {i['n_pairs_available']} pairs in {i['fit_s']:.1f} s; "
            f"held-out residual of the midpoint rule: dq {i['valid_rms_dq_midpoint_A']:.2e} A -> "
            f"{i['valid_rms_dq_learned_A']:.2e} A, dp {i['valid_rms_dp_midpoint'] * ase.units.fs:.2e} -> "
            f"{i['valid_rms_dp_learned'] * ase.units.fs:.2e} amu A/fs with the learned correction"
            + (f", summed over {i['n_permutations']} permutations" if i["n_permutations"] > 1 else "")
            + f"; wrote {args.output}")
