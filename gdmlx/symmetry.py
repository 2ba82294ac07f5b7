"""Permutational symmetries of a molecule: detection, checks, and their action on pairs.

A permutation ``perm`` (N,) maps a geometry R to ``R[perm]`` (atom i of the new geometry
is atom ``perm[i]`` of the old). Swapping identical atoms leaves the energy unchanged, so
a GDML model may sum its kernel over any group of such permutations (sGDML, Chmiela et al.,
Nat. Commun. 9, 3887 (2018)); the group that matters is the one molecular motion realises
(methyl rotors, ring flips), which is made of automorphisms of the covalent bond graph.

:func:`find_permutations` enumerates automorphisms of the bond graph (atoms coloured by
element, bonds from the training geometries) by backtracking, and keeps a group of at most
``max_size`` elements: each automorphism found is added with the group it generates
unless that group would grow past the cap. Enumerating the graph's automorphisms directly
replaces sGDML's matching of geometries: it finds the same rotor and ring permutations
without depending on which conformers the training set happens to contain.
"""

import numpy as np

from gdmlx.bonds import bond_matrix
from gdmlx.errors import InputError
from gdmlx.validation import check_geometries


def find_permutations(R, z, max_size=64, max_tries=500):
    """Permutation group (P, N) int64 of the molecule, identity first.

    R (n, N, 3) training geometries, or one (N, 3), [A] (bonds from their mean distances),
    z (N,). At most ``max_size`` permutations; ``max_tries`` automorphisms are examined at most.
    """
    z = np.asarray(z)
    R = check_geometries(R, name="R")
    if R.shape[1] != len(z):
        raise InputError(f"R has {R.shape[1]} atoms per geometry but z has {len(z)} atomic numbers")
    adj = bond_matrix(z, R)
    group = {tuple(range(len(z)))}
    colours = refined_colours(adj, z)
    for k, perm in enumerate(isomorphisms(adj, colours, adj, colours)):
        if k >= max_tries or 2 * len(group) > max_size:    # a larger group would be >= 2x (Lagrange)
            break
        if perm in group:
            continue
        grown = close_group(group | {perm}, max_size)
        if grown is not None:
            group = grown
    identity = tuple(range(len(z)))
    return np.array([identity] + sorted(group - {identity}), dtype=np.int64)


def close_group(perms, max_size):
    """Closure of a set of permutations (tuples) under composition, or None past ``max_size``."""
    group = set(perms)
    frontier = list(group)
    while frontier:
        new = []
        for a in frontier:
            for b in list(group):
                for c in (tuple(a[i] for i in b), tuple(b[i] for i in a)):
                    if c not in group:
                        group.add(c)
                        new.append(c)
                        if len(group) > max_size:
                            return None
        frontier = new
    return group


def check_permutations(perms, z):
    """Validate a user-given permutation list: (P, N) int64 group of element-preserving
    permutations with the identity first."""
    z = np.asarray(z)
    given = np.asarray(perms)
    if given.ndim != 2 or given.shape[1] != len(z) or len(given) < 1:
        raise InputError(f"perms must have shape (P, {len(z)}), got {given.shape}")
    perms = given.astype(np.int64)
    if not np.array_equal(perms, given):
        bad = given[np.any(perms != given, axis=1)][0]
        raise InputError(f"perms must hold whole atom indices, got {bad.tolist()}")
    for p in perms:
        if not np.array_equal(np.sort(p), np.arange(len(z))):
            raise InputError(f"perms: {p.tolist()} is not a permutation of 0..{len(z) - 1}")
        if not np.array_equal(z[p], z):
            raise InputError(f"perms: {p.tolist()} exchanges atoms of different elements")
    if not np.array_equal(perms[0], np.arange(len(z))):
        raise InputError("perms: the first permutation must be the identity")
    as_set = {tuple(int(i) for i in p) for p in perms}
    if len(as_set) != len(perms) or close_group(as_set, len(perms)) != as_set:
        raise InputError("perms must be a group: distinct permutations, closed under composition")
    return perms


def close_pairs(pairs, perms):
    """The pair list extended by the images of its pairs under ``perms``, in all_pairs order."""
    seen = set()
    for p in perms:
        for i, j in pairs:
            a, b = p[i], p[j]
            seen.add((max(a, b), min(a, b)))
    out = np.array(sorted(seen, key=lambda ij: (ij[0], ij[1])), dtype=np.int64)
    return out.reshape(-1, 2)


def pair_permutation(pairs, perm):
    """Index array ``s`` (D,) with ``x(R[perm]) = x(R)[s]`` for the (closed) pair list."""
    index = {(max(i, j), min(i, j)): k for k, (i, j) in enumerate(pairs)}
    return np.array([index[(max(perm[i], perm[j]), min(perm[i], perm[j]))] for i, j in pairs],
                    dtype=np.int64)


def pair_orbits(pairs, perms):
    """Orbit of each pair of the (closed) pair list under ``perms`` (P, N), or of none
    when ``perms`` is None: (D,) int ids 0 .. n_orbits - 1, in order of first appearance."""
    orbit = np.arange(len(pairs))
    for p in ([] if perms is None else perms):
        image = pair_permutation(pairs, p)
        for k in range(len(pairs)):                 # join k's and its image's orbits
            a, b = orbit[k], orbit[image[k]]
            if a != b:
                orbit[orbit == max(a, b)] = min(a, b)
    return np.unique(orbit, return_inverse=True)[1].astype(np.int64)


def pairs_closed(pairs, perms):
    """True if every permutation maps the pair set onto itself."""
    return len(close_pairs(pairs, perms)) == len(pairs)


def refined_colours(adj, z):
    """Colour refinement: atoms start coloured by element and are split by the multiset
    of their neighbours' colours until stable. Isomorphisms preserve the final colours (to
    compare two graphs, refine their disjoint union)."""
    colours = np.unique(z, return_inverse=True)[1]
    while True:
        keys = [(colours[i], tuple(sorted(colours[adj[i]]))) for i in range(len(z))]
        new = np.unique(np.array([hash(k) for k in keys]), return_inverse=True)[1]
        if len(np.unique(new)) == len(np.unique(colours)):
            return colours
        colours = new


def isomorphisms(adj_a, colours_a, adj_b, colours_b):
    """Yield the maps of coloured graph a onto b as tuples (atom i of a -> atom ``image[i]``
    of b), by backtracking over atoms; a onto itself gives its automorphisms."""
    N = len(colours_a)
    if len(colours_b) != N:
        return
    adj_a, adj_b = np.asarray(adj_a, dtype=bool), np.asarray(adj_b, dtype=bool)
    same_colour = np.asarray(colours_b)[None, :] == np.asarray(colours_a)[:, None]     # (N, N)
    image = np.full(N, -1, dtype=np.int64)
    used = np.zeros(N, dtype=bool)

    def extend(i):
        if i == N:
            yield tuple(image.tolist())
            return
        # candidates for atom i: unused, its colour, bonded to the images of exactly its bonded
        # predecessors (one array operation per step: C60 took 78 s with a test per pair)
        ok = same_colour[i] & ~used & np.all(adj_b[:, image[:i]] == adj_a[i, :i], axis=1)
        for cand in np.flatnonzero(ok):
            image[i], used[cand] = cand, True
            yield from extend(i + 1)
            used[cand] = False

    yield from extend(0)
