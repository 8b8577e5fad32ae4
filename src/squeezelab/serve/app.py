"""The HTTP service: POST /predict, GET /health, GET /model, OpenAPI docs at /docs, a page at /.

Bounded by design (docs/RELIABILITY.md, section 5): request bodies are capped before and while they are read
(413) and must keep arriving (408 after `read_timeout_s` of silence), images are capped by pixels
before decoding (413), content types are checked (415), inference runs on
`workers` threads with at most `max_queue` requests waiting (503 with Retry-After beyond that, or
after `timeout_s`), and any unexpected error answers a generic 500 without paths or tracebacks
(they go to the server log). `squeezelab serve` binds to 127.0.0.1 unless told otherwise.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import queue
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from importlib import resources

import numpy as np
from fastapi import FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from squeezelab.runtime import available_cores
from squeezelab.serve.images import ServeLimits, UploadError, check_content_type, decode_image
from squeezelab.serve.predictor import Predictor

log = logging.getLogger("squeezelab.serve")
MULTIPART_OVERHEAD = 64 * 1024  # form boundaries and headers around the file


class BodyLimit:
    """ASGI middleware: 413 for bodies over `limit` bytes, by Content-Length or by counting chunks;
    408 when a client stops sending its body for `read_timeout` seconds (a slow-loris upload would
    otherwise hold a connection and a queue slot forever)."""

    def __init__(self, app, limit: int, read_timeout: float = 30.0):
        self.app, self.limit, self.read_timeout = app, limit, read_timeout

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = dict(scope.get("headers") or [])
        declared = headers.get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.limit):
            return await _send_error(send, 413, f"the request body is over the {self.limit / 2**20:.0f} MiB limit")
        seen = 0
        started = False

        async def counting_receive():
            nonlocal seen
            try:
                message = await asyncio.wait_for(receive(), timeout=self.read_timeout)
            except asyncio.TimeoutError:
                raise _Stalled() from None
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    raise _TooLarge()
            return message

        async def tracking_send(message):
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counting_receive, tracking_send)
        except _TooLarge:
            if not started:
                await _send_error(send, 413, f"the request body is over the {self.limit / 2**20:.0f} MiB limit")
        except _Stalled:
            if not started:
                await _send_error(send, 408, f"the upload stalled for {self.read_timeout:.0f} s; send it again")


class _TooLarge(Exception):
    pass


class _Stalled(Exception):
    pass


async def _send_error(send, status: int, message: str) -> None:
    response = JSONResponse({"detail": message}, status_code=status)
    await send({"type": "http.response.start", "status": status, "headers": response.raw_headers})
    await send({"type": "http.response.body", "body": response.body})


@dataclasses.dataclass
class _Job:
    batch: np.ndarray  # one preprocessed image, (1, 3, H, W)
    k: int
    result: Future = dataclasses.field(default_factory=Future)


class _Inference:
    """Decodes uploads on a thread pool, off the event loop, and runs the model on batches: while
    one batch computes, the requests that arrive wait in a queue and go together into the next
    call, up to `max_batch`. A small model costs little per image, so per-call overheads shared
    across a batch are what let the service keep up with many clients.

    Bounded: a request beyond `workers + max_queue` in flight is refused at once (503) rather than
    queued without limit, and its slot is held until its work really ends, so a timed-out request
    that is still computing keeps counting against the bound."""

    def __init__(self, predictor: Predictor, limits: ServeLimits):
        self.predictor, self.limits = predictor, limits
        self.decoders = ThreadPoolExecutor(max_workers=limits.decode_threads or available_cores(),
                                           thread_name_prefix="squeezelab-decode")
        self.jobs: queue.SimpleQueue[_Job] = queue.SimpleQueue()
        self.state = {"pending": 0, "served": 0, "rejected": 0, "batches": 0, "started": time.time()}
        for i in range(limits.workers):
            threading.Thread(target=self._run_batches, name=f"squeezelab-infer-{i}", daemon=True).start()

    def _decode(self, data: bytes) -> np.ndarray:
        image = decode_image(data, self.limits, target_size=self.predictor.preprocessing.resize)
        return self.predictor.batch_from_images([image])

    def _next_batch(self) -> list[_Job]:
        """The oldest waiting job and whatever else is waiting, up to max_batch, minus the cancelled."""
        jobs = [self.jobs.get()]
        while len(jobs) < self.limits.max_batch:
            try:
                jobs.append(self.jobs.get_nowait())
            except queue.Empty:
                break
        return [job for job in jobs if job.result.set_running_or_notify_cancel()]

    def _run_batches(self) -> None:
        while True:
            jobs = self._next_batch()
            if not jobs:
                continue
            try:
                rows = self.predictor.top_k_of_batch(np.concatenate([job.batch for job in jobs]),
                                                     max(job.k for job in jobs))
            except Exception as exc:  # noqa: BLE001 - handed to each waiting request
                for job in jobs:
                    job.result.set_exception(exc)
                continue
            self.state["batches"] += 1
            for job, row in zip(jobs, rows):
                job.result.set_result(row[: job.k])

    async def top_k(self, data: bytes, k: int) -> list[dict]:
        state, limits = self.state, self.limits
        if state["pending"] >= limits.workers + limits.max_queue:
            raise UploadError(503, "the server is busy; retry in a moment")
        state["pending"] += 1
        handed_over = []  # the job, once queued: it releases the slot when its batch is done

        def release():
            state["pending"] -= 1

        async def decode_and_predict() -> list[dict]:
            loop = asyncio.get_running_loop()
            job = _Job(await loop.run_in_executor(self.decoders, self._decode, data), k)
            job.result.add_done_callback(lambda _: loop.call_soon_threadsafe(release))
            handed_over.append(job)
            self.jobs.put(job)
            return await asyncio.wrap_future(job.result)

        try:
            return await asyncio.wait_for(decode_and_predict(), timeout=limits.timeout_s)
        except asyncio.TimeoutError:
            for job in handed_over:
                job.result.cancel()  # dropped if no batch has taken it yet
            raise UploadError(503, f"the request took over {limits.timeout_s:.0f} s; retry later") from None
        finally:
            if not handed_over:
                release()


async def _read_image_bytes(request: Request) -> bytes:
    """The uploaded image: multipart field `file`, or the raw body with an image/* content type."""
    content_type = request.headers.get("content-type", "")
    if content_type.startswith("multipart/form-data"):
        try:
            form = await request.form(max_files=1, max_fields=8)
        except (_TooLarge, _Stalled):
            raise
        except Exception:
            raise UploadError(400, "the multipart form could not be parsed; send the image as field 'file'") from None
        upload = form.get("file")
        if upload is None or isinstance(upload, str):
            raise UploadError(400, "no file in the form; send the image as multipart field 'file'")
        check_content_type(upload.content_type)
        data = await upload.read()
        await form.close()
        return data
    if content_type.startswith(("image/", "application/octet-stream")) or not content_type:
        return await request.body()
    raise UploadError(415, f"unsupported content type {content_type.split(';')[0]!r}; "
                           "send multipart/form-data with field 'file' or the image bytes as image/*")


def _add_error_handlers(app: FastAPI, state: dict) -> None:
    """Every error as {"detail": one line} with its status; nothing unexpected leaks a traceback."""

    @app.exception_handler(UploadError)
    async def upload_error(request: Request, exc: UploadError):
        state["rejected"] += 1
        headers = {"Retry-After": "1"} if exc.status == 503 else None
        return JSONResponse({"detail": exc.message}, status_code=exc.status, headers=headers)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError):
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()) if p != "body")
        return JSONResponse({"detail": f"bad request: {where} {first.get('msg', '')}".strip()}, status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException):
        return JSONResponse({"detail": str(exc.detail)}, status_code=exc.status_code)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception):
        log.exception("unexpected error serving %s", request.url.path)
        return JSONResponse({"detail": "internal error; the server log has the details"}, status_code=500)


def create_app(predictor: Predictor, limits: ServeLimits = ServeLimits()) -> FastAPI:
    """The FastAPI app serving `predictor` within `limits`.

    >>> # uvicorn.run(create_app(open_predictor("model.onnx")), host="127.0.0.1", port=8000)
    """
    app = FastAPI(title="squeezelab", version="1", description=f"Image classification with {predictor.name}")
    inference = _Inference(predictor, limits)
    state = inference.state
    _add_error_handlers(app, state)

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    async def page() -> str:
        return resources.files("squeezelab.serve").joinpath("page.html").read_text(encoding="utf-8")

    @app.get("/health")
    async def health() -> dict:
        """Liveness and load: requests in flight, served and rejected since start, model calls (batches)."""
        return {"status": "ok", "model": predictor.name, "in_flight": state["pending"], "served": state["served"],
                "rejected": state["rejected"], "batches": state["batches"],
                "uptime_s": round(time.time() - state["started"], 1)}

    @app.get("/model")
    async def model_info() -> dict:
        """The served model: name, format, classes, size on disk, parameters, input size, preprocessing."""
        return predictor.info()

    @app.post("/predict")
    async def predict(request: Request, k: int = Query(5, ge=1, le=limits.max_top_k, description="how many classes")) -> dict:
        """Upload one image (multipart field `file`, or the raw bytes with an image/* content type);
        get the top-k classes with probabilities."""
        started = time.perf_counter()
        top = await inference.top_k(await _read_image_bytes(request), k)
        state["served"] += 1
        return {"model": predictor.name, "top_k": top, "ms": round((time.perf_counter() - started) * 1e3, 2)}

    app.add_middleware(BodyLimit, limit=limits.max_upload_bytes + MULTIPART_OVERHEAD, read_timeout=limits.read_timeout_s)
    app.state.limits = limits
    return app
