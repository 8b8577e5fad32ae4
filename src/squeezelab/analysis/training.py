"""The one place explore and compare call the project's trainer (`squeezelab.train.run.train`).

Both train many models with the same recipe; this adapter fixes that recipe (TrainConfig defaults
plus the caller's overrides, `default_model_config`'s convergent model options for the data) and
returns what they record. The accuracy they report is the *final* model's, never an epoch chosen
by it: on a folder with train/ and test/ (CIFAR-10 as JPEG folders), top-1 on all of test/, which
the trainer never reads (it validates on a part of train/ it holds out); otherwise the final
epoch's validation top-1. A function with the same keywords and result keys can be passed to
`explore(..., train_fn=...)` instead (tests do, to count and interrupt calls).
"""

from __future__ import annotations

from pathlib import Path


def train_model(*, model: str, model_kwargs: dict, data: str, epochs: int, seed: int, out_dir: str | Path,
                train_options: dict | None = None, threads: int | None = None,
                image_size: int | None = None, amp: str = "auto") -> dict:
    """Train `model` on `data` into `out_dir` (resuming from its last.pt when one is there).

    Returns the trainer's result plus `num_classes`, `image_size`, `model_options` (the options
    the model was built with, so a caller can rebuild it to measure size and MACs), `accuracy`
    (the final model's top-1) and `accuracy_on` ("test" or "validation": which images).
    """
    from squeezelab.data import DataConfig, open_dataset
    from squeezelab import runtime
    from squeezelab.train.config import TrainConfig
    from squeezelab.train.recipe import default_model_config
    from squeezelab.train.run import train

    data_config = DataConfig(data, image_size=image_size)
    dataset = open_dataset(data_config)
    model_config = default_model_config(dataset, model, **model_kwargs)
    # from scratch, whatever the data: the design space and the peers are compared as trained alike
    train_config = TrainConfig(**{"weights": "none", **(train_options or {}), "epochs": epochs, "seed": seed})
    out_dir = Path(out_dir)
    result = train(model_config, data_config, train_config, runtime.SpeedConfig(threads=threads, amp=amp),
                   out=str(out_dir), resume=(out_dir / "last.pt").is_file())
    options = {**model_config.options, "num_classes": dataset.num_classes}
    return {**result, **final_accuracy(result, data, threads), "num_classes": dataset.num_classes,
            "image_size": dataset.image_size, "model_options": options}


def final_accuracy(result: dict, data: str, threads: int | None = None) -> dict:
    """The final model's top-1: on all of `data`/test/ for a folder with train/ and test/ (and no
    val/, which the trainer would validate on instead); otherwise its last validation, which for
    the pickled CIFAR sets (`cifar10:ROOT`) is their test batch."""
    kind, sep, _ = data.partition(":")
    if sep and kind in ("cifar10", "cifar100"):
        return {"accuracy": result["final_val_acc"], "accuracy_on": "test"}
    folder = Path(data).expanduser()
    test = folder / "test"
    if not (test.is_dir() and (folder / "train").is_dir() and not (folder / "val").is_dir()):
        return {"accuracy": result["final_val_acc"], "accuracy_on": "validation"}
    from squeezelab.evaluate.files import evaluate_file

    scored = evaluate_file(result["last_checkpoint"], str(test), threads=threads)
    return {"accuracy": scored["top1"], "accuracy_on": "test", "test_images": scored["count"]}
