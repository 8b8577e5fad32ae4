"""Core ML export (.mlpackage, an ML Program converted by coremltools) for iPhones and Macs.

Core ML runs only on Apple's systems: coremltools converts and saves on Linux, but cannot run
the model there, so the export is checked as far as Linux can: the saved package is read back
and its spec must take one RGB (or BGR) image of the model's crop size and answer with the
model's class labels, in order. Parity with PyTorch is measured on a Mac (`coremltools`'s
`MLModel.predict`) or in the app.

The preprocessing is baked in the way Core ML expects: the input is an `ImageType`, so an app
hands over a CVPixelBuffer (Vision's VNCoreMLRequest resizes and crops it, with
`imageCropAndScaleOption = .centerCrop` matching the recorded resize-then-centre-crop) and Core ML
applies `scale * pixel + bias`. A scale is one number for all channels, so where the standard
deviations differ per channel (ImageNet's do) the image input only rescales pixels and a first
layer of the converted model subtracts the mean and divides by each channel's deviation. The
model is a classifier (`ClassifierConfig`): its outputs are `classLabel` and `classLabel_probs`,
and the full record travels in the package's user metadata (keys `squeezelab.*`, as in ONNX).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import torch
from torch import nn

from squeezelab.errors import SqueezelabError
from squeezelab.export.mobile import export_program, first_line, import_mobile, quiet
from squeezelab.export.onnx import metadata_for, model_input_size
from squeezelab.models.rebuild import record_of
from squeezelab.preprocessing import Preprocessing

SUFFIX = ".mlpackage"
INPUT_NAME = "image"
NOT_RUN = "not run: Core ML runs only on macOS and iOS; checked the saved spec (image input, class labels)"


class _Normalize(nn.Module):
    """(x - mean) / std per channel, for preprocessing an ImageType's single scale cannot express."""

    def __init__(self, model: nn.Module, mean, std):
        super().__init__()
        self.model = model
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model((x - self.mean) / self.std)


def image_input(preprocessing: Preprocessing, model: nn.Module):
    """(the model to convert, ImageType keyword arguments): scale and bias on the image input when
    one scale serves every channel, else a normalising first layer."""
    to_unit = preprocessing.pixel_range / 255.0
    if len(set(preprocessing.std)) == 1:
        std = preprocessing.std[0]
        return model, {"scale": to_unit / std, "bias": [-m / std for m in preprocessing.mean]}
    return _Normalize(model, preprocessing.mean, preprocessing.std).eval(), {"scale": to_unit, "bias": [0.0] * 3}


def _save_package(mlmodel, path: Path, check) -> dict:
    """Save the package (a folder) beside `path`, `check` it, and rename it into place, replacing
    an old one; returns what `check` found."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".squeezelab-coreml-", dir=path.parent) as tmp:
        fresh = Path(tmp) / path.name
        with quiet():
            mlmodel.save(str(fresh))
        checked = check(fresh)
        if path.exists():
            os.replace(path, Path(tmp) / "old")  # the old package goes with the temporary folder
        os.replace(fresh, path)
    return checked


def package_size(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def export_coreml(model: nn.Module, path: str | os.PathLike, *, input_size: int | None = None) -> dict:
    """Write `model` (with its `.record`) as a Core ML ML Program classifier with an image input,
    fp32, and check the saved spec (Core ML itself cannot run on Linux).

    >>> export_coreml(squeezelab.load_model("best.pt"), "m.mlpackage")["classes"]  # doctest: +SKIP
    """
    path = Path(path)
    if path.suffix.lower() != SUFFIX:
        raise SqueezelabError(f"a Core ML model is an .mlpackage; got -o {path}")
    ct = import_mobile("coremltools", "Core ML export")
    model = model.eval().float().to(memory_format=torch.contiguous_format)
    record = record_of(model)
    size = input_size or model_input_size(model)
    if len(record.preprocessing.mean) != 3:
        raise SqueezelabError(f"Core ML image inputs have 3 channels; {record.name} takes {len(record.preprocessing.mean)}")
    wrapped, scale_bias = image_input(record.preprocessing, model)
    program = export_program(wrapped, torch.zeros(1, 3, size, size)).run_decompositions({})
    layout = ct.colorlayout.BGR if record.preprocessing.channel_order == "BGR" else ct.colorlayout.RGB
    try:
        with quiet():
            mlmodel = ct.convert(program, inputs=[ct.ImageType(name=INPUT_NAME, shape=(1, 3, size, size),
                                                               color_layout=layout, **scale_bias)],
                                 classifier_config=ct.ClassifierConfig(list(record.classes)),
                                 convert_to="mlprogram", compute_precision=ct.precision.FLOAT32,
                                 minimum_deployment_target=ct.target.iOS16)
    except Exception as exc:
        raise SqueezelabError(f"Core ML conversion failed: {first_line(exc)}") from None
    mlmodel.short_description = f"{record.name}: {len(record.classes)} classes, {size}x{size} {layout.name} image input"
    for key, value in metadata_for(model, size).items():
        mlmodel.user_defined_metadata[key] = value
    checked = _save_package(mlmodel, path, lambda saved: check_coreml(saved, size, list(record.classes), layout.name))
    return {"path": str(path), "format": "coreml", "precision": "fp32", "input_size": size,
            "size_bytes": package_size(path), "max_abs_diff": None, "top1_agreement": None, "checked_on": NOT_RUN,
            "image_scale": scale_bias["scale"], "image_bias": scale_bias["bias"], **checked}


def check_coreml(path: str | os.PathLike, input_size: int, classes: list[str], color: str = "RGB") -> dict:
    """Read the saved package's spec back and check what Linux can: one `color` image input of
    input_size x input_size, a classifier answering with `classes` in order."""
    ct = import_mobile("coremltools", "checking a Core ML model")
    with quiet():
        spec = ct.models.MLModel(str(path), skip_model_load=True).get_spec()
    inputs = list(spec.description.input)
    problems = []
    if len(inputs) != 1 or inputs[0].type.WhichOneof("Type") != "imageType":
        problems.append(f"expected one image input, found {[i.name for i in inputs]}")
    else:
        image = inputs[0].type.imageType
        if (image.width, image.height) != (input_size, input_size):
            problems.append(f"input is {image.width}x{image.height}, expected {input_size}x{input_size}")
        if ct.proto.FeatureTypes_pb2.ImageFeatureType.ColorSpace.Name(image.colorSpace) != color:
            problems.append(f"input colour space is not {color}")
    outputs = {o.name for o in spec.description.output}
    if spec.description.predictedFeatureName not in outputs or spec.description.predictedProbabilitiesName not in outputs:
        problems.append(f"not a classifier: outputs {sorted(outputs)}")
    labels = _class_labels(spec)
    if labels != classes:
        problems.append(f"class labels {labels[:5]}... differ from the model's {classes[:5]}...")
    if problems:
        raise SqueezelabError(f"{path}: the Core ML spec does not match the model: {'; '.join(problems)}")
    return {"classes": len(labels), "spec": f"image {input_size}x{input_size} {color} -> classLabel, classLabel_probs"}


def _class_labels(spec) -> list[str]:
    """The labels of the ML Program's `classify` operation (its `classes` constant)."""
    for function in spec.mlProgram.functions.values():
        for block in function.block_specializations.values():
            constants = {op.outputs[0].name: op for op in block.operations if op.type == "const"}
            for op in block.operations:
                if op.type == "classify":
                    source = op.inputs["classes"].arguments[0]
                    value = source.value if source.HasField("value") else constants[source.name].attributes["val"]
                    value = value.immediateValue
                    if value.HasField("list"):  # a list of one-string tensors
                        return [v for item in value.list.values for v in item.immediateValue.tensor.strings.values]
                    return list(value.tensor.strings.values)
    return []
