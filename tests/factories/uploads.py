"""Factories for evidence uploads: image bytes of a given kind and size, and a stored upload of a member."""

from __future__ import annotations

import io

from PIL import Image

from points_service.domain.access import principal_for
from points_service.domain.uploads import store_evidence
from points_service.models import EvidenceUpload, User


def make_image(width: int = 200, height: int = 120, kind: str = "PNG", *, noise: bool = False) -> bytes:
    """One colour, or with ``noise`` random pixels (a photo's worth of compressed data to cut short)."""
    buffer = io.BytesIO()
    image = Image.effect_noise((width, height), 64).convert("RGB") if noise else Image.new("RGB", (width, height),
                                                                                         (30, 120, 200))
    image.save(buffer, kind)
    return buffer.getvalue()


def make_evidence_upload(user: User, **overrides) -> EvidenceUpload:
    return store_evidence(principal_for(user), overrides.get("content") or make_image(), now=overrides.get("now"))
