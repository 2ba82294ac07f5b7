"""gdmlx: fast gradient-domain (GDML) kernel force fields for molecular dynamics."""

from gdmlx._version import __version__
from gdmlx.errors import (DomainWarning, EnergyConsistencyWarning, GeometryError, InputError,
                          InsufficientMemoryError, ModelFileError)
from gdmlx.action import ActionModel
from gdmlx.atom_order import match_atom_order
from gdmlx.calculator import GDMLCalculator
from gdmlx.dataset import Dataset, load_dataset
from gdmlx.modelfile import load_any_model, load_model, save_model
from gdmlx.multiscale import MultiscaleModel
from gdmlx.options import ComputeOptions
from gdmlx.reduction import reduce
from gdmlx.regressor import GDMLRegressor, force_mae_scorer
from gdmlx.sgdml_import import import_sgdml_model

__all__ = [
    "__version__", "GDMLRegressor", "ActionModel", "Dataset", "load_dataset", "load_model", "save_model",
    "load_any_model", "GDMLCalculator", "match_atom_order", "reduce", "MultiscaleModel",
    "ComputeOptions", "force_mae_scorer", "import_sgdml_model",
    "InputError", "GeometryError", "ModelFileError", "InsufficientMemoryError",
    "EnergyConsistencyWarning", "DomainWarning",
]
