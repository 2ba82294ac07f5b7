"""Put a geometry's atoms in a model's order.

A model's features are distances between atoms *by index*, so a geometry of the same
molecule with its atoms listed in another order (ASE's ``molecule("CH3CH2OH")`` against a
dataset's ethanol, an .xyz file from another program) describes something the model never
saw. :func:`match_atom_order` finds the order by matching covalent bond graphs (atoms
coloured by element): of the graph isomorphisms from the model's molecule onto the given
one, it takes the one whose interatomic distances are closest (RMS) to the model's mean
training distances, which picks among symmetry-equivalent atoms (methyl hydrogens) too.
"""

import numpy as np

from gdmlx.bonds import bonded
from gdmlx.dataset import chemical_formula
from gdmlx.errors import InputError
from gdmlx.md.domain import training_distances
from gdmlx.symmetry import isomorphisms, refined_colours
from gdmlx.validation import check_geometries


def match_atom_order(atoms, model, max_matches=5000):
    """A copy of ASE ``atoms`` with its atoms in ``model``'s order (positions, velocities
    and every other per-atom array permuted with them).

    Raises InputError when the elements differ or no order makes the bond graphs agree
    (another molecule, or a geometry with a bond broken or formed). At most
    ``max_matches`` candidate orders are compared.
    """
    return atoms[atom_order(atoms.numbers, atoms.get_positions(), model, max_matches)]


def atom_order(z, positions, model, max_matches=5000):
    """Indices (N,) into the given atoms: ``positions[order]`` (N, 3) [A] lists them in the
    model's order. ``z`` (N,) their atomic numbers. See :func:`match_atom_order`."""
    z = np.asarray(z)
    q = check_geometries(positions, len(z), "positions")
    z_model = np.asarray(model.z_)
    if sorted(z.tolist()) != sorted(z_model.tolist()):
        raise InputError(f"these atoms ({chemical_formula(z)}) are not the model's molecule "
                         f"({chemical_formula(z_model)})")
    d_model = training_distances(model)[0]
    if np.isnan(d_model).any():
        raise InputError("this model keeps neither its training geometries nor every pair: its atom "
                         "order cannot be matched")
    d = np.linalg.norm(q[0][:, None] - q[0][None], axis=-1)
    adj_model, adj = bonded(z_model, d_model), bonded(z, d)
    both = refined_colours(_block_diagonal(adj_model, adj), np.concatenate([z_model, z]))
    N = len(z)
    best, best_rms = None, np.inf
    for k, image in enumerate(isomorphisms(adj_model, both[:N], adj, both[N:])):
        if k >= max_matches:
            break
        image = np.asarray(image)
        rms = np.sqrt(np.mean((d[np.ix_(image, image)] - d_model) ** 2))
        if rms < best_rms:
            best, best_rms = image, rms
    if best is None:
        raise InputError("no order of these atoms gives the model's bond graph: another molecule, or a "
                         "geometry with a bond broken or formed (bonds: closer than 1.25 x the sum of "
                         "covalent radii)")
    return best


def _block_diagonal(a, b):
    out = np.zeros((len(a) + len(b),) * 2, dtype=bool)
    out[:len(a), :len(a)], out[len(a):, len(a):] = a, b
    return out
