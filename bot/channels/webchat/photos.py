"""Photos uploaded on the web chat: images only, re-encoded, saved with the complaint photos.

The bytes must open as an image (Pillow reads the content; the file name and the browser's
type are not trusted), at most :data:`MAX_BYTES` and :data:`MAX_PIXELS`. The image is re-encoded
as JPEG at most :data:`MAX_SIDE` pixels on its longer side, which drops EXIF (GPS position,
camera serial) and anything hidden after the image data. It is saved in the folder of complaint
photos (``WHATSAPP_MEDIA_DIR``), so the desk shows it and retention and erasure delete it.
"""

from __future__ import annotations

import hashlib
import io
import secrets
import warnings
from pathlib import Path
from typing import Any

from PIL import Image, ImageOps, UnidentifiedImageError

MAX_BYTES = 5 * 1024 * 1024
MAX_PIXELS = 40_000_000  # a decompression bomb is refused before it is decoded
MAX_SIDE = 2048
FORMATS = {"JPEG", "PNG", "WEBP", "GIF", "BMP"}


class PhotoRefused(ValueError):
    """Why an upload was not taken: ``reason`` is "too_big", "not_image" or "no_storage"."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def reencode(data: bytes) -> bytes:
    """The upload as a clean JPEG, or :class:`PhotoRefused`."""
    if len(data) > MAX_BYTES:
        raise PhotoRefused("too_big")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as probe:
                if probe.format not in FORMATS or probe.width * probe.height > MAX_PIXELS:
                    raise PhotoRefused("not_image")
                probe.verify()
            with Image.open(io.BytesIO(data)) as opened:
                opened.seek(0)  # the first frame of an animation
                upright: Image.Image = ImageOps.exif_transpose(opened) or opened  # as the phone showed it
                img = _on_white(upright)
                img.thumbnail((MAX_SIDE, MAX_SIDE))
                out = io.BytesIO()
                img.save(out, "JPEG", quality=85, optimize=True)  # no exif= given: none written
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError, Image.DecompressionBombError,
            Image.DecompressionBombWarning) as exc:
        if isinstance(exc, PhotoRefused):
            raise
        raise PhotoRefused("not_image") from None
    return out.getvalue()


def _on_white(img: Image.Image) -> Image.Image:
    """RGB for JPEG; transparent parts (a screenshot, a PNG with alpha) laid on white as a
    viewer shows them, not on whatever colour the hidden pixels had."""
    if img.mode in ("RGBA", "LA") or (img.mode == "P" and "transparency" in img.info):
        rgba = img.convert("RGBA")
        flat = Image.new("RGB", rgba.size, (255, 255, 255))
        flat.paste(rgba, mask=rgba.getchannel("A"))
        return flat
    return img.convert("RGB")


def save_photo(media_dir: Path | None, data: bytes) -> dict[str, Any]:
    """Check, re-encode and save an upload; the media entry a complaint keeps."""
    if media_dir is None:
        raise PhotoRefused("no_storage")
    clean = reencode(data)
    name = f"web-{secrets.token_hex(12)}.jpg"
    media_dir.mkdir(parents=True, exist_ok=True)
    path = media_dir / name
    tmp = path.with_suffix(".part")
    tmp.write_bytes(clean)
    tmp.replace(path)
    return {"type": "photo", "file_id": f"web:{name}", "path": str(path), "mime_type": "image/jpeg",
            "size": len(clean), "sha256_local": hashlib.sha256(clean).hexdigest()}
