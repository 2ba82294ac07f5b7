"""gdmlx split: make a multiscale (fast local + slow global) model for multiple-time-step MD."""

from gdmlx.cli.arguments import non_negative_float, non_negative_int, positive_float, positive_int
from gdmlx.interrupts import said_when_stopped


def add_parser(sub):
    p = sub.add_parser("split", help="split a model into fast local and slow global parts (for --mts)",
                       description="Fit a fast GDML model on local pairs (atoms at most --max-hops bonds "
                                   "apart) and a slow global model on the forces it misses. From a "
                                   "model file, its training data, sigma and pairs are reused for the "
                                   "slow part; from a dataset, --n-train geometries are drawn.")
    p.add_argument("source", help="gdmlx model file (.h5) or dataset")
    p.add_argument("--n-train", type=positive_int, help="training geometries (dataset input only)")
    p.add_argument("--sigma", type=positive_float, default=None,
                   help="slow part's sigma (dataset input; default 10 for data in A, the same model's "
                        "value in other units)")
    p.add_argument("--lam", type=positive_float, default=None,
                   help="slow part's regularisation (dataset input; default 1e-10 for data in A, the "
                        "same model's value in other units)")
    p.add_argument("--seed", type=non_negative_int, default=None,
                   help="random seed for the split (dataset input; default 0)")
    p.add_argument("--sym", action="store_true",
                   help="dataset input: sum both parts' kernels over the molecule's permutational "
                        "symmetries (as 'gdmlx train --sym'; a model keeps its own)")
    p.add_argument("--max-hops", type=positive_int, default=2,
                   help="local pairs: at most this many bonds apart (default 2)")
    p.add_argument("--n-fast", type=positive_int, default=100,
                   help="training geometries of the fast part (default 100)")
    p.add_argument("--fast-sigma", type=positive_float, default=None,
                   help="fast part's sigma (default 4 for data in A, the same model's value in other units)")
    p.add_argument("--fast-lam", type=non_negative_float, default=None,
                   help="fast part's regularisation (default 1e-3 for data in A, x 0.28 in bohr; 1e-4 fits a "
                        "little better but "
                        "let some long runs of small molecules leave the training domain; use 1e-4 "
                        "for a large molecule whose slow part you will reduce; see the guide)")
    p.add_argument("--test-data", help="dataset to report test errors on (default: the source, when it "
                                       "is a dataset; none when it is a model)")
    p.add_argument("-o", "--output", required=True, help="multiscale model file to write (.h5)")
    p.add_argument("--json", action="store_true", help="print results as JSON on stdout")
    p.set_defaults(run=run, output_suffixes=(".h5", ".hdf5"), output_kind="models")


def parts_for(args, length_unit):
    """The fast and slow parts' templates: the options given, the defaults for data in
    ``length_unit`` (:func:`gdmlx.multiscale.default_parts`) otherwise."""
    from gdmlx.multiscale import default_parts
    fast, slow = default_parts(length_unit)
    fast.set_params(**{k: v for k, v in (("sigma", args.fast_sigma), ("lam", args.fast_lam)) if v is not None})
    slow.set_params(**{k: v for k, v in (("sigma", args.sigma), ("lam", args.lam)) if v is not None})
    return fast, slow.set_params(perms="auto" if args.sym else None)


def run(args):
    from gdmlx.cli.common import (conformed, force_energy_errors, load_molecule_data, log, print_json,
                                  warn_if_mostly_outside)
    from gdmlx.errors import InputError
    from gdmlx.file_kinds import file_kind, kind_error
    from gdmlx.modelfile import load_model
    from gdmlx.multiscale import MultiscaleModel
    from gdmlx.splits import split_indices, test_indices

    ms = MultiscaleModel(max_hops=args.max_hops, n_fast=args.n_fast)
    kind = file_kind(args.source)
    if kind == "sgdml":
        raise ValueError(f"{args.source} is an sGDML model, which stores no training data to split; "
                         "split its dataset instead (with --n-train)")
    if kind in ("action", "trajectory", "xyz trajectory"):
        raise kind_error(args.source, kind, "a model or dataset to split", InputError)
    if kind in ("model", "multiscale"):
        given = [f"--{name.replace('_', '-')}" for name in ("n_train", "sigma", "lam", "seed")
                 if getattr(args, name) is not None] + (["--sym"] if args.sym else [])
        if given:
            raise ValueError(f"{' '.join(given)}: for a dataset source only; a model is split with its own "
                             "training data, sigma and lam")
        base = load_model(args.source)
        if isinstance(base, MultiscaleModel):
            raise ValueError(f"{args.source} is already a multiscale model (split its source model)")
        if base.R_train_ is None:
            raise ValueError(f"{args.source} stores no training data to split")
        ms.set_params(fast=_showing_progress(parts_for(args, base.length_unit_)[0], args),
                      slow=_showing_progress(base, args))
        test_ds = (conformed(load_molecule_data(args.test_data), base, args.test_data)   # before the fit
                   if args.test_data else None)
        training = (base.R_train_, base.F_train_, base.E_train_, base.z_, base.energy_unit_, base.length_unit_)
        records = (base.indices_, base.dataset_md5_)
    else:
        ds = load_molecule_data(args.source)
        if args.n_train is None:
            raise ValueError("a dataset source needs --n-train")
        test_ds = _test_data_like(args.test_data, ds) if args.test_data else ds          # before the fit
        train, valid = split_indices(len(ds), args.n_train, None, args.seed or 0)
        fast, slow = parts_for(args, ds.length_unit)
        ms.set_params(fast=_showing_progress(fast, args), slow=_showing_progress(slow, args))
        training = (ds.R[train], ds.F[train], None if ds.E is None else ds.E[train], ds.z,
                    ds.energy_unit, ds.length_unit)
        records = ({"train": train, "valid": valid}, ds.md5().decode())
    with said_when_stopped(f"gdmlx split: stopped, {args.output} not written; the same command starts over"):
        ms.fit(*training)
    ms.slow_.indices_, ms.slow_.dataset_md5_ = records
    ms.save(args.output)
    out = {"output": args.output, "n_pairs_fast": len(ms.fast_.pairs_), "n_pairs_slow": len(ms.slow_.pairs_),
           "n_train_fast": len(ms.fast_.R_train_), "n_train_slow": len(ms.slow_.R_train_),
           "energy_unit": ms.energy_unit_, "length_unit": ms.length_unit_}
    if args.test_data:
        warn_if_mostly_outside(test_ds, ms, args.test_data)
    idx = [] if test_ds is None else test_indices(ms, test_ds, 1000)
    if len(idx):
        E = None if test_ds.E is None else test_ds.E[idx]
        out["test"] = force_energy_errors(ms, test_ds.R[idx], test_ds.F[idx], E)
    if args.json:
        print_json(out)
    else:
        log(f"wrote {args.output}: fast part {out['n_pairs_fast']} pairs x {out['n_train_fast']} geometries, "
            f"slow part {out['n_pairs_slow']} pairs x {out['n_train_slow']} geometries"
            + (f"; test force MAE {out['test']['f_mae']:.4g} {ms.energy_unit_}/{ms.length_unit_} on "
               f"{out['test']['n']} geometries" if "test" in out else
               "; no held-out geometries to test on" if test_ds is not None else ""))


def _showing_progress(part, args):
    """The part template ``part`` set to print its training stages to stderr (not with
    --json): the slow part trains as long as with gdmlx train, and split said nothing
    until both parts were done."""
    from dataclasses import replace

    from gdmlx.options import ComputeOptions
    return part.set_params(options=replace(part.options or ComputeOptions(), verbose=not args.json))


def _test_data_like(path, ds):
    """The --test-data of a split from dataset ``ds``, in its units and checked to be its
    molecule before anything is fitted."""
    from types import SimpleNamespace

    from gdmlx.cli.common import conformed, load_molecule_data
    like = SimpleNamespace(z_=ds.z, energy_unit_=ds.energy_unit, length_unit_=ds.length_unit)
    return conformed(load_molecule_data(path), like, path)
