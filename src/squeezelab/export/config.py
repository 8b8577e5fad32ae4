"""Export and benchmark choices as plain data (no torch, no onnx), shared by the library and the
command line's `--help`."""

from __future__ import annotations

DEFAULT_OPSET = 17  # ORT's quantizer needs >= 12 for quantized MaxPool; 17 is widely supported
MIN_OPSET, MAX_OPSET = 12, 21
INT8_FORMATS = ("qdq", "qoperator", "qdq_s8s8")
DEFAULT_INT8_FORMAT = "qdq"
DEFAULT_CALIBRATION_IMAGES = 256

# the formats `squeezelab export` writes, and the output suffix that picks each without --format
EXPORT_FORMATS = ("onnx", "openvino", "ncnn", "executorch", "litert", "coreml")
EXPORT_SUFFIXES = {".onnx": "onnx", ".xml": "openvino", ".param": "ncnn", ".pte": "executorch", ".tflite": "litert",
                   ".mlpackage": "coreml"}
MOBILE_FORMATS = ("executorch", "litert", "coreml")  # the `mobile` extra's converters

BENCH_BACKENDS = ("eager", "channels_last", "bf16", "compile", "ort_fp32", "ort_int8", "ort_int8_qoperator",
                  "ort_int8_s8s8", "openvino_fp32", "openvino_int8", "ncnn_fp32", "executorch_fp32", "executorch_int8",
                  "litert_fp32", "litert_int8")
RUNTIME_BACKENDS = ("openvino_fp32", "openvino_int8", "ncnn_fp32")  # the `deploy` extra's runtimes
MOBILE_BACKENDS = ("executorch_fp32", "executorch_int8", "litert_fp32", "litert_int8")  # the `mobile` extra's
DEFAULT_BENCH_BACKENDS = ("eager", "channels_last", "ort_fp32", "ort_int8", *RUNTIME_BACKENDS)
DEFAULT_BENCH_MODELS = ("squeezenet1_0", "squeezenet1_1", "tv/mobilenet_v2", "tv/mobilenet_v3_small",
                        "tv/shufflenet_v2_x1_0")
DEFAULT_BENCH_BATCHES = (1, 8, 32)
REGISTRY_INPUT_SIZE = 224  # a registry model has no preprocessing of its own: ImageNet's crop
