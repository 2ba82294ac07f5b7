"""What the ASE calculator adds to a model's own one-geometry time.

Times, in alternating rounds (medians of per-call times over ``--calls`` calls, each call
on a slightly moved geometry so that ASE recalculates): ``atoms.get_forces()`` through
``gdmlx.GDMLCalculator``; the same with ASE's default change check (``compare_atoms``,
every array within 1e-15) in place of the calculator's exact check of positions, numbers
and pbc; and the model's compiled kernel alone (``predict_one``).

    OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 NUMBA_NUM_THREADS=1 \\
    python benchmarks/bench_calculator.py --data ../shared/data/ethanol.npz --n-train 300
"""

import argparse
import json
import time

import numpy as np
from ase import Atoms
from ase.calculators.calculator import Calculator

import gdmlx


def per_call_us(call, n):
    t0 = time.perf_counter()
    for i in range(n):
        call(i)
    return (time.perf_counter() - t0) / n * 1e6


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data", required=True)
    p.add_argument("--n-train", type=int, default=300)
    p.add_argument("--calls", type=int, default=2000)
    p.add_argument("--rounds", type=int, default=7)
    p.add_argument("--out", default=None, help="JSON file for the results")
    args = p.parse_args()
    ds = gdmlx.load_dataset(args.data)
    model = gdmlx.GDMLRegressor().fit(ds.R[:args.n_train], ds.F[:args.n_train], ds.E[:args.n_train], z=ds.z)
    part = model.force_parts()[0]
    q = ds.R[-1].copy()

    class ASEDefaultCheck(gdmlx.GDMLCalculator):
        check_state = Calculator.check_state

    def through(calc):
        atoms = Atoms(numbers=ds.z, positions=q, calculator=calc)

        def call(i):
            atoms.positions[0, 0] += 1e-9 if i % 2 else -1e-9
            atoms.get_forces()
        return call

    timings = {"calculator": through(gdmlx.GDMLCalculator(model)),
               "calculator with ASE's default check": through(ASEDefaultCheck(model)),
               "kernel alone": lambda i: part.predict_one(q)}
    for call in timings.values():                # compile and warm up
        call(0), call(1)
    rounds = {name: [] for name in timings}
    for _ in range(args.rounds):
        for name, call in timings.items():
            rounds[name].append(per_call_us(call, args.calls))
    result = {"data": args.data, "n_train": args.n_train, "pairs": len(model.pairs_),
              "median_us": {name: float(np.median(v)) for name, v in rounds.items()},
              "rounds_us": rounds}
    print(json.dumps(result["median_us"], indent=1))
    if args.out:
        with open(args.out, "w") as fh:
            json.dump(result, fh, indent=1)


if __name__ == "__main__":
    main()
