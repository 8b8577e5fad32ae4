"""Turn uploaded bytes into a checked RGB image, or a 4xx with a message that says what to fix.

Uploads are untrusted. The limits, and why:
- bytes: `max_upload_bytes` (default 20 MiB), checked before and while the body is read (app.py);
- pixels: `max_pixels` (default 25 megapixels) checked from the header before any decoding, so a
  decompression bomb (a small file that decodes to gigabytes) is refused without being decoded;
  Pillow's own guard (`Image.MAX_IMAGE_PIXELS`) is a second line;
- content: the part's declared type must be an image (or octet-stream) and the bytes must decode;
  truncated or corrupt files are refused instead of being half-decoded (no LOAD_TRUNCATED_IMAGES).
JPEGs are decoded at a reduced scale (`draft`) when the model needs far fewer pixels, which makes a
large photo cheap to serve.
"""

from __future__ import annotations

import io
import warnings

from PIL import Image, ImageOps, UnidentifiedImageError

from squeezelab.serve.config import ServeLimits  # noqa: F401  (the limits live with the other plain configs)

ALLOWED_TYPES = ("image/", "application/octet-stream")


class UploadError(Exception):
    """A bad upload: HTTP status plus a one-line message for the client (no paths, no traceback)."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


def check_content_type(content_type: str | None) -> None:
    kind = (content_type or "").split(";")[0].strip().lower()
    if kind and not kind.startswith(ALLOWED_TYPES):
        raise UploadError(415, f"unsupported content type {kind!r}; upload an image (JPEG, PNG, WebP, ...)")


def decode_image(data: bytes, limits: ServeLimits, target_size: int = 256) -> Image.Image:
    """Bytes -> an RGB PIL image, upright (EXIF orientation applied), within the limits."""
    if not data:
        raise UploadError(400, "the upload is empty; send an image file")
    if len(data) > limits.max_upload_bytes:
        raise UploadError(413, f"the upload is {len(data) / 2**20:.1f} MiB; the limit is {limits.max_upload_bytes / 2**20:.0f} MiB")
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            image = Image.open(io.BytesIO(data))
            width, height = image.size
            if width * height > limits.max_pixels:
                raise UploadError(413, f"the image is {width}x{height} ({width * height / 1e6:.1f} megapixels); "
                                       f"the limit is {limits.max_pixels / 1e6:.0f} megapixels: resize it first")
            if image.format == "JPEG":
                image.draft("RGB", (target_size, target_size))
            image.load()
            image = ImageOps.exif_transpose(image)
            return image.convert("RGB")
        except UploadError:
            raise
        except (Image.DecompressionBombError, Image.DecompressionBombWarning):
            raise UploadError(413, f"the image decodes to more than {limits.max_pixels / 1e6:.0f} megapixels") from None
        except UnidentifiedImageError:
            raise UploadError(400, "the upload is not an image Pillow can read; send a JPEG, PNG, WebP, GIF or BMP") from None
        except (OSError, ValueError, SyntaxError, EOFError, Image.UnidentifiedImageError):
            raise UploadError(400, "the image is truncated or corrupt; re-save it and upload again") from None
