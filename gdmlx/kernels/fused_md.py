"""Whole MD steps of a one-expansion model in one CUDA kernel launch (numba.cuda).

One-geometry MD on a GPU is bound by launch latency: the whole-array path
(:mod:`gdmlx.device_expansion`) issues some forty small kernels a step. Here one launch runs
``n_steps`` velocity-Verlet steps (optionally Langevin BAOAB, as
:class:`gdmlx.md.ReplicaSimulation`) of every replica, and nothing returns to the host
between them. The model's sums are those of :func:`gdmlx.kernels.predict.expansion_one`.

Each replica is worked on by ``P`` thread blocks of :data:`THREADS` threads. Block ``b``
owns the training rows ``[b M / P, (b + 1) M / P)``; per step every block of a replica

1. kicks and drifts its own copy of the replica's state (all copies stay equal: they run
   the same arithmetic in the same order, with the same Langevin noise),
2. computes the descriptor ``x`` (D,) and, for its rows, the dot products ``x.x_m``,
   ``x.beta_m`` (from the transposed ``XT``, ``BT`` (D, M): threads read neighbouring rows,
   coalesced) and the Matern terms, then its part of the descriptor force
   ``sum_m c2_m beta_m - w_m x_m`` (from ``X``, ``B`` (M, D): threads over k, coalesced),
3. waits for the other blocks (a grid-wide barrier when ``P > 1``), adds up all parts, maps
   the descriptor force to the atoms (each thread sums the pairs of one atom coordinate)
   and kicks.

``P = 1`` (the kernel without a grid barrier) suits many replicas; ``P > 1`` (a cooperative
launch: all blocks resident at once) spreads one molecule over many multiprocessors.
Partial sums alternate between two buffers by step parity, so a fast block never writes
parts that a slow block still reads.

Array arguments may be CuPy arrays or, under numba's CUDA simulator
(``NUMBA_ENABLE_CUDASIM=1``, how the tests run this code without a GPU), numpy arrays.
"""

import math
import warnings

import numpy as np
from numba import config, cuda, float64
from numba.core.errors import NumbaPerformanceWarning
from numba.cuda.random import create_xoroshiro128p_states, xoroshiro128p_normal_float64

from gdmlx.errors import InputError
from gdmlx.validation import check_count

THREADS = 128          # threads per block (a power of two: the block sums halve it)


@cuda.jit(device=True)
def _block_sum(red, value):
    """Sum of ``value`` over the block's threads, returned to every thread."""
    t = cuda.threadIdx.x
    red[t] = value
    cuda.syncthreads()
    h = THREADS // 2
    while h > 0:
        if t < h:
            red[t] += red[t + h]
        cuda.syncthreads()
        h //= 2
    total = red[0]
    cuda.syncthreads()
    return total


@cuda.jit(device=True)
def _matern(r2, sigma):
    """``phi, c2, c1`` of :func:`gdmlx.matern.matern_terms` for one squared distance."""
    s = math.sqrt(5.0 * r2) / sigma
    e = math.exp(-s)
    return ((1.0 + s + s * s / 3.0) * e, 5.0 / (3.0 * sigma * sigma) * (1.0 + s) * e,
            25.0 / (3.0 * sigma ** 4) * e)


@cuda.jit(device=True)
def _move(st, inv_m, m_tot, dt, lang, states, red):
    """Kick (half step), drift and, when ``lang[0] < 1``, the Langevin O step (in the middle
    of the drift, the centre-of-mass velocity removed after it) of block state ``st`` (3, N, 3):
    positions, velocities, forces. ``lang`` = (c1, c2, kT)."""
    t = cuda.threadIdx.x
    N = st.shape[1]
    half = dt if lang[0] >= 1.0 else 0.5 * dt
    for idx in range(t, 3 * N, THREADS):
        i, d = idx // 3, idx % 3
        st[1, i, d] += 0.5 * dt * st[2, i, d] * inv_m[i]
        st[0, i, d] += half * st[1, i, d]
    if lang[0] >= 1.0:
        cuda.syncthreads()
        return
    sidx = cuda.blockIdx.x * THREADS + t
    p0 = p1 = p2 = 0.0
    for idx in range(t, 3 * N, THREADS):
        i, d = idx // 3, idx % 3
        vi = lang[0] * st[1, i, d] + lang[1] * math.sqrt(lang[2] * inv_m[i]) * xoroshiro128p_normal_float64(states, sidx)
        st[1, i, d] = vi
        p = vi / inv_m[i]
        if d == 0:
            p0 += p
        elif d == 1:
            p1 += p
        else:
            p2 += p
    p0 = _block_sum(red, p0) / m_tot
    p1 = _block_sum(red, p1) / m_tot
    p2 = _block_sum(red, p2) / m_tot
    for idx in range(t, 3 * N, THREADS):
        i, d = idx // 3, idx % 3
        st[1, i, d] -= p0 if d == 0 else (p1 if d == 1 else p2)
        st[0, i, d] += half * st[1, i, d]
    cuda.syncthreads()


@cuda.jit(device=True)
def _descriptor(st, pairs, r_scale, x, wall_pairs, wall, red):
    """Writes the descriptor of positions ``st[0]`` into ``x`` (D,); returns ``(|x|^2, wall
    energy [eV])``. ``wall`` = (k [eV/A^3], r0 of each wall pair ...)."""
    t = cuda.threadIdx.x
    q = st[0]
    xs = 0.0
    for k in range(t, pairs.shape[0], THREADS):
        i, j = pairs[k, 0], pairs[k, 1]
        dx, dy, dz = q[i, 0] - q[j, 0], q[i, 1] - q[j, 1], q[i, 2] - q[j, 2]
        xk = 1.0 / (r_scale * math.sqrt(dx * dx + dy * dy + dz * dz))
        x[k] = xk
        xs += xk * xk
    ew = 0.0
    for p in range(t, wall_pairs.shape[0], THREADS):
        i, j = wall_pairs[p, 0], wall_pairs[p, 1]
        dx, dy, dz = q[i, 0] - q[j, 0], q[i, 1] - q[j, 1], q[i, 2] - q[j, 2]
        depth = max(wall[1 + p] - math.sqrt(dx * dx + dy * dy + dz * dz), 0.0)
        ew += wall[0] * depth * depth * depth
    return _block_sum(red, xs), _block_sum(red, ew)


@cuda.jit(device=True)
def _rows(x, x_sq, m0, m1, XT, BT, X_sq, XB, a, sigma, c2w, red):
    """Matern terms of training rows ``m0 .. m1``: stores ``c2_m`` and ``w_m = c2_m a_m - c1_m
    (d_m . beta_m)`` in ``c2w`` (2, M); returns the rows' energy sum and ``sum w_m``."""
    t = cuda.threadIdx.x
    e = 0.0
    w_sum = 0.0
    for m in range(m0 + t, m1, THREADS):
        s = 0.0
        u = 0.0
        for k in range(XT.shape[0]):
            s += x[k] * XT[k, m]
            u += x[k] * BT[k, m]
        phi, c2, c1 = _matern(max(x_sq + X_sq[m] - 2.0 * s, 0.0), sigma)
        db = u - XB[m]
        w = c2 * a[m] - c1 * db
        e += phi * a[m] - c2 * db
        w_sum += w
        c2w[0, m] = c2
        c2w[1, m] = w
    return _block_sum(red, e), _block_sum(red, w_sum)


@cuda.jit(device=True)
def _part_force(m0, m1, X, B, c2w, part):
    """``part`` (D,) = ``sum_m c2_m beta_m - w_m x_m`` over training rows ``m0 .. m1``."""
    for k in range(cuda.threadIdx.x, X.shape[1], THREADS):
        acc = 0.0
        for m in range(m0, m1):
            acc += c2w[0, m] * B[m, k] - c2w[1, m] * X[m, k]
        part[k] = acc


@cuda.jit(device=True)
def _forces(st, x, parts, sums, pairs, r_scale, f_scale, wall_pairs, wall, atom_ptr, atom_pairs, fd, inv_m, dt):
    """Descriptor force ``fd`` = ``sum(parts) + sum_w x`` (``parts`` (P, D), ``sums`` (P, 2):
    each block's energy and ``sum w``), then the atom forces into ``st[2]`` [eV/A] (model
    force times ``f_scale``, plus the wall) and the closing half kick of ``st[1]``."""
    t = cuda.threadIdx.x
    D = x.shape[0]
    w_sum = 0.0
    for b in range(parts.shape[0]):
        w_sum += sums[b, 1]
    for k in range(t, D, THREADS):
        acc = w_sum * x[k]
        for b in range(parts.shape[0]):
            acc += parts[b, k]
        fd[k] = acc
    cuda.syncthreads()
    q = st[0]
    for idx in range(t, 3 * q.shape[0], THREADS):
        i, d = idx // 3, idx % 3
        f_model = 0.0
        f_wall = 0.0
        for e in range(atom_ptr[i], atom_ptr[i + 1]):
            k = atom_pairs[e]
            if k < D:
                i0, i1 = pairs[k, 0], pairs[k, 1]
                g = -(q[i0, d] - q[i1, d]) * r_scale * x[k] * x[k] * x[k] * fd[k]
            else:
                i0, i1 = wall_pairs[k - D, 0], wall_pairs[k - D, 1]
                dx, dy, dz = q[i0, 0] - q[i1, 0], q[i0, 1] - q[i1, 1], q[i0, 2] - q[i1, 2]
                r = math.sqrt(dx * dx + dy * dy + dz * dz)
                depth = max(wall[1 + k - D] - r, 0.0)
                g = 3.0 * wall[0] * depth * depth / max(r, 1e-12) * (q[i0, d] - q[i1, d])
            if i0 == i:
                if k < D:
                    f_model += g
                else:
                    f_wall += g
            else:
                if k < D:
                    f_model -= g
                else:
                    f_wall -= g
        st[2, i, d] = f_model * f_scale + f_wall
        st[1, i, d] += 0.5 * dt * st[2, i, d] * inv_m[i]
    cuda.syncthreads()


@cuda.jit(device=True)
def _step_parts(st, rows, prm, pairs, X, B, XT, BT, X_sq, XB, a, wall_pairs, wall, inv_m, lang,
                states, x, c2w, part, sums, red):
    """Steps 1 and 2 of the module docstring for this block (its parts into ``part`` (D,) and
    ``sums`` (2,)); returns the wall energy [eV]."""
    _move(st, inv_m, prm[5], prm[4], lang, states, red)
    x_sq, e_wall = _descriptor(st, pairs, prm[2], x, wall_pairs, wall, red)
    e, w_sum = _rows(x, x_sq, rows[0], rows[1], XT, BT, X_sq, XB, a, prm[0], c2w, red)
    _part_force(rows[0], rows[1], X, B, c2w, part)
    if cuda.threadIdx.x == 0:
        sums[0] = e
        sums[1] = w_sum
    return e_wall


@cuda.jit(device=True)
def _copy(dst, src):
    """``dst[...] = src`` for (N, 3) arrays, by the block's threads."""
    for idx in range(cuda.threadIdx.x, 3 * src.shape[0], THREADS):
        dst[idx // 3, idx % 3] = src[idx // 3, idx % 3]


@cuda.jit(device=True)
def _store(n_steps, P, q, v, F, E, prm, state, sums, e_wall):
    """Block 0 of each replica writes its state and energy [eV] back."""
    blk = cuda.blockIdx.x
    r = blk // P
    if blk % P != 0:
        return
    _copy(q[r], state[blk, 0])
    _copy(v[r], state[blk, 1])
    _copy(F[r], state[blk, 2])
    if cuda.threadIdx.x == 0:
        e = prm[1]
        for b in range(P):
            e += sums[(n_steps - 1) % 2, blk + b, 0]
        E[r] = e * prm[3] + e_wall


@cuda.jit
def _steps(n_steps, P, q, v, F, E, prm, lang, states, inv_m, pairs, atom_ptr, atom_pairs,
           X, B, XT, BT, X_sq, XB, a, wall_pairs, wall, state, x, fd, c2w, parts, sums):
    """``n_steps`` steps of replicas ``q, v, F`` (n, N, 3), energies into ``E`` (n,); ``P``
    blocks per replica (a grid-wide barrier when ``P > 1``: launched cooperatively).
    The other arguments are :class:`FusedSteps`'s arrays."""
    blk = cuda.blockIdx.x
    r, b = blk // P, blk % P
    M = X.shape[0]
    rows = (b * M // P, (b + 1) * M // P)
    red = cuda.shared.array(THREADS, float64)
    st = state[blk]
    _copy(st[0], q[r])
    _copy(st[1], v[r])
    _copy(st[2], F[r])
    cuda.syncthreads()
    e_wall = 0.0
    for s in range(n_steps):
        par = s % 2
        e_wall = _step_parts(st, rows, prm, pairs, X, B, XT, BT, X_sq, XB, a, wall_pairs, wall,
                             inv_m, lang, states, x[blk], c2w[r], parts[par, blk], sums[par, blk], red)
        if P > 1:
            cuda.cg.this_grid().sync()
        else:
            cuda.syncthreads()
        _forces(st, x[blk], parts[par, r * P:(r + 1) * P], sums[par, r * P:(r + 1) * P], pairs,
                prm[2], prm[3] * prm[2], wall_pairs, wall, atom_ptr, atom_pairs, fd[blk], inv_m, prm[4])
    _store(n_steps, P, q, v, F, E, prm, state, sums, e_wall)


def _on_device(a):
    """``a`` as the kernel takes it: a numba view of a CuPy array (the model's arrays are
    converted once; a launch given CuPy arrays would convert every argument each time), a
    numpy array under the simulator."""
    return a if isinstance(a, np.ndarray) else cuda.as_cuda_array(a)


def pair_lists(n_atoms, pairs):
    """Pairs of each atom in CSR form: ``(ptr (N + 1,), idx)`` with ``idx[ptr[i]:ptr[i + 1]]``
    the rows of ``pairs`` (K, 2) that hold atom ``i``, ascending."""
    rows = np.r_[np.arange(len(pairs)), np.arange(len(pairs))]
    atoms = np.r_[pairs[:, 0], pairs[:, 1]].astype(np.int64)
    order = np.argsort(atoms, kind="stable")
    ptr = np.r_[0, np.cumsum(np.bincount(atoms, minlength=n_atoms))]
    return ptr.astype(np.int64), rows[order].astype(np.int64)


class FusedSteps:
    """Advances the state of a :class:`gdmlx.md.ReplicaSimulation` with a one-part model
    (``expansion``: :class:`gdmlx.expansion.KernelExpansion`) by whole steps on the GPU.

    ``sim`` gives the state (``q, v`` (n, N, 3) [A, A/ASE time], ``F[0]`` (n, N, 3) [eV/A],
    ``E[0]`` (n,) [eV], updated in place: keep these arrays), the masses, time step,
    Langevin constants, contact wall and unit scales. ``blocks_per_replica`` is ``P`` of the
    module docstring; by default one per 16 training rows (a guess, not yet tuned on a GPU),
    at most as many as the GPU runs at once (a cooperative launch needs all its blocks
    resident). Replicas beyond what runs at once go in several launches.
    """

    def __init__(self, expansion, sim, blocks_per_replica=None):
        xp, n = sim.xp, sim.n_replicas
        N, M, D = expansion.n_atoms, expansion.n_train, len(expansion.pairs)
        masses = 1.0 / _host(sim.inv_m)[:, 0]
        c1 = float(np.exp(-sim.gamma * sim.dt))
        ptr, idx = pair_lists(N, np.concatenate([expansion.pairs, sim.wall_pairs]))
        host = {
            "prm": np.array([expansion.sigma, expansion.c, sim.r_scale, sim.e_scale, sim.dt, masses.sum()]),
            "lang": np.array([c1, np.sqrt(1.0 - c1 * c1), sim.kT]),
            "inv_m": 1.0 / masses, "pairs": expansion.pairs, "atom_ptr": ptr, "atom_pairs": idx,
            "X": expansion.X, "B": expansion.B, "XT": expansion.X.T, "BT": expansion.B.T,
            "X_sq": expansion.X_sq, "XB": expansion.XB, "a": expansion.a,
            # one extra wall pair with onset 0 (never pushes): no zero-size arrays
            "wall_pairs": np.concatenate([sim.wall_pairs, np.zeros((1, 2), np.int64)]),
            "wall": np.r_[sim.wall_k, sim.wall_r0, 0.0]}
        self.model = [_on_device(xp.ascontiguousarray(xp.asarray(a))) for a in host.values()]
        self.sim = sim
        seeds = create_xoroshiro128p_states(n * THREADS, seed=int(sim.rng.integers(2**63)))
        self.P, self.chunk, self.states, self.work = 1, 1, seeds, self._work(xp, 1, 1, N, M, D)
        self.kernel, resident = _compiled(self._args(1, 0, 1))
        self.P = max(1, min(resident // n, -(-M // 16)))
        if blocks_per_replica is not None:
            self.P = check_count(blocks_per_replica, "blocks_per_replica")
            if self.P > resident:
                raise InputError(f"blocks_per_replica={self.P}: this GPU runs at most {resident} "
                                 "blocks of the step kernel at once")
        self.chunk = max(1, min(n, resident // self.P))
        # every block of a replica draws the same Langevin noise: its own copy of one state
        self.states = cuda.to_device(np.repeat(_host(seeds).reshape(n, 1, THREADS), self.P, axis=1).reshape(-1))
        self.work = self._work(xp, self.chunk, self.P, N, M, D)

    @staticmethod
    def _work(xp, chunk, P, N, M, D):
        """Work arrays of one launch: each block's state copy, descriptor and descriptor
        force, each replica's Matern terms, the blocks' parts (two step parities)."""
        n_blk = chunk * P
        return [_on_device(xp.zeros(shape)) for shape in (
            (n_blk, 3, N, 3), (n_blk, D), (n_blk, D), (chunk, 2, M), (2, n_blk, D), (2, n_blk, 2))]

    def _args(self, n_steps, r0, r1):
        """The kernel's arguments for ``n_steps`` steps of replicas ``r0 .. r1``."""
        sim, P = self.sim, self.P
        q, v, F, E = (_on_device(a)[r0:r1] for a in (sim.q, sim.v, sim.F[0], sim.E[0]))
        states = self.states[r0 * P * THREADS:r1 * P * THREADS]
        return (n_steps, P, q, v, F, E, *self.model[:2], states, *self.model[2:], *self.work)

    def advance(self, n_steps):
        """``n_steps`` steps of every replica (one launch per chunk of replicas)."""
        if n_steps < 1:
            return
        with warnings.catch_warnings():      # numba's note on grids of few blocks: one molecule's is
            warnings.simplefilter("ignore", NumbaPerformanceWarning)     # small by design
            for r0 in range(0, self.sim.n_replicas, self.chunk):
                r1 = min(r0 + self.chunk, self.sim.n_replicas)
                self.kernel[(r1 - r0) * self.P, THREADS](*self._args(n_steps, r0, r1))


def _host(a):
    """A numpy copy of a device (numba or CuPy) array; numpy arrays as they are."""
    if isinstance(a, np.ndarray):
        return a
    return a.copy_to_host() if hasattr(a, "copy_to_host") else a.get()


def _compiled(args):
    """The step kernel compiled for ``args``' types and how many of its blocks run on the
    GPU at once; under the simulator (blocks run one after another, the grid barrier waits
    for nothing) the kernel as it is and 1."""
    if config.ENABLE_CUDASIM:
        return _steps, 1
    kernel = _steps.specialize(*args)
    compiled = next(iter(kernel.overloads.values()))    # the dispatcher has no occupancy query
    return kernel, compiled.max_cooperative_grid_blocks(THREADS)
