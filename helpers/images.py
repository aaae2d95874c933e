"""Opening images the project did not make: the size read from the header and checked against the pixel limit
before any pixel is decoded; every failure one `BadInput` naming where the image came from."""

from __future__ import annotations

import io
from pathlib import Path

from PIL import Image, UnidentifiedImageError

from helpers.bad_input import BadInput

MAX_IMAGE_PIXELS = 40_000_000  # the decompression-bomb limit of every image the series reads


def pixel_limit_problem(width: int, height: int) -> str | None:
    """'(w, h) exceeds N pixels' when an image is over MAX_IMAGE_PIXELS, else None."""
    if width * height > MAX_IMAGE_PIXELS:
        return f"({width}, {height}) exceeds {MAX_IMAGE_PIXELS:,} pixels"
    return None


def open_checked(source: Path | str | bytes, where: str) -> Image.Image:
    """The image, opened lazily (use it in a `with` block); raises BadInput naming `where` when it is not a readable
    image or is over the pixel limit."""
    try:
        image = Image.open(io.BytesIO(source) if isinstance(source, bytes) else source)
    except (OSError, UnidentifiedImageError, Image.DecompressionBombError) as error:
        raise BadInput(f"{where}: not a readable image ({error})") from error
    if problem := pixel_limit_problem(*image.size):
        image.close()
        raise BadInput(f"{where}: {problem}; not read")
    return image
