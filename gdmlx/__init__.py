"""gdmlx: fast gradient-domain (GDML) kernel force fields for molecular dynamics.

The public names are imported on first use (PEP 562), so that ``import gdmlx`` (and the
command line's ``--help``) does not wait for scikit-learn, numba and ASE."""

import importlib
import importlib.util

from gdmlx._version import __version__
from gdmlx.errors import (DomainWarning, EnergyConsistencyWarning, GeometryError, InputError,
                          InsufficientMemoryError, ModelFileError)

_LAZY = {   # public name: the module it comes from
    "ActionModel": "gdmlx.action",
    "match_atom_order": "gdmlx.atom_order",
    "GDMLCalculator": "gdmlx.calculator",
    "Dataset": "gdmlx.dataset", "load_dataset": "gdmlx.dataset",
    "load_any_model": "gdmlx.modelfile", "load_model": "gdmlx.modelfile", "save_model": "gdmlx.modelfile",
    "MultiscaleModel": "gdmlx.multiscale",
    "ComputeOptions": "gdmlx.options",
    "reduce": "gdmlx.reduction",
    "GDMLRegressor": "gdmlx.regressor", "force_mae_scorer": "gdmlx.regressor",
    "import_sgdml_model": "gdmlx.sgdml_import", "export_sgdml_model": "gdmlx.sgdml_export",
}

__all__ = [
    "__version__", "GDMLRegressor", "ActionModel", "Dataset", "load_dataset", "load_model", "save_model",
    "load_any_model", "GDMLCalculator", "match_atom_order", "reduce", "MultiscaleModel",
    "ComputeOptions", "force_mae_scorer", "import_sgdml_model", "export_sgdml_model",
    "InputError", "GeometryError", "ModelFileError", "InsufficientMemoryError",
    "EnergyConsistencyWarning", "DomainWarning",
]


def __getattr__(name):
    """A public name, or a submodule (``gdmlx.md``), imported on first use."""
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
    elif name.isidentifier() and importlib.util.find_spec(f"{__name__}.{name}") is not None:
        value = importlib.import_module(f"{__name__}.{name}")
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__():
    """The module's names with the public ones not yet imported."""
    return sorted(set(globals()) | set(_LAZY))
