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

import gdmlx
import gdmlx.md
from gdmlx.multiscale import bond_graph_pairs

from bench_multiscale import compare_to_data, first_dihedral


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
