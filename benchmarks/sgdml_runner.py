#!/usr/bin/env python3
"""Train and benchmark an sGDML baseline model on fixed train/test indices.

This script is meant to be run with the interpreter of a *separate* virtual
environment that has sGDML installed (it imports only sgdml, numpy and the
standard library), e.g.::

    /work/sgdml-venv/bin/python benchmarks/sgdml_runner.py \
        --data ethanol.npz --train-idx train.npy --test-idx test.npy \
        --sigma 10 --lam 1e-10 --out-json out.json --out-model model.npz \
        --threads 1

What it does:

1. Trains a plain GDML model with sGDML's Python API (no symmetries, i.e. like
   the CLI's ``--gdml``; energies are used only for the integration constant:
   ``use_E=True, use_E_cstr=False``) on exactly the given training indices,
   with whichever solver sGDML itself picks: the analytic (Cholesky) solver
   when its memory estimate ``3*(3NM)^2*8`` bytes (+ small overhead) is below
   ``max_memory`` (default: total RAM in whole GiB, rounded down), otherwise
   its iterative solver (Nystroem-preconditioned CG).  ``solver_name`` in the
   JSON says which one ran.
2. Times kernel assembly, the linear solve and the whole ``train`` call, and
   records the peak resident memory of this process.  With ``--train-timeout``
   a training that takes longer is abandoned: the JSON then has
   ``status='timeout'`` and the times measured so far.
3. Saves the model ``.npz`` exactly as sGDML's CLI does
   (``np.savez_compressed(path, **model)``).
4. Predicts the test geometries with ``GDMLPredict(model, max_processes=1)``
   and with a default ``GDMLPredict(model)``: errors, single-geometry latency
   and batched throughput.
5. Writes all numbers to a JSON file.

Notes on sGDML conventions (see also notes/sgdml.md):

* ``sig`` is used as given (the Matern length scale; the kernel code uses
  ``sqrt(5) * |d| / sig``).  The CLI only accepts integer sigmas, but the
  Python API works with floats (only some of sGDML's printing/file naming
  formats ``sig`` as an integer, which we do not use).
* ``lam`` is added to the diagonal of the (label-scaled) kernel matrix;
  sGDML's default is ``lam=1e-10`` (``GDMLTrain.create_task``) and the CLI
  never changes it.
"""

import argparse
import os
import sys


def _parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--data', required=True, help='sGDML dataset .npz')
    p.add_argument('--train-idx', required=True, help='.npy with training indices')
    p.add_argument('--test-idx', required=True, help='.npy with test indices')
    p.add_argument('--sigma', type=float, required=True, help='kernel length scale')
    p.add_argument('--lam', type=float, default=1e-10,
                   help='regularisation (sGDML default: 1e-10)')
    p.add_argument('--sym', action='store_true',
                   help='train with permutational symmetries (sGDML default); else GDML')
    p.add_argument('--out-json', required=True)
    p.add_argument('--out-model', required=True, help='model .npz to write')
    p.add_argument('--threads', type=int, default=None,
                   help='BLAS/OpenMP threads (sets OMP_NUM_THREADS etc.); '
                        'default: leave the environment alone')
    p.add_argument('--train-processes', type=int, default=None,
                   help='max_processes for GDMLTrain (default: --threads if '
                        'given, else sGDML default = all cores)')
    p.add_argument('--n-latency', type=int, default=200,
                   help='timed single-geometry calls per setup')
    p.add_argument('--n-warmup', type=int, default=20,
                   help='untimed warm-up calls per setup')
    p.add_argument('--n-batch-reps', type=int, default=5,
                   help='repetitions of the batched (all test) prediction')
    p.add_argument('--max-memory-gb', type=int, default=None,
                   help='max_memory for GDMLTrain (GiB; sGDML default: total '
                        'RAM); a smaller value makes sGDML use its iterative '
                        'solver earlier (for testing that path)')
    p.add_argument('--train-timeout', type=float, default=None,
                   help='give up training after this many seconds and write '
                        'a JSON with status="timeout" (default: no limit)')
    p.add_argument('--assembly-only', action='store_true',
                   help='time the assembly of the full (analytic-solver) kernel '
                        'matrix, whatever solver sGDML would pick, and stop there '
                        '(--out-model is not written)')
    return p.parse_args(argv)


ARGS = _parse_args()

# Thread limits must be in the environment before numpy (and its BLAS) loads.
if ARGS.threads is not None:
    for _var in ('OMP_NUM_THREADS', 'OPENBLAS_NUM_THREADS', 'MKL_NUM_THREADS',
                 'BLIS_NUM_THREADS', 'VECLIB_MAXIMUM_THREADS',
                 'NUMEXPR_NUM_THREADS'):
        os.environ[_var] = str(ARGS.threads)

import json  # noqa: E402
import logging  # noqa: E402
import platform  # noqa: E402
import resource  # noqa: E402
import signal  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402
import scipy.linalg  # noqa: E402  (sgdml dependency; patched for timing)
import scipy.sparse.linalg  # noqa: E402  (CG of the iterative solver; patched)

import sgdml  # noqa: E402
from sgdml.predict import GDMLPredict  # noqa: E402
from sgdml.solvers.analytic import Analytic  # noqa: E402
from sgdml.solvers.iterative import Iterative  # noqa: E402
from sgdml.train import GDMLTrain  # noqa: E402
from sgdml.utils import io as sgdml_io  # noqa: E402


class _Timer:
    """Accumulates wall time spent in wrapped callables, by label."""

    def __init__(self):
        self.totals = {}

    def wrap(self, label, fn):
        def timed(*args, **kwargs):
            t0 = time.perf_counter()
            # Progress on stderr: if the process is killed (e.g. out of
            # memory) the log still says in which phase.
            print(f'[{time.strftime("%H:%M:%S")}] start {label}',
                  file=sys.stderr, flush=True)
            try:
                return fn(*args, **kwargs)
            finally:
                dt = time.perf_counter() - t0
                self.totals[label] = self.totals.get(label, 0.0) + dt
                print(f'[{time.strftime("%H:%M:%S")}] end {label} '
                      f'({dt:.1f} s, peak RSS {_peak_rss_mb()[0]:.0f} MB)',
                      file=sys.stderr, flush=True)
        return timed

    def get(self, label):
        return self.totals.get(label, 0.0)


def _peak_rss_mb():
    # On Linux ru_maxrss is in KiB.  Children are reported separately (sGDML
    # forks worker pools), we report the larger of the two.
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    kids = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return own / 1024.0, kids / 1024.0


def _load_dataset(path):
    with np.load(path, allow_pickle=True) as f:
        return {k: f[k] for k in f.files}


def _subset(dataset, idx):
    """A dataset dict holding only the geometries `idx` (in that order)."""
    sub = {'R': dataset['R'][idx], 'F': dataset['F'][idx], 'E': dataset['E'][idx],
           'z': dataset['z']}
    for key in ('name', 'theory', 'r_unit', 'e_unit', 'type'):
        if key in dataset:
            sub[key] = dataset[key]
    sub['md5'] = sgdml_io.dataset_md5(sub)
    return sub


def make_task(gdml_train, dataset, train_idx, sigma, lam, use_sym=False):
    """Build an sGDML training task on exactly `train_idx`.

    ``create_task`` samples its own (energy-stratified) training set; when the
    requested size equals the dataset size it returns ``arange(n)``
    unchanged.  So we hand it a dataset that holds only the chosen geometries
    and then point the bookkeeping entries back at the full dataset.
    """
    sub = _subset(dataset, train_idx)
    n = len(train_idx)
    task = gdml_train.create_task(
        sub, n, sub, 0, sig=sigma, lam=lam,
        use_sym=use_sym, use_E=True, use_E_cstr=False)

    # Sanity: the task holds our geometries in our order.
    assert np.array_equal(task['idxs_train'], np.arange(n))
    assert np.array_equal(task['R_train'], dataset['R'][train_idx])
    if not use_sym:
        assert task['perms'].shape == (1, dataset['R'].shape[1])  # identity only

    # Record the indices/fingerprint of the real dataset in the model.
    full_md5 = dataset['md5'] if 'md5' in dataset else sgdml_io.dataset_md5(dataset)
    task['idxs_train'] = np.asarray(train_idx)
    task['md5_train'] = full_md5
    task['md5_valid'] = full_md5
    return task


class TrainTimeout(Exception):
    """Raised (from SIGALRM) when training runs past --train-timeout."""


class _AssemblyDone(Exception):
    """Raised after the kernel matrix is assembled (--assembly-only)."""


def assembly_only(args, dataset, train_idx):
    """Time sGDML's assembly of the full kernel matrix (the analytic solver's, forced by a
    max_memory beyond the machine's), then stop before the solve; returns the JSON dict."""
    gdml_train = GDMLTrain(max_memory=100000, max_processes=args.threads)
    task = make_task(gdml_train, dataset, train_idx, args.sigma, args.lam, args.sym)
    assemble = gdml_train._assemble_kernel_mat
    out = {}

    def timed(*a, **kw):
        t0 = time.perf_counter()
        K = assemble(*a, **kw)
        out['t_assemble_s'] = time.perf_counter() - t0
        out['matrix_shape'] = list(K.shape)
        raise _AssemblyDone()

    gdml_train._assemble_kernel_mat = timed
    try:
        gdml_train.train(task)
    except _AssemblyDone:
        pass
    out['peak_rss_mb'] = max(_peak_rss_mb())
    return out


def _on_alarm(signum, frame):
    raise TrainTimeout()


def expected_solver(gdml_train, n_train, n_atoms):
    """The solver sGDML's ``train`` will pick, with the numbers it decides on.

    Mirrors train.py (sgdml 1.0.3, l.949-966): analytic iff the analytic
    estimate plus the overhead (labels, R, descriptors, Jacobians) is below
    ``max_memory`` GiB.
    """
    dim = 3 * n_atoms * n_train
    d = n_atoms * (n_atoms - 1) // 2
    est_analytic = Analytic.est_memory_requirement(n_train, n_atoms)
    overhead = 8 * (dim + n_train * n_atoms * 3 + n_train * d + n_train * d * 3)
    max_bytes = gdml_train._max_memory * 1024 ** 3
    info = {
        'max_memory_gib': int(gdml_train._max_memory),
        'est_bytes_analytic': int(est_analytic + overhead),
        'solver_expected': ('analytic' if est_analytic + overhead < max_bytes
                            else 'cg'),
    }
    if info['solver_expected'] == 'cg':
        k = Iterative.max_n_inducing_pts(n_train, n_atoms, max_bytes)
        info['n_inducing_pts_expected'] = int(k)
        info['est_bytes_iterative'] = int(
            Iterative.est_memory_requirement(n_train, k, n_atoms) + overhead)
    return info


def train(gdml_train, task, timer=None):
    """Train and time the phases; returns (model, timings dict).

    Works with both of sGDML's solvers.  Analytic: ``t_assemble_s`` is the
    full kernel matrix, ``t_solve_s`` the Cholesky (or LU) factorisation and
    solve.  Iterative (``cg``): ``t_assemble_s`` is all kernel-column
    assembly (the Nystroem columns for the leverage scores and for the
    preconditioner), ``t_solve_s`` everything else in the iterative solver
    (small Cholesky factorisations and the CG iterations, each a kernel-vector
    product computed by a training-set prediction); ``t_cg_s`` is the CG part.
    """
    timer = timer if timer is not None else _Timer()

    # Kernel assembly: Analytic.solve calls gdml_train._assemble_kernel_mat,
    # so an instance attribute shadows the method for this object only.
    gdml_train._assemble_kernel_mat = timer.wrap(
        'assemble', gdml_train._assemble_kernel_mat)

    # Solve: time the dense factorisation + back substitution that
    # Analytic.solve runs (Cholesky, or LU as its fallback), plus the whole
    # Analytic.solve (which also negates K and adds lam to its diagonal).
    # The iterative solver calls scipy.linalg.cho_factor too (Nystroem
    # factors): those calls are only counted as 'cholesky' for the analytic
    # solver's report.
    saved = (scipy.linalg.cho_factor, scipy.linalg.cho_solve,
             scipy.linalg.solve, Analytic.solve, Iterative.solve,
             Iterative._lev_scores, Iterative._init_precon_operator,
             scipy.sparse.linalg.cg)
    scipy.linalg.cho_factor = timer.wrap('cholesky', scipy.linalg.cho_factor)
    scipy.linalg.cho_solve = timer.wrap('cholesky', scipy.linalg.cho_solve)
    scipy.linalg.solve = timer.wrap('lu', scipy.linalg.solve)
    Analytic.solve = timer.wrap('analytic_solve', Analytic.solve)
    Iterative.solve = timer.wrap('iterative_solve', Iterative.solve)
    Iterative._lev_scores = timer.wrap('lev_scores', Iterative._lev_scores)
    Iterative._init_precon_operator = timer.wrap(
        'precon', Iterative._init_precon_operator)
    scipy.sparse.linalg.cg = timer.wrap('cg', scipy.sparse.linalg.cg)
    timer.totals['t0'] = time.perf_counter()
    try:
        t0 = time.perf_counter()
        model = gdml_train.train(task)
        t_train = time.perf_counter() - t0
    finally:
        (scipy.linalg.cho_factor, scipy.linalg.cho_solve,
         scipy.linalg.solve, Analytic.solve, Iterative.solve,
         Iterative._lev_scores, Iterative._init_precon_operator,
         scipy.sparse.linalg.cg) = saved
        del gdml_train._assemble_kernel_mat  # drop our instance-level wrapper

    solver_name = str(model.get('solver_name', ''))
    if 'iterative_solve' in timer.totals:
        t_solver = timer.get('iterative_solve')
        times = {
            't_assemble_s': timer.get('assemble'),
            't_solve_s': t_solver - timer.get('assemble'),
            'solve_method': 'cg',
            't_lev_scores_s': timer.get('lev_scores'),
            't_precon_s': timer.get('precon'),
            't_cg_s': timer.get('cg'),
            't_solve_total_s': t_solver - timer.get('assemble'),
            'solver_iters': int(model.get('solver_iters', -1)),
            'solver_resid': float(model.get('solver_resid', float('nan'))),
            'solver_tol': float(model.get('solver_tol', float('nan'))),
            'norm_y_train': float(model.get('norm_y_train', float('nan'))),
            'n_inducing_cols': int(len(model.get('inducing_pts_idxs', []))),
        }
        times['n_inducing_pts'] = times['n_inducing_cols'] // (
            3 * task['R_train'].shape[1])
        # CG stops at resid <= tol * |y| (converged) or gives up.
        times['solver_converged'] = bool(
            times['solver_resid'] <= times['solver_tol']
            * times['norm_y_train'] * (1 + 1e-9))
    else:
        t_solver = timer.get('analytic_solve')
        times = {
            't_assemble_s': timer.get('assemble'),
            # A failed Cholesky attempt is included: that time was spent too.
            't_solve_s': timer.get('cholesky') + timer.get('lu'),
            'solve_method': 'lu' if 'lu' in timer.totals else 'cholesky',
            # Analytic.solve minus assembly: also covers K -> -K and diag add.
            't_solve_total_s': t_solver - timer.get('assemble'),
        }
    times.update({
        'solver_name': solver_name,
        # Everything in train() outside the solver: descriptors, model
        # creation and the integration-constant fit (a training-set predict).
        't_other_s': t_train - t_solver,
        't_train_s': t_train,
    })
    return model, times


def _errors(pred, ref):
    err = (pred - ref).ravel()
    return float(np.mean(np.abs(err))), float(np.sqrt(np.mean(err ** 2)))


def bench_predict(predictor, R_test, n_warmup, n_latency, n_batch_reps):
    """Batched prediction (returns E, F) + single-geometry latency/throughput.

    Throughput: all test geometries in one ``predict`` call, median time of
    `n_batch_reps` calls.  Latency: median over `n_latency` one-geometry calls
    (cycling through the test set) after `n_warmup` untimed ones.
    """
    n_test = R_test.shape[0]
    flat = R_test.reshape(n_test, -1)

    predictor.predict(flat[:1])  # warm-up (pools, caches)
    t_batches = []
    for _ in range(max(1, n_batch_reps)):
        t0 = time.perf_counter()
        E, F = predictor.predict(flat)
        t_batches.append(time.perf_counter() - t0)
    t_batch = float(np.median(t_batches))

    for k in range(n_warmup):
        predictor.predict(flat[k % n_test:k % n_test + 1])
    lat = []
    for k in range(n_latency):
        i = k % n_test
        t0 = time.perf_counter()
        predictor.predict(flat[i:i + 1])
        lat.append(time.perf_counter() - t0)
    return E, F, {
        'latency_ms': 1e3 * float(np.median(lat)),
        'latency_p90_ms': 1e3 * float(np.percentile(lat, 90)),
        'throughput_per_s': n_test / t_batch,
        't_batch_s': t_batch,
    }


def main(args):
    logging.basicConfig(level=logging.WARNING)

    dataset = _load_dataset(args.data)
    train_idx = np.asarray(np.load(args.train_idx), dtype=int).ravel()
    test_idx = np.asarray(np.load(args.test_idx), dtype=int).ravel()
    if len(np.intersect1d(train_idx, test_idx)):
        print('warning: train and test indices overlap', file=sys.stderr)

    if args.assembly_only:
        with open(args.out_json, 'w') as fh:
            json.dump(assembly_only(args, dataset, train_idx), fh, indent=1)
        return 0

    max_proc = args.train_processes
    if max_proc is None:
        max_proc = args.threads  # None -> sGDML default (all cores)

    # --- train --------------------------------------------------------------
    # sGDML allows a single GDMLTrain instance per process: use it for both.
    gdml_train = GDMLTrain(max_memory=args.max_memory_gb,
                           max_processes=max_proc)
    task = make_task(gdml_train, dataset, train_idx, args.sigma, args.lam, args.sym)
    choice = expected_solver(gdml_train, len(train_idx),
                             int(dataset['z'].shape[0]))
    print('sGDML solver choice: ' + json.dumps(choice), file=sys.stderr,
          flush=True)
    timer = _Timer()
    if args.train_timeout:
        signal.signal(signal.SIGALRM, _on_alarm)
        signal.setitimer(signal.ITIMER_REAL, args.train_timeout)
    try:
        model, times = train(gdml_train, task, timer)
    except TrainTimeout:
        _write_timeout(args, choice, timer, max_proc, dataset, train_idx,
                       test_idx)
        return 3
    finally:
        if args.train_timeout:
            signal.setitimer(signal.ITIMER_REAL, 0)
    times.update(choice)
    del gdml_train
    rss_self_mb, rss_children_mb = _peak_rss_mb()

    np.savez_compressed(args.out_model, **model)

    # --- predict ------------------------------------------------------------
    R_test = dataset['R'][test_idx]
    E_ref = dataset['E'][test_idx].ravel()
    F_ref = dataset['F'][test_idx].reshape(len(test_idx), -1)

    pred_1 = GDMLPredict(model, max_processes=1, log_level=logging.WARNING)
    E1, F1, b1 = bench_predict(pred_1, R_test, args.n_warmup,
                               args.n_latency, args.n_batch_reps)
    del pred_1

    pred_d = GDMLPredict(model, log_level=logging.WARNING)
    Ed, Fd, bd = bench_predict(pred_d, R_test, args.n_warmup,
                               args.n_latency, args.n_batch_reps)
    n_workers_default = int(pred_d.num_workers)
    del pred_d

    e_mae, e_rmse = _errors(E1, E_ref)
    f_mae, f_rmse = _errors(F1, F_ref)
    max_diff_setups = float(max(np.max(np.abs(E1 - Ed)), np.max(np.abs(F1 - Fd))))

    out = {
        'e_mae': e_mae, 'e_rmse': e_rmse, 'f_mae': f_mae, 'f_rmse': f_rmse,
        **times,
        'peak_rss_mb': max(rss_self_mb, rss_children_mb),
        'peak_rss_self_mb': rss_self_mb,
        'peak_rss_children_mb': rss_children_mb,
        'latency_1proc_ms': b1['latency_ms'],
        'latency_default_ms': bd['latency_ms'],
        'latency_p90_1proc_ms': b1['latency_p90_ms'],
        'latency_p90_default_ms': bd['latency_p90_ms'],
        'throughput_1proc_per_s': b1['throughput_per_s'],
        'throughput_default_per_s': bd['throughput_per_s'],
        'default_num_workers': n_workers_default,
        'max_abs_diff_1proc_vs_default': max_diff_setups,
        'sigma': float(model['sig']), 'lam': float(model['lam']),
        'n_perms': int(len(model['perms'])),
        'n_train': int(len(train_idx)), 'n_test': int(len(test_idx)),
        'n_atoms': int(dataset['z'].shape[0]),
        'c': float(model['c']), 'std': float(model['std']),
        'sgdml_version': sgdml.__version__,
        'numpy_version': np.__version__,
        'threads': args.threads, 'train_max_processes': max_proc,
        'cpu_count': os.cpu_count(), 'python': platform.python_version(),
        'data': os.path.abspath(args.data),
        'units': {'e': str(dataset.get('e_unit', '')),
                  'r': str(dataset.get('r_unit', ''))},
    }
    out['status'] = 'ok'
    with open(args.out_json, 'w') as fh:
        json.dump(out, fh, indent=2)
    print(json.dumps(out, indent=2))
    return 0


def _write_timeout(args, choice, timer, max_proc, dataset, train_idx,
                   test_idx):
    """JSON for a training abandoned at --train-timeout; stop the workers."""
    import multiprocessing
    elapsed = time.perf_counter() - timer.totals.get('t0', time.perf_counter())
    rss_self_mb, rss_children_mb = _peak_rss_mb()
    out = {
        'status': 'timeout',
        'train_timeout_s': args.train_timeout,
        't_train_s': elapsed,
        'partial_times_s': {k: v for k, v in timer.totals.items() if k != 't0'},
        **choice,
        'solver_name': choice['solver_expected'],
        'peak_rss_mb': max(rss_self_mb, rss_children_mb),
        'peak_rss_self_mb': rss_self_mb,
        'peak_rss_children_mb': rss_children_mb,
        'sigma': args.sigma, 'lam': args.lam,
        'n_train': int(len(train_idx)), 'n_test': int(len(test_idx)),
        'n_atoms': int(dataset['z'].shape[0]),
        'sgdml_version': sgdml.__version__,
        'threads': args.threads, 'train_max_processes': max_proc,
        'cpu_count': os.cpu_count(),
        'data': os.path.abspath(args.data),
    }
    with open(args.out_json, 'w') as fh:
        json.dump(out, fh, indent=2)
    print(json.dumps(out, indent=2))
    # The alarm may have interrupted sGDML inside a worker pool: stop the
    # workers this process started, then leave without waiting on them.
    for child in multiprocessing.active_children():
        child.terminate()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(3)


if __name__ == '__main__':
    sys.exit(main(ARGS))
