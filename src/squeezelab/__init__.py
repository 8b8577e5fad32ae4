"""squeezelab: build, train, inspect, compress, export and serve SqueezeNet.

The public names load on first use (PEP 562), so `squeezelab --help` and the command line's
argument errors answer without importing torch.
"""

from squeezelab.errors import SqueezelabError
from squeezelab.utils.lazy import lazy_exports

__version__ = "0.1.0"
__all__ = ["create_model", "list_models", "load_model", "load_predictor", "summarize", "SqueezelabError", "__version__"]

__getattr__, __dir__ = lazy_exports(__name__, {
    "create_model": "squeezelab.models", "list_models": "squeezelab.models",
    "load_model": "squeezelab.loading", "load_predictor": "squeezelab.loading", "summarize": "squeezelab.analysis.summary",
})
