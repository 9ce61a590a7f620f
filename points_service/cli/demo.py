"""``flask demo seed`` builds the demo city; ``flask demo info`` says where to click and how to sign in.

``make run`` calls both. The demo accounts' passwords are generated on each seed and written only to
``<instance>/demo-accounts.json`` (mode 600, git-ignored) and to the terminal.
"""

from __future__ import annotations

import json
import os
import time
import unicodedata
from pathlib import Path

import click
from flask import current_app
from flask.cli import AppGroup

from points_service.db import db
from points_service.domain.demo import city as demo
from points_service.domain.errors import ServiceError

demo_cli = AppGroup("demo", help="Demo data for development (never in production).")

ACCOUNTS_FILE = "demo-accounts.json"


def accounts_path() -> Path:
    return Path(current_app.instance_path) / ACCOUNTS_FILE


@demo_cli.command("seed")
@click.option("--seed", default=demo.DEFAULT_SEED, show_default=True, type=int,
              help="Random seed: the same seed builds the same city (passwords always differ).")
@click.option("--if-empty", is_flag=True, help="Do nothing when the database already has regions.")
@click.option("--communities", default=demo.DemoSize.communities, show_default=True,
              type=click.IntRange(1, demo.MAX_COMMUNITIES))
@click.option("--departments", default=demo.DemoSize.departments, show_default=True,
              type=click.IntRange(1, demo.MAX_DEPARTMENTS))
@click.option("--members", default=demo.DemoSize.members, show_default=True,
              type=click.IntRange(demo.DemoSize.wechat_members, 100_000))
def seed_command(seed, if_empty, communities, departments, members):
    """Seed the demo city (a Jining-like territory, organizations, members and demo accounts)."""
    started = time.perf_counter()
    try:
        city = demo.seed_demo(env_name=current_app.config["ENV_NAME"], phone_key=current_app.config["PHONE_HASH_KEY"],
                              seed=seed, size=demo.DemoSize(communities, departments, members),
                              only_if_empty=if_empty)
    except ServiceError as exc:
        db.session.rollback()
        hint = " Use --if-empty to skip, or seed an empty database." if isinstance(exc, demo.DemoNotEmpty) else ""
        raise click.ClickException(f"{exc.message} ({exc.code}).{hint}") from exc
    if city is None:
        click.echo("demo: the database already has regions; nothing seeded (--if-empty).")
        return
    document = demo.accounts_document(city)
    write_private_json(accounts_path(), document)
    click.echo(f"demo: seeded seed={seed}: {city.region_count} regions, {len(city.departments)} departments, "
               f"{len(city.branches)} branches, {len(city.members)} members "
               f"in {time.perf_counter() - started:.1f}s")
    click.echo(f"demo: accounts written to {accounts_path()}")
    echo_accounts(document)


@demo_cli.command("info")
@click.option("--port", default=5000, show_default=True, type=int)
def info_command(port):
    """Print the local URLs, the demo accounts and how to sign in."""
    base = f"http://127.0.0.1:{port}"
    click.echo(f"API docs:   {base}/api/docs\nhealth:     {base}/healthz\nreadiness:  {base}/readyz\n")
    path = accounts_path()
    if not path.exists():
        click.echo(f"No demo accounts ({path} is missing): run `flask demo seed` first.")
        return
    document = json.loads(path.read_text(encoding="utf-8"))
    click.echo(f"Demo accounts ({path}, seed {document['seed']}):")
    echo_accounts(document)
    echo_sign_in(base, document)


def echo_accounts(document: dict) -> None:
    rows = [("username", "role", "scope", "password")]
    rows += [(a["username"], a["role"], a["scope"], a["password"]) for a in document["accounts"]]
    rows += [(m["openid"], "member (WeChat)", f"{m['name']} · {m['branch']} · {m['community']}", "-")
             for m in document["wechat_members"]]
    widths = [max(display_width(row[i]) for row in rows) for i in range(3)]
    for row in rows:
        click.echo("  " + "  ".join(pad(cell, width) for cell, width in zip(row, widths, strict=False)) + f"  {row[3]}")


def echo_sign_in(base: str, document: dict) -> None:
    admin = document["accounts"][0]
    member = document["wechat_members"][0]
    json_header = "-H 'Content-Type: application/json'"
    token = "python3 -c 'import json,sys; print(json.load(sys.stdin)[\"data\"][\"access_token\"])'"
    click.echo(f"""
Sign in as a console user (any account above):
  curl -s -X POST {base}/api/v1/auth/login {json_header} \\
       -d '{{"username": "{admin['username']}", "password": "{admin['password']}"}}'

Sign in as demo member {member['name']} from the "mini-program" (development accepts dev:<openid> codes):
  curl -s -X POST {base}/api/v1/auth/wechat {json_header} -d '{{"code": "dev:{member['openid']}"}}'

Then call the API with the access token:
  TOKEN=$(curl -s -X POST {base}/api/v1/auth/wechat {json_header} \\
          -d '{{"code": "dev:{member['openid']}"}}' | {token})
  curl -s {base}/api/v1/me -H "Authorization: Bearer $TOKEN"

To try binding, sign in with any other dev: code and POST /api/v1/auth/bind with
  {json.dumps(document['binding_example'], ensure_ascii=False)}""")
    if not current_app.config.get("WECHAT_DEV_LOGIN"):
        click.echo("\nNOTE: WECHAT_DEV_LOGIN is off here, so dev: codes will be refused.")


def write_private_json(path: Path, document: dict) -> None:
    """Write readable only by the owner from the first byte (no window with default permissions)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        json.dump(document, handle, ensure_ascii=False, indent=2)
    path.chmod(0o600)  # O_CREAT's mode does not apply to a file left by an earlier seed


def display_width(text: str) -> int:
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)


def pad(text: str, width: int) -> str:
    """ljust by terminal columns: Chinese characters take two."""
    return text + " " * (width - display_width(text))
