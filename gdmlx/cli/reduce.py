"""gdmlx reduce: drop the pair features that do not matter, retrain, stop by itself."""

import time

from gdmlx.cli.arguments import non_negative_float, positive_float, positive_int
from gdmlx.interrupts import said_when_stopped


def add_parser(sub):
    p = sub.add_parser("reduce", help="reduce a model's descriptor to the pairs that matter",
                       description="Rank pair features by importance on validation geometries, drop "
                                   "the least important in rounds with retraining, and keep the "
                                   "smallest descriptor whose validation force MAE is within --tol of "
                                   "the full model's. The test set is only used for the final report.")
    p.add_argument("model", help="gdmlx model file (trained by gdmlx, with its training data); "
                                 "for a multiscale model (gdmlx split) its slow part is reduced")
    p.add_argument("data", help="dataset the model was trained on (validation and test geometries)")
    p.add_argument("--tol", type=non_negative_float, default=0.05,
                   help="allowed relative increase of validation force MAE (default 0.05)")
    p.add_argument("--importance", choices=("masking", "own-term"), default="masking",
                   help="masking: published, exact (default); own-term: each feature's own force term, cheap")
    p.add_argument("--n-valid", type=positive_int, default=500,
                   help="validation geometries if the model has no validation split (default 500)")
    p.add_argument("--n-test", type=positive_int, default=1000,
                   help="test geometries for the report (default 1000)")
    p.add_argument("--md-temperature", type=positive_float, default=None, metavar="K",
                   help="MD check: every accepted reduction must also keep short Langevin runs at "
                        "this temperature inside the training domain as well as the unreduced "
                        "model does (default: off; use the temperature you will run MD at)")
    p.add_argument("--md-ps", type=positive_float, default=None,
                   help="MD check: length of each of its 3 runs, ps (default 20)")
    p.add_argument("--md-mts", type=positive_int, default=None,
                   help="MD check: multiscale models run with the slow part every this many steps, "
                        "as you will run them (default 1)")
    p.add_argument("--figure", help="save importance and kept-pair figures here (needs matplotlib)")
    p.add_argument("-o", "--output", required=True, help="reduced model file to write (.h5)")
    p.add_argument("--json", action="store_true", help="print results as JSON on stdout")
    p.set_defaults(run=run, output_suffixes=(".h5", ".hdf5"), output_kind="models")


def run(args):
    from gdmlx.cli.common import force_energy_errors, load_molecule_data, log, print_json
    from gdmlx.md.probe import StabilityProbe
    from gdmlx.modelfile import load_any_model
    from gdmlx.multiscale import MultiscaleModel
    from gdmlx.reduction import check_figure_path, plot_reduction, reduce
    from gdmlx.splits import test_indices
    from gdmlx.timing import one_geometry_latency_us

    if args.figure:
        check_figure_path(args.figure)           # before the reduction, not after it
    if args.md_temperature is None and (args.md_ps is not None or args.md_mts is not None):
        raise ValueError("--md-ps and --md-mts set the MD check, which --md-temperature turns on: give it too")
    model = load_any_model(args.model)
    if (args.md_mts or 1) > 1 and not isinstance(model, MultiscaleModel):
        raise ValueError(f"--md-mts {args.md_mts}: {args.model} is a single model, which MD evaluates every step; "
                         "--md-mts applies to multiscale models (gdmlx split): leave it out")
    ds = load_molecule_data(args.data, model)
    t0 = time.perf_counter()
    probe = None if args.md_temperature is None else StabilityProbe(
        temperature_K=args.md_temperature, ps=20.0 if args.md_ps is None else args.md_ps,
        slow_every=args.md_mts or 1)
    with said_when_stopped(f"gdmlx reduce: stopped, {args.output} not written; the same command starts over"):
        reduced = reduce(model, ds, tol=args.tol, importance=args.importance, n_valid=args.n_valid,
                         progress=not args.json, probe=probe)
    seconds = time.perf_counter() - t0
    reduced.save(args.output)
    rep = reduced.reduction_
    part = (lambda m: m.slow_) if isinstance(model, MultiscaleModel) else (lambda m: m)
    # what neither trained nor chose the pairs (the recorded split also in data converted
    # from other units, whose fingerprint is not the recorded one)
    test = test_indices(reduced, ds, args.n_test)
    E_test = None if ds.E is None else ds.E[test]
    errors = (lambda m: force_energy_errors(m, ds.R[test], ds.F[test], E_test)) if len(test) else (lambda m: None)
    timed = ds.R[test] if len(test) else ds.R[:100]     # any geometries time the prediction
    out = {"output": args.output, "tol": args.tol, "importance": args.importance,
           "pairs_kept": part(reduced).pairs_.tolist(),
           "n_pairs_full": len(part(model).pairs_), "n_pairs_kept": len(part(reduced).pairs_),
           "n_local": rep.n_local, "n_nonlocal": rep.n_nonlocal, "seconds": seconds,
           "full_valid_f_mae": rep.full_valid_f_mae, "rounds": rep.rounds,
           "test_full": errors(model), "test_reduced": errors(reduced),
           "energy_unit": model.energy_unit_, "length_unit": model.length_unit_,
           # the reduced part's speed (a multiscale model's slow part is its last force part)
           "latency_full_us": one_geometry_latency_us(model.force_parts()[-1], timed),
           "latency_reduced_us": one_geometry_latency_us(reduced.force_parts()[-1], timed)}
    if args.figure:
        plot_reduction(rep, len(model.z_), args.figure, args.importance)
    if args.json:
        print_json(out)
        return
    log(f"kept {out['n_pairs_kept']} of {out['n_pairs_full']} pairs ({out['n_local']} local < 5 A, "
        f"{out['n_nonlocal']} non-local) in {seconds:.0f} s")
    if len(test):
        log(f"test force MAE {out['test_full']['f_mae']:.4g} -> {out['test_reduced']['f_mae']:.4g} "
            f"{model.energy_unit_}/{model.length_unit_} ({len(test)} geometries)")
    else:
        log("no test geometries left (the model's training and validation splits hold the whole "
            "dataset): give a dataset with other geometries for test errors (gdmlx test)")
    log(f"one-geometry prediction {out['latency_full_us']:.0f} -> {out['latency_reduced_us']:.0f} us")
    log(f"wrote {args.output}" + (f" and {args.figure}" if args.figure else ""))
