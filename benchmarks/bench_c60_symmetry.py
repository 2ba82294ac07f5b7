"""Time of the permutation search (``perms="auto"``, ``gdmlx train --sym``) on C60, a cage of
60 identical atoms whose bond graph has 120 automorphisms.

    NUMBA_NUM_THREADS=1 python benchmarks/bench_c60_symmetry.py
"""
import time, ase.build
from gdmlx.symmetry import find_permutations
a = ase.build.molecule("C60")
t0 = time.perf_counter(); P = find_permutations(a.positions[None], a.numbers); print(f"C60: {len(P)} permutations in {time.perf_counter() - t0:.1f} s")
