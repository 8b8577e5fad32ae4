"""`squeezelab export`: a checkpoint or .sqz file -> a checked ONNX, OpenVINO, ncnn, ExecuTorch,
LiteRT or Core ML file (and optionally int8)."""

from __future__ import annotations

import json

from squeezelab.export.config import (DEFAULT_CALIBRATION_IMAGES, DEFAULT_INT8_FORMAT, DEFAULT_OPSET, EXPORT_FORMATS,
                                     INT8_FORMATS)


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("export", help="export a model file to ONNX, OpenVINO, ncnn, ExecuTorch, LiteRT or Core ML "
                                             "(checked against PyTorch), optionally int8")
    p.add_argument("model", metavar="CKPT|SQZ", help="a .pt checkpoint or .sqz file")
    p.add_argument("-o", "--output", required=True,
                   help="the file to write: .onnx, .xml (OpenVINO), .param (ncnn), .pte (ExecuTorch), .tflite (LiteRT) "
                        "or .mlpackage (Core ML)")
    p.add_argument("--format", choices=list(EXPORT_FORMATS), default=None,
                   help="onnx (ONNX Runtime), openvino (IR; int8 through NNCF), ncnn (param/bin, fp32), executorch "
                        "(.pte for XNNPACK; int8 through XNNPACKQuantizer), litert (.tflite; full-integer int8) or "
                        "coreml (.mlpackage, fp32; cannot be run on Linux, so only its spec is checked here); "
                        "executorch, litert and coreml need pip install -e '.[mobile]'; "
                        "default: from the output's suffix")
    p.add_argument("--opset", type=int, default=DEFAULT_OPSET, help="ONNX opset")
    p.add_argument("--dynamic-batch", action="store_true", help="let the batch dimension vary (default: batch 1)")
    p.add_argument("--image-size", "--input-size", dest="image_size", type=int, default=None,
                   help="input height/width (default: the model's crop)")
    p.add_argument("--int8", action="store_true", help="also write an int8 model beside OUTPUT as "
                                                          "<stem>.int8.onnx|.xml|.pte|.tflite (ONNX Runtime static "
                                                          "quantization, NNCF for OpenVINO, the runtime's own PT2E "
                                                          "quantizer for ExecuTorch and LiteRT)")
    p.add_argument("--calib-data", metavar="SPEC", help="real images to calibrate int8 on (a folder or data spec)")
    p.add_argument("--calib-images", type=int, default=DEFAULT_CALIBRATION_IMAGES,
                   help="how many calibration images (ExecuTorch and LiteRT read as many again to measure top-1 "
                        "agreement on held-out images)")
    p.add_argument("--int8-format", choices=list(INT8_FORMATS), default=DEFAULT_INT8_FORMAT,
                   help="qdq (U8S8, default: fast on VNNI CPUs and portable), qoperator (U8S8), "
                        "qdq_s8s8 (ONNX Runtime's default; slower on this CPU)")
    p.add_argument("--int8-output", help="where the int8 model goes (default: OUTPUT's stem + .int8 + its suffix)")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.set_defaults(func=run)


def run(args) -> int:
    from squeezelab.export.model import export_model
    from squeezelab.loading import load_model

    report = export_model(load_model(args.model), args.output, opset=args.opset, dynamic_batch=args.dynamic_batch,
                          input_size=args.image_size, int8=args.int8, calib_data=args.calib_data,
                          calib_images=args.calib_images, int8_format=args.int8_format, int8_output=args.int8_output,
                          format=args.format)
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    if "onnx" not in report:
        for r in report.values():
            print(_runtime_line(r))
        return 0
    o = report["onnx"]
    print(f"wrote {o['path']} ({o['size_bytes'] / 2**20:.2f} MiB, opset {o['opset']}); onnx.checker passed; "
          f"max abs diff vs PyTorch {o['max_abs_diff']:.2e} on {o['checked_on']}")
    if "int8" in report:
        q = report["int8"]
        print(f"wrote {q['path']} ({q['size_bytes'] / 2**20:.2f} MiB, {q['format']}, calibrated on "
              f"{q['calibration_images']} images); top-1 agreement with fp32 {q['top1_agreement']:.2%} "
              f"on {q['images']} calibration images")
    return 0


def _runtime_line(r: dict) -> str:
    """One line per written file: what it is and how it compares with PyTorch."""
    what = f"wrote {r['path']} ({r['format']} {r['precision']}, {r['size_bytes'] / 2**20:.2f} MiB"
    what += f", record in {r['sidecar']})" if "sidecar" in r else " with its weights)"
    if r.get("max_abs_diff") is None:  # Core ML: not runnable here
        return f"{what}; {r['spec']}, {r['classes']} class labels; {r['checked_on']}"
    return (f"{what}; vs PyTorch: max abs logit diff {r['max_abs_diff']:.2e}, top-1 agreement "
            f"{r['top1_agreement']:.2%} on {r['checked_on']}")
