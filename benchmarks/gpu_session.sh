#!/usr/bin/env bash
# The GPU checks of issue 8, for a session that is lent a GPU (the `device` tool runs this in
# the repository root on the GPU machine). That machine's python3 already has numpy, scipy,
# numba, scikit-learn, h5py, pytest and CuPy (cupy-cuda13x) but not ase, and it cannot
# download: ase travels as a wheel, the data as a file. Prepare here, once per checkout:
#
#   mkdir -p .whl .gpu         (both ignored by git)
#   python3 -m pip download --no-deps --only-binary=:all: -d .whl ase==3.29.0
#   cp ../shared/data/aspirin.npz .gpu/
#
# then call the device with carry [".whl", ".gpu"] and the command `bash benchmarks/gpu_session.sh`.
# Results land in $OUT: the GPU tests' log and benchmarks/bench_gpu.py's JSON (GPU rows,
# the CPU rows on that machine's 16 cores, and the GPU's copy bandwidth and DGEMM rate).
set -uo pipefail                # a failing step is logged; the next still runs
python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .whl/*.whl
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1
export OMP_NUM_THREADS=16 OPENBLAS_NUM_THREADS=16 NUMBA_NUM_THREADS=16
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$OUT/device.txt"
python3 -c "import gdmlx.backend as b, cupy; print('backend', b.resolve_backend('gpu'), 'cupy', cupy.__version__)"
python3 -c "import numba, numba.cuda as c; print('numba', numba.__version__, 'cuda', c.is_available())"
python3 -m pytest -q -rs tests/test_fused_md.py tests/test_backend.py tests/test_replicas.py 2>&1 | tee "$OUT/gpu_tests.log"
python3 benchmarks/bench_gpu.py --data .gpu/aspirin.npz --model /tmp/asp500.h5 \
    --out "$OUT/gpu_backends_aspirin.json" 2>&1 | tee "$OUT/bench_gpu.log"
