"""Saved photos (``WHATSAPP_MEDIA_DIR``): which file a complaint's photo entry names, which files
nobody names any more, and deleting them. Used by retention (bot/privacy/retention.py).

Only files inside the media folder are ever deleted: a path stored in a row is reduced to its
file name and looked up there, so a row naming some other file cannot have it removed.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


def media_file(media_dir: Path | None, photo: Any) -> Path | None:
    """The saved file of a photo entry (``{"path": ...}``), if it lies in ``media_dir``."""
    if media_dir is None or not isinstance(photo, dict) or not photo.get("path"):
        return None
    path = media_dir / Path(str(photo["path"])).name
    return path if path.is_file() else None


def without_photos(attachments: dict[str, Any] | None,
                   media_dir: Path | None) -> tuple[dict[str, Any], int, list[Path]]:
    """A complaint's attachments with no photos left (their number kept as ``photos_removed``),
    how many went, and their saved files (for the caller to delete once it committed)."""
    attachments = dict(attachments or {})
    photos = attachments.pop("photos", None) or []
    files = [p for p in (media_file(media_dir, photo) for photo in photos) if p is not None]
    removed = int(attachments.pop("photos_removed", 0) or 0) + len(photos)
    return {"photos": [], **({"photos_removed": removed} if removed else {})}, len(photos), files


def named_files(values: Iterable[Any]) -> set[str]:
    """File names of every ``path`` inside JSON values (attachments, conversation states)."""
    return {Path(str(d["path"])).name for value in values for d in _dicts(value) if d.get("path")}


def unnamed_files(media_dir: Path | None, named: set[str], older_than: float) -> list[Path]:
    """Files in ``media_dir`` no row names, last written before ``older_than`` (a timestamp)."""
    if media_dir is None or not media_dir.is_dir():
        return []
    return [p for p in sorted(media_dir.iterdir())
            if p.is_file() and p.name not in named and p.stat().st_mtime < older_than]


def delete_files(paths: Iterable[Path]) -> None:
    for path in paths:
        try:
            path.unlink(missing_ok=True)
        except OSError as exc:
            log.warning("could not delete %s (%s)", path.name, exc.strerror or exc)


def _dicts(value: Any) -> Iterable[dict[str, Any]]:
    if isinstance(value, dict):
        yield value
        for v in value.values():
            yield from _dicts(v)
    elif isinstance(value, list):
        for v in value:
            yield from _dicts(v)
