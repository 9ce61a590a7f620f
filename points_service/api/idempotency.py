"""``@idempotent``: honour an ``Idempotency-Key`` header on writes a weak mobile network may retry.

Place it under ``@login_required`` (keys are scoped per user) and above ``@blp.arguments`` (so a
request that fails validation releases its key).
"""

from __future__ import annotations

import hashlib
import re
import uuid
from functools import wraps

from flask import g, jsonify, make_response, request

from points_service.domain.errors import ValidationFailed
from points_service.domain.idempotency import Replay, claim_key, complete_key, release_key

HEADER = "Idempotency-Key"
_SAFE_KEY = re.compile(r"^[A-Za-z0-9_-]{8,64}$")


def _fingerprint() -> str:
    digest = hashlib.sha256()
    for part in (request.method, request.path, request.get_data(cache=True)):
        digest.update(part if isinstance(part, bytes) else part.encode())
        digest.update(b"\0")
    return digest.hexdigest()


def client_key() -> str | None:
    """The request's Idempotency-Key as the client sent it (``@idempotent`` refused a malformed one), or None: a
    use case keeps it on the row it writes (an order, a record) so that a re-run finds that row."""
    return request.headers.get(HEADER)


def request_key() -> str:
    """A key for a write's own deduplication (e.g. a ledger entry's): derived from the Idempotency-Key when the
    client sent one, so a request re-run after a crash (see ``claim_key``'s lease) writes the same row again,
    not a second one; random otherwise."""
    key = request.headers.get(HEADER)
    if key is None or not _SAFE_KEY.match(key):
        return uuid.uuid4().hex
    return hashlib.sha256(f"idempotency-key:{key}".encode()).hexdigest()[:32]


def idempotent(view):
    @wraps(view)
    def wrapper(*args, **kwargs):
        key = request.headers.get(HEADER)
        if key is None:
            return view(*args, **kwargs)
        if not _SAFE_KEY.match(key):
            raise ValidationFailed({HEADER: ["须为 8–64 位字母、数字、- 或 _"]})
        claimed = claim_key(g.principal.user_id, key, _fingerprint())
        if isinstance(claimed, Replay):
            replayed = jsonify(claimed.body)
            replayed.status_code, replayed.headers["Idempotent-Replayed"] = claimed.status, "true"
            return replayed
        try:
            response = make_response(view(*args, **kwargs))
        except Exception:
            release_key(claimed.id)
            raise
        if 200 <= response.status_code < 300 and response.is_json:
            complete_key(claimed.id, response.status_code, response.get_json())
        else:
            release_key(claimed.id)
        return response

    return wrapper
