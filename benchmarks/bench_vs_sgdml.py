#!/usr/bin/env python3
"""Benchmark gdmlx against sGDML on the same train/test split.

Run with the gdmlx environment's interpreter, e.g.::

    python benchmarks/bench_vs_sgdml.py --data /work/shared/data/ethanol.npz \\
        --n-train 500 --n-test 1000 --sigma 10 --lam 1e-10 --threads 2 --seed 0

What it does:

1. Draws the split: ``perm = numpy.random.default_rng(seed).permutation(n)``,
   train = ``perm[:n_train]``, test = ``perm[n_train:n_train + n_test]``
   (saved as .npy in a temporary folder).
2. sGDML side (skipped with ``--skip-sgdml``): runs ``sgdml_runner.py`` with
   the sGDML environment's interpreter (``--sgdml-python``) in its own
   process, on the same indices, sigma, lam and threads; sGDML picks its
   solver itself and the runner records which (``solver_name``).
3. gdmlx side: this script again (``--side gdmlx``) in a fresh process, so
   that thread limits are in place before numpy/numba load and peak RSS is
   this side's alone.  Before it, two ``--side firstcall`` processes measure
   import + fit on 5 points + one predict with an empty numba cache (compile)
   and again with the cache just written (cache load); the gdmlx side uses
   that same cache folder (so nothing is written into the package tree).
   The gdmlx side reports: ``fit_info_`` times and the whole ``fit`` wall
   time, peak RSS, test errors, one-geometry latency (public ``predict`` and
   the ``expansion_.predict_one`` kernel, median of ``--n-latency`` calls),
   batched throughput (median of 5 ``predict_energy_forces`` calls on the
   test set), and a roofline: DGEMM rate and copy bandwidth measured in the
   same process, against the kernels' flop/byte estimates.  If the sGDML
   model exists it also compares predictions and coefficients with it.
4. Prints a markdown table and writes all raw numbers to
   ``benchmarks/results/<dataset>_n<n_train>.json``.

Every child process gets ``OMP_NUM_THREADS``/``OPENBLAS_NUM_THREADS``/
``MKL_NUM_THREADS`` (and, for gdmlx, ``NUMBA_NUM_THREADS``) = ``--threads``.
Children raise their own OOM score, so that if memory runs out the kernel
kills the benchmark rather than anything else on the machine.
"""

import argparse
import os
import sys

THREAD_VARS = ('OMP_NUM_THREADS', 'OPENBLAS_NUM_THREADS', 'MKL_NUM_THREADS',
               'BLIS_NUM_THREADS', 'VECLIB_MAXIMUM_THREADS',
               'NUMEXPR_NUM_THREADS')
HERE = os.path.dirname(os.path.abspath(__file__))


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--data', help='sGDML-format dataset .npz (required unless --table-from)')
    p.add_argument('--n-train', type=int, default=500)
    p.add_argument('--n-test', type=int, default=1000)
    p.add_argument('--sigma', type=float, default=10.0)
    p.add_argument('--lam', type=float, default=1e-10)
    p.add_argument('--threads', type=int, default=2)
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--skip-sgdml', action='store_true')
    p.add_argument('--sgdml-python', default='/work/sgdml-venv/bin/python')
    p.add_argument('--sgdml-train-timeout', type=float, default=2400.0,
                   help='seconds after which sGDML training is abandoned and '
                        'recorded as a timeout (default 40 min)')
    p.add_argument('--sgdml-max-memory-gb', type=int, default=None,
                   help="passed to sGDML's GDMLTrain(max_memory=...) (GiB); default: "
                        "sGDML's own default (total RAM).  A smaller value makes sGDML pick "
                        "its iterative solver")
    p.add_argument('--gdmlx-fit-blas-threads', type=int, default=None,
                   help='limit BLAS threads (threadpoolctl) during the gdmlx fit only; '
                        'a workaround for the OpenBLAS 0.3.30 multi-threaded potrf crash '
                        'at n ~ 30000 (default: --threads)')
    p.add_argument('--tag', default='',
                   help='suffix for the results file: <dataset>_n<n_train><tag>.json')
    p.add_argument('--n-latency', type=int, default=500)
    p.add_argument('--n-batch-reps', type=int, default=5)
    p.add_argument('--results-dir', default=os.path.join(HERE, 'results'))
    p.add_argument('--table-from', metavar='JSON',
                   help='only print the table of an existing results file (and update '
                        'its table_markdown)')
    p.add_argument('--keep-tmp', action='store_true',
                   help='keep the temporary folder (indices, logs, models)')
    # internal: the child processes
    p.add_argument('--side', choices=('driver', 'gdmlx', 'firstcall'),
                   default='driver', help=argparse.SUPPRESS)
    p.add_argument('--train-idx', help=argparse.SUPPRESS)
    p.add_argument('--test-idx', help=argparse.SUPPRESS)
    p.add_argument('--out-json', help=argparse.SUPPRESS)
    p.add_argument('--sgdml-model', help=argparse.SUPPRESS)
    return p.parse_args(argv)


ARGS = parse_args()
if ARGS.side != 'driver':
    import faulthandler
    faulthandler.enable()  # a crash in compiled code still leaves a Python traceback
    # Before numpy, scipy or numba are imported.
    for _v in THREAD_VARS + ('NUMBA_NUM_THREADS',):
        os.environ[_v] = str(ARGS.threads)

import json  # noqa: E402
import platform  # noqa: E402
import resource  # noqa: E402
import shutil  # noqa: E402
import signal  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402


def _peak_rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # KiB on Linux


def _median_time(fn, reps):
    ts = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t0)
    return float(np.median(ts)), ts


def _load(path):
    with np.load(path, allow_pickle=False) as f:
        R = np.asarray(f['R'], dtype=np.float64)
        return R, np.asarray(f['F'], dtype=np.float64), \
            np.asarray(f['E'], dtype=np.float64).reshape(len(R)), np.asarray(f['z'])


def _errors(pred, ref):
    err = (np.asarray(pred) - np.asarray(ref)).ravel()
    return float(np.mean(np.abs(err))), float(np.sqrt(np.mean(err ** 2)))


# ---------------------------------------------------------------------------
# child: first call (import + tiny fit + one predict)
# ---------------------------------------------------------------------------

def _first_call(R, F, E, z, tr, te, sigma, lam):
    """Import gdmlx, fit on 5 training points, predict one geometry: times (s)."""
    t0 = time.perf_counter()
    import gdmlx
    t1 = time.perf_counter()
    tiny = gdmlx.GDMLRegressor(sigma=sigma, lam=lam).fit(
        R[tr[:5]], F[tr[:5]], E[tr[:5]], z=z)
    t2 = time.perf_counter()
    tiny.predict(R[te[0]])
    t3 = time.perf_counter()
    # untimed: 100 points take the internal-subspace solve (gdmlx.rigid), which 5 do not,
    # so that the timed fit below loads no compiled code
    gdmlx.GDMLRegressor(sigma=sigma, lam=lam).fit(R[tr[:100]], F[tr[:100]], E[tr[:100]], z=z)
    return {'t_first_call_s': t3 - t0, 't_import_s': t1 - t0,
            't_tiny_fit_s': t2 - t1, 't_tiny_predict_s': t3 - t2}


def firstcall_side(args):
    R, F, E, z = _load(args.data)
    tr, te = np.load(args.train_idx), np.load(args.test_idx)
    out = _first_call(R, F, E, z, tr, te, args.sigma, args.lam)
    out['numba_cache_dir'] = os.environ.get('NUMBA_CACHE_DIR')
    with open(args.out_json, 'w') as fh:
        json.dump(out, fh, indent=2)
    print(json.dumps(out))


# ---------------------------------------------------------------------------
# child: gdmlx side
# ---------------------------------------------------------------------------

def _cache_sizes():
    out = {}
    base = '/sys/devices/system/cpu/cpu0/cache'
    try:
        for d in sorted(os.listdir(base)):
            if not d.startswith('index'):
                continue
            rd = lambda k: open(os.path.join(base, d, k)).read().strip()  # noqa: E731
            if rd('type') in ('Data', 'Unified'):
                out[f"L{rd('level')}"] = rd('size')
    except OSError:
        pass
    return out


def _cpu_model():
    try:
        with open('/proc/cpuinfo') as fh:
            for line in fh:
                if line.startswith('model name'):
                    return line.split(':', 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def _git_state(repo):
    """Commit of the gdmlx checkout and whether gdmlx/ differs from it (the code measured)."""
    def git(*a):
        try:
            return subprocess.run(('git', '-C', repo) + a, capture_output=True, text=True,
                                  timeout=30).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            return None
    return {'commit': git('rev-parse', 'HEAD'),
            'gdmlx_dirty_files': (git('status', '--porcelain', '--', 'gdmlx') or '').splitlines()}


def roofline_machine(reps=5):
    """DGEMM GFLOP/s (2000^3 matmul) and copy bandwidth GB/s (200 MB, read+write)."""
    rng = np.random.default_rng(1)
    n = 2000
    a, b = rng.standard_normal((n, n)), rng.standard_normal((n, n))
    c = np.empty((n, n))
    np.matmul(a, b, out=c)  # warm-up
    t_mm, ts_mm = _median_time(lambda: np.matmul(a, b, out=c), reps)
    # one thread too: the one-geometry kernel runs on one core
    try:
        from threadpoolctl import threadpool_limits
        with threadpool_limits(limits=1, user_api='blas'):
            np.matmul(a, b, out=c)
            t_mm1, _ = _median_time(lambda: np.matmul(a, b, out=c), reps)
    except ImportError:
        t_mm1 = float('nan')
    del a, b, c
    src = np.full(25_000_000, 1.5)  # 200 MB
    dst = np.empty_like(src)
    np.copyto(dst, src)  # warm-up, faults the pages in
    t_cp, ts_cp = _median_time(lambda: np.copyto(dst, src), reps)
    nbytes = src.nbytes
    del src, dst
    return {
        'dgemm_n': n, 'dgemm_gflops': 2 * n ** 3 / t_mm / 1e9,
        'dgemm_times_s': ts_mm, 'dgemm_gflops_1thread': 2 * n ** 3 / t_mm1 / 1e9,
        'copy_bytes_array': nbytes, 'copy_gbs': 2 * nbytes / t_cp / 1e9,
        'copy_times_s': ts_cp,
    }


def gdmlx_side(args):
    R, F, E, z = _load(args.data)
    tr, te = np.load(args.train_idx), np.load(args.test_idx)
    out = {'threads': args.threads,
           'env': {k: os.environ.get(k) for k in THREAD_VARS + ('NUMBA_NUM_THREADS',
                                                                'NUMBA_CACHE_DIR')}}

    # --- first call: import + tiny fit + one predict (cache load or compile)
    out.update(_first_call(R, F, E, z, tr, te, args.sigma, args.lam))
    import gdmlx
    import numba
    import scipy
    out['versions'] = {'gdmlx': gdmlx.__version__, 'numpy': np.__version__,
                       'scipy': scipy.__version__, 'numba': numba.__version__,
                       'python': platform.python_version()}
    out['numba_threads'] = numba.get_num_threads()
    out['gdmlx_git'] = _git_state(os.path.dirname(os.path.dirname(os.path.abspath(gdmlx.__file__))))
    out['peak_rss_before_fit_mb'] = _peak_rss_mb()

    # --- fit
    R_tr, F_tr, E_tr = R[tr], F[tr], E[tr]
    R_te, F_te, E_te = R[te], F[te], E[te]
    model = gdmlx.GDMLRegressor(sigma=args.sigma, lam=args.lam)
    ctx = None
    if args.gdmlx_fit_blas_threads:
        from threadpoolctl import threadpool_limits
        ctx = threadpool_limits(limits=args.gdmlx_fit_blas_threads, user_api='blas')
        out['fit_blas_threads'] = args.gdmlx_fit_blas_threads
    t0 = time.perf_counter()
    model.fit(R_tr, F_tr, E_tr, z=z)
    out['t_fit_s'] = time.perf_counter() - t0
    if ctx is not None:
        ctx.restore_original_limits()
    out['fit_info'] = {k: (float(v) if isinstance(v, (int, float, np.number)) else
                           v if isinstance(v, (str, bool, type(None))) else repr(v))
                       for k, v in model.fit_info_.items()}
    out['t_assemble_s'] = float(model.fit_info_.get('t_assemble_s', float('nan')))
    out['t_solve_s'] = float(model.fit_info_.get('t_solve_s', float('nan')))
    out['energy_fit'] = {k: float(v) for k, v in model.energy_fit_.items()}
    out['peak_rss_fit_mb'] = _peak_rss_mb()
    exp = model.expansion_
    M, D = exp.X.shape
    out.update({'n_train': int(M), 'n_test': int(len(te)), 'n_atoms': int(R.shape[1]),
                'n_desc': int(D), 'c': exp.c})

    # --- test errors
    E_pred, F_pred = model.predict_energy_forces(R_te)
    out['e_mae'], out['e_rmse'] = _errors(E_pred, E_te)
    out['f_mae'], out['f_rmse'] = _errors(F_pred, F_te)

    # --- one-geometry latency: public API and kernel only
    n_te = len(te)
    for k in range(20):
        model.predict(R_te[k % n_te])
        exp.predict_one(R_te[k % n_te])
    for label, fn in (('api', model.predict), ('kernel', exp.predict_one)):
        lat = []
        for k in range(args.n_latency):
            Ri = R_te[k % n_te]
            t0 = time.perf_counter()
            fn(Ri)
            lat.append(time.perf_counter() - t0)
        out[f'latency_{label}_ms'] = 1e3 * float(np.median(lat))
        out[f'latency_{label}_p90_ms'] = 1e3 * float(np.percentile(lat, 90))
    # the single path agrees with the batched one
    Ek, Fk = exp.predict_one(R_te[0])
    out['max_abs_diff_one_vs_batch'] = float(max(abs(Ek - E_pred[0]),
                                                 np.max(np.abs(Fk - F_pred[0]))))

    # --- batched throughput
    model.predict_energy_forces(R_te)  # warm-up
    t_batch, ts = _median_time(lambda: model.predict_energy_forces(R_te),
                               args.n_batch_reps)
    out['t_batch_s'] = t_batch
    out['t_batch_all_s'] = ts
    out['throughput_per_s'] = n_te / t_batch
    out['peak_rss_mb'] = _peak_rss_mb()  # fit + prediction, before the roofline arrays

    # --- roofline
    mach = roofline_machine()
    mach['cpu'] = _cpu_model()
    mach['caches'] = _cache_sizes()
    t_k = out['latency_kernel_ms'] / 1e3
    one_bytes, one_flops = 2 * M * D * 8, 8 * M * D
    batch_flops = 6 * n_te * M * D
    out['roofline'] = {
        **mach,
        'one_bytes': one_bytes, 'one_flops': one_flops,
        'one_kernel_gbs': one_bytes / t_k / 1e9,
        'one_kernel_gflops': one_flops / t_k / 1e9,
        'one_kernel_frac_bw': one_bytes / t_k / 1e9 / mach['copy_gbs'],
        'one_kernel_frac_dgemm': one_flops / t_k / 1e9 / mach['dgemm_gflops'],
        'one_kernel_frac_dgemm_1thread': one_flops / t_k / 1e9 / mach['dgemm_gflops_1thread'],
        'batch_flops': batch_flops,
        'batch_gflops': batch_flops / t_batch / 1e9,
        'batch_frac_dgemm': batch_flops / t_batch / 1e9 / mach['dgemm_gflops'],
    }
    out['peak_rss_final_mb'] = _peak_rss_mb()

    # --- same model as sGDML's?
    if args.sgdml_model and os.path.exists(args.sgdml_model):
        try:
            out['vs_sgdml_model'] = compare_with_sgdml(args.sgdml_model, model, R_te,
                                                       E_pred, F_pred)
        except Exception as exc:  # report, do not lose the benchmark
            out['vs_sgdml_model'] = {'error': repr(exc)}

    with open(args.out_json, 'w') as fh:
        json.dump(out, fh, indent=2)
    print(json.dumps({k: v for k, v in out.items() if not isinstance(v, (dict, list))},
                     indent=1))


def compare_with_sgdml(path, model, R_te, E_pred, F_pred):
    """Predictions of sGDML's model (imported) vs ours, and coefficients."""
    import gdmlx
    from gdmlx.rigid import InternalCoordinates
    sg = gdmlx.import_sgdml_model(path)
    E_s, F_s = sg.predict_energy_forces(R_te)
    res = {
        'max_abs_dE': float(np.max(np.abs(E_s - E_pred))),
        'max_abs_dF': float(np.max(np.abs(F_s - F_pred))),
        'rms_dF': float(np.sqrt(np.mean((F_s - F_pred) ** 2))),
        'rms_F': float(np.sqrt(np.mean(F_pred ** 2))),
        'dc': float(sg.expansion_.c - model.expansion_.c),
    }
    with np.load(path, allow_pickle=False) as f:
        alphas_F, std = np.asarray(f['alphas_F']).ravel(), float(f['std'])
    # sGDML solves with labels F/std and stores alpha = -a; gdmlx stores a*std. gdmlx solves
    # in internal coordinates (gdmlx.rigid), so compare the parts off the rigid motions.
    a_s, a_g = -std * alphas_F, model.alphas_.ravel()
    if a_s.shape == a_g.shape:
        coords = InternalCoordinates(model.R_train_)
        M = len(coords.keep)
        a_s, a_g = (coords.remove_rigid(a.reshape(M, -1)) for a in (a_s, a_g))
        res['alphas_rel_max_diff'] = float(np.max(np.abs(a_s - a_g)) / np.max(np.abs(a_g)))
    dB = np.max(np.abs(sg.expansion_.B - model.expansion_.B)) / np.max(np.abs(model.expansion_.B))
    res['B_rel_max_diff'] = float(dB)
    return res


# ---------------------------------------------------------------------------
# driver
# ---------------------------------------------------------------------------

def _raise_oom_score():
    # In the child, before exec: be the first thing the kernel kills if memory
    # runs out (inherited by exec'd program and its workers).
    try:
        with open('/proc/self/oom_score_adj', 'w') as fh:
            fh.write('1000')
    except OSError:
        pass


def _busy_cpu_s():
    """CPU seconds (all cores, all processes) spent busy since boot, from /proc/stat."""
    try:
        with open('/proc/stat') as fh:
            f = [int(v) for v in fh.readline().split()[1:]]
        # user nice system idle iowait irq softirq steal ...
        return (f[0] + f[1] + f[2] + f[5] + f[6] + f[7]) / os.sysconf('SC_CLK_TCK')
    except (OSError, ValueError, IndexError):
        return float('nan')


def _children_cpu_s():
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def _run_child(cmd, env, log_path, timeout_s, label):
    """Run ``cmd`` in its own session, output to ``log_path``; returns status dict.

    ``foreign_cpu_s`` is the CPU time that other processes on the machine used
    while the child ran (busy time from /proc/stat minus the child's own): a
    noise indicator for the timings.
    """
    print(f'[{time.strftime("%H:%M:%S")}] {label}: {" ".join(cmd)}', flush=True)
    busy0, own0 = _busy_cpu_s(), _children_cpu_s()
    t0 = time.perf_counter()
    with open(log_path, 'w') as log:
        p = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT,
                             start_new_session=True, preexec_fn=_raise_oom_score,
                             cwd=os.path.dirname(HERE))
        try:
            rc = p.wait(timeout=timeout_s)
            status = 'ok' if rc == 0 else f'exit code {rc}'
            if rc < 0:
                status = f'killed by signal {-rc}'
                if -rc == signal.SIGKILL:
                    status += ' (probably out of memory)'
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)  # the group this call started
            p.wait()
            rc, status = None, f'hard timeout after {timeout_s:.0f} s'
    wall = time.perf_counter() - t0
    own = _children_cpu_s() - own0
    foreign = max(0.0, _busy_cpu_s() - busy0 - own)
    print(f'[{time.strftime("%H:%M:%S")}] {label}: {status} ({wall:.1f} s wall, {own:.1f} s CPU;'
          f' other processes used {foreign:.1f} CPU s meanwhile)', flush=True)
    with open(log_path) as fh:
        tail = fh.read()[-3000:]
    if rc != 0:
        print(tail, file=sys.stderr)
    # Largest RSS of any child (and its descendants) this driver has waited for so far: for
    # the first child (sGDML) its own peak, also when it was killed.
    maxrss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024.0
    return {'returncode': rc, 'status': status, 'wall_s': wall, 'cpu_s': own,
            'foreign_cpu_s': foreign, 'children_maxrss_mb_so_far': maxrss, 'log_tail': tail}


def _child_env(threads, numba=False, cache_dir=None):
    env = dict(os.environ)
    for v in THREAD_VARS:
        env[v] = str(threads)
    if numba:
        env['NUMBA_NUM_THREADS'] = str(threads)
    if cache_dir:
        env['NUMBA_CACHE_DIR'] = cache_dir
    return env


def _read_json(path):
    try:
        with open(path) as fh:
            return json.load(fh)
    except (OSError, ValueError):
        return None


def _fmt(v, spec):
    if v is None or (isinstance(v, float) and not np.isfinite(v)):
        return '—'
    if isinstance(v, str):
        return v
    return format(v, spec)


def make_table(res):
    s = res.get('sgdml') or {}
    g = res.get('gdmlx') or {}
    fc = res.get('firstcall') or {}
    rl = g.get('roofline') or {}
    M, D = g.get('n_train'), g.get('n_desc')
    n_te = g.get('n_test')

    def sg(key):
        return s.get(key) if s.get('status') == 'ok' or key in ('t_assemble_s', 't_solve_s',
                                                                't_train_s', 'peak_rss_mb') else None

    # An sGDML run that was killed: what its log says it got through.
    s_asm = sg('t_assemble_s')
    s_solve = sg('t_solve_s')
    s_rss = sg('peak_rss_mb')
    if s.get('status') not in (None, 'ok', 'timeout') and s.get('phases_logged'):
        done = {}
        rss = []
        for ph in s['phases_logged']:
            if ph.startswith('end '):
                label, rest = ph[4:].split(' (', 1)
                done[label] = done.get(label, 0.0) + float(rest.split(' s')[0])
                if 'peak RSS ' in rest:
                    rss.append(float(rest.split('peak RSS ')[1].split(' MB')[0]))
        s_asm = done.get('assemble', s_asm)
        steps = ', '.join(f'{k} {v:.1f} s' for k, v in done.items() if k != 'assemble')
        s_solve = f"killed in {s.get('died_in_phase', '?')}" + (f' (after {steps})' if steps else '')
        rss.append((s.get('run') or {}).get('children_maxrss_mb_so_far', 0.0))
        s_rss = f'{max(rss):.0f} when killed'

    # sGDML in the same flop/byte model as gdmlx (same M, D; its own times)
    s_one_gbs = s_batch_gflops = None
    if M and D and sg('latency_1proc_ms'):
        s_one_gbs = 2 * M * D * 8 / (sg('latency_1proc_ms') / 1e3) / 1e9
    if M and D and sg('throughput_1proc_per_s'):
        s_batch_gflops = 6 * M * D * sg('throughput_1proc_per_s') / 1e9
    s_solver = s.get('solver_name') or s.get('solver_expected')
    if s.get('status') not in (None, 'ok'):
        s_solver = f"{s_solver or '?'} ({s.get('status')}" + (
            f", during {s['died_in_phase']}" if s.get('died_in_phase') else '') + ')'
    if s_solver and s.get('solve_method') == 'cg':
        s_solver += (f", {s.get('solver_iters')} CG iters, {s.get('n_inducing_pts')} ind. pts"
                     + ('' if s.get('solver_converged', True) else ', NOT converged'))
    rows = [
        # label, sGDML value, gdmlx value, format, ratio?
        ('solver', s_solver or ('skipped' if res['args']['skip_sgdml'] else '—'),
         {'analytic': 'analytic (dense Cholesky)'}.get(
             (g.get('fit_info') or {}).get('solver', 'analytic'),
             (g.get('fit_info') or {}).get('solver'))
         + (f" (fit with {g['fit_blas_threads']} BLAS thread(s))" if g.get('fit_blas_threads')
            else '') if g.get('status') == 'ok'
         else f"({g.get('status')})", None, False),
        ('E MAE (kcal/mol)', sg('e_mae'), g.get('e_mae'), '.4f', True),
        ('E RMSE (kcal/mol)', sg('e_rmse'), g.get('e_rmse'), '.4f', True),
        ('F MAE (kcal/mol/Å)', sg('f_mae'), g.get('f_mae'), '.4f', True),
        ('F RMSE (kcal/mol/Å)', sg('f_rmse'), g.get('f_rmse'), '.4f', True),
        ('kernel assembly (s)', s_asm, g.get('t_assemble_s'), '.2f', True),
        ('solve (s)', s_solve, g.get('t_solve_s'), '.2f', True),
        ('whole training (s)',
         f"> {s['t_train_s']:.0f} (timeout)" if s.get('status') == 'timeout' else
         f"killed after {s['run']['wall_s']:.0f} s (process wall time)"
         if s.get('status') not in (None, 'ok') and s.get('run') else sg('t_train_s'),
         g.get('t_fit_s'), '.2f', True),
        ('peak RSS (MB)', s_rss, g.get('peak_rss_mb'), '.0f', True),
        ('first call: import+fit(5)+predict, cold numba cache (s)', None,
         (fc.get('cold') or {}).get('t_first_call_s'), '.2f', False),
        ('first call: same, warm numba cache (s)', None,
         (fc.get('warm') or {}).get('t_first_call_s'), '.2f', False),
        ('1-geometry latency, sGDML 1-process vs gdmlx `predict` (ms)',
         sg('latency_1proc_ms'), g.get('latency_api_ms'), '.4f', True),
        ('1-geometry latency, sGDML default vs gdmlx `predict` (ms)',
         sg('latency_default_ms'), g.get('latency_api_ms'), '.4f', True),
        ('1-geometry latency, sGDML 1-process vs gdmlx kernel `predict_one` (ms)',
         sg('latency_1proc_ms'), g.get('latency_kernel_ms'), '.4f', True),
        (f'batched throughput, {n_te} geometries, sGDML 1-process (geom/s)',
         sg('throughput_1proc_per_s'), g.get('throughput_per_s'), '.0f', True),
        (f'batched throughput, {n_te} geometries, sGDML default (geom/s)',
         sg('throughput_default_per_s'), g.get('throughput_per_s'), '.0f', True),
        ('machine: DGEMM 2000³ (GFLOP/s)', None, rl.get('dgemm_gflops'), '.1f', False),
        ('machine: DGEMM 2000³, 1 thread (GFLOP/s)', None, rl.get('dgemm_gflops_1thread'),
         '.1f', False),
        ('machine: copy bandwidth, 200 MB, read+write (GB/s)', None, rl.get('copy_gbs'),
         '.2f', False),
        ('1-geometry: streamed 2MD·8 B / latency (GB/s) [sGDML 1-proc; gdmlx kernel]',
         s_one_gbs, rl.get('one_kernel_gbs'), '.2f', True),
        ('1-geometry gdmlx kernel: % of copy bandwidth', None,
         100 * rl['one_kernel_frac_bw'] if rl else None, '.0f', False),
        ('1-geometry gdmlx kernel: 8MD flops / latency (GFLOP/s; % of DGEMM, of 1-thread DGEMM)',
         None, f"{rl['one_kernel_gflops']:.2f} ({100 * rl['one_kernel_frac_dgemm']:.0f} %, "
         f"{100 * rl.get('one_kernel_frac_dgemm_1thread', float('nan')):.0f} %)"
         if rl else None, '', False),
        ('batched: 6nMD flops / time (GFLOP/s) [sGDML 1-proc; gdmlx]', s_batch_gflops,
         rl.get('batch_gflops'), '.2f', True),
        ('batched gdmlx: % of DGEMM', None,
         100 * rl['batch_frac_dgemm'] if rl else None, '.0f', False),
    ]
    lines = ['| quantity | sGDML | gdmlx | gdmlx / sGDML |', '|---|---|---|---|']
    for label, a, b, spec, ratio in rows:
        r = '—'
        if ratio and isinstance(a, (int, float)) and isinstance(b, (int, float)) and a:
            r = f'{b / a:.3f}'
        lines.append(f'| {label} | {_fmt(a, spec)} | {_fmt(b, spec)} | {r} |')
    return '\n'.join(lines)


def driver(args):
    t_start = time.perf_counter()
    R, _, _, _ = _load(args.data)
    n_total = len(R)
    if args.n_train + args.n_test > n_total:
        sys.exit(f'n_train + n_test = {args.n_train + args.n_test} > {n_total} geometries')
    perm = np.random.default_rng(args.seed).permutation(n_total)
    tr, te = perm[:args.n_train], perm[args.n_train:args.n_train + args.n_test]
    name = os.path.splitext(os.path.basename(args.data))[0]
    tmp = tempfile.mkdtemp(prefix=f'bench_{name}_')
    tr_path, te_path = os.path.join(tmp, 'train_idx.npy'), os.path.join(tmp, 'test_idx.npy')
    np.save(tr_path, tr)
    np.save(te_path, te)
    print(f'{name}: {n_total} geometries, {R.shape[1]} atoms; train {len(tr)}, test {len(te)};'
          f' temp folder {tmp}', flush=True)
    res = {'dataset': name, 'data': os.path.abspath(args.data),
           'args': {k: v for k, v in vars(args).items()
                    if k not in ('side', 'train_idx', 'test_idx', 'out_json', 'sgdml_model')},
           'train_idx': tr.tolist(), 'test_idx': te.tolist(),
           'host': {'cpu_count': os.cpu_count(), 'loadavg_start': os.getloadavg()},
           'started': time.strftime('%Y-%m-%d %H:%M:%S')}
    me = [sys.executable, os.path.abspath(__file__), '--data', os.path.abspath(args.data),
          '--n-train', str(args.n_train), '--n-test', str(args.n_test),
          '--sigma', repr(args.sigma), '--lam', repr(args.lam), '--threads', str(args.threads),
          '--seed', str(args.seed), '--train-idx', tr_path, '--test-idx', te_path,
          '--n-latency', str(args.n_latency), '--n-batch-reps', str(args.n_batch_reps)]
    if args.gdmlx_fit_blas_threads:
        me += ['--gdmlx-fit-blas-threads', str(args.gdmlx_fit_blas_threads)]

    # --- sGDML
    sg_model = os.path.join(tmp, 'sgdml_model.npz')
    if not args.skip_sgdml:
        sg_json = os.path.join(tmp, 'sgdml.json')
        cmd = [args.sgdml_python, os.path.join(HERE, 'sgdml_runner.py'),
               '--data', os.path.abspath(args.data), '--train-idx', tr_path,
               '--test-idx', te_path, '--sigma', repr(args.sigma), '--lam', repr(args.lam),
               '--out-json', sg_json, '--out-model', sg_model, '--threads', str(args.threads),
               '--n-latency', str(args.n_latency), '--n-batch-reps', str(args.n_batch_reps),
               '--train-timeout', str(args.sgdml_train_timeout)]
        if args.sgdml_max_memory_gb:
            cmd += ['--max-memory-gb', str(args.sgdml_max_memory_gb)]
        run = _run_child(cmd, _child_env(args.threads), os.path.join(tmp, 'sgdml.log'),
                         args.sgdml_train_timeout + 1800, 'sGDML')
        sg = _read_json(sg_json) or {}
        if 'status' not in sg:
            sg['status'] = run['status']
        if not sg.get('solver_name'):
            # the runner prints its solver choice before training starts
            for line in run['log_tail'].splitlines():
                if line.startswith('sGDML solver choice: '):
                    sg.update(json.loads(line.split(': ', 1)[1]))
        if sg['status'] != 'ok':
            # the runner logs '[time] start <phase>' / 'end <phase> (...)': where did it stop?
            phases = [ln.split('] ', 1)[1] for ln in run['log_tail'].splitlines()
                      if ln.startswith('[') and ('] start ' in ln or '] end ' in ln)]
            sg['phases_logged'] = phases
            if phases and phases[-1].startswith('start '):
                sg['died_in_phase'] = phases[-1][len('start '):]
        sg['run'] = run
        res['sgdml'] = sg

    # --- gdmlx: first call with an empty numba cache, then with a warm one
    cache = os.path.join(tmp, 'numba_cache')
    genv = _child_env(args.threads, numba=True, cache_dir=cache)
    res['firstcall'] = {}
    for which in ('cold', 'warm'):
        path = os.path.join(tmp, f'firstcall_{which}.json')
        run = _run_child(me + ['--side', 'firstcall', '--out-json', path], genv,
                         os.path.join(tmp, f'firstcall_{which}.log'), 900, f'first call ({which})')
        res['firstcall'][which] = _read_json(path) or {'status': run['status'], 'run': run}

    g_json = os.path.join(tmp, 'gdmlx.json')
    run = _run_child(me + ['--side', 'gdmlx', '--out-json', g_json, '--sgdml-model', sg_model],
                     genv, os.path.join(tmp, 'gdmlx.log'), 3600, 'gdmlx')
    g = _read_json(g_json) or {}
    g['status'] = run['status'] if run['returncode'] != 0 else 'ok'
    g['run'] = run
    res['gdmlx'] = g

    res['host']['loadavg_end'] = os.getloadavg()
    res['total_runtime_s'] = time.perf_counter() - t_start
    table = make_table(res)
    res['table_markdown'] = table
    os.makedirs(args.results_dir, exist_ok=True)
    failed = [side for side in ('sgdml', 'gdmlx') if res.get(side, {}).get('status') not in (None, 'ok')]
    # a failed run does not replace the last complete one of the same name
    suffix = args.tag + (f'_{"-".join(failed)}-failed' if failed else '')
    out_path = os.path.join(args.results_dir, f'{name}_n{args.n_train}{suffix}.json')
    with open(out_path, 'w') as fh:
        json.dump(res, fh, indent=2)
    vs = g.get('vs_sgdml_model')
    print()
    print(f'## {name}: n_train={args.n_train}, n_test={args.n_test}, sigma={args.sigma:g}, '
          f'lam={args.lam:g}, threads={args.threads}, seed={args.seed}')
    print()
    print(table)
    if vs:
        print()
        print('gdmlx vs the sGDML model (test set): ' + json.dumps(vs))
    runs = [('sGDML', (res.get('sgdml') or {}).get('run')), ('gdmlx', g.get('run'))]
    print('\nnoise: ' + '; '.join(
        f"other processes used {r['foreign_cpu_s']:.1f} CPU s during the {k} run "
        f"({r['wall_s']:.0f} s wall)" for k, r in runs if r))
    print(f'\nraw numbers: {out_path}; total runtime {res["total_runtime_s"]:.0f} s')
    if not args.keep_tmp:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0 if g['status'] == 'ok' else 1


def table_from(path):
    with open(path) as fh:
        res = json.load(fh)
    res['table_markdown'] = make_table(res)
    with open(path, 'w') as fh:
        json.dump(res, fh, indent=2)
    print(res['table_markdown'])
    return 0


if __name__ == '__main__':
    if ARGS.table_from:
        sys.exit(table_from(ARGS.table_from))
    if not ARGS.data:
        sys.exit('--data is required')
    if ARGS.side == 'gdmlx':
        gdmlx_side(ARGS)
    elif ARGS.side == 'firstcall':
        firstcall_side(ARGS)
    else:
        sys.exit(driver(ARGS))
