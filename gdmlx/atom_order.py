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
from gdmlx.symmetry import isomorphisms, refined_colours
from gdmlx.units import in_angstrom
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
    d_model = _model_distances(model)
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


def _model_distances(model):
    """(N, N) mean distances [A] of the model's training geometries, or (for models that
    kept none) from its descriptors, which must then cover every pair."""
    N = len(model.z_)
    R = getattr(model, "R_train_", None)
    if R is not None:
        R = in_angstrom(R, model.length_unit_)
        return np.linalg.norm(R[:, :, None] - R[:, None], axis=-1).mean(axis=0)
    d = np.full((N, N), np.nan)
    for part in model.force_parts():
        mean = in_angstrom(1.0 / part.X, model.length_unit_).mean(axis=0)
        d[part.pairs[:, 0], part.pairs[:, 1]] = d[part.pairs[:, 1], part.pairs[:, 0]] = mean
    np.fill_diagonal(d, 0.0)
    if np.isnan(d).any():
        raise InputError("this model keeps neither its training geometries nor every pair: its atom "
                         "order cannot be matched")
    return d


def _block_diagonal(a, b):
    out = np.zeros((len(a) + len(b),) * 2, dtype=bool)
    out[:len(a), :len(a)], out[len(a):, len(a):] = a, b
    return out
