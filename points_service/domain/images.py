"""Uploaded images, checked before anything is stored: the real type read by Pillow (JPEG, PNG or WebP, never
the name or the declared type), the file size, the dimensions, and a full decode-level verify so that a
truncated or forged file is refused. Market pictures and photo evidence both use it with their own limits."""

from __future__ import annotations

import io
from dataclasses import dataclass

from PIL import Image, UnidentifiedImageError

from points_service.domain.errors import ValidationFailed

FORMATS = {"JPEG": ("jpg", "image/jpeg"), "PNG": ("png", "image/png"), "WEBP": ("webp", "image/webp")}
MEDIA_TYPES = {suffix: media for suffix, media in FORMATS.values()}
STORED_NAME = r"[A-Za-z0-9_-]{20,40}\.(?:jpg|png|webp)"  # a random stored file name and its checked suffix


@dataclass(frozen=True)
class ImageLimits:
    max_bytes: int
    min_side: int
    max_side: int
    field: str  # the form field named in the 422 answer


def check_image(content: bytes, limits: ImageLimits) -> str:
    """The stored suffix of an acceptable image; 422 ``picture_invalid`` naming what is wrong otherwise."""
    if not content:
        raise _invalid(limits, "请选择图片文件")
    if len(content) > limits.max_bytes:
        raise _invalid(limits, f"图片不能超过 {limits.max_bytes // 1024 // 1024} MB")
    try:
        with Image.open(io.BytesIO(content)) as image:
            kind, (width, height) = image.format, image.size
            image.verify()  # a truncated or forged file fails here, before anyone is served it
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError):
        raise _invalid(limits, "不是有效的图片文件") from None
    if kind not in FORMATS:
        raise _invalid(limits, "图片格式应为 JPEG、PNG 或 WebP")
    if not (limits.min_side <= width <= limits.max_side and limits.min_side <= height <= limits.max_side):
        raise _invalid(limits, f"图片宽高应在 {limits.min_side}–{limits.max_side} 像素之间")
    if kind == "JPEG" and not _jpeg_decodes(content):
        raise _invalid(limits, "不是有效的图片文件")
    return FORMATS[kind][0]


def _jpeg_decodes(content: bytes) -> bool:
    """verify() reads none of a JPEG's image data: decode all of it, at an eighth of each side (a few MB at most),
    so that a file cut short is found as it is for PNG and WebP."""
    try:
        with Image.open(io.BytesIO(content)) as image:
            image.draft(image.mode, (image.width // 8, image.height // 8))
            image.load()
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError):
        return False
    return True


def _invalid(limits: ImageLimits, message: str) -> ValidationFailed:
    return ValidationFailed({limits.field: [message]}, message=message, code="picture_invalid")
