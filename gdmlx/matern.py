"""Matern 5/2 kernel on descriptor differences: value, gradient and Hessian coefficients.

For a descriptor difference ``d = x - x'`` (length D) and length scale ``sigma``,
with ``s = sqrt(5) |d| / sigma``::

    phi(d)       = (1 + s + s^2/3) exp(-s)
    grad phi(d)  = -c2 d
    hess phi(d)  =  c1 d d^T - c2 I
    c2 = 5 / (3 sigma^2) (1 + s) exp(-s)
    c1 = 25 / (3 sigma^4) exp(-s)

The force-force covariance of a GDML model is ``H(d) = -hess phi(d) = c2 I - c1 d d^T``
(positive semi-definite), see Chmiela et al., Sci. Adv. 3, e1603015 (2017).

This is the only place the Matern expressions are written. ``matern_terms`` works on numpy
scalars and arrays; ``matern_terms_jit`` is the same function compiled for numba kernels;
``matern_terms_into`` is ``matern_terms`` in place on large arrays (same operations in the
same order: the same bits; the batched predictor's), and ``matern_gradient_terms_inplace``
gives ``c2, c1`` of a large array with one new array.
"""

import numba
import numpy as np

from gdmlx.numba_cache import ensure_cache_folder

ensure_cache_folder()


def matern_terms(r2, sigma):
    """Kernel value and derivative coefficients from the squared descriptor distance.

    Parameters
    ----------
    r2 : float or ndarray
        Squared distance ``|x - x'|^2`` between descriptors (descriptor units squared).
    sigma : float
        Length scale (descriptor units).

    Returns
    -------
    phi, c2, c1 : same shape as ``r2``
        ``phi`` the kernel value, ``c2`` and ``c1`` the coefficients defined in the
        module docstring.
    """
    s = np.sqrt(5.0 * r2) / sigma
    e = np.exp(-s)
    phi = (1.0 + s + s * s / 3.0) * e
    c2 = 5.0 / (3.0 * sigma * sigma) * (1.0 + s) * e
    c1 = 25.0 / (3.0 * sigma**4) * e
    return phi, c2, c1


matern_terms_jit = numba.njit(cache=True, inline="always")(matern_terms)


def matern_terms_into(s, t, e, sigma, xp=np):
    """:func:`matern_terms` of ``s`` = r2 (n, M) in place: returns ``phi`` (in ``s``), ``c2``
    (in ``t``) and ``c1`` (in ``e``), work arrays of the same shape; no new arrays. ``xp`` is
    the array module of the arrays (numpy or cupy)."""
    s *= 5.0
    xp.sqrt(s, out=s)
    s /= sigma                                      # s = sqrt(5 r2) / sigma
    xp.negative(s, out=e)
    xp.exp(e, out=e)                                # e = exp(-s)
    xp.add(1.0, s, out=t)                           # t = 1 + s
    xp.multiply(s, s, out=s)
    s /= 3.0
    s += t
    s *= e                                          # phi = (1 + s + s^2 / 3) e
    t *= 5.0 / (3.0 * sigma * sigma)
    t *= e                                          # c2
    e *= 25.0 / (3.0 * sigma**4)                    # c1
    return s, t, e


def matern_gradient_terms_inplace(r2, sigma, xp=np):
    """``c2, c1`` of :func:`matern_terms` for an array ``r2``, which is overwritten by ``c2``.

    For the (M, M) coefficient arrays of the matrix-free kernel: one new array (``c1``)
    instead of four. ``xp`` is the array module of ``r2`` (numpy or cupy).
    """
    s = r2
    s *= 5.0
    xp.sqrt(s, out=s)
    s /= sigma
    c1 = xp.negative(s)
    xp.exp(c1, out=c1)
    s += 1.0
    s *= c1
    s *= 5.0 / (3.0 * sigma * sigma)
    c1 *= 25.0 / (3.0 * sigma**4)
    return s, c1
