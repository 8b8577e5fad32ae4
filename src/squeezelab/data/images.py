"""Open one image file safely, whatever its mode, orientation or condition.

Every path that reads user images (folders, list files, `predict`, the service) goes through
`open_image`, so they all behave the same way:
- EXIF orientation is applied (a phone photo taken upright is used upright);
- CMYK, palette (with or without transparency), grayscale, 16-bit and RGBA images become RGB
  (alpha is dropped, as torchvision's loader does; 16-bit values are scaled to 8 bits);
- images with more than `MAX_IMAGE_PIXELS` pixels (decompression bombs) are refused before decoding;
- corrupt, truncated, zero-byte and non-image files raise `BadImageError` naming the file.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np

from squeezelab.errors import BadFileError

# 40 megapixels: more than any camera photo a classifier needs (a 7,300 x 5,500 image), far less
# than a decompression bomb's billions. Pillow's own guard is set to the same figure.
MAX_IMAGE_PIXELS = 40_000_000

# Files that live in photo folders but are never images (macOS, Windows, editors).
JUNK_NAMES = {".ds_store", "thumbs.db", "desktop.ini", "._.ds_store"}
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp", ".gif")


class BadImageError(BadFileError):
    """An image file that cannot be used; the message names the file."""


def is_candidate(path: Path) -> bool:
    """Whether a file in a data folder is meant as an image (hidden and junk files are not)."""
    name = path.name
    return not name.startswith(".") and name.lower() not in JUNK_NAMES and name.lower().endswith(IMAGE_EXTENSIONS)


def image_files(paths) -> list[Path]:
    """Files and folders -> image files: a file as given, a folder as every image under it
    (recursively, sorted, hidden and junk files left out, each linked folder visited once).

    >>> image_files([])
    []
    """
    found: list[Path] = []
    for path in map(Path, paths):
        if not path.is_dir():
            found.append(path)
            continue
        seen: set[str] = set()
        for folder, dirs, files in os.walk(path, followlinks=True):
            real = os.path.realpath(folder)
            if real in seen:
                dirs[:] = []
                continue
            seen.add(real)
            dirs[:] = sorted(d for d in dirs if not d.startswith("."))
            found.extend(Path(folder) / f for f in sorted(files) if is_candidate(Path(f)))
    return found


def open_image(path: str | os.PathLike):
    """The image at `path` as an RGB PIL image, fully decoded.

    >>> open_image("missing.png")
    Traceback (most recent call last):
    ...
    squeezelab.data.images.BadImageError: cannot read image missing.png: no such file
    """
    from PIL import Image, ImageOps, UnidentifiedImageError

    Image.MAX_IMAGE_PIXELS = MAX_IMAGE_PIXELS
    path = Path(path)
    try:
        if path.is_symlink() and not path.exists():
            raise BadImageError(f"cannot read image {path}: broken or looping symlink")
        if not path.exists():
            raise BadImageError(f"cannot read image {path}: no such file")
        if path.stat().st_size == 0:
            raise BadImageError(f"cannot read image {path}: the file is empty (0 bytes)")
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as image:
                if image.width * image.height > MAX_IMAGE_PIXELS:
                    raise BadImageError(
                        f"image {path} has {image.width}x{image.height} pixels, over the limit of "
                        f"{MAX_IMAGE_PIXELS:,} (possible decompression bomb); shrink it first"
                    )
                image.load()
                image = ImageOps.exif_transpose(image)
                return to_rgb(image)
    except BadImageError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise BadImageError(f"image {path} is over the limit of {MAX_IMAGE_PIXELS:,} pixels (possible decompression bomb)") from None
    except UnidentifiedImageError:
        raise BadImageError(f"cannot read image {path}: not an image file (or a format Pillow cannot read)") from None
    except (OSError, SyntaxError, ValueError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise BadImageError(f"cannot read image {path}: corrupt or truncated ({reason})") from None


def to_rgb(image):
    """Any PIL mode -> RGB: 16/32-bit integer and float images are scaled down, not clipped."""
    from PIL import Image

    if image.mode in ("I", "I;16", "I;16B", "I;16L", "I;16N", "F"):
        array = np.asarray(image, dtype=np.float64)
        peak = array.max() if array.size else 0
        scale = 255.0 / 65535.0 if peak > 255 else 1.0
        image = Image.fromarray(np.clip(array * scale, 0, 255).astype(np.uint8), "L")
    if image.mode == "P" and "transparency" in image.info:
        image = image.convert("RGBA")
    return image if image.mode == "RGB" else image.convert("RGB")
