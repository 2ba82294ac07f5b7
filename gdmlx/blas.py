"""In-place BLAS and LAPACK calls on sub-blocks of one large matrix.

scipy's Python wrappers copy any block that is not contiguous, which for the panels of a
blocked factorisation means a temporary the size of the panel for every call. These
functions call the same library (scipy's OpenBLAS, through the function pointers that
``scipy.linalg.cython_blas`` and ``cython_lapack`` export) directly on the block in place.

A block is a Fortran-ordered view: a 2-D float64 array whose rows are adjacent in memory
(``strides[0] == 8``) and whose columns are ``ld`` elements apart. For a C-ordered matrix
``A``, every slice of ``A.T`` is one, with ``ld = A.shape[1]``.
"""

import ctypes

import numpy as np
from scipy.linalg import cython_blas, cython_lapack

_get_name = ctypes.pythonapi.PyCapsule_GetName
_get_name.restype = ctypes.c_char_p
_get_name.argtypes = [ctypes.py_object]
_get_pointer = ctypes.pythonapi.PyCapsule_GetPointer
_get_pointer.restype = ctypes.c_void_p
_get_pointer.argtypes = [ctypes.py_object, ctypes.c_char_p]


def _function(module, name):
    """The Fortran routine ``name`` of scipy's BLAS/LAPACK as a ctypes function (all
    arguments by reference, unchecked)."""
    capsule = module.__pyx_capi__[name]
    return ctypes.CFUNCTYPE(None)(_get_pointer(capsule, _get_name(capsule)))


_dgemm = _function(cython_blas, "dgemm")
_dtrsm = _function(cython_blas, "dtrsm")
_dsyrk = _function(cython_blas, "dsyrk")
_dpotrf = _function(cython_lapack, "dpotrf")


def _block(M):
    """(pointer, rows, columns, leading dimension) of the Fortran-ordered block ``M``."""
    if M.dtype != np.float64 or M.ndim != 2 or M.strides[0] != 8 or M.strides[1] % 8:
        raise ValueError("expected a Fortran-ordered float64 block (a slice of A.T, A C-ordered)")
    rows, cols = M.shape
    ld = M.strides[1] // 8 if cols > 1 else max(rows, 1)
    if ld < rows:
        raise ValueError("the columns of the block overlap")
    return ctypes.c_void_p(M.ctypes.data), rows, cols, ld


def _int(value):
    return ctypes.byref(ctypes.c_int(value))


def _double(value):
    return ctypes.byref(ctypes.c_double(value))


def potrf_upper(M):
    """Cholesky factor U (M = U^T U) of the square block ``M``, in place of its upper
    triangle. Raises ``numpy.linalg.LinAlgError`` if ``M`` is not positive definite."""
    a, n, _, lda = _block(M)
    info = ctypes.c_int(0)
    _dpotrf(ctypes.c_char_p(b"U"), _int(n), a, _int(lda), ctypes.byref(info))
    if info.value:
        raise np.linalg.LinAlgError(f"dpotrf: leading minor {info.value} is not positive definite")


def trsm_upper_transposed(U, B):
    """``B <- U^-T B`` in place, ``U`` (k, k) the upper triangle of a block, ``B`` (k, m)."""
    u, k, _, ldu = _block(U)
    b, rows, m, ldb = _block(B)
    if rows != k:
        raise ValueError("U and B do not match")
    _dtrsm(ctypes.c_char_p(b"L"), ctypes.c_char_p(b"U"), ctypes.c_char_p(b"T"),
           ctypes.c_char_p(b"N"), _int(k), _int(m), _double(1.0), u, _int(ldu), b, _int(ldb))


def gemm_subtract_tn(P, Q, C):
    """``C <- C - P^T Q`` in place; ``P`` (k, m), ``Q`` (k, n), ``C`` (m, n)."""
    p, k, m, ldp = _block(P)
    q, kq, n, ldq = _block(Q)
    c, mc, nc, ldc = _block(C)
    if kq != k or (mc, nc) != (m, n):
        raise ValueError("P, Q and C do not match")
    _dgemm(ctypes.c_char_p(b"T"), ctypes.c_char_p(b"N"), _int(m), _int(n), _int(k), _double(-1.0),
           p, _int(ldp), q, _int(ldq), _double(1.0), c, _int(ldc))


def syrk_subtract_upper(P, C):
    """``C <- C - P^T P`` in place on the upper triangle of ``C`` (m, m); ``P`` (k, m)."""
    p, k, m, ldp = _block(P)
    c, mc, nc, ldc = _block(C)
    if (mc, nc) != (m, m):
        raise ValueError("P and C do not match")
    _dsyrk(ctypes.c_char_p(b"U"), ctypes.c_char_p(b"T"), _int(m), _int(k), _double(-1.0),
           p, _int(ldp), _double(1.0), c, _int(ldc))
