"""gdmlx info: what a model file holds."""


def add_parser(sub):
    p = sub.add_parser("info", help="describe a model file",
                       description="What a model file holds: molecule, units, training geometries, pair "
                                   "features, sigma, lam and permutations of each part; for an action model "
                                   "its stride and the force model it belongs to.")
    p.add_argument("model", help="model file (gdmlx .h5 or sGDML .npz)")
    p.add_argument("--json", action="store_true", help="print as JSON on stdout")
    p.set_defaults(run=run)


def describe(model):
    """Plain-data description of a fitted model."""
    from gdmlx.dataset import chemical_formula
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
        "energy_fit": main.energy_fit_, "train_hash": main.train_hash_,
        "keeps_training_data": getattr(model, "R_train_", None) is not None,
        "n_pairs_covered": int(covered.sum()), "n_pairs_total": len(model.z_) * (len(model.z_) - 1) // 2,
    }


def describe_action(action):
    """Plain-data description of a fitted :class:`gdmlx.action.ActionModel`."""
    from gdmlx.dataset import chemical_formula
    return {"kind": "action", "formula": chemical_formula(action.z_), "n_atoms": len(action.z_),
            "stride_fs": action.stride_fs, "sigma": action.sigma, "lam": action.lam,
            "n_train_pairs": action.expansion_.n_train // (2 * len(action.perms_)),   # copies: the
            "n_permutations": len(action.perms_), "force_model": action.force_model_}  # momentum flip, perms


def _is_action(path):
    from gdmlx.modelfile import open_model_file
    if str(path).lower().endswith(".npz"):
        return False
    with open_model_file(path) as f:
        return f.attrs.get("kind") == "action"


def run(args):
    from gdmlx.cli.common import print_json
    from gdmlx.modelfile import load_any_model
    if _is_action(args.model):
        from gdmlx.action import ActionModel
        d = describe_action(ActionModel.load(args.model))
        if args.json:
            print_json(d)
        else:
            print(f"{d['formula']} ({d['n_atoms']} atoms): learned long-stride map, stride {d['stride_fs']:g} fs, "
                  f"{d['n_train_pairs']} training pairs, sigma {d['sigma']:g}, lam {d['lam']:g}, "
                  f"{d['n_permutations']} permutation(s)")
            print(f"  force model {d['force_model'][:12] or 'not recorded'} (fingerprint; run it with "
                  f"gdmlx md FORCE_MODEL --action {args.model})")
        return
    d = describe(load_any_model(args.model))
    if args.json:
        print_json(d)
        return
    print(f"{d['formula']} ({d['n_atoms']} atoms), units {d['energy_unit']} and {d['length_unit']}")
    for p in d["parts"]:
        print(f"  {p['name'] + ' part' if p['name'] != 'model' else 'kernel expansion'}: {p['n_train']} "
              f"training geometries, {p['n_pairs']} pair features, sigma {p['sigma']:g}, lam {p['lam']:g}, "
              f"{p['n_permutations']} permutation(s)")
    print(f"  energy labels {'fitted' if d['use_energy_labels'] else 'offset only'}, "
          f"training data {'kept' if d['keeps_training_data'] else 'not stored'}")
    uncovered = d["n_pairs_total"] - d["n_pairs_covered"]
    if uncovered:
        print(f"  {d['n_pairs_covered']} of {d['n_pairs_total']} atom pairs in a descriptor; MD adds a "
              f"contact wall for the other {uncovered}")
