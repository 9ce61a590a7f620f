"""Mainland mobile numbers: normalized from what people type, kept only hashed and masked."""

from __future__ import annotations

import hashlib
import hmac
import re
import unicodedata

_MOBILE = re.compile(r"^1[3-9][0-9]{9}$")


class BadPhone(ValueError):
    pass


def normalize_phone(raw: str) -> str:
    """'＋86 138-0013-8000' → '13800138000'. Full-width digits and +86/0086 prefixes are accepted."""
    text = unicodedata.normalize("NFKC", str(raw or "")).strip()
    text = re.sub(r"[\s\-()]", "", text)
    for prefix in ("+86", "0086", "86"):
        if text.startswith(prefix) and len(text) == len(prefix) + 11:
            text = text[len(prefix):]
            break
    if not _MOBILE.match(text):
        raise BadPhone("手机号格式不正确（应为 11 位大陆手机号）")
    return text


def hash_phone(normalized: str, key: str) -> str:
    return hmac.new(key.encode(), normalized.encode(), hashlib.sha256).hexdigest()


def mask_phone(normalized: str) -> str:
    return f"{normalized[:3]}****{normalized[-4:]}"
