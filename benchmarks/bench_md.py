#!/usr/bin/env python3
"""MD speed and energy conservation: gdmlx's compiled MD engine vs sGDML under ASE.

Both sides run the *same* model: an sGDML model file, trained by ``sgdml_runner.py`` and
imported into gdmlx with ``gdmlx.import_sgdml_model`` (the import is checked against
sGDML's own predictions). Run with the gdmlx environment's interpreter, e.g.::

    python benchmarks/bench_md.py --data /work/shared/data/aspirin.npz --molecule aspirin

What it does (each timed part in its own fresh process, with the thread variables
``OMP/OPENBLAS/MKL/NUMBA_NUM_THREADS`` = ``--threads`` set before numpy loads):

1. Split: ``perm = numpy.random.default_rng(--seed).permutation(n)``, train =
   ``perm[:n_train]``; the MD start geometry is frame ``perm[n_train]`` (a geometry
   not in the training set) unless ``--frame`` says otherwise.
2. Model: ``--model`` or ``<workdir>/sgdml_model_n<n_train>.npz``; trained with
   ``sgdml_runner.py`` (``--sgdml-threads``) if missing. Its ``idxs_train`` must equal
   the split.
3. Initial velocities: Maxwell-Boltzmann at ``--temperature`` from
   ``numpy.random.default_rng(--velocity-seed)`` (``ase.md.velocitydistribution``),
   then ``Stationary`` and ``ZeroRotation``; saved once as ``.npy`` in A/fs and used by
   every run.
4. Import check: sGDML (``GDMLPredict``, one process) and the imported gdmlx model predict
   ``--n-check`` test geometries and the start geometry; max |dE|, |dF|.
5. gdmlx: first call with an empty numba cache and again with a warm one (import,
   model import, ``Simulation`` construction, first 100 steps); engine speed
   (``Simulation.run``: warm-up, then the median of ``--repeats`` runs of
   ``--gdmlx-steps``) with ``--threads`` and with 2 numba/BLAS threads; gdmlx's ASE
   calculator under ASE ``VelocityVerlet`` (for reference); NVE runs of ``--nve-ps`` and
   ``--nve-long-ps`` (frames every ``--save-every`` steps in an HDF5 trajectory).
6. sGDML (``sgdml_md_runner.py``, sGDML environment): stock ``SGDMLCalculator`` and a
   minimal calculator around ``GDMLPredict(model, max_processes=1)``, both under ASE
   ``VelocityVerlet``; speed, and for the minimal one an NVE run of ``--nve-ps`` (shortened
   to fit in ``--sgdml-nve-budget-s`` at the measured speed).
7. Energy conservation: slope of a least-squares line through E_tot(t) (eV/ps and
   kcal/mol/ps) and the standard deviation of E_tot, on the same frames (every
   ``--save-every`` steps, t = 0 excluded) for both sides; the two trajectories are also
   compared directly while they have not yet diverged (chaos).
8. Prints markdown tables, writes raw numbers to ``benchmarks/results/md_<molecule>.json``.

CPU sharing: before each timed process the script waits until no process matches
``pgrep -f bench_vs_sgdml`` and runs the process under ``flock /tmp/gdmlx-bench.lock`` (do
not wrap this script itself in that flock). All scratch files go to ``--workdir``; the
numba cache to ``<workdir>/numba-cache`` (nothing is written into the package tree).
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
THREAD_VARS = ('OMP_NUM_THREADS', 'OPENBLAS_NUM_THREADS', 'MKL_NUM_THREADS',
               'NUMBA_NUM_THREADS', 'BLIS_NUM_THREADS', 'VECLIB_MAXIMUM_THREADS',
               'NUMEXPR_NUM_THREADS')
LOCK = '/tmp/gdmlx-bench.lock'
KCAL_MOL_EV = 0.0433641043  # overwritten from ase.units in main (kcal/mol in eV)


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--data', required=True, help='sGDML-format dataset .npz')
    p.add_argument('--molecule', help='name for the output file (default: dataset name)')
    p.add_argument('--n-train', type=int, default=500)
    p.add_argument('--seed', type=int, default=0, help='split seed')
    p.add_argument('--sigma', type=float, default=10.0)
    p.add_argument('--lam', type=float, default=1e-10)
    p.add_argument('--model', help='existing sGDML model .npz (trained on the same split)')
    p.add_argument('--frame', type=int, help='start geometry (default: perm[n_train])')
    p.add_argument('--temperature', type=float, default=500.0, help='initial T (K)')
    p.add_argument('--velocity-seed', type=int, default=0)
    p.add_argument('--dt-fs', type=float, default=0.5)
    p.add_argument('--threads', type=int, default=1)
    p.add_argument('--gdmlx-steps', type=int, default=20000)
    p.add_argument('--gdmlx-warmup', type=int, default=2000)
    p.add_argument('--ase-steps', type=int, default=2000,
                   help='timed steps per repeat for ASE with gdmlx/minimal sGDML calculators')
    p.add_argument('--stock-steps', type=int, default=300)
    p.add_argument('--repeats', type=int, default=3)
    p.add_argument('--save-every', type=int, default=10)
    p.add_argument('--nve-ps', type=float, default=10.0)
    p.add_argument('--nve-long-ps', type=float, default=50.0)
    p.add_argument('--sgdml-nve-budget-s', type=float, default=600.0)
    p.add_argument('--n-check', type=int, default=20)
    p.add_argument('--sgdml-python', default='/work/sgdml-venv/bin/python')
    p.add_argument('--sgdml-threads', type=int, default=2, help='threads for training')
    p.add_argument('--sgdml-max-memory-gb', type=int,
                   help='max_memory for sGDML training (a smaller value makes it use its '
                        'iterative solver)')
    p.add_argument('--sgdml-train-timeout', type=float, default=7200.0)
    p.add_argument('--workdir', help='scratch folder (default /tmp/gdmlx-md/<molecule>)')
    p.add_argument('--results-dir', default=os.path.join(HERE, 'results'))
    p.add_argument('--no-lock', action='store_true', help='for quick functional checks only')
    # internal: worker processes
    p.add_argument('--worker', help=argparse.SUPPRESS)
    p.add_argument('--spec', help=argparse.SUPPRESS)
    p.add_argument('--out', help=argparse.SUPPRESS)
    return p.parse_args(argv)


# --------------------------------------------------------------------------- helpers

def thread_env(n, extra=None):
    env = dict(os.environ)
    for v in THREAD_VARS:
        env[v] = str(n)
    env.update(extra or {})
    return env


def wait_for_colleague():
    """Block while a process matching 'bench_vs_sgdml' exists (it does not use the lock)."""
    waited = 0.0
    while subprocess.run(['pgrep', '-f', 'bench_vs_sgdml'], capture_output=True).returncode == 0:
        if waited == 0:
            print('  waiting for bench_vs_sgdml to finish ...', file=sys.stderr, flush=True)
        time.sleep(30)
        waited += 30
    return waited


def run_proc(cmd, env, args, timed=True):
    """Run ``cmd``; timed runs wait for the colleague's job and hold the lock."""
    if timed and not args.no_lock:
        wait_for_colleague()
        cmd = ['flock', LOCK] + cmd
    print('  $ ' + ' '.join(cmd), file=sys.stderr, flush=True)
    t0 = time.perf_counter()
    subprocess.run(cmd, env=env, check=True)
    return time.perf_counter() - t0


def run_worker(name, spec, args, threads, extra_env=None, timed=True):
    d = spec['workdir']
    spec_path = os.path.join(d, f'spec_{name}.json')
    out_path = os.path.join(d, f'out_{name}.json')
    with open(spec_path, 'w') as f:
        json.dump(spec, f)
    env = thread_env(threads, {'NUMBA_CACHE_DIR': spec['numba_cache'], **(extra_env or {})})
    run_proc([sys.executable, os.path.abspath(__file__), '--data', spec['data'],
              '--worker', name.split(':')[0], '--spec', spec_path, '--out', out_path],
             env, args, timed)
    with open(out_path) as f:
        return json.load(f)


def energy_stats(time_fs, epot, ekin, t_max_fs=None):
    """Drift (slope of a linear fit of E_tot vs t, with its block standard error) and std of
    E_tot, t = 0 excluded."""
    from gdmlx.md.simulation import drift_standard_error
    t = np.asarray(time_fs, float)
    e = np.asarray(epot, float) + np.asarray(ekin, float)
    keep = (t > 0) & (t <= (t_max_fs if t_max_fs else np.inf) + 1e-9)
    t, e = t[keep], e[keep]
    slope = np.polyfit(t / 1000.0, e, 1)[0]
    return {'simulated_ps': float(t[-1] / 1000.0), 'n_frames': int(len(t)),
            'drift_eV_per_ps': float(slope),
            'drift_se_eV_per_ps': drift_standard_error(t / 1000.0, e),
            'drift_kcal_mol_per_ps': float(slope / KCAL_MOL_EV),
            'etot_std_eV': float(e.std()),
            'etot_std_kcal_mol': float(e.std() / KCAL_MOL_EV),
            'etot_max_minus_min_eV': float(e.max() - e.min()),
            'etot_mean_eV': float(e.mean()),
            'mean_ekin_eV': float(np.mean(np.asarray(ekin)[keep]))}


# --------------------------------------------------------------------------- workers
# Each runs in a fresh process with the thread variables and NUMBA_CACHE_DIR set.

def _load_start(spec):
    with np.load(spec['data'], allow_pickle=True) as f:
        R0 = f['R'][spec['frame']].astype(float)
    return R0, np.load(spec['velocities'])


def worker_firstcall(spec):
    """Import, model import, Simulation construction and 100 + 100 steps, each timed."""
    t = {}
    t0 = time.perf_counter()
    import gdmlx
    from gdmlx.md import Simulation
    t['import_s'] = time.perf_counter() - t0
    R0, v0 = _load_start(spec)
    t1 = time.perf_counter()
    model = gdmlx.import_sgdml_model(spec['model'])
    t['load_model_s'] = time.perf_counter() - t1
    t1 = time.perf_counter()
    sim = Simulation(model, R0, dt_fs=spec['dt_fs'], velocities=v0, thermostat='nve',
                     temperature_K=spec['temperature'])
    t['construct_s'] = time.perf_counter() - t1
    t1 = time.perf_counter()
    sim.run(100, save_every=10, report_every=100, progress=False)
    t['first_run_100_s'] = time.perf_counter() - t1
    t1 = time.perf_counter()
    sim.run(100, save_every=10, report_every=100, progress=False)
    t['second_run_100_s'] = time.perf_counter() - t1
    t['construct_plus_first_run_s'] = t['construct_s'] + t['first_run_100_s']
    t['total_s'] = time.perf_counter() - t0
    return t


def worker_speed(spec):
    """Engine steps/s: one warm-up run, then ``repeats`` timed runs (the run's own timer)."""
    import gdmlx
    import numba
    from gdmlx.md import Simulation
    R0, v0 = _load_start(spec)
    model = gdmlx.import_sgdml_model(spec['model'])
    sim = Simulation(model, R0, dt_fs=spec['dt_fs'], velocities=v0, thermostat='nve',
                     temperature_K=spec['temperature'])
    kw = dict(save_every=spec['save_every'], report_every=1000, progress=False)
    sim.run(spec['warmup'], **kw)
    runs = []
    for _ in range(spec['repeats']):
        t0 = time.perf_counter()
        s = sim.run(spec['steps'], **kw)
        runs.append({'steps_per_s': s['steps_per_s'],
                     'steps_per_s_outer': spec['steps'] / (time.perf_counter() - t0)})
    rates = [r['steps_per_s'] for r in runs]
    return {'steps': spec['steps'], 'warmup': spec['warmup'], 'runs': runs,
            'steps_per_s_runs': rates, 'steps_per_s': float(np.median(rates)),
            'numba_threads': numba.config.NUMBA_NUM_THREADS,
            'save_every': spec['save_every'], 'report_every': 1000}


def worker_ase(spec):
    """gdmlx's GDMLCalculator (or, with spec['calc'] == 'null', a calculator that returns
    zero forces without computing anything: the cost of ASE's loop alone) under ASE
    VelocityVerlet."""
    import ase.units as units
    from ase import Atoms
    from ase.calculators.calculator import Calculator, all_changes
    from ase.md.verlet import VelocityVerlet
    import gdmlx

    class NullCalculator(Calculator):
        implemented_properties = ['energy', 'forces']

        def calculate(self, atoms=None, properties=('energy', 'forces'),
                      system_changes=all_changes):
            super().calculate(atoms, properties, system_changes)
            self.results = {'energy': 0.0, 'forces': np.zeros((len(self.atoms), 3))}

    R0, v0 = _load_start(spec)
    model = gdmlx.import_sgdml_model(spec['model'])
    atoms = Atoms(numbers=np.asarray(model.z_), positions=R0)
    atoms.set_velocities(v0 / units.fs)
    null = spec.get('calc') == 'null'
    atoms.calc = NullCalculator() if null else gdmlx.GDMLCalculator(model)
    dyn = VelocityVerlet(atoms, timestep=spec['dt_fs'] * units.fs)
    dyn.run(spec['warmup'])
    rates = []
    for _ in range(spec['repeats']):
        t0 = time.perf_counter()
        dyn.run(spec['steps'])
        rates.append(spec['steps'] / (time.perf_counter() - t0))
    return {'steps': spec['steps'], 'warmup': spec['warmup'],
            'steps_per_s_runs': rates, 'steps_per_s': float(np.median(rates))}


def worker_nve(spec):
    """NVE runs of each length in ``spec['lengths_ps']`` from the same start."""
    import gdmlx
    from gdmlx.md import Simulation, read_trajectory
    R0, v0 = _load_start(spec)
    model = gdmlx.import_sgdml_model(spec['model'])
    out = {}
    for ps in spec['lengths_ps']:
        n = int(round(ps * 1000 / spec['dt_fs']))
        sim = Simulation(model, R0, dt_fs=spec['dt_fs'], velocities=v0, thermostat='nve',
                         temperature_K=spec['temperature'])
        traj = os.path.join(spec['workdir'], f'gdmlx_nve_{ps:g}ps.h5')
        summ = sim.run(n, trajectory=traj, save_every=spec['save_every'], report_every=10000,
                       progress=False)
        tr = read_trajectory(traj)
        save = spec['save_every']
        pos = {str(c): tr['positions'][c // save - 1].tolist()
               for c in spec['checkpoints'] if c % save == 0 and c // save <= len(tr['time_fs'])}
        out[f'{ps:g}'] = {'steps': n, 'summary': summ, 'time_fs': tr['time_fs'].tolist(),
                          'epot_eV': tr['epot'].tolist(), 'ekin_eV': tr['ekin'].tolist(),
                          'positions_at_step': pos}
    return out


def worker_check(spec):
    """gdmlx predictions of the check geometries (imported model), model units."""
    import gdmlx
    model = gdmlx.import_sgdml_model(spec['model'])
    with np.load(spec['data'], allow_pickle=True) as f:
        R = f['R'][np.asarray(spec['check_idx'])]
    E, F = model.predict_energy_forces(R)
    return {'E': np.asarray(E).tolist(), 'F': np.asarray(F).tolist()}


WORKERS = {'firstcall': worker_firstcall, 'speed': worker_speed, 'ase': worker_ase,
           'nve': worker_nve, 'check': worker_check}


# --------------------------------------------------------------------------- main steps

def prepare(args, mol, workdir):
    with np.load(args.data, allow_pickle=True) as f:
        n, z, R = len(f['R']), f['z'], f['R']
        info = {'e_unit': str(f['e_unit']) if 'e_unit' in f.files else '?',
                'r_unit': str(f['r_unit']) if 'r_unit' in f.files else '?'}
    perm = np.random.default_rng(args.seed).permutation(n)
    train = perm[:args.n_train]
    frame = int(perm[args.n_train]) if args.frame is None else args.frame
    check_idx = perm[args.n_train:args.n_train + args.n_check].tolist() + [frame]
    np.save(os.path.join(workdir, 'train_idx.npy'), train)
    np.save(os.path.join(workdir, 'test_idx.npy'), perm[args.n_train:args.n_train + 200])
    np.save(os.path.join(workdir, 'check_idx.npy'), np.asarray(check_idx))

    model = args.model or os.path.join(workdir, f'sgdml_model_n{args.n_train}.npz')
    train_info = None
    if not os.path.exists(model):
        print(f'training the sGDML model ({args.n_train} points) ...', file=sys.stderr)
        tj = os.path.join(workdir, 'sgdml_train.json')
        cmd = [args.sgdml_python, os.path.join(HERE, 'sgdml_runner.py'), '--data', args.data,
               '--train-idx', os.path.join(workdir, 'train_idx.npy'),
               '--test-idx', os.path.join(workdir, 'test_idx.npy'),
               '--sigma', str(args.sigma), '--lam', str(args.lam), '--out-json', tj,
               '--out-model', model, '--threads', str(args.sgdml_threads),
               '--train-timeout', str(args.sgdml_train_timeout)]
        if args.sgdml_max_memory_gb:
            cmd += ['--max-memory-gb', str(args.sgdml_max_memory_gb)]
        run_proc(cmd, thread_env(args.sgdml_threads), args)
    tj = os.path.join(os.path.dirname(model), 'sgdml_train.json')
    if os.path.exists(tj):  # sgdml_runner.py's report of this model's training
        with open(tj) as f:
            train_info = json.load(f)
    with np.load(model, allow_pickle=True) as f:
        idx = np.asarray(f['idxs_train'])
        minfo = {'sig': float(f['sig']), 'lam': float(f['lam']), 'n_train': int(len(idx)),
                 'solver_name': str(f['solver_name']) if 'solver_name' in f.files else '?'}
    if not np.array_equal(idx, train):
        raise SystemExit(f'{model}: idxs_train differ from default_rng({args.seed}).permutation'
                         f'(n)[:{args.n_train}]')

    vpath = os.path.join(workdir, f'v0_{args.temperature:g}K_seed{args.velocity_seed}'
                                  f'_frame{frame}.npy')
    if not os.path.exists(vpath):
        import ase.units as units
        from ase import Atoms
        from ase.md.velocitydistribution import Stationary, ZeroRotation, thermalize_momenta
        atoms = Atoms(numbers=z, positions=R[frame])
        thermalize_momenta(atoms, args.temperature, rng=np.random.default_rng(args.velocity_seed))
        Stationary(atoms)
        ZeroRotation(atoms)
        np.save(vpath, atoms.get_velocities() * units.fs)  # A/fs
    return {'n_dataset': int(n), 'n_atoms': int(len(z)), 'frame': frame,
            'check_idx': check_idx, 'model': model, 'model_info': minfo,
            'train_info': train_info, 'velocities': vpath, 'units': info}


def t_initial(vpath, data, frame):
    import ase.units as units
    from ase import Atoms
    with np.load(data, allow_pickle=True) as f:
        z = f['z']
    v = np.load(vpath)
    atoms = Atoms(numbers=z, positions=np.zeros((len(z), 3)))
    atoms.set_velocities(v / units.fs)
    ndof = 3 * len(z) - 6
    return float(2 * atoms.get_kinetic_energy() / (ndof * units.kB))


def compare_trajectories(g, s, dt_fs):
    """E_tot and position differences of two NVE runs while they stay close."""
    tg = np.asarray(g['time_fs'])
    eg = np.asarray(g['epot_eV']) + np.asarray(g['ekin_eV'])
    ts = np.asarray(s['time_fs'])
    es = np.asarray(s['epot_eV']) + np.asarray(s['ekin_eV'])
    common, ig, is_ = np.intersect1d(np.round(tg, 6), np.round(ts, 6), return_indices=True)
    d = np.abs(eg[ig] - es[is_])
    out = {}
    for lim in (50.0, 500.0, 1000.0, 10000.0):
        sel = common <= lim
        if sel.any():
            out[f'max_abs_dEtot_eV_t<={lim:g}fs'] = float(d[sel].max())
    epot_g = np.asarray(g['epot_eV'])[ig]
    epot_s = np.asarray(s['epot_eV'])[is_]
    out['max_abs_dEpot_eV_first_100fs'] = float(np.abs(epot_g - epot_s)[common <= 100].max())
    for step, pg in g['positions_at_step'].items():
        if step in s['positions_at_step']:
            out[f'max_abs_dr_A_step{step}'] = float(
                np.abs(np.asarray(pg) - np.asarray(s['positions_at_step'][step])).max())
    return out


def provenance():
    """git commit and uncommitted changes of the gdmlx tree, versions (others may be
    editing gdmlx while this runs: recorded at the start and at the end)."""
    repo = os.path.dirname(HERE)

    def git(*a):
        r = subprocess.run(['git', '-C', repo, *a], capture_output=True, text=True)
        return r.stdout.strip()
    import gdmlx
    import numba
    import ase
    return {'git_head': git('rev-parse', 'HEAD'), 'git_head_subject': git('log', '-1', '--format=%s'),
            'git_dirty_gdmlx': git('status', '--porcelain', '--', 'gdmlx').splitlines(),
            'gdmlx': getattr(gdmlx, '__version__', '?'), 'numba': numba.__version__,
            'numpy': np.__version__, 'ase': ase.__version__, 'python': sys.version.split()[0],
            'time': time.strftime('%Y-%m-%d %H:%M:%S')}


def fmt(x, nd=1):
    return f'{x:,.{nd}f}' if isinstance(x, (int, float)) and np.isfinite(x) else '—'


def main(args):
    global KCAL_MOL_EV
    import ase.units
    KCAL_MOL_EV = ase.units.kcal / ase.units.mol
    with np.load(args.data, allow_pickle=True) as f:
        name = str(f['name']) if 'name' in f.files else None
    mol = args.molecule or (name or os.path.splitext(os.path.basename(args.data))[0]).lower()
    workdir = args.workdir or os.path.join('/tmp/gdmlx-md', mol)
    os.makedirs(workdir, exist_ok=True)
    os.makedirs(args.results_dir, exist_ok=True)
    t_start = time.time()
    prep = prepare(args, mol, workdir)
    print(f'model {prep["model"]}, start frame {prep["frame"]}', file=sys.stderr)
    numba_cache = os.path.join(workdir, 'numba-cache')
    spec = {'data': os.path.abspath(args.data), 'model': prep['model'], 'frame': prep['frame'],
            'velocities': prep['velocities'], 'dt_fs': args.dt_fs,
            'temperature': args.temperature, 'save_every': args.save_every,
            'workdir': workdir, 'numba_cache': numba_cache, 'check_idx': prep['check_idx'],
            'checkpoints': [100, 1000]}
    res = {'molecule': mol, 'args': {k: v for k, v in vars(args).items()
                                     if k not in ('worker', 'spec', 'out')},
           'command': ' '.join([os.path.basename(sys.executable)] + sys.argv),
           'started': time.strftime('%Y-%m-%d %H:%M:%S'), 'provenance_start': provenance(),
           **prep,
           'initial_temperature_K_3N-6': t_initial(prep['velocities'], args.data, prep['frame']),
           'thread_settings': {'md_runs': {v: str(args.threads) for v in THREAD_VARS},
                               'gdmlx_2thread_run': {v: '2' for v in THREAD_VARS},
                               'sgdml_training': args.sgdml_threads}}
    sg_runner = os.path.join(HERE, 'sgdml_md_runner.py')
    common_sg = ['--model', prep['model'], '--data', spec['data'], '--frame', str(prep['frame']),
                 '--velocities', prep['velocities'], '--dt-fs', str(args.dt_fs),
                 '--threads', str(args.threads), '--save-every', str(args.save_every)]

    # --- 1. import check (quick, untimed) --------------------------------------------
    sg_pred = os.path.join(workdir, 'sgdml_check.npz')
    run_proc([args.sgdml_python, sg_runner, 'predict', '--model', prep['model'], '--data',
              spec['data'], '--idx', os.path.join(workdir, 'check_idx.npy'), '--threads',
              str(args.threads), '--out', sg_pred], thread_env(args.threads), args, timed=False)
    gx = run_worker('check', spec, args, args.threads, timed=False)
    with np.load(sg_pred) as f:
        Es, Fs = f['E'], f['F']
    res['import_check'] = {
        'n_geometries': len(prep['check_idx']),
        'max_abs_dE_kcal_mol': float(np.abs(np.asarray(gx['E']) - Es).max()),
        'max_abs_dF_kcal_mol_A': float(np.abs(np.asarray(gx['F']) - Fs).max()),
        'max_abs_F_kcal_mol_A': float(np.abs(Fs).max())}
    print('import check: ' + json.dumps(res['import_check']), file=sys.stderr)

    # --- 2. gdmlx first call (cold and warm numba cache) ------------------------------
    cold = tempfile.mkdtemp(prefix='numba-cold-', dir=workdir)
    fc = {}
    for label in ('cold', 'warm'):
        fc[label] = run_worker(f'firstcall:{label}', spec, args, args.threads,
                               {'NUMBA_CACHE_DIR': cold})
    shutil.rmtree(cold, ignore_errors=True)
    res['gdmlx_firstcall'] = fc

    # --- 3. speeds --------------------------------------------------------------------
    sp = dict(spec, steps=args.gdmlx_steps, warmup=args.gdmlx_warmup, repeats=args.repeats)
    res['gdmlx_engine'] = run_worker('speed:1', sp, args, args.threads)
    if args.threads != 2:
        res['gdmlx_engine_2threads'] = run_worker('speed:2', sp, args, 2)
    sa = dict(spec, steps=args.ase_steps, warmup=200, repeats=args.repeats)
    res['gdmlx_ase'] = run_worker('ase', sa, args, args.threads)
    res['ase_null'] = run_worker('ase:null', dict(sa, calc='null'), args, args.threads)

    sg = {}
    for calc, steps, nve in (('minimal', args.ase_steps, args.nve_ps), ('stock', args.stock_steps, 0)):
        out = os.path.join(workdir, f'sgdml_md_{calc}.json')
        cmd = [args.sgdml_python, sg_runner, 'md', '--calc', calc, *common_sg,
               '--warmup', '50', '--steps', str(steps), '--repeats', str(args.repeats),
               '--nve-steps', str(int(round(nve * 1000 / args.dt_fs))),
               '--nve-budget-s', str(args.sgdml_nve_budget_s), '--checkpoints', '100,1000',
               '--out-json', out]
        run_proc(cmd, thread_env(args.threads), args)
        with open(out) as f:
            sg[calc] = json.load(f)
    res['sgdml_minimal'] = {k: v for k, v in sg['minimal'].items() if k != 'nve'}
    res['sgdml_stock'] = {k: v for k, v in sg['stock'].items() if k != 'nve'}

    # --- 4. NVE -----------------------------------------------------------------------
    nv = dict(spec, lengths_ps=[args.nve_ps, args.nve_long_ps])
    g_nve = run_worker('nve', nv, args, args.threads)
    s_nve = sg['minimal'].get('nve')
    drift = {}
    for key, run in g_nve.items():
        drift[f'gdmlx engine, {key} ps'] = {
            **energy_stats(run['time_fs'], run['epot_eV'], run['ekin_eV']),
            'summary_from_run': run['summary'],
            'etot_every_100fs_eV': _every(run, 100.0)}
    if s_nve:
        drift[f'ASE VelocityVerlet + minimal sGDML calculator, {s_nve["steps"] * args.dt_fs / 1000:g} ps'] = {
            **energy_stats(s_nve['time_fs'], s_nve['epot_eV'], s_nve['ekin_eV']),
            'steps_per_s': s_nve['steps_per_s'], 'etot_every_100fs_eV': _every(s_nve, 100.0)}
        t_cmp = s_nve['time_fs'][-1]
        g10 = g_nve[f'{args.nve_ps:g}']
        drift[f'gdmlx engine, first {t_cmp / 1000:g} ps (same span as ASE)'] = energy_stats(
            g10['time_fs'], g10['epot_eV'], g10['ekin_eV'], t_max_fs=t_cmp)
        res['trajectory_agreement'] = compare_trajectories(g10, s_nve, args.dt_fs)
    res['nve'] = drift

    # --- 5. tables --------------------------------------------------------------------
    eng = res['gdmlx_engine']['steps_per_s']
    rows = [(f'gdmlx engine `Simulation.run` ({args.threads} thread)', eng)]
    if 'gdmlx_engine_2threads' in res:
        rows.append(('gdmlx engine `Simulation.run` (2 numba/BLAS threads)',
                     res['gdmlx_engine_2threads']['steps_per_s']))
    rows += [('ASE VelocityVerlet + gdmlx `GDMLCalculator`', res['gdmlx_ase']['steps_per_s']),
             ('ASE VelocityVerlet + minimal sGDML calculator (`GDMLPredict`, 1 process)',
              res['sgdml_minimal']['speed']['steps_per_s']),
             (f'ASE VelocityVerlet + stock `SGDMLCalculator` ({_stock_desc(res)})',
              res['sgdml_stock']['speed']['steps_per_s'])]
    if 'ase_null' in res:
        rows.append(('ASE VelocityVerlet + null calculator (zero forces, no work: ASE floor)',
                     res['ase_null']['steps_per_s']))
    t1 = ['| set-up | steps/s | ns/day (0.5 fs) | gdmlx engine / set-up |', '|---|---|---|---|']
    for label, r in rows:
        t1.append(f'| {label} | {fmt(r)} | {fmt(r * args.dt_fs * 86400 / 1e6, 2)} | {fmt(eng / r, 1)} |')
    cold, warm = res['gdmlx_firstcall']['cold'], res['gdmlx_firstcall']['warm']
    t1 += ['', '| gdmlx start-up | cold numba cache (s) | warm cache (s) |', '|---|---|---|']
    for k, lab in (('import_s', 'import gdmlx + gdmlx.md'), ('load_model_s', 'import_sgdml_model'),
                   ('construct_s', 'Simulation(...)'), ('first_run_100_s', 'first run(100)'),
                   ('construct_plus_first_run_s', 'Simulation + first run'),
                   ('second_run_100_s', 'second run(100)')):
        t1.append(f'| {lab} | {cold[k]:.2f} | {warm[k]:.3f} |')
    t2 = ['| run | ps | drift (eV/ps) | drift std. error (eV/ps) | drift (kcal/mol/ps) | '
          'E_tot std (eV) | E_tot std (kcal/mol) |', '|---|---|---|---|---|---|---|']
    for label, d in drift.items():
        t2.append(f'| {label} | {d["simulated_ps"]:g} | {d["drift_eV_per_ps"]:.2e} | '
                  f'{d["drift_se_eV_per_ps"]:.1e} | '
                  f'{d["drift_kcal_mol_per_ps"]:.2e} | {d["etot_std_eV"]:.2e} | '
                  f'{d["etot_std_kcal_mol"]:.2e} |')
    res['table_speed_markdown'] = '\n'.join(t1)
    res['table_drift_markdown'] = '\n'.join(t2)
    res['provenance_end'] = provenance()
    res['total_runtime_s'] = time.time() - t_start
    out_json = os.path.join(args.results_dir, f'md_{mol}.json')
    with open(out_json, 'w') as f:
        json.dump(res, f, indent=1)
    print(f'\n## {mol}: MD speed (dt = {args.dt_fs} fs, {args.threads} thread unless noted)\n')
    print(res['table_speed_markdown'])
    print(f'\n## {mol}: NVE energy conservation (T0 = {args.temperature:g} K, dt = {args.dt_fs} fs)\n')
    print(res['table_drift_markdown'])
    print('\nimport check: ' + json.dumps(res['import_check']))
    if 'trajectory_agreement' in res:
        print('trajectory agreement: ' + json.dumps(res['trajectory_agreement']))
    print(f'\nwrote {out_json}')
    return 0


def _every(run, dt_fs):
    t = np.asarray(run['time_fs'])
    e = np.asarray(run['epot_eV']) + np.asarray(run['ekin_eV'])
    sel = np.isclose(np.mod(t, dt_fs), 0) & (t > 0)
    return {'time_fs': t[sel].tolist(), 'etot_eV': e[sel].tolist()}


def _stock_desc(res):
    c = res['sgdml_stock'].get('calculator', {})
    n = c.get('num_workers', '?')
    how = 'in-process' if n == 0 else f'{n} pool workers'
    return f"default `GDMLPredict`; `prepare_parallel` chose {how}"


if __name__ == '__main__':
    ARGS = parse_args()
    if ARGS.worker:
        result = WORKERS[ARGS.worker](json.load(open(ARGS.spec)))
        with open(ARGS.out, 'w') as fh:
            json.dump(result, fh)
        sys.exit(0)
    sys.exit(main(ARGS))
