"""`squeezelab serve`: an HTTP service and a web page for any model file `load_predictor` opens."""

from __future__ import annotations

import errno
import socket

from squeezelab.errors import SqueezelabError
from squeezelab.serve.config import DEFAULT_HOST, DEFAULT_PORT, ServeLimits

_DEFAULTS = ServeLimits()


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("serve", help="serve a model over HTTP with a page to try it (POST /predict, /docs)")
    p.add_argument("model", metavar="MODEL", help="a model file: .pt checkpoint, .sqz, .onnx (int8 too), ...")
    p.add_argument("--host", default=DEFAULT_HOST, help="address to bind; 127.0.0.1 is this machine only")
    p.add_argument("--port", type=int, default=DEFAULT_PORT)
    p.add_argument("--threads", type=int, default=None, help="intra-op threads for inference (default: one per core)")
    p.add_argument("--workers", type=int, default=_DEFAULTS.workers,
                   help="inference threads, each running one batch at a time")
    p.add_argument("--max-batch", type=int, default=_DEFAULTS.max_batch,
                   help="requests waiting together go through the model in one call, up to this many")
    p.add_argument("--max-queue", type=int, default=_DEFAULTS.max_queue, help="waiting requests before 503")
    p.add_argument("--max-upload-mb", type=float, default=_DEFAULTS.max_upload_bytes / 2**20, help="largest upload")
    p.add_argument("--max-megapixels", type=float, default=_DEFAULTS.max_pixels / 1e6,
                   help="largest image, checked from its header before decoding")
    p.add_argument("--timeout", type=float, default=_DEFAULTS.timeout_s, help="seconds per request before 503")
    p.add_argument("--read-timeout", type=float, default=_DEFAULTS.read_timeout_s,
                   help="longest pause while receiving an upload before 408")
    p.set_defaults(func=run)


def bind(host: str, port: int) -> socket.socket:
    """The listening socket, opened before anything is printed, so a busy port is one line and
    exit 2 rather than "serving on ..." followed by the server's own error."""
    if not 0 < port < 65536:
        raise SqueezelabError(f"--port must be 1..65535, got {port}")
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise SqueezelabError(f"port {port} on {host} is already in use; stop the other server or pick another "
                                  "--port") from None
        raise SqueezelabError(f"cannot listen on {host}:{port}: {exc.strerror or exc}; check --host and --port") from None
    sock.listen(2048)
    return sock


def run(args) -> int:
    import uvicorn

    from squeezelab.serve.app import create_app
    from squeezelab.serve.predictor import open_predictor

    for flag, value in (("--workers", args.workers), ("--max-batch", args.max_batch)):
        if value < 1:
            raise SqueezelabError(f"{flag} must be at least 1, got {value}")
    limits = ServeLimits(max_upload_bytes=int(args.max_upload_mb * 2**20), max_pixels=int(args.max_megapixels * 1e6),
                         workers=args.workers, max_batch=args.max_batch, max_queue=args.max_queue,
                         timeout_s=args.timeout, read_timeout_s=args.read_timeout)
    sock = bind(args.host, args.port)
    try:
        predictor = open_predictor(args.model, threads=args.threads)
        app = create_app(predictor, limits)
        print(f"serving {predictor.name} ({predictor.kind}) on http://{args.host}:{args.port}/ (API docs at /docs)",
              flush=True)
        # limit_concurrency bounds open connections; timeout_keep_alive drops idle ones
        config = uvicorn.Config(app, host=args.host, port=args.port, log_level="warning", timeout_keep_alive=5,
                                limit_concurrency=limits.workers + limits.max_queue + 64, server_header=False)
        uvicorn.Server(config).run(sockets=[sock])
    finally:
        sock.close()
    return 0
