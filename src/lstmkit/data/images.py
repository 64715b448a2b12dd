"""Reading image files for the image encoders: RGB floats in [0, 1], images with
transparency composited on white (the Tux Paint stamps are RGBA), resized with
Pillow. A missing or unreadable file is refused in one line naming it."""
import os

import numpy as np

from .errors import DataError


def _pil():
    try:
        from PIL import Image
    except ImportError:
        raise DataError("reading images needs Pillow: pip install 'lstmkit[caption]'") from None
    return Image


def open_rgb(path):
    """A PIL RGB image; transparency composited on white."""
    Image = _pil()
    path = os.fspath(path)
    if not os.path.exists(path):
        raise DataError(f"{path}: no such image file")
    try:
        with Image.open(path) as im:
            im.load()
            if im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info):
                im = im.convert("RGBA")
                white = Image.new("RGBA", im.size, (255, 255, 255, 255))
                return Image.alpha_composite(white, im).convert("RGB")
            return im.convert("RGB")
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as e:
        raise DataError(f"{path}: cannot read it as an image ({type(e).__name__}: {e})") from None


def load_image(path, size):
    """(size, size, 3) float32 in [0, 1]: the image fitted into a white square
    (aspect kept), then resized."""
    Image = _pil()
    im = open_rgb(path)
    w, h = im.size
    side = max(w, h)
    square = Image.new("RGB", (side, side), (255, 255, 255))
    square.paste(im, ((side - w) // 2, (side - h) // 2))
    square = square.resize((size, size), Image.BILINEAR)
    return np.asarray(square, dtype=np.float32) / 255.0
