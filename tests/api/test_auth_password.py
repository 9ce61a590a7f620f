"""POST /auth/login: console passwords, no user enumeration, a lockout per (username, address) that a stranger
cannot turn against the owner, the account guard against distributed guessing, audit, hashing."""

from __future__ import annotations

import jwt
import pytest
import sqlalchemy as sa
from werkzeug.security import check_password_hash

from points_service.db import db
from points_service.domain.accounts import signin as auth
from points_service.models import AuditEntry, User
from tests.factories import PASSWORD, make_user

LOGIN = "/api/v1/auth/login"


@pytest.fixture
def user(app):
    user = make_user(username="secretary1")
    db.session.commit()
    return user


OWNER, STRANGER = "192.0.2.10", "203.0.113.66"


def login(client, username: str = "secretary1", password: str = PASSWORD, address: str = OWNER):
    return client.post(LOGIN, json={"username": username, "password": password},
                       environ_base={"REMOTE_ADDR": address})


def fail(client, times: int, username: str = "secretary1", address: str = STRANGER) -> None:
    for _ in range(times):
        assert login(client, username, "wrong-password-1", address).status_code == 401


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


def test_an_address_locks_for_the_account_after_the_configured_failures_even_for_the_right_password(
        app, client, user):
    fail(client, app.config["LOGIN_MAX_FAILURES"])
    response = login(client, address=STRANGER)
    assert response.status_code == 429
    assert response.get_json()["code"] == "login_locked"
    assert 0 < int(response.headers["Retry-After"]) <= app.config["LOGIN_LOCK_SECONDS"] + 1


def test_one_failure_fewer_than_the_limit_does_not_lock(app, client, user):
    fail(client, app.config["LOGIN_MAX_FAILURES"] - 1)
    assert login(client, address=STRANGER).status_code == 200


def test_a_success_resets_the_failure_count_of_its_address(app, client, user):
    limit = app.config["LOGIN_MAX_FAILURES"]
    fail(client, limit - 1)
    assert login(client, address=STRANGER).status_code == 200
    fail(client, limit - 1)
    assert login(client, address=STRANGER).status_code == 200


def test_the_lock_lifts_when_its_time_is_over(app, client, user, clock):
    fail(client, app.config["LOGIN_MAX_FAILURES"])
    assert login(client, address=STRANGER).status_code == 429
    clock.advance(app.config["LOGIN_LOCK_SECONDS"] + 1)
    assert login(client, address=STRANGER).status_code == 200


def test_the_lock_lasts_its_full_time_from_the_failure_that_reached_the_limit(app, client, user, clock):
    limit, lock = app.config["LOGIN_MAX_FAILURES"], app.config["LOGIN_LOCK_SECONDS"]
    fail(client, limit - 1)
    clock.advance(lock - 5)  # the earlier failures are nearly out of the window when the last one comes
    fail(client, 1)
    clock.advance(10)
    response = login(client, address=STRANGER)
    assert response.status_code == 429 and int(response.headers["Retry-After"]) == lock - 10


def test_the_lock_belongs_to_the_account_not_to_other_accounts(app, client, user):
    make_user(username="secretary2")
    db.session.commit()
    fail(client, app.config["LOGIN_MAX_FAILURES"])
    assert login(client, "secretary2", address=STRANGER).status_code == 200


def test_a_stranger_cannot_lock_the_owner_out_from_another_address(app, client, user):
    fail(client, app.config["LOGIN_MAX_FAILURES"], address=STRANGER)
    assert login(client, address=STRANGER).status_code == 429
    assert login(client, address=OWNER).status_code == 200


def test_an_unknown_username_is_locked_exactly_like_a_known_one(app, client, user):
    limit = app.config["LOGIN_MAX_FAILURES"]
    fail(client, limit, username="secretary1")
    fail(client, limit, username="nobody-here")
    known, unknown = login(client, "secretary1", address=STRANGER), login(client, "nobody-here", address=STRANGER)
    assert known.status_code == unknown.status_code == 429
    strip = lambda body: {k: v for k, v in body.items() if k != "request_id"}  # noqa: E731
    assert strip(known.get_json()) == strip(unknown.get_json())
    assert known.get_json()["code"] == "login_locked"
    assert known.headers["Retry-After"] == unknown.headers["Retry-After"]


def test_a_distributed_guess_guards_the_account_but_the_owners_known_address_still_signs_in(app, client, user):
    app.config.update(LOGIN_ACCOUNT_MAX_FAILURES=6)
    assert login(client, address=OWNER).status_code == 200  # the owner's office address, known from now on
    for n in range(3):  # two wrong guesses from each of three addresses: no single address is locked
        fail(client, 2, address=f"198.51.100.{n}")
    new_place = login(client, address="198.51.100.77")
    assert new_place.status_code == 429 and new_place.get_json()["code"] == "login_locked"
    assert 0 < int(new_place.headers["Retry-After"]) <= app.config["LOGIN_ACCOUNT_WINDOW_SECONDS"]
    assert login(client, address=OWNER).status_code == 200


def test_a_guarded_unknown_username_answers_like_a_guarded_known_one(app, client, user):
    app.config.update(LOGIN_ACCOUNT_MAX_FAILURES=4)
    for name in ("secretary1", "nobody-here"):
        for n in range(2):
            fail(client, 2, username=name, address=f"198.51.100.{n}")
    known, unknown = login(client, "secretary1"), login(client, "nobody-here")
    assert known.status_code == unknown.status_code == 429
    assert known.headers["Retry-After"] == unknown.headers["Retry-After"]


def test_a_locked_attempt_checks_no_password(app, client, user, monkeypatch):
    # A lock answers before any hash is computed, for known and unknown names alike: no timing difference.
    fail(client, app.config["LOGIN_MAX_FAILURES"])
    checked = []
    monkeypatch.setattr(auth, "check_password_hash", lambda *a: checked.append(1))
    assert login(client, address=STRANGER).status_code == 429
    assert checked == []


def test_with_rate_limits_off_nothing_is_locked(app, client, user):
    app.extensions["points_ratelimit"].enabled = False
    try:
        fail(client, app.config["LOGIN_MAX_FAILURES"] + 1)
        assert login(client, address=STRANGER).status_code == 200
    finally:
        app.extensions["points_ratelimit"].enabled = True


def test_failures_locks_and_successes_are_audited(app, client, user, clock):
    fail(client, app.config["LOGIN_MAX_FAILURES"])
    login(client, address=STRANGER)
    login(client, username="nobody-here")
    failures = [(str(user.id), "failed")] * app.config["LOGIN_MAX_FAILURES"]
    expected = [*failures, (str(user.id), "locked"), (None, "failed")]
    assert login_audit() == expected
    clock.advance(app.config["LOGIN_LOCK_SECONDS"] + 1)
    login(client, address=STRANGER)
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
