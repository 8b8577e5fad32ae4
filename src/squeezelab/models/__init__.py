"""SqueezeNet models, their building blocks, and the registry that also holds the peers."""

from squeezelab.models import builders as _builders  # noqa: F401  (registers our models)
from squeezelab.models import peers as _peers  # noqa: F401  (registers tv/ peers)
from squeezelab.models.fire import Fire
from squeezelab.models.peers import reset_classifier
from squeezelab.models.rebuild import build, config_of, rebuild, record_of
from squeezelab.models.record import ModelRecord, Provenance
from squeezelab.models.registry import create_model, list_models, model_family, options_of, register_model
from squeezelab.models.squeezenet import (
    SQUEEZENET1_0_TABLE,
    SQUEEZENET1_1_TABLE,
    Metaparameters,
    SqueezeNet,
    min_input_size,
    table_from_metaparameters,
)
from squeezelab.models.weights import WEIGHTS, Weights

__all__ = [
    "Fire", "SqueezeNet", "Metaparameters", "Weights", "WEIGHTS", "ModelRecord", "Provenance",
    "build", "rebuild", "record_of", "config_of", "options_of",
    "SQUEEZENET1_0_TABLE", "SQUEEZENET1_1_TABLE",
    "create_model", "list_models", "model_family", "register_model", "reset_classifier",
    "min_input_size", "table_from_metaparameters",
]
