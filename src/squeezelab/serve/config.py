"""The service's resource bounds as plain data (no torch), so `squeezelab serve --help` shows them."""

from __future__ import annotations

import dataclasses

from squeezelab.utils.config import JsonConfig

DEFAULT_HOST = "127.0.0.1"  # this machine only, unless asked
DEFAULT_PORT = 8000


@dataclasses.dataclass(frozen=True)
class ServeLimits(JsonConfig):
    """The service's resource bounds (why each exists: serve/images.py and docs/RELIABILITY.md)."""

    max_upload_bytes: int = 20 * 2**20
    max_pixels: int = 25_000_000
    workers: int = 1  # inference threads; each model call already uses every core
    max_batch: int = 32  # requests waiting together go through the model in one call, up to this many
    decode_threads: int | None = None  # threads decoding uploads (None: one per core)
    max_queue: int = 64  # requests waiting beyond the workers; more get 503 at once
    timeout_s: float = 30.0  # per request, waiting plus inference; then 503
    read_timeout_s: float = 30.0  # longest pause while a client sends its body; then 408
    max_top_k: int = 100
