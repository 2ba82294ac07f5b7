"""Structural statistics of MD trajectories against the reference data's own trajectory.

The datasets in ../shared/data are frames of one GFN2-xTB Langevin run at 500 K, so their
bond-length distributions are what a faithful force field should reproduce at that
temperature. For each gdmlx trajectory (``gdmlx md`` output, .h5) this prints the largest
difference of a bond-length mean from the data's, the RMS of those differences in units
of their standard error (10 block means of each series), the mean ratio of bond-length
widths, and the total variation distance of a backbone dihedral's histogram.

    python benchmarks/md_vs_data.py --data ../shared/data/oleic-acid.npz full.h5 ms.h5
"""

import argparse
import json

import numpy as np

import gdmlx
import gdmlx.md
from gdmlx.multiscale import bond_graph_pairs

from bench_multiscale import dihedral, first_dihedral


def block_mean_se(x, blocks=10):
    """Mean (over axis 0) and its standard error from ``blocks`` block means."""
    b = np.array([c.mean(0) for c in np.array_split(x, blocks)])
    return x.mean(0), b.std(0, ddof=1) / np.sqrt(blocks)


def compare_to_data(positions, R_data, bonds, dih):
    """Bond-length and dihedral statistics of ``positions`` (n, N, 3) against ``R_data``."""
    i, j = bonds[:, 0], bonds[:, 1]
    length = lambda R: np.linalg.norm(R[:, i] - R[:, j], axis=-1)
    (m_t, se_t), (m_d, se_d) = block_mean_se(length(positions)), block_mean_se(length(R_data))
    z = (m_t - m_d) / np.sqrt(se_t**2 + se_d**2)
    out = {"bond_mean_diff_max_A": float(np.abs(m_t - m_d).max()),
           "bond_mean_diff_over_stderr_rms": float(np.sqrt((z**2).mean())),
           "bond_std_ratio_mean": float((length(positions).std(0) / length(R_data).std(0)).mean())}
    if dih is not None:
        bins = np.linspace(-180, 180, 37)
        h = lambda R: np.histogram(dihedral(R, *dih), bins)[0] / len(R)
        out["dihedral_atoms"] = [int(a) for a in dih]
        out["dihedral_tvd"] = float(0.5 * np.abs(h(positions) - h(R_data)).sum())
    return out


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", required=True)
    p.add_argument("trajectories", nargs="+")
    args = p.parse_args()
    ds = gdmlx.load_dataset(args.data)
    bonds = bond_graph_pairs(ds.z, ds.R, 1)
    dih = first_dihedral([tuple(b) for b in bonds], len(ds.z))
    half = len(ds.R) // 2
    res = {"data_halves": compare_to_data(ds.R[:half], ds.R[half:], bonds, dih)}
    for path in args.trajectories:
        res[path] = compare_to_data(gdmlx.md.read_trajectory(path)["positions"], ds.R, bonds, dih)
    print(json.dumps(res, indent=1))


if __name__ == "__main__":
    main()
