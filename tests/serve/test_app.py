import asyncio
import time

import httpx
import numpy as np
import pytest
from serve_helpers import CLASSES, bad_uploads, jpeg_bytes, png_bytes, tiny_model
from fastapi.testclient import TestClient
from PIL import Image

from squeezelab.serve.app import create_app
from squeezelab.serve.images import ServeLimits
from squeezelab.serve.predictor import Predictor, open_predictor, predictor_from_module


@pytest.fixture(scope="module")
def client():
    return TestClient(create_app(predictor_from_module(tiny_model()), ServeLimits(max_upload_bytes=4 * 2**20)))


def predict(client, name, data, content_type):
    return client.post("/predict", files={"file": (name, data, content_type)})


def test_predict_returns_top5_with_probabilities(client):
    response = predict(client, "a.jpg", jpeg_bytes(), "image/jpeg")
    assert response.status_code == 200
    top = response.json()["top_k"]
    assert len(top) == 5 and all(t["label"] in CLASSES for t in top)
    probs = [t["probability"] for t in top]
    assert probs == sorted(probs, reverse=True) and 0 < sum(probs) <= 1.0 + 1e-6


def test_raw_body_upload_and_k(client):
    response = client.post("/predict?k=3", content=jpeg_bytes(), headers={"content-type": "image/jpeg"})
    assert response.status_code == 200 and len(response.json()["top_k"]) == 3
    assert client.post("/predict?k=0", content=jpeg_bytes(), headers={"content-type": "image/jpeg"}).status_code == 422


@pytest.mark.parametrize("case", list(bad_uploads()))
def test_bad_uploads_get_4xx_with_a_message_and_the_server_keeps_serving(client, case):
    name, data, content_type = bad_uploads()[case]
    response = predict(client, name, data, content_type)
    assert 400 <= response.status_code < 500, response.text
    detail = response.json()["detail"]
    assert detail and "Traceback" not in detail and ".py" not in detail and "/tmp" not in detail
    assert predict(client, "ok.jpg", jpeg_bytes(), "image/jpeg").status_code == 200


def test_100_mb_body_is_refused_before_it_is_read(client):
    response = client.post("/predict", content=b"\0" * (100 * 2**20), headers={"content-type": "image/jpeg"})
    assert response.status_code == 413 and "limit" in response.json()["detail"]
    assert client.get("/health").json()["status"] == "ok"


def test_a_chunked_body_without_length_is_cut_off_at_the_limit(client):
    def chunks():
        for _ in range(10):
            yield b"\0" * 2**20

    response = client.post("/predict", content=chunks(), headers={"content-type": "image/jpeg"})
    assert response.status_code == 413


def test_unsupported_request_type_gets_415(client):
    response = client.post("/predict", content=b"{}", headers={"content-type": "application/json"})
    assert response.status_code == 415
    assert predict(client, "a.pdf", b"%PDF-1.4", "application/pdf").status_code == 415


@pytest.mark.parametrize("mode", ["RGBA", "P", "L", "CMYK", "I;16"])
def test_image_modes_are_converted(client, mode):
    image = Image.new("RGB", (80, 60), (10, 200, 30)).convert(mode) if mode != "I;16" else Image.new("I;16", (80, 60), 30000)
    fmt, kind = ("JPEG", "image/jpeg") if mode == "CMYK" else ("PNG", "image/png")
    import io

    buffer = io.BytesIO()
    image.save(buffer, fmt)
    assert predict(client, f"x.{fmt.lower()}", buffer.getvalue(), kind).status_code == 200


def test_exif_rotation_is_applied_before_prediction():
    from squeezelab.serve.images import decode_image

    image = Image.new("RGB", (100, 40), (255, 0, 0))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise when displayed
    import io

    buffer = io.BytesIO()
    image.save(buffer, "JPEG", exif=exif)
    assert decode_image(buffer.getvalue(), ServeLimits()).size == (40, 100)


def test_health_model_docs_and_page(client):
    assert client.get("/health").json()["status"] == "ok"
    info = client.get("/model").json()
    assert info["name"] == "squeezenet1_1" and info["classes"] == CLASSES and info["params"] > 700_000
    assert "/predict" in client.get("/openapi.json").json()["paths"]
    assert client.get("/docs").status_code == 200
    page = client.get("/")
    assert page.status_code == 200 and "<input id=\"file\"" in page.text and "predict" in page.text


def test_onnx_and_checkpoint_files_serve_the_same_predictions(checkpoint_file, onnx_file):
    data = jpeg_bytes(seed=3)
    answers = {}
    for path in (checkpoint_file, onnx_file):
        predictor = open_predictor(path)
        body = TestClient(create_app(predictor)).post("/predict", files={"file": ("a.jpg", data, "image/jpeg")}).json()
        answers[predictor.kind] = body["top_k"]
    assert [t["index"] for t in answers["onnx"]] == [t["index"] for t in answers["pytorch"]]
    assert np.allclose([t["probability"] for t in answers["onnx"]], [t["probability"] for t in answers["pytorch"]],
                       atol=1e-4)
    info = TestClient(create_app(open_predictor(onnx_file))).get("/model").json()
    assert info["format"] == "onnx" and info["classes"] == CLASSES and info["size_bytes"] == onnx_file.stat().st_size


def _slow_predictor(seconds: float, fail: bool = False) -> Predictor:
    def run(batch):
        time.sleep(seconds)
        if fail:
            raise RuntimeError("boom in /home/secret/model/path.py line 12")
        return np.zeros((len(batch), 3), dtype=np.float32)

    from squeezelab.models import ModelRecord
    from squeezelab.preprocessing import Preprocessing

    return Predictor(ModelRecord("slow", {}, ("a", "b", "c"), Preprocessing(resize=32, crop=32)), "pytorch", run)


async def _burst(app, count):
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        data = jpeg_bytes()
        return await asyncio.gather(*(client.post("/predict", files={"file": ("a.jpg", data, "image/jpeg")})
                                      for _ in range(count)))


def test_a_full_queue_answers_503_with_retry_after():
    app = create_app(_slow_predictor(0.2), ServeLimits(workers=1, max_queue=2))
    responses = asyncio.run(_burst(app, 8))
    codes = sorted(r.status_code for r in responses)
    assert codes.count(200) == 3 and codes.count(503) == 5
    assert all(r.headers.get("retry-after") == "1" for r in responses if r.status_code == 503)


def test_a_slow_inference_times_out_with_503():
    app = create_app(_slow_predictor(1.0), ServeLimits(timeout_s=0.2))
    (response,) = asyncio.run(_burst(app, 1))
    assert response.status_code == 503 and "retry" in response.json()["detail"]


def test_internal_errors_leak_no_paths_or_tracebacks():
    client = TestClient(create_app(_slow_predictor(0, fail=True)), raise_server_exceptions=False)
    response = predict(client, "a.jpg", jpeg_bytes(), "image/jpeg")
    assert response.status_code == 500
    assert "secret" not in response.text and "Traceback" not in response.text and "boom" not in response.text


def test_pixel_limit_is_checked_before_decoding():
    from squeezelab.serve.images import UploadError, decode_image

    data = png_bytes(Image.new("1", (3000, 3000)))
    with pytest.raises(UploadError) as info:
        decode_image(data, ServeLimits(max_pixels=1_000_000))
    assert info.value.status == 413 and "9.0 megapixels" in info.value.message


def test_a_stalled_upload_gets_408():
    from squeezelab.serve.app import BodyLimit

    sent = []

    async def app(scope, receive, send):  # reads the body, as /predict does
        while (await receive()).get("more_body"):
            pass

    async def receive():
        if not sent:
            sent.append(1)
            return {"type": "http.request", "body": b"x" * 10, "more_body": True}
        await asyncio.sleep(5)  # the client stops sending

    replies = []

    async def send(message):
        replies.append(message)

    scope = {"type": "http", "headers": [(b"content-type", b"image/jpeg")]}
    asyncio.run(BodyLimit(app, limit=1000, read_timeout=0.1)(scope, receive, send))
    assert replies[0]["status"] == 408 and b"stalled" in replies[1]["body"]


def test_timed_out_requests_still_waiting_are_dropped_and_slots_come_back():
    calls = []
    predictor = _slow_predictor(0.5)
    run = predictor.run
    predictor.run = lambda batch: calls.append(1) or run(batch)
    app = create_app(predictor, ServeLimits(workers=1, max_queue=8, timeout_s=0.2))

    async def scenario():
        responses = await _burst(app, 4)
        await asyncio.sleep(1.0)  # the one that started finishes; the queued ones were cancelled
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            health = (await client.get("/health")).json()
        return responses, health

    responses, health = asyncio.run(scenario())
    assert [r.status_code for r in responses] == [503] * 4
    assert len(calls) == 1 and health["in_flight"] == 0


def test_a_compressed_sqz_file_serves_and_exports(tmp_path):
    from serve_helpers import tiny_model

    from squeezelab.compress import QuantConfig, quantize_, save
    from squeezelab.export.onnx import export_onnx

    model = quantize_(tiny_model(), QuantConfig(bits=4))
    save(model, tmp_path / "m.sqz")
    client = TestClient(create_app(open_predictor(tmp_path / "m.sqz")))
    response = predict(client, "a.jpg", jpeg_bytes(), "image/jpeg")
    assert response.status_code == 200 and response.json()["top_k"][0]["label"] in CLASSES
    assert client.get("/model").json()["classes"] == CLASSES
    import squeezelab

    report = export_onnx(squeezelab.load_model(tmp_path / "m.sqz"), tmp_path / "m.onnx")
    assert report.max_abs_diff < 1e-4


def test_concurrent_requests_share_model_calls_and_each_gets_its_own_answer():
    from squeezelab.models import ModelRecord
    from squeezelab.preprocessing import Preprocessing

    calls = []

    def run(batch):  # class = the image's brightest channel, so a mixed-up batch row shows
        time.sleep(0.05)
        calls.append(len(batch))
        return batch.mean(dim=(2, 3)).numpy() * 10

    predictor = Predictor(ModelRecord("rgb", {}, ("red", "green", "blue"), Preprocessing(resize=32, crop=32)), "pytorch", run)
    app = create_app(predictor, ServeLimits(workers=1, max_queue=64, max_batch=8))
    colours = {"red": (255, 0, 0), "green": (0, 255, 0), "blue": (0, 0, 255)}
    wanted = [list(colours)[i % 3] for i in range(24)]

    async def burst():
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            return await asyncio.gather(*(
                client.post("/predict", files={"file": ("a.png", png_bytes(Image.new("RGB", (40, 30), colours[name])),
                                                        "image/png")})
                for name in wanted))

    responses = asyncio.run(burst())
    assert [r.json()["top_k"][0]["label"] for r in responses] == wanted
    assert sum(calls) == 24 and len(calls) < 24 and max(calls) <= 8
