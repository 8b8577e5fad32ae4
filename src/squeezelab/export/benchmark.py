"""Inference speed and size of a model on every CPU backend, against PyTorch eager in the same run.

Backends (each row carries `ratio_vs_eager` = eager median / this median, so >1 is faster):
- `eager`: PyTorch fp32, NCHW, the reference.
- `channels_last`: PyTorch fp32 in NHWC, about 2x eager on a 2-core AVX-512 CPU.
- `bf16`, `compile`: bf16 autocast and torch.compile; measured slower on this CPU (no BF16/AMX), so
  opt-in (`--backends`).
- `ort_fp32`, `ort_int8` (QDQ U8S8 per-channel, the default int8 format), `ort_int8_qoperator`
  (QOperator U8S8), `ort_int8_s8s8` (QDQ S8S8, ONNX Runtime's documented default; slow without
  a fast s8 x s8 path): ONNX Runtime. See export/int8.py for the measurements.
- `openvino_fp32`, `openvino_int8` (NNCF post-training quantization), `ncnn_fp32` (converted by
  pnnx, fp16 off): the `deploy` extra's runtimes; where one is not installed its row says so.
- `executorch_fp32`, `executorch_int8` (XNNPACK delegate; XNNPACKQuantizer int8), `litert_fp32`,
  `litert_int8` (full-integer PT2E int8, run with LiteRT's XNNPACK delegate): the `mobile` extra's
  runtimes, the engines phones run, timed here on the CPU. Their programs take batch 1, so a
  larger batch is run one image at a time (as an app does).

A model file that holds no torch module (an .onnx file, or any format registered with
`loading.register_predictor_loader`) is timed as it is, on its own engine: one row per batch
with `backend` = the engine's name and no eager reference.

Int8 speed does not depend on which images calibrate it, so without calibration images the int8
models for speed are calibrated on seeded random inputs; accuracy (top-1 agreement) is measured by
`export.int8.top1_agreement` on real images (bench/inference.py).
"""

from __future__ import annotations

import io
import os
import tempfile
from pathlib import Path
from typing import Sequence

import torch
from torch import nn

from squeezelab.errors import SqueezelabError
from squeezelab.export.config import BENCH_BACKENDS, DEFAULT_BENCH_BACKENDS, DEFAULT_BENCH_MODELS, REGISTRY_INPUT_SIZE
from squeezelab.loading import Predictor, load_predictor
from squeezelab.utils.timing import time_call

BACKENDS, DEFAULT_BACKENDS, DEFAULT_MODELS = BENCH_BACKENDS, DEFAULT_BENCH_BACKENDS, DEFAULT_BENCH_MODELS


def resolve_model(spec: str | nn.Module, threads: int | None = None) -> tuple[str, nn.Module | Predictor]:
    """A registry name or a model file -> (label, model in eval mode); a file is labelled by its
    path as given, so runs/a/best.pt and runs/b/best.pt stay apart. A file that holds a torch
    module (.pt, .sqz) gives the module; any other format its `Predictor`."""
    from squeezelab.models import create_model, list_models

    if isinstance(spec, nn.Module):
        return (spec.record.name if hasattr(spec, "record") else type(spec).__name__), spec.eval()
    if spec in list_models():
        return spec, create_model(spec).eval()
    if os.path.exists(spec):
        predictor = load_predictor(spec, threads=threads)
        if predictor.module is None:
            return str(spec), predictor
        return str(spec), predictor.module.to(memory_format=torch.contiguous_format).eval()
    return spec, create_model(spec).eval()  # raises the registry's "unknown model, did you mean" error


def _state_dict_bytes(model: nn.Module) -> int:
    buffer = io.BytesIO()
    torch.save(model.state_dict(), buffer)
    return buffer.tell()


def _torch_runner(model: nn.Module, x: torch.Tensor, backend: str):
    if backend == "eager":
        return lambda: model(x)
    model_cl = model.to(memory_format=torch.channels_last)
    x_cl = x.contiguous(memory_format=torch.channels_last)
    if backend == "channels_last":
        return lambda: model_cl(x_cl)
    if backend == "bf16":
        def run():
            with torch.autocast("cpu", dtype=torch.bfloat16):
                return model_cl(x_cl)
        return run
    if backend == "compile":
        compiled = torch.compile(model_cl)
        return lambda: compiled(x_cl)
    raise SqueezelabError(f"unknown backend {backend!r}; choose from {', '.join(BACKENDS)}")


def _ort_files(model: nn.Module, input_size: int, backends: Sequence[str], tmp: Path, calibration) -> dict[str, Path]:
    from squeezelab.export.int8 import quantize_int8
    from squeezelab.export.onnx import export_onnx

    files = {"ort_fp32": tmp / "fp32.onnx"}
    export_onnx(model, files["ort_fp32"], dynamic_batch=True, input_size=input_size)
    if calibration is None and any(b.startswith("ort_int8") for b in backends):
        generator = torch.Generator().manual_seed(0)
        calibration = [torch.randn(8, 3, input_size, input_size, generator=generator) for _ in range(4)]
    for backend, fmt in (("ort_int8", "qdq"), ("ort_int8_qoperator", "qoperator"), ("ort_int8_s8s8", "qdq_s8s8")):
        if backend in backends:
            files[backend] = tmp / f"{fmt}.onnx"
            quantize_int8(files["ort_fp32"], files[backend], calibration, format=fmt)
    return files


def _runtime_models(model: nn.Module, input_size: int, backends: Sequence[str], tmp: Path, calibration,
                    threads: int | None) -> dict[str, tuple]:
    """backend -> (callable on a float32 NCHW array, file size) for the OpenVINO and ncnn rows."""
    wanted = [b for b in backends if b.startswith(("openvino", "ncnn"))]
    models: dict[str, tuple] = {}
    if any(b.startswith("openvino") for b in wanted):
        from squeezelab.export.openvino import export_openvino, load_openvino, quantize_openvino

        fp32 = export_openvino(model, tmp / "fp32.xml", input_size=input_size)
        models["openvino_fp32"] = (load_openvino(tmp / "fp32.xml", threads=threads), fp32["size_bytes"])
        if "openvino_int8" in wanted:
            generator = torch.Generator().manual_seed(0)
            calibration = calibration or [torch.randn(8, 3, input_size, input_size, generator=generator) for _ in range(4)]
            int8 = quantize_openvino(model, tmp / "fp32.xml", tmp / "int8.xml", calibration)
            models["openvino_int8"] = (load_openvino(tmp / "int8.xml", threads=threads), int8["size_bytes"])
    if "ncnn_fp32" in wanted:
        from squeezelab.export.ncnn import export_ncnn, load_ncnn

        report = export_ncnn(model, tmp / "ncnn.param", input_size=input_size)
        models["ncnn_fp32"] = (load_ncnn(tmp / "ncnn.param", threads=threads), report["size_bytes"])
    return models


def _mobile_models(model: nn.Module, input_size: int, backends: Sequence[str], tmp: Path, calibration,
                   threads: int | None, engine: str) -> dict[str, tuple]:
    """backend -> (callable on a float32 NCHW array, file size) for one phone runtime's rows
    (`engine` "executorch" or "litert"), written and opened by the same functions `squeezelab
    export` and `load_predictor` use."""
    if engine == "executorch":
        from squeezelab.export.executorch import export_executorch as export, load_executorch as load
        from squeezelab.export.executorch import quantize_executorch as quantize
        suffix = ".pte"
    else:
        from squeezelab.export.litert import export_litert as export, load_litert as load
        from squeezelab.export.litert import quantize_litert as quantize
        suffix = ".tflite"
    models: dict[str, tuple] = {}
    fp32 = export(model, tmp / f"fp32{suffix}", input_size=input_size)
    models[f"{engine}_fp32"] = (load(tmp / f"fp32{suffix}", threads=threads), fp32["size_bytes"])
    if f"{engine}_int8" in backends:
        generator = torch.Generator().manual_seed(0)
        calibration = calibration or [torch.randn(8, 3, input_size, input_size, generator=generator) for _ in range(4)]
        int8 = quantize(model, tmp / f"int8{suffix}", calibration, calibration, input_size=input_size,
                        held_out_name="calibration")
        models[f"{engine}_int8"] = (load(tmp / f"int8{suffix}", threads=threads), int8["size_bytes"])
    return models


def _runtime_models_or_errors(model: nn.Module, input_size: int, backends: Sequence[str], tmp: Path, calibration,
                              threads: int | None) -> tuple[dict[str, tuple], dict[str, str]]:
    """`_runtime_models` and `_mobile_models`, with a runtime that is missing or fails here turned
    into its rows' error (each engine on its own, so a missing one leaves the others' rows)."""
    groups = [(("openvino", "ncnn"), lambda: _runtime_models(model, input_size, backends, tmp, calibration, threads))]
    for engine in ("executorch", "litert"):
        groups.append(((engine,), lambda e=engine: _mobile_models(model, input_size, backends, tmp, calibration,
                                                                  threads, e)))
    models: dict[str, tuple] = {}
    failed: dict[str, str] = {}
    for prefixes, build in groups:
        wanted = [b for b in backends if b.startswith(prefixes)]
        if not wanted:
            continue
        try:
            models.update(build())
        except Exception as exc:  # an optional runtime not installed, or one that cannot convert this model
            message = f"{type(exc).__name__}: {str(exc).splitlines()[0][:100] if str(exc) else ''}"
            failed.update({b: message for b in wanted})
    return models, failed


def benchmark_model(
    spec: str | nn.Module,
    *,
    batches: Sequence[int] = (1, 8, 32),
    input_size: int | None = None,
    backends: Sequence[str] = DEFAULT_BACKENDS,
    threads: int | None = None,
    min_seconds: float = 1.0,
    calibration: list[torch.Tensor] | None = None,
) -> list[dict]:
    """Rows of {model, backend, batch, input_size, ms_median, ms_p90, images_per_s, size_bytes,
    ratio_vs_eager} for one model; eager is always measured first as the reference.

    input_size None: the size the model was trained for (a file's preprocessing crop), or 224 for
    a registry model; a model trained at 48 px timed at 224 px would describe another workload.

    >>> rows = benchmark_model("squeezenet1_1", batches=[1], input_size=64, backends=["eager"], min_seconds=0.05)
    >>> rows[0]["ratio_vs_eager"]
    1.0
    """
    from squeezelab.export.onnx import make_session

    unknown = [b for b in backends if b not in BACKENDS]
    if unknown:
        raise SqueezelabError(f"unknown backend {unknown[0]!r}; choose from {', '.join(BACKENDS)}")
    backends = ["eager", *[b for b in backends if b != "eager"]]
    label, model = resolve_model(spec, threads)
    if isinstance(model, Predictor):
        return _benchmark_predictor(label, model, batches, input_size or model.preprocessing.crop, min_seconds)
    model = model.float().eval()
    record = getattr(model, "record", None)  # a peer's torchvision module may come without one
    input_size = input_size or (record.preprocessing.crop if record else REGISTRY_INPUT_SIZE)
    if threads:
        torch.set_num_threads(threads)
    rows: list[dict] = []
    with tempfile.TemporaryDirectory(prefix="squeezelab-bench-") as tmp:
        onnx_files = _ort_files(model, input_size, backends, Path(tmp), calibration) if any(
            b.startswith("ort") for b in backends) else {}
        sessions = {b: make_session(f, threads) for b, f in onnx_files.items() if b in backends}
        runtimes, failed = _runtime_models_or_errors(model, input_size, backends, Path(tmp), calibration, threads)
        torch_size = _state_dict_bytes(model)
        for batch in batches:
            x = torch.randn(batch, 3, input_size, input_size)
            reference = None
            for backend in backends:
                if backend in failed:
                    rows.append({"model": label, "backend": backend, "batch": batch, "input_size": input_size,
                                 "error": failed[backend]})
                    continue
                if backend in runtimes:
                    run = lambda m=runtimes[backend][0], a=x.numpy(): m(a)  # noqa: E731
                    size = runtimes[backend][1]
                elif backend in sessions:
                    session, feed = sessions[backend], {"input": x.numpy()}
                    run = lambda s=session, f=feed: s.run(None, f)  # noqa: E731
                    size = onnx_files[backend].stat().st_size
                else:
                    run = _torch_runner(model, x, backend)
                    size = torch_size
                with torch.inference_mode():
                    try:
                        timing = time_call(run, min_seconds=min_seconds)
                    except Exception as exc:  # a backend that does not work here (e.g. compile without a compiler)
                        rows.append({"model": label, "backend": backend, "batch": batch, "input_size": input_size,
                                     "error": f"{type(exc).__name__}: {str(exc).splitlines()[0][:100] if str(exc) else ''}"})
                        continue
                if backend == "eager":
                    reference = timing.ms_median
                rows.append({
                    "model": label, "backend": backend, "batch": batch, "input_size": input_size,
                    "ms_median": timing.ms_median, "ms_p90": timing.ms_p90, "runs": timing.runs,
                    "images_per_s": batch * 1e3 / timing.ms_median, "size_bytes": size,
                    "ratio_vs_eager": round(reference / timing.ms_median, 3) if reference else None,
                })
            model.to(memory_format=torch.contiguous_format)
    return rows


def _benchmark_predictor(label: str, predictor: Predictor, batches: Sequence[int], input_size: int,
                         min_seconds: float) -> list[dict]:
    """Rows for a file run by its own engine (ONNX Runtime, ...): no torch module, so no eager row."""
    rows: list[dict] = []
    for batch in batches:
        x = torch.randn(batch, 3, input_size, input_size)
        row = {"model": label, "backend": predictor.kind, "batch": batch, "input_size": input_size}
        try:
            timing = time_call(lambda: predictor.predict_logits(x), min_seconds=min_seconds)
        except Exception as exc:  # e.g. a fixed input size other than --image-size
            rows.append({**row, "error": f"{type(exc).__name__}: {str(exc).splitlines()[0][:100] if str(exc) else ''}"})
            continue
        rows.append({**row, "ms_median": timing.ms_median, "ms_p90": timing.ms_p90, "runs": timing.runs,
                     "images_per_s": batch * 1e3 / timing.ms_median, "size_bytes": predictor.size_bytes,
                     "ratio_vs_eager": None})
    return rows


def benchmark(models: Sequence[str | nn.Module] = DEFAULT_MODELS, **kwargs) -> list[dict]:
    """`benchmark_model` for each model, all in one run so the ratios compare."""
    rows: list[dict] = []
    for spec in models:
        rows.extend(benchmark_model(spec, **kwargs))
    return rows


def ratio(rows: Sequence[dict], model: str, batch: int, backend: str, reference: str) -> float:
    """How many times faster `backend` is than `reference` for one model and batch."""
    def median(b):
        for r in rows:
            if r["model"] == model and r["batch"] == batch and r["backend"] == b and "ms_median" in r:
                return r["ms_median"]
        return float("nan")

    return median(reference) / median(backend)

