"""Builders of small image folders with odd sizes, modes and file names."""

from __future__ import annotations

import numpy as np
from PIL import Image

MODES = ["RGB", "L", "RGBA", "P", "CMYK", "I;16"]


def write_image(path, size=(37, 29), mode="RGB", seed=0, shade=None):
    rng = np.random.default_rng(seed)
    w, h = size
    base = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    if shade is not None:
        base[:] = shade
    image = Image.fromarray(base, "RGB")
    if mode == "I;16":
        image = Image.fromarray((np.asarray(image.convert("L"), dtype=np.uint16) * 257).astype(np.uint16))
    elif mode != "RGB":
        image = image.convert(mode)
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path)
    return path


def make_folder(root, classes=("cat", "dog", "owl"), per_class=6, size=(37, 29)):
    """root/<class>/*.png in varied modes and sizes; class k is a distinct colour so it is learnable."""
    colours = [(220, 30, 30), (30, 220, 30), (30, 30, 220), (200, 200, 30)]
    for k, name in enumerate(classes):
        for i in range(per_class):
            mode = MODES[i % len(MODES)]
            suffix = ".tif" if mode == "CMYK" else ".png"
            write_image(root / name / f"img {i} é{suffix}", (size[0] + i, size[1] + 2 * i),
                        mode, seed=i, shade=colours[k % len(colours)])
    return root
