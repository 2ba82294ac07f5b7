"""Start-up of the package and the command line: ``import gdmlx`` and every ``--help`` do not
wait for the heavy libraries, the public names still resolve, and Ctrl-C or SIGTERM while a
subcommand is still importing ends it with a message, not a traceback. Each check runs in a
fresh interpreter, where nothing is imported yet."""

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

import gdmlx

HEAVY = ("numpy", "scipy", "sklearn", "numba", "ase", "h5py")   # none needed to build the parser


def fresh_python(code):
    """Command line and environment of a fresh interpreter running ``code`` with this
    checkout's gdmlx."""
    root = str(Path(gdmlx.__file__).parents[1])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([root, os.environ.get("PYTHONPATH", "")])}
    return [sys.executable, "-c", code], env


def run_python(code):
    argv, env = fresh_python(code)
    return subprocess.run(argv, env=env, text=True, capture_output=True, timeout=120)


def test_import_and_every_help_load_no_heavy_library():
    code = f"""
import sys
import gdmlx
from gdmlx.cli.main import build_parser, main
from gdmlx.cli.reference import _subcommands
commands = [[]] + [name.split()[1:] for name, _ in _subcommands(build_parser(), "gdmlx")]
for argv in commands:
    try:
        main(argv + ["--help"])
    except SystemExit as exc:
        assert exc.code == 0, argv
print(sorted({{m.split(".")[0] for m in sys.modules}} & set({HEAVY!r})))
"""
    res = run_python(code)
    assert res.returncode == 0, res.stderr
    assert res.stdout.splitlines()[-1] == "[]", res.stdout.splitlines()[-1]


def test_every_public_name_resolves_to_its_module_object():
    code = """
import importlib
import gdmlx
names = {}
exec("from gdmlx import *", names)
assert set(gdmlx.__all__) <= set(names) and set(gdmlx.__all__) <= set(dir(gdmlx))
for name, module in gdmlx._LAZY.items():
    assert names[name] is getattr(importlib.import_module(module), name), name
assert gdmlx.md.Simulation is importlib.import_module("gdmlx.md.simulation").Simulation   # a submodule
assert not hasattr(gdmlx, "no_such_name") and not hasattr(gdmlx, "md.simulation")
"""
    res = run_python(code)
    assert res.returncode == 0, res.stderr


@pytest.mark.parametrize("signum, code, message", [(signal.SIGINT, 130, "gdmlx: interrupted"),
                                                    (signal.SIGTERM, 143, "gdmlx: terminated (SIGTERM)")])
def test_a_signal_during_a_subcommands_imports_is_a_message(signum, code, message):
    """``gdmlx demo`` stopped while it imports scikit-learn (held there by a finder that
    sleeps): one line on stderr and the exit code of Ctrl-C (SIGTERM), as later in a run."""
    blocked = """
import signal, sys, time
signal.signal(signal.SIGINT, signal.default_int_handler)   # as in a terminal, where the tests' parent may ignore it

class SlowImport:
    def find_spec(self, name, path=None, target=None):
        if name == "sklearn":
            print("importing", name, flush=True)
            time.sleep(60)

sys.meta_path.insert(0, SlowImport())
from gdmlx.cli.main import main
sys.exit(main(["demo"]))
"""
    argv, env = fresh_python(blocked)
    proc = subprocess.Popen(argv, env=env, text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert proc.stdout.readline() == "importing sklearn\n"
        proc.send_signal(signum)
        out, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert (proc.returncode, err) == (code, message + "\n")
