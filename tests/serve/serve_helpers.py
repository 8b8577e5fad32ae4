"""Small models and uploads for the service tests (64x64 inputs keep them fast)."""

from __future__ import annotations

import dataclasses
import io

import numpy as np
from PIL import Image

import squeezelab

CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


def tiny_model():
    model = squeezelab.create_model("squeezenet1_1", num_classes=10, final_relu=False)
    model.record = model.record.replace(
        classes=CLASSES, preprocessing=dataclasses.replace(model.record.preprocessing, resize=72, crop=64))
    return model.eval()


def jpeg_bytes(size=(120, 90), seed=0, quality=90) -> bytes:
    rng = np.random.default_rng(seed)
    pixels = rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "JPEG", quality=quality)
    return buffer.getvalue()


def png_bytes(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


def bad_uploads() -> dict[str, tuple[str, bytes, str]]:
    """Uploads a service must refuse, as (file name, bytes, declared type)."""
    good = jpeg_bytes()
    return {
        "empty": ("empty.jpg", b"", "image/jpeg"),
        "text file": ("notes.txt", b"hello, I am text\n" * 10, "text/plain"),
        "text as jpeg": ("fake.jpg", b"hello, I am text\n" * 10, "image/jpeg"),
        "truncated jpeg": ("cut.jpg", good[: len(good) // 2], "image/jpeg"),
        "50 megapixels": ("huge.png", png_bytes(Image.new("1", (10000, 5000))), "image/png"),
    }
