"""The live service the mini-program's contract test talks to: the app on a temporary SQLite file with a
small demo city, and a stand-in for WeChat's code2session on another loopback port.

Run from the repository root (``.venv/bin/python scripts/miniprogram_api.py``). When both servers listen it
prints one JSON line on stdout ``{"api", "wechat", "accounts"}`` (``accounts`` is the demo's accounts
document: console passwords and a roster member to bind) and serves until stdin closes or it is
terminated. The fake WeChat also answers ``POST /test/issue-code?openid=...`` with a fresh login code,
which is what the test's ``wx.login`` stands for. Everything listens on 127.0.0.1 on ports the OS picks.

For the 积分超市 walk, the member to bind gets 20 redeemable points and his community offers one item he can
afford (2 points, 5 in stock, at most 3 a month, with a picture); ``accounts.market_item`` names it. Uploads
(pictures, evidence photos) go to the temporary folder, which is the app's instance folder here.
"""

from __future__ import annotations

import io
import json
import signal
import sys
import tempfile
import threading
from decimal import Decimal
from pathlib import Path

import sqlalchemy as sa
from PIL import Image
from werkzeug import Request, Response
from werkzeug.serving import make_server

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from config.settings import Testing  # noqa: E402
from points_service import create_app  # noqa: E402
from points_service.db import db  # noqa: E402
from points_service.domain.access import principal_for  # noqa: E402
from points_service.domain.demo import city as demo  # noqa: E402
from points_service.domain.ledger.corrections import adjust  # noqa: E402
from points_service.domain.market import catalogue  # noqa: E402
from points_service.domain.market.catalogue import ItemDraft  # noqa: E402
from points_service.models import LedgerName, SubjectType, User  # noqa: E402
from tests.fake_wechat import APP_ID, APP_SECRET, CODE2SESSION, FakeWechat  # noqa: E402

DEMO_SIZE = demo.DemoSize(communities=4, departments=6, members=120)


class FakeWechatServer:
    """WeChat's code2session, plus the test-only door that hands out login codes."""

    def __init__(self) -> None:
        self.fake = FakeWechat()

    def __call__(self, environ, start_response):
        request = Request(environ)
        if request.path == CODE2SESSION:
            response = self.fake(request)
        elif request.path == "/test/issue-code" and request.method == "POST":
            response = Response(json.dumps({"code": self.fake.issue_code(request.args["openid"])}),
                                content_type="application/json")
        else:
            response = Response("not found", status=404)
        return response(environ, start_response)


def seed_market(city) -> dict:
    """An item the member to bind can afford, and the points to afford it (what the contract test orders)."""
    member = next(m for m in city.members if m not in city.wechat_members)  # accounts_document's binding example
    admin_name = next(account.username for account in city.accounts if account.role.value == "admin")
    admin = principal_for(db.session.scalar(sa.select(User).where(User.username == admin_name)))
    adjust(admin, SubjectType.MEMBER, member.id, Decimal(20), "契约测试：兑换用公益积分",
           ledger=LedgerName.REDEEMABLE, request_key="miniprogram-contract-fund")
    item = catalogue.create_item(admin, ItemDraft(region_id=member.community_id, name="契约测试：环保购物袋",
                                                  price=Decimal(2), stock=5, limit_per_member=3,
                                                  description="可重复使用的环保购物袋"))
    picture = io.BytesIO()
    Image.new("RGB", (240, 160), (200, 22, 29)).save(picture, "PNG")
    catalogue.set_picture(admin, item.id, picture.getvalue())
    return {"id": item.id, "name": item.name, "price": 2, "stock": 5, "limit_per_member": 3}


def build_app(db_path: Path, wechat_base: str):
    settings = Testing()
    settings.SQLALCHEMY_DATABASE_URI = f"sqlite:///{db_path}"
    settings.WECHAT_API_BASE = wechat_base
    settings.WECHAT_APP_ID, settings.WECHAT_APP_SECRET = APP_ID, APP_SECRET
    settings.WECHAT_DEV_LOGIN = False
    app = create_app(settings)
    app.instance_path = str(db_path.parent)
    with app.app_context():
        db.create_all()
        city = demo.seed_demo(env_name="testing", phone_key=app.config["PHONE_HASH_KEY"], size=DEMO_SIZE)
        accounts = demo.accounts_document(city)
        accounts["market_item"] = seed_market(city)
    return app, accounts


def serve(app) -> tuple[threading.Thread, object]:
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    return thread, server


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="points-miniprogram-") as folder:
        _, wechat = serve(FakeWechatServer())
        wechat_url = f"http://127.0.0.1:{wechat.server_port}"
        app, accounts = build_app(Path(folder) / "points.sqlite", wechat_url)
        _, api = serve(app)
        print(json.dumps({"api": f"http://127.0.0.1:{api.server_port}", "wechat": wechat_url,
                          "accounts": accounts}, ensure_ascii=False), flush=True)
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        threading.Thread(target=lambda: (sys.stdin.read(), stop.set()), daemon=True).start()
        stop.wait()
        api.shutdown()
        wechat.shutdown()


if __name__ == "__main__":
    main()
