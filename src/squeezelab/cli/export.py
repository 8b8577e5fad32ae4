"""`squeezelab export`: a checkpoint or .sqz file -> a checked ONNX file (and optionally int8)."""

from __future__ import annotations

import json
from pathlib import Path

from squeezelab.export.int8 import DEFAULT_FORMAT, FORMATS
from squeezelab.export.onnx import DEFAULT_OPSET


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("export", help="export a model file to ONNX (checked against PyTorch), optionally int8")
    p.add_argument("model", metavar="CKPT|SQZ", help="a .pt checkpoint or .sqz file")
    p.add_argument("-o", "--output", required=True, help="the .onnx file to write")
    p.add_argument("--opset", type=int, default=DEFAULT_OPSET, help=f"ONNX opset (default {DEFAULT_OPSET})")
    p.add_argument("--dynamic-batch", action="store_true", help="let the batch dimension vary (default: batch 1)")
    p.add_argument("--input-size", type=int, default=None, help="input height/width (default: the model's crop)")
    p.add_argument("--int8", action="store_true", help="also write an int8 model (ONNX Runtime static quantization)")
    p.add_argument("--calib-data", metavar="SPEC", help="real images to calibrate int8 on (a folder or data spec)")
    p.add_argument("--calib-images", type=int, default=256, help="how many calibration images (default 256)")
    p.add_argument("--int8-format", choices=list(FORMATS), default=DEFAULT_FORMAT,
                   help="qdq (U8S8, default: fast on VNNI CPUs and portable), qoperator (U8S8), "
                        "qdq_s8s8 (ONNX Runtime's default; slower on this CPU)")
    p.add_argument("--int8-output", help="where the int8 model goes (default: OUTPUT with .int8.onnx)")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.set_defaults(func=run)


def run(args) -> int:
    from squeezelab.errors import SqueezelabError
    from squeezelab.export.calibration import calibration_batches
    from squeezelab.export.int8 import quantize_int8, top1_agreement
    from squeezelab.export.onnx import export_onnx
    from squeezelab.loading import load_model

    if args.int8 and not args.calib_data:
        raise SqueezelabError("--int8 needs --calib-data SPEC: real images to calibrate on (random tensors mis-set the ranges)")
    model = load_model(args.model)
    calibration = None
    if args.calib_data:
        preprocessing = model.record.preprocessing
        calibration = calibration_batches(args.calib_data, preprocessing, limit=args.calib_images)
    report = {"onnx": export_onnx(model, args.output, opset=args.opset, dynamic_batch=args.dynamic_batch,
                                  input_size=args.input_size,
                                  check_inputs=calibration[0] if calibration else None).to_dict()}
    if args.int8:
        out = args.int8_output or str(Path(args.output).with_suffix("")) + ".int8.onnx"
        report["int8"] = quantize_int8(args.output, out, calibration, format=args.int8_format).to_dict()
        report["int8"].update(top1_agreement(args.output, out, calibration))
    if args.json:
        print(json.dumps(report, indent=2))
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
