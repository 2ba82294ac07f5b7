"""gdmlx export: write a gdmlx model as an sGDML model file, for sGDML's own tools."""


def add_parser(sub):
    p = sub.add_parser("export", help="write a model as an sGDML model file (.npz)",
                       description="Write a one-part gdmlx model (all atom pairs) as an sGDML model file, "
                                   "which sGDML's GDMLPredict and ASE calculator read and predict the same "
                                   "numbers from. A model summed over permutations is written with its "
                                   "permuted copies as training points; energy-label coefficients become "
                                   "sGDML's alphas_E. Models on a reduced pair list and multiscale models "
                                   "have no sGDML form.")
    p.add_argument("model", help="gdmlx model (.h5)")
    p.add_argument("-o", "--output", required=True, help="sGDML model file (.npz)")
    p.add_argument("--json", action="store_true", help="print what was written as JSON on stdout")
    p.set_defaults(run=run, output_suffixes=(".npz",), output_kind="sGDML model files")


def run(args):
    import numpy as np

    from gdmlx.cli.common import log, print_json
    from gdmlx.dataset import chemical_formula
    from gdmlx.modelfile import load_any_model
    from gdmlx.sgdml_export import export_sgdml_model

    model = load_any_model(args.model)
    export_sgdml_model(model, args.output)
    exp = model.expansion_
    done = {"output": args.output, "formula": chemical_formula(model.z_), "n_atoms": len(model.z_),
            "n_train": exp.n_train, "sigma": exp.sigma, "energy_labels": bool(np.any(exp.a)),
            "energy_unit": model.energy_unit_, "length_unit": model.length_unit_}
    if args.json:
        print_json(done)
    else:
        log(f"wrote {args.output}: sGDML model of {done['formula']} ({done['n_atoms']} atoms), "
            f"{done['n_train']} training points, sigma {done['sigma']:g}, "
            f"units {done['energy_unit']} and {done['length_unit']}"
            + (", energy-label coefficients as alphas_E" if done["energy_labels"] else ""))
