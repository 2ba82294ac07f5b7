"""Long commands in a log file: how often they report, what an interruption or a stop
leaves and says, and how a run goes on."""

import numpy as np

import gdmlx
from conftest import toy_energy_forces, toy_geometries


def test_iterative_solver_writes_few_lines_to_a_log(capsys):
    """In a log file the solve wrote a line every 50 iterations: 16 lines a second (ethanol,
    200 geometries), thousands in an hour. Now iteration 50's, then one every 10 s."""
    R = toy_geometries(12, seed=5)
    _, F = toy_energy_forces(R)
    opts = gdmlx.ComputeOptions(verbose=True, preconditioner_points=1, cg_tol=1e-14)
    model = gdmlx.GDMLRegressor(sigma=2.0, lam=1e-10, solver="cg", options=opts).fit(
        R, F, z=np.array([6, 6, 8, 6, 1]))
    assert model.fit_info_["cg_products"] >= 150                   # iterations 50, 100, 150 passed
    reports = [line for line in capsys.readouterr().err.splitlines() if "conjugate gradient" in line and "[" in line]
    assert len(reports) == 1 and "[50: " in reports[0]
