"""Compile the fused MD step kernel (gdmlx.kernels.fused_md) for a GPU architecture on a
machine without a GPU, and report what the compiler says: a check that numba's CUDA target
types and lowers the kernel, and its register count (which sets how many blocks run at once).

Needs numba-cuda with its NVVM, in its own environment, e.g.::

    python -m venv /tmp/ptx && /tmp/ptx/bin/pip install "numba-cuda[cu12]" ase scipy scikit-learn h5py
    PYTHONPATH=. /tmp/ptx/bin/python benchmarks/fused_ptx.py --cc 9.0

numba asks the current device for its compute capability when it compiles device functions;
without a GPU this script answers for it (``--cc``). ``ptxas`` (from nvidia-cuda-nvcc)
assembles the PTX when found, for the register and spill counts.
"""

import argparse
import glob
import os
import subprocess
import sys
import tempfile
import time
import types

import numba
import numpy as np
import numba.cuda.dispatcher as dispatcher
from numba import cuda
from numba.cuda.random import xoroshiro128p_dtype


def kernel_signature():
    """The argument types of ``_steps`` as :class:`gdmlx.kernels.fused_md.FusedSteps` passes them."""
    f = lambda nd: numba.typeof(np.zeros((1,) * nd))
    i = lambda nd: numba.typeof(np.zeros((1,) * nd, np.int64))
    states = numba.typeof(np.zeros(1, dtype=xoroshiro128p_dtype))
    return (numba.int64, numba.int64, f(3), f(3), f(3), f(1), f(1), f(1), states, f(1), i(2), i(1),
            i(1), f(2), f(2), f(2), f(2), f(1), f(1), f(1), i(2), f(1), f(4), f(2), f(2), f(3), f(3), f(3))


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--cc", default="9.0", help="compute capability, e.g. 9.0 (H100, H200)")
    args = p.parse_args()
    cc = tuple(int(c) for c in args.cc.split("."))
    dispatcher.get_current_device = lambda: types.SimpleNamespace(compute_capability=cc)
    from gdmlx.kernels import fused_md
    t0 = time.perf_counter()
    ptx, _ = cuda.compile_ptx(fused_md._steps.py_func, kernel_signature(), cc=cc)
    print(f"numba {numba.__version__}: PTX for sm_{cc[0]}{cc[1]} in {time.perf_counter() - t0:.1f} s, "
          f"{ptx.count(chr(10))} lines, grid barrier: {'cudaCGSynchronize' in ptx}")
    ptxas = glob.glob(os.path.join(sys.prefix, "lib", "python*", "site-packages", "nvidia", "cuda_nvcc", "bin", "ptxas"))
    if ptxas:
        with tempfile.TemporaryDirectory() as tmp:
            src = os.path.join(tmp, "steps.ptx")
            with open(src, "w") as f:
                f.write(ptx)
            out = subprocess.run([ptxas[0], f"-arch=sm_{cc[0]}{cc[1]}", "-c", "-v", src, "-o", src + ".o"],
                                 capture_output=True, text=True)
            print("\n".join(line for line in out.stderr.splitlines() if "registers" in line or "spill" in line))


if __name__ == "__main__":
    main()
