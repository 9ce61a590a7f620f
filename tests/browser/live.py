"""A real server for browser tests and screenshots: the app on a file SQLite database, served by Werkzeug
in a thread on 127.0.0.1 (pytest-flask's live_server forks, and an in-memory database cannot be shared),
and the system Chromium (Debian's ``chromium``; Playwright's own browser download is impossible here)."""

from __future__ import annotations

import os
import shutil
import threading
from datetime import timedelta
from pathlib import Path

from flask_jwt_extended import create_access_token
from werkzeug.serving import make_server

from config.settings import Testing
from points_service import create_app
from points_service.db import db, utcnow
from points_service.domain.access import principal_for
from points_service.domain.reports import reporting as reports
from points_service.models import Role
from tests.factories import make_user, make_world
from tests.factories.activities import make_activity
from tests.factories.records import self_report

CHROMIUM = os.environ.get("POINTS_CHROMIUM", "/usr/bin/chromium")
LAUNCH_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-dev-shm-usage"]


def chromium_path() -> str | None:
    return CHROMIUM if Path(CHROMIUM).exists() else shutil.which("chromium")


def build_app(db_path: Path):
    settings = Testing()
    settings.SQLALCHEMY_DATABASE_URI = f"sqlite:///{db_path}"
    settings.CONSOLE_LIVE_POLL_SECONDS = 1  # the check-in screen refreshes every second under test
    app = create_app(settings)
    with app.app_context():
        db.create_all()
    return app


def seed(app) -> dict:
    """The factories' small city plus what the pages show: pending records, reports and a running activity.
    Returns plain ids and names (the objects do not outlive the app context)."""
    with app.app_context():
        world = make_world()
        users = world["users"]
        users["org_admin"] = make_user((Role.ORG_ADMIN, world["finance"].id), username="finance_org_admin")
        db.session.commit()
        records = [self_report(users["alice"], description=text, now=utcnow() - timedelta(hours=hours),
                               occurred_at=utcnow() - timedelta(hours=hours + 2))
                   for text, hours in (("为独居老人代购药品并送药上门", 30), ("参与小区垃圾分类宣传", 20),
                                       ("帮助邻居疏通下水道", 10))]
        reports.submit_org_report(principal_for(users["org_admin"]), world["finance"].id, world["north"].id,
                                  resources=["会议室两间", "法律咨询志愿者 3 名"], needs=["老旧小区加装电梯"],
                                  projects=["共建“四点半课堂”", "楼道安全隐患排查"])
        reports.submit_member_report(principal_for(users["bob"]), world["north"].id)
        activity = make_activity(world["north"], utcnow() - timedelta(minutes=5), hours=3)
        activity.title = "固定服务日：清理楼道与义诊"
        db.session.commit()
        return {"records": [r.id for r in records], "activity": activity.id, "alice": world["alice"].id,
                "alice_user": users["alice"].id}


def bearer(app, user_id: int) -> dict:
    with app.app_context():
        return {"Authorization": f"Bearer {create_access_token(identity=f'u:{user_id}')}"}


class LiveServer:
    def __init__(self, app) -> None:
        self.server = make_server("127.0.0.1", 0, app, threaded=True)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> LiveServer:
        self.thread.start()
        return self

    def __exit__(self, *_exc) -> None:
        self.server.shutdown()
        self.thread.join(timeout=10)


def launch(playwright):
    return playwright.chromium.launch(executable_path=chromium_path(), headless=True, args=LAUNCH_ARGS)


def sign_in(page, base_url: str, username: str, password: str) -> None:
    page.goto(f"{base_url}/console/login")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", password)
    page.click("button[type=submit]")
