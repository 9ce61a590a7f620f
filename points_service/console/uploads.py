"""Holding a roster file between its dry run and the confirmation that writes it.

The file waits in the instance folder under a random name; the name travels only in the signed session,
so a user can confirm only his own upload. Files older than an hour are removed on the next upload.
(Several hosts behind one balancer need sticky sessions or a shared instance folder for this.)
"""

from __future__ import annotations

import re
import secrets
import time
from pathlib import Path

from flask import current_app, session

SESSION_KEY = "console_roster_upload"
MAX_AGE_SECONDS = 3600
_NAME = re.compile(r"^[A-Za-z0-9_-]{20,40}\.(csv|xlsx)$")


def _folder() -> Path:
    folder = Path(current_app.instance_path) / "console-uploads"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def stage(kind: str, content: bytes, filename: str) -> None:
    folder = _folder()
    for old in folder.iterdir():
        if old.stat().st_mtime < time.time() - MAX_AGE_SECONDS:
            old.unlink(missing_ok=True)
    discard()
    suffix = "xlsx" if filename.lower().endswith(".xlsx") else "csv"
    name = f"{secrets.token_urlsafe(18)}.{suffix}"
    (folder / name).write_bytes(content)
    session[SESSION_KEY] = {"kind": kind, "name": name, "filename": filename}


def staged() -> dict | None:
    entry = session.get(SESSION_KEY)
    if not isinstance(entry, dict) or not _NAME.match(str(entry.get("name", ""))):
        return None
    return entry if (_folder() / entry["name"]).exists() else None


def read_staged(entry: dict) -> bytes:
    return (_folder() / entry["name"]).read_bytes()


def discard() -> None:
    entry = session.pop(SESSION_KEY, None)
    if isinstance(entry, dict) and _NAME.match(str(entry.get("name", ""))):
        (_folder() / entry["name"]).unlink(missing_ok=True)
