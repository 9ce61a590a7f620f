"""Item pictures: an upload is checked (real image type, file size, dimensions; ``domain.images``) before it is
stored under a random name in the instance folder; the stored file name is the item's picture reference."""

from __future__ import annotations

import re
import secrets
from pathlib import Path

from flask import current_app

from points_service.domain.images import FORMATS, MEDIA_TYPES, STORED_NAME, ImageLimits, check_image

__all__ = ["FORMATS", "MEDIA_TYPES", "check_picture", "picture_path", "store_picture"]

MAX_BYTES = 2 * 1024 * 1024
MIN_SIDE, MAX_SIDE = 64, 4096
LIMITS = ImageLimits(max_bytes=MAX_BYTES, min_side=MIN_SIDE, max_side=MAX_SIDE, field="picture")
NAME = re.compile(rf"^{STORED_NAME}$")


def folder() -> Path:
    path = Path(current_app.instance_path) / "market-pictures"
    path.mkdir(parents=True, exist_ok=True)
    return path


def check_picture(content: bytes) -> str:
    """The stored suffix of an acceptable picture; 422 ``picture_invalid`` naming what is wrong otherwise."""
    return check_image(content, LIMITS)


def store_picture(content: bytes) -> str:
    name = f"{secrets.token_urlsafe(18)}.{check_picture(content)}"
    (folder() / name).write_bytes(content)
    return name


def picture_path(name: str) -> Path | None:
    """The stored file of a picture reference, or None for anything that is not one of ours."""
    if not NAME.match(name or ""):
        return None
    path = folder() / name
    return path if path.is_file() else None
