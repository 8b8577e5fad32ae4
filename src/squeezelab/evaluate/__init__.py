"""Evaluation: `metrics` (pure arithmetic on logits and labels), `predict` (running a model over a
data set or image files) and `files` (`evaluate_file`: a model file on its recorded data).

    >>> from squeezelab.evaluate import evaluate, predict
"""

from squeezelab.evaluate.metrics import EvalResult, batch_sums, result_from_sums
from squeezelab.evaluate.predict import confusion_sums, evaluate, predict

__all__ = ["EvalResult", "batch_sums", "confusion_sums", "evaluate", "predict", "result_from_sums"]
