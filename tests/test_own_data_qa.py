"""A chemist's own data: files written by other codes (ASE, numpy), in other units and
names, with a broken frame here and there."""

import ase
import ase.io
import numpy as np
import pytest
from ase.calculators.singlepoint import SinglePointCalculator

from gdmlx import load_dataset
from gdmlx.errors import InputError


def _water_frames(n=4, seed=0):
    """``n`` ASE frames of water with energies [eV] and forces [eV/A] as a calculator's."""
    rng = np.random.default_rng(seed)
    base = np.array([[0.0, 0.0, 0.0], [0.96, 0.0, 0.0], [-0.24, 0.93, 0.0]])
    frames = []
    for _ in range(n):
        a = ase.Atoms("OH2", positions=base + rng.normal(0, 0.02, (3, 3)))
        a.calc = SinglePointCalculator(a, energy=float(rng.normal()), forces=rng.normal(0, 1, (3, 3)))
        frames.append(a)
    return frames


@pytest.mark.parametrize("suffix", [".xyz", ".traj"])
def test_a_frame_with_nan_positions_is_named_as_such(tmp_path, suffix):
    """ASE drops the energy and forces of a frame whose positions are NaN: the message said
    the frame had no energy, and offered energy_key=..."""
    frames = _water_frames()
    frames[2].positions[1, 0] = np.nan
    ase.io.write(tmp_path / f"d{suffix}", frames)
    with pytest.raises(InputError, match=rf"d{suffix}: frame 2 has positions that are NaN or inf \(1 of 4"):
        load_dataset(tmp_path / f"d{suffix}")
