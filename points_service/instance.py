"""The instance folder of a development run: its SQLite file and its generated secrets.

Development never ships a secret in the repo: the first run writes random keys to
instance/secrets.json (git-ignored) and later runs reuse them so that hashed phones stay valid.
"""

from __future__ import annotations

import json
import secrets
from pathlib import Path


def ensure_development_secrets(app) -> None:
    path = Path(app.instance_path) / "secrets.json"
    stored = json.loads(path.read_text()) if path.exists() else {}
    changed = False
    for name in ("SECRET_KEY", "PHONE_HASH_KEY"):
        if not app.config.get(name):
            if name not in stored:
                stored[name] = secrets.token_urlsafe(48)
                changed = True
            app.config[name] = stored[name]
    if changed:
        path.write_text(json.dumps(stored))
        path.chmod(0o600)
    app.config["JWT_SECRET_KEY"] = app.config.get("JWT_SECRET_KEY") or app.config["SECRET_KEY"]


def sqlite_url(app) -> str:
    return f"sqlite:///{Path(app.instance_path) / 'points.db'}"
