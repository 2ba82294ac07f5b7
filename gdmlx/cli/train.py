"""gdmlx train: fit a model on a dataset, choosing sigma on a validation split."""

import os
import time
import warnings

from gdmlx.cli.arguments import (non_negative_float, non_negative_int, positive_float, positive_int,
                                  relative_tolerance)
from gdmlx.errors import InputError
from gdmlx.interrupts import Terminated


def add_parser(sub):
    p = sub.add_parser("train", help="train a model on a dataset",
                       description="Train a GDML model. Training and validation geometries are drawn "
                                   "at random (--seed); with several sigmas, the one with the lowest "
                                   "validation force RMSE is kept. Indices are stored in the model.")
    p.add_argument("data", help="dataset: sGDML .npz, gdmlx .h5, or extended XYZ (or another format ASE "
                                "reads: .traj, .db) with energies and forces in eV and eV/A")
    p.add_argument("--n-train", type=positive_int, required=True, help="number of training geometries")
    p.add_argument("--n-valid", type=positive_int, default=None,
                   help="validation geometries for choosing sigma (default: half of what is left, at most "
                        "1000; the rest is for 'gdmlx test')")
    p.add_argument("--sigma", default=None, help="kernel length scale(s) in the data's inverse length unit: "
                   "a number, a list '10,20' or a range '5:5:50' (default 10 for data in A, the same "
                   "model's value for other units: 5.29 in bohr)")
    p.add_argument("--lam", type=non_negative_float, default=None,
                   help="regularisation (default 1e-10 for data in A; like sigma, it depends on the length "
                        "unit: x 0.28 in bohr)")
    p.add_argument("--use-energy-labels", action="store_true",
                   help="fit energies as well as forces (default: energies only set the offset)")
    p.add_argument("--sym", action="store_true",
                   help="sum the kernel over the molecule's permutational symmetries (methyl "
                        "rotors, ring flips; found from the bond graph, at most 64): more accurate "
                        "from few geometries, training and prediction cost x the group size")
    p.add_argument("--seed", type=non_negative_int, default=0, help="random seed for the split (default 0)")
    p.add_argument("--solver", choices=("analytic", "cg", "auto"), default="auto",
                   help="analytic: dense Cholesky; cg: matrix-free conjugate gradient for systems too "
                        "large to store; auto: analytic if its matrix fits (default)")
    p.add_argument("--cg-tol", type=relative_tolerance, default=1e-5,
                   help="cg: relative residual, below 1 (default 1e-5)")
    p.add_argument("--cg-max-iter", type=positive_int, default=10_000,
                   help="cg: iteration cap (default 10000)")
    p.add_argument("--preconditioner-points", type=positive_int, default=None,
                   help="cg: training points of the Nystrom preconditioner (default: where applying it "
                        "costs about a kernel product, 0.6 M D P / (3N)^2)")
    p.add_argument("--backend", choices=("cpu", "gpu", "auto"), default="cpu",
                   help="where cg's kernel products and the validation predictions run (gpu needs "
                        "CuPy and a CUDA device; default cpu)")
    p.add_argument("--memory-limit-gb", type=positive_float, default=None,
                   help="memory budget, GB (default: 90%% of available memory): the analytic solver's "
                        "matrix must fit in it; cg's kernel coefficients (24 bytes x points^2 x permutations) and Nystrom "
                        "preconditioner too, which gets up to a sixth of it by default")
    p.add_argument("-o", "--output", required=True, help="model file to write (.h5)")
    p.add_argument("--json", action="store_true", help="print results as JSON on stdout")
    p.set_defaults(run=run, output_suffixes=(".h5", ".hdf5"), output_kind="models")


def run(args):
    from gdmlx.cli.common import load_molecule_data, log, parse_sigmas, print_json
    from gdmlx.splits import found_in, split_indices
    from gdmlx.units import hyperparameters_in

    _check_sigma_count(args.sigma)
    sigma_list = None if args.sigma is None else parse_sigmas(args.sigma)   # before the data: errors first
    ds = load_molecule_data(args.data)
    if args.use_energy_labels and ds.E is None:
        raise InputError(f"--use-energy-labels fits energies, and {args.data} holds none (no E): "
                         "leave the option out to train on forces")
    train_idx, valid_idx = split_indices(len(ds), args.n_train, args.n_valid, args.seed)
    copies = found_in(ds.R[valid_idx], ds.R[train_idx])
    if copies.any():                    # they would score a sigma by how well it fits its own data
        if copies.all():
            raise InputError(f"every validation geometry is a copy of a training geometry: {args.data} "
                             "holds duplicates; remove them")
        warnings.warn(f"{int(copies.sum())} of the {len(valid_idx)} validation geometries are copies of "
                      f"training geometries ({args.data} holds duplicates): they are left out of the "
                      "validation, which chooses sigma", UserWarning)
        valid_idx = valid_idx[~copies]
    sigma_default, lam_default = hyperparameters_in(ds.length_unit, 10.0, 1e-10)
    sigmas = [sigma_default] if sigma_list is None else sigma_list
    args.lam = lam_default if args.lam is None else args.lam
    results = []
    try:
        model, err = _scan_sigmas(args, ds, sigmas, train_idx, valid_idx, results)
    except KeyboardInterrupt as exc:       # hours of a sigma scan: say what the finished sigmas gave
        if args.json:                      # as md --json does: the work up to the stop (no model)
            print_json({"model": None, "stopped": "terminated (SIGTERM)" if isinstance(exc, Terminated) else
                        "interrupted", "n_train": len(train_idx), "n_valid": len(valid_idx), "grid": results,
                        "energy_unit": ds.energy_unit, "length_unit": ds.length_unit})
        else:
            log(_interrupted_scan(args.output, results))
        raise
    model.indices_ = {"train": train_idx, "valid": valid_idx}
    model.dataset_md5_ = ds.md5().decode()
    model.save(args.output)
    summary = {"model": args.output, "sigma": model.sigma, "n_train": len(train_idx),
               "n_permutations": len(model.perms_),
               "n_valid": len(valid_idx), "validation": err, "grid": results,
               "energy_unit": ds.energy_unit, "length_unit": ds.length_unit}
    if args.json:
        print_json(summary)
    else:
        sym = f", {len(model.perms_)} permutation(s) found (--sym)" if args.sym else ""
        log(f"wrote {args.output}: sigma {model.sigma:g}, {len(train_idx)} training "
            f"geometr{'y' if len(train_idx) == 1 else 'ies'}{sym}, validation force MAE {err['f_mae']:.4g} "
            f"{ds.energy_unit}/{ds.length_unit} on {len(valid_idx)} geometr{'y' if len(valid_idx) == 1 else 'ies'}")


def _scan_sigmas(args, ds, sigmas, train_idx, valid_idx, results):
    """Fit one model per sigma; ``(model, validation errors)`` of the one with the smallest
    validation force RMSE. Each sigma's errors are appended to ``results`` as it finishes."""
    from gdmlx.cg import NotConvergedError
    from gdmlx.cli.common import force_energy_errors, log
    from gdmlx.options import ComputeOptions
    from gdmlx.regressor import GDMLRegressor

    best = None
    for sigma in sigmas:
        t0 = time.perf_counter()
        options = ComputeOptions(memory_limit_gb=args.memory_limit_gb, verbose=not args.json, cg_tol=args.cg_tol,
                                 cg_max_iter=args.cg_max_iter,
                                 cg_checkpoint=f"{args.output}.cg-sigma{sigma:g}.npz", backend=args.backend,
                                 preconditioner_points=args.preconditioner_points)
        model = GDMLRegressor(sigma=sigma, lam=args.lam, use_energy_labels=args.use_energy_labels,
                              solver=args.solver, perms="auto" if args.sym else None, options=options)
        try:
            model.fit(ds.R[train_idx], ds.F[train_idx], None if ds.E is None else ds.E[train_idx], ds.z,
                      ds.energy_unit, ds.length_unit)
        except NotConvergedError as exc:    # the solve's last checkpoint stays beside the output
            if not os.path.exists(options.cg_checkpoint):
                raise
            raise NotConvergedError(f"{exc}. {options.cg_checkpoint} keeps the solve: this command with a larger "
                                    "--cg-max-iter goes on from it, with another --lam starts from its solution; "
                                    "remove it to start afresh") from None
        E_valid = None if ds.E is None else ds.E[valid_idx]
        err = force_energy_errors(model, ds.R[valid_idx], ds.F[valid_idx], E_valid)
        err.update(sigma=sigma, train_s=time.perf_counter() - t0, **model.fit_info_)
        results.append(err)
        if not args.json:
            log(f"sigma {sigma:g}: validation force MAE {err['f_mae']:.4g}, RMSE {err['f_rmse']:.4g} "
                f"{ds.energy_unit}/{ds.length_unit} ({err['train_s']:.1f} s)")
        if best is None or err["f_rmse"] < best[1]["f_rmse"]:
            best = (model, err)
    return best


def _interrupted_scan(output, results):
    """What an interrupted sigma scan leaves: no model file, and the best sigma finished."""
    text = f"gdmlx train: interrupted, {output} not written"
    if results:
        best = min(results, key=lambda err: err["f_rmse"])
        text += (f"; best of the {len(results)} finished sigma(s): {best['sigma']:g} (validation force "
                 f"RMSE {best['f_rmse']:.4g}): --sigma {best['sigma']:g} trains it alone")
    return text


MAX_SIGMAS = 1000


def _check_sigma_count(text):
    """Refuse a range 'start:step:stop' of more than MAX_SIGMAS sigmas (one training each):
    a step like 1e-300 made parse_sigmas build a list of 1e301 values, and the command hung
    without a word."""
    if text is None or ":" not in text:
        return
    try:
        start, step, stop = (float(v) for v in text.split(":"))
    except ValueError:
        return                                   # parse_sigmas says what is wrong
    if step > 0 and stop >= start and (stop - start) / step + 1 > MAX_SIGMAS:
        raise InputError(f"--sigma {text!r}: the range holds {(stop - start) / step + 1:.3g} sigmas, one "
                         f"training each; give at most {MAX_SIGMAS} (a larger step)")
