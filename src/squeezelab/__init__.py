"""squeezelab: build, train, inspect, compress, export and serve SqueezeNet."""

from squeezelab.analysis.summary import summarize
from squeezelab.errors import SqueezelabError
from squeezelab.loading import load_model
from squeezelab.models import create_model, list_models

__version__ = "0.1.0"
__all__ = ["create_model", "list_models", "load_model", "summarize", "SqueezelabError", "__version__"]
