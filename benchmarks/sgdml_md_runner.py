#!/usr/bin/env python3
"""sGDML side of the MD benchmark (``bench_md.py``): ASE velocity Verlet with sGDML forces.

Run with the interpreter of the *separate* sGDML environment (imports only sgdml, ase,
numpy and the standard library), e.g.::

    /work/sgdml-venv/bin/python benchmarks/sgdml_md_runner.py md \\
        --model model.npz --data aspirin.npz --frame 1234 --velocities v.npy \\
        --calc minimal --threads 1 --steps 2000 --repeats 3 --nve-steps 20000 \\
        --out-json out.json

Sub-commands:

``md``
    Start geometry = ``R[frame]`` of the dataset, initial velocities from a ``.npy``
    (N, 3) in A/fs (converted to ASE units by dividing by ``ase.units.fs``), ASE
    ``VelocityVerlet`` at ``--dt-fs``. Calculators (``--calc``):

    * ``stock``: sGDML's own ``sgdml.intf.ase_calc.SGDMLCalculator(model_path)``, i.e.
      ``GDMLPredict(model)`` with sGDML's defaults (``max_processes`` = all cores) tuned by
      ``prepare_parallel(n_bulk=1)``; the chosen workers/chunk size are recorded.
    * ``minimal``: the smallest ASE calculator around ``GDMLPredict(model, max_processes=1)``
      (no worker pool), kcal/mol -> eV and kcal/mol/A -> eV/A with ``ase.units``.

    Speed: ``--warmup`` untimed steps, then ``--repeats`` timed ``dyn.run(--steps)`` calls
    (no observers attached), steps/s of each. With ``--nve-steps`` > 0 a separate NVE run
    from the same start records t, E_pot, E_kin every ``--save-every`` steps (an ASE
    observer) and positions at ``--checkpoints`` steps; it is timed too (observer included).

``predict``
    Energies and forces of dataset frames ``--idx`` with ``GDMLPredict(model,
    max_processes=1)`` in the model's units, to an ``.npz`` (for the import check).
"""

import argparse
import os
import sys

THREAD_VARS = ('OMP_NUM_THREADS', 'OPENBLAS_NUM_THREADS', 'MKL_NUM_THREADS',
               'BLIS_NUM_THREADS', 'VECLIB_MAXIMUM_THREADS', 'NUMEXPR_NUM_THREADS')


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    sub = p.add_subparsers(dest='cmd', required=True)
    md = sub.add_parser('md')
    md.add_argument('--model', required=True, help='sGDML model .npz')
    md.add_argument('--data', required=True, help='sGDML dataset .npz (start geometry)')
    md.add_argument('--frame', type=int, required=True, help='index of the start geometry')
    md.add_argument('--velocities', required=True, help='.npy (N, 3) initial velocities, A/fs')
    md.add_argument('--calc', choices=('stock', 'minimal'), required=True)
    md.add_argument('--dt-fs', type=float, default=0.5)
    md.add_argument('--warmup', type=int, default=50)
    md.add_argument('--steps', type=int, default=2000, help='timed steps per repeat')
    md.add_argument('--repeats', type=int, default=3)
    md.add_argument('--nve-steps', type=int, default=0, help='steps of the recorded NVE run')
    md.add_argument('--nve-budget-s', type=float, default=None,
                    help='shorten the NVE run to what fits in this many seconds at the '
                         'measured speed (a multiple of --save-every)')
    md.add_argument('--save-every', type=int, default=10)
    md.add_argument('--checkpoints', default='100,1000',
                    help='comma-separated steps at which the NVE run records positions')
    md.add_argument('--threads', type=int, default=None)
    md.add_argument('--out-json', required=True)
    pr = sub.add_parser('predict')
    pr.add_argument('--model', required=True)
    pr.add_argument('--data', required=True)
    pr.add_argument('--idx', required=True, help='.npy with dataset indices')
    pr.add_argument('--threads', type=int, default=None)
    pr.add_argument('--out', required=True, help='.npz with E (n,), F (n, N, 3)')
    return p.parse_args(argv)


ARGS = parse_args()
if ARGS.threads is not None:
    for _v in THREAD_VARS:
        os.environ[_v] = str(ARGS.threads)

import json  # noqa: E402
import logging  # noqa: E402
import platform  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402
import ase  # noqa: E402
import ase.units as units  # noqa: E402
from ase import Atoms  # noqa: E402
from ase.calculators.calculator import Calculator, all_changes  # noqa: E402
from ase.md.verlet import VelocityVerlet  # noqa: E402

import sgdml  # noqa: E402
from sgdml.predict import GDMLPredict  # noqa: E402

KCAL_MOL = units.kcal / units.mol  # kcal/mol in eV


class MinimalSGDMLCalculator(Calculator):
    """The smallest ASE calculator around a single-process ``GDMLPredict``.

    The model is assumed to use kcal/mol and Angstrom (as the MD17 models do).
    """

    implemented_properties = ['energy', 'forces']

    def __init__(self, model, **kwargs):
        super().__init__(**kwargs)
        self.gdml = GDMLPredict(model, max_processes=1, log_level=logging.WARNING)

    def calculate(self, atoms=None, properties=('energy', 'forces'),
                  system_changes=all_changes):
        super().calculate(atoms, properties, system_changes)
        e, f = self.gdml.predict(self.atoms.positions.reshape(1, -1))
        self.results = {'energy': float(e[0]) * KCAL_MOL,
                        'forces': f.reshape(-1, 3) * KCAL_MOL}


def load_model(path):
    with np.load(path, allow_pickle=True) as f:
        return {k: f[k] for k in f.files}


def make_calculator(kind, model_path):
    """(calculator, info dict, construction seconds)."""
    t0 = time.perf_counter()
    if kind == 'stock':
        from sgdml.intf.ase_calc import SGDMLCalculator
        calc = SGDMLCalculator(model_path)
        gp = calc.gdml_predict
        info = {'num_workers': int(gp.num_workers), 'chunk_size': int(gp.chunk_size),
                'bulk_mp': bool(gp.bulk_mp), 'max_processes': int(gp.max_processes)}
    else:
        calc = MinimalSGDMLCalculator(load_model(model_path))
        info = {'num_workers': int(calc.gdml.num_workers), 'max_processes': 1}
    return calc, info, time.perf_counter() - t0


def start_atoms(args, calc):
    with np.load(args.data, allow_pickle=True) as f:
        z, R = f['z'], f['R'][args.frame]
    atoms = Atoms(numbers=z, positions=R)
    v = np.load(args.velocities)
    atoms.set_velocities(v / units.fs)  # A/fs -> A per ASE time unit
    atoms.calc = calc
    return atoms


def cmd_md(args):
    out = {'calc': args.calc, 'threads': args.threads,
           'thread_env': {v: os.environ.get(v) for v in THREAD_VARS},
           'versions': {'sgdml': sgdml.__version__, 'ase': ase.__version__,
                        'numpy': np.__version__, 'python': platform.python_version()},
           'dt_fs': args.dt_fs, 'frame': args.frame}
    calc, info, t_build = make_calculator(args.calc, args.model)
    out['calculator'] = info
    out['t_construct_s'] = t_build

    # --- speed --------------------------------------------------------------
    atoms = start_atoms(args, calc)
    dyn = VelocityVerlet(atoms, timestep=args.dt_fs * units.fs)
    t0 = time.perf_counter()
    dyn.run(args.warmup)
    out['t_warmup_s'] = time.perf_counter() - t0
    rates = []
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        dyn.run(args.steps)
        rates.append(args.steps / (time.perf_counter() - t0))
        print(f'{args.calc}: {rates[-1]:.1f} steps/s', file=sys.stderr, flush=True)
    out['speed'] = {'warmup_steps': args.warmup, 'steps': args.steps,
                    'steps_per_s_runs': rates,
                    'steps_per_s': float(np.median(rates))}

    # --- recorded NVE run ---------------------------------------------------
    n_nve = args.nve_steps
    if args.nve_budget_s:
        fit = int(out['speed']['steps_per_s'] * args.nve_budget_s) // args.save_every
        n_nve = min(n_nve, fit * args.save_every)
    if n_nve > 0:
        atoms = start_atoms(args, calc)
        dyn = VelocityVerlet(atoms, timestep=args.dt_fs * units.fs)
        checkpoints = sorted(int(c) for c in args.checkpoints.split(',') if c)
        rec = {'step': [], 'epot': [], 'ekin': []}
        pos = {}

        def observe():
            rec['step'].append(dyn.nsteps)
            rec['epot'].append(float(atoms.get_potential_energy()))
            rec['ekin'].append(float(atoms.get_kinetic_energy()))

        def snapshot():
            if dyn.nsteps in checkpoints:
                pos[str(dyn.nsteps)] = atoms.get_positions().tolist()

        dyn.attach(observe, interval=args.save_every)
        dyn.attach(snapshot, interval=1)
        t0 = time.perf_counter()
        dyn.run(n_nve)
        wall = time.perf_counter() - t0
        out['nve'] = {'steps': n_nve, 'steps_requested': args.nve_steps,
                      'save_every': args.save_every,
                      'wall_s': wall, 'steps_per_s': n_nve / wall,
                      'time_fs': [s * args.dt_fs for s in rec['step']],
                      'epot_eV': rec['epot'], 'ekin_eV': rec['ekin'],
                      'positions_at_step': pos}
    with open(args.out_json, 'w') as f:
        json.dump(out, f)
    return 0


def cmd_predict(args):
    model = load_model(args.model)
    with np.load(args.data, allow_pickle=True) as f:
        R = f['R'][np.load(args.idx)]
    gp = GDMLPredict(model, max_processes=1, log_level=logging.WARNING)
    E, F = gp.predict(R.reshape(len(R), -1))
    np.savez(args.out, E=E, F=F.reshape(R.shape))
    return 0


if __name__ == '__main__':
    logging.basicConfig(level=logging.WARNING)
    sys.exit(cmd_md(ARGS) if ARGS.cmd == 'md' else cmd_predict(ARGS))
