"""gdmlx test: errors of a model on geometries it was not trained on."""

from gdmlx.cli.arguments import non_negative_int, positive_int


def add_parser(sub):
    p = sub.add_parser("test", help="energy and force errors on held-out geometries",
                       description="Energy and force MAE/RMSE of a model on a dataset. If the model "
                                   "was trained on this dataset (same fingerprint), its training and "
                                   "validation geometries are left out; on any dataset, geometries "
                                   "equal to one of its training geometries (for an sGDML model: "
                                   "with the same descriptor) are left out.")
    p.add_argument("model", help="model file (gdmlx .h5 or sGDML .npz)")
    p.add_argument("data", help="dataset file")
    p.add_argument("--n-test", type=positive_int, default=None, help="test on at most this many geometries")
    p.add_argument("--seed", type=non_negative_int, default=0, help="random seed for picking --n-test geometries (default 0)")
    p.add_argument("--json", action="store_true", help="print results as JSON on stdout")
    p.set_defaults(run=run)


def run(args):
    from gdmlx.cli.common import energy_errors_text, force_energy_errors, load_molecule_data, log, print_json
    from gdmlx.modelfile import load_any_model
    from gdmlx.splits import test_indices

    model = load_any_model(args.model)
    ds = load_molecule_data(args.data, model)
    idx = test_indices(model, ds, args.n_test, args.seed)
    if len(idx) == 0:
        raise ValueError("no geometries left to test on: all were used for training or validation")
    err = force_energy_errors(model, ds.R[idx], ds.F[idx], None if ds.E is None else ds.E[idx])
    err.update(energy_unit=model.energy_unit_, length_unit=model.length_unit_)
    if args.json:
        print_json(err)
    else:
        f_unit = f"{model.energy_unit_}/{model.length_unit_}"
        log(f"{err['n']} test geometr{'y' if err['n'] == 1 else 'ies'}: force MAE {err['f_mae']:.4g} "
            f"RMSE {err['f_rmse']:.4g} {f_unit}"
            + energy_errors_text(err, model.energy_unit_))
