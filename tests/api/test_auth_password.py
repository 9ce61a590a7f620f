"""POST /auth/login: console passwords, no user enumeration, lockout with back-off, audit, hashing."""

from __future__ import annotations

from datetime import timedelta

import jwt
import pytest
import sqlalchemy as sa
from werkzeug.security import check_password_hash

from points_service.db import db, utcnow
from points_service.domain.accounts import signin as auth
from points_service.domain.errors import RateLimited
from points_service.models import AuditEntry, User
from tests.factories import PASSWORD, make_user

LOGIN = "/api/v1/auth/login"


@pytest.fixture
def user(app):
    user = make_user(username="secretary1")
    db.session.commit()
    return user


def login(client, username: str = "secretary1", password: str = PASSWORD):
    return client.post(LOGIN, json={"username": username, "password": password})


def fail(client, times: int, username: str = "secretary1") -> None:
    for _ in range(times):
        assert login(client, username, "wrong-password-1").status_code == 401


def login_audit() -> list[tuple[str | None, str]]:
    rows = db.session.scalars(sa.select(AuditEntry).where(AuditEntry.action == "login").order_by(AuditEntry.id))
    return [(row.target_id, row.result) for row in rows]


def test_the_right_password_returns_a_token_pair_for_that_account(client, user):
    response = login(client)
    assert response.status_code == 200
    data = response.get_json()["data"]
    assert set(data) == {"access_token", "refresh_token"}
    assert jwt.decode(data["access_token"], options={"verify_signature": False})["sub"] == f"u:{user.id}"
    me = client.get("/api/v1/me", headers={"Authorization": f"Bearer {data['access_token']}"})
    assert me.get_json()["data"]["user"]["username"] == "secretary1"


def test_a_wrong_password_is_401_invalid_credentials(client, user):
    response = login(client, password="not-the-password-9")
    assert response.status_code == 401
    assert response.get_json()["code"] == "invalid_credentials"


def test_an_unknown_user_gets_exactly_the_same_answer_as_a_wrong_password(client, user):
    wrong = login(client, password="not-the-password-9")
    unknown = login(client, username="nobody-here")
    assert unknown.status_code == wrong.status_code == 401
    strip = lambda body: {k: v for k, v in body.items() if k != "request_id"}  # noqa: E731
    assert strip(unknown.get_json()) == strip(wrong.get_json())
    assert set(unknown.headers.keys()) == set(wrong.headers.keys())


def test_an_unknown_user_still_pays_for_a_password_check(client, user, monkeypatch):
    # Without it, the time to answer would tell which usernames exist.
    checked = []
    real = auth.check_password_hash
    monkeypatch.setattr(auth, "check_password_hash", lambda *a: checked.append(1) or real(*a))
    login(client, username="nobody-here")
    assert checked == [1]


def test_the_account_locks_after_the_configured_failures_even_for_the_right_password(app, client, user):
    fail(client, app.config["LOGIN_MAX_FAILURES"])
    response = login(client)
    assert response.status_code == 429
    assert response.get_json()["code"] == "login_locked"
    assert 0 < int(response.headers["Retry-After"]) <= app.config["LOGIN_LOCK_SECONDS"] + 1


def test_one_failure_fewer_than_the_limit_does_not_lock(app, client, user):
    fail(client, app.config["LOGIN_MAX_FAILURES"] - 1)
    assert login(client).status_code == 200


def test_a_success_resets_the_failure_count(app, client, user):
    limit = app.config["LOGIN_MAX_FAILURES"]
    fail(client, limit - 1)
    assert login(client).status_code == 200
    fail(client, limit - 1)
    assert login(client).status_code == 200


def test_the_lock_lifts_when_its_time_is_over(app, client, user):
    fail(client, app.config["LOGIN_MAX_FAILURES"])
    assert login(client).status_code == 429
    user.locked_until = utcnow() - timedelta(seconds=1)
    db.session.commit()
    assert login(client).status_code == 200


def test_the_lock_is_timed_from_the_last_failure(app, user):
    policy = auth.LoginPolicy(max_failures=3, lock_seconds=600)
    start = utcnow()
    for _ in range(3):
        with pytest.raises(auth.BadCredentials):
            auth.login_with_password("secretary1", "wrong-password-1", policy=policy, now=start)
    with pytest.raises(RateLimited):
        auth.login_with_password("secretary1", PASSWORD, policy=policy, now=start + timedelta(seconds=599))
    tokens = auth.login_with_password("secretary1", PASSWORD, policy=policy, now=start + timedelta(seconds=601))
    assert tokens.access_token


def test_the_lock_belongs_to_the_account_not_to_other_accounts(app, client, user):
    make_user(username="secretary2")
    db.session.commit()
    fail(client, app.config["LOGIN_MAX_FAILURES"])
    assert login(client, "secretary2").status_code == 200


def test_failures_locks_and_successes_are_audited(app, client, user):
    fail(client, app.config["LOGIN_MAX_FAILURES"])
    login(client)
    login(client, username="nobody-here")
    failures = [(str(user.id), "failed")] * app.config["LOGIN_MAX_FAILURES"]
    expected = [*failures, (str(user.id), "locked"), (None, "failed")]
    assert login_audit() == expected
    user.locked_until = None
    db.session.commit()
    login(client)
    assert login_audit()[-1] == (str(user.id), "ok")


def test_audit_rows_never_hold_the_attempted_password(app, client, user):
    login(client, password="my-secret-guess-7")
    rows = db.session.scalars(sa.select(AuditEntry)).all()
    assert rows and all("my-secret-guess-7" not in str(row.detail) for row in rows)


def test_passwords_are_stored_hashed_and_salted(app, user):
    make_user(username="secretary2")
    db.session.commit()
    hashes = db.session.scalars(sa.select(User.password_hash).where(User.username.in_(["secretary1", "secretary2"])))
    first, second = list(hashes)
    assert PASSWORD not in first and first != second  # same password, different salts
    assert first.startswith(("scrypt:", "pbkdf2:")) and check_password_hash(first, PASSWORD)


def test_a_deactivated_account_cannot_log_in(client, user):
    user.is_active = False
    db.session.commit()
    response = login(client)
    assert response.status_code == 401 and response.get_json()["code"] == "invalid_credentials"


def test_a_wechat_only_account_has_no_password_to_guess(client, app):
    account = User(display_name="微信用户")
    db.session.add(account)
    db.session.commit()
    assert login(client, username="", password="").status_code == 422
    assert login(client, username="None", password="None").status_code == 401
