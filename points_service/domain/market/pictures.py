"""Item pictures: an upload is checked (real image type, file size, dimensions) before it is stored under a
random name in the instance folder; the stored file name is the item's picture reference."""

from __future__ import annotations

import io
import re
import secrets
from pathlib import Path

from flask import current_app
from PIL import Image, UnidentifiedImageError

from points_service.domain.errors import ValidationFailed

MAX_BYTES = 2 * 1024 * 1024
MIN_SIDE, MAX_SIDE = 64, 4096
FORMATS = {"JPEG": ("jpg", "image/jpeg"), "PNG": ("png", "image/png"), "WEBP": ("webp", "image/webp")}
MEDIA_TYPES = {suffix: media for suffix, media in FORMATS.values()}
NAME = re.compile(r"^[A-Za-z0-9_-]{20,40}\.(jpg|png|webp)$")


def folder() -> Path:
    path = Path(current_app.instance_path) / "market-pictures"
    path.mkdir(parents=True, exist_ok=True)
    return path


def check_picture(content: bytes) -> str:
    """The stored suffix of an acceptable picture; 422 ``picture_invalid`` naming what is wrong otherwise."""
    if len(content) > MAX_BYTES:
        raise _invalid(f"图片不能超过 {MAX_BYTES // 1024 // 1024} MB")
    try:
        with Image.open(io.BytesIO(content)) as image:
            kind, (width, height) = image.format, image.size
            image.verify()  # a truncated or forged file fails here, before anyone is served it
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError):
        raise _invalid("不是有效的图片文件") from None
    if kind not in FORMATS:
        raise _invalid("图片格式应为 JPEG、PNG 或 WebP")
    if not (MIN_SIDE <= width <= MAX_SIDE and MIN_SIDE <= height <= MAX_SIDE):
        raise _invalid(f"图片宽高应在 {MIN_SIDE}–{MAX_SIDE} 像素之间")
    return FORMATS[kind][0]


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


def _invalid(message: str) -> ValidationFailed:
    return ValidationFailed({"picture": [message]}, message=message, code="picture_invalid")
