"""`evaluate_file`: what `squeezelab eval` runs, a model file on the data it records.

It opens files through `squeezelab.loading`, so it sits above the file formats (see
docs/ARCHITECTURE.md), unlike the rest of `squeezelab.evaluate`, which the trainer uses.
"""

from __future__ import annotations

import os

from squeezelab.data.config import describe_evaluation
from squeezelab.data.datasets import open_recorded_dataset
from squeezelab.evaluate.predict import evaluate
from squeezelab.loading import load_predictor


def evaluate_file(path: str | os.PathLike, data_spec: str | None = None, *, batch_size: int = 256,
                  skip_bad_images: bool = False, threads: int | None = None, flip: bool = False) -> dict:
    """Open any model file `load_predictor` knows (.pt, .sqz, .onnx, ...) and evaluate it.

    Without `data_spec` (or with the run's own data) it measures the validation split the file
    records (a checkpoint or .sqz keeps its run's data; an ONNX file keeps none, so it needs
    `data_spec`); other data is measured whole. Returns EvalResult.to_dict() plus `data`,
    `images` (which images, in words), `path` and `format` (the engine that ran it). `flip`:
    test-time augmentation (each image's logits averaged with its mirror image's), recorded as `tta`.

    >>> evaluate_file("runs/latest/best.pt")["top1"]  # doctest: +SKIP
    """
    predictor = load_predictor(path, threads=threads)
    record = predictor.record
    recorded = record.notes.get("data") if isinstance(record.notes.get("data"), dict) else None
    data = open_recorded_dataset(recorded, data_spec, classes=list(record.classes), preprocessing=record.preprocessing,
                                 where=str(path), skip_bad_images=skip_bad_images, held_out=True)
    if list(data.classes) == list(record.classes):
        result = evaluate(predictor, data, batch_size=batch_size, flip=flip).to_dict()
    else:  # e.g. ImageNet folders named by WordNet id, maybe some classes only: match by id or name
        result = _evaluate_matched(predictor, data, batch_size, flip)
    return {**result, "data": data.config.spec, "images": describe_evaluation(data.config), "path": str(path),
            "format": predictor.kind, "tta": "flip" if flip else None}


def _evaluate_matched(model, data, batch_size: int, flip: bool = False) -> dict:
    """Top-1/top-5 over all the model's classes, with each folder mapped to its class by WordNet id
    or name (never by position); per-class figures for the folder's classes only."""
    import torch

    from squeezelab.data.class_match import class_ids_of, match_classes, restrict_result

    keep = match_classes(data.classes, model.record.classes, class_ids_of(model))
    labels = torch.tensor(keep)
    batches = ((x, labels[y]) for x, y in data.batches("val", batch_size, train=False))
    return restrict_result(evaluate(model, batches, classes=model.record.classes, flip=flip).to_dict(), keep,
                           data.classes)
