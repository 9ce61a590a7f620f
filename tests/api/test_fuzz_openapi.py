"""Schemathesis fuzzes every operation of the served OpenAPI document, once with a member's token and once with
an admin's, in a seeded world: no answer may be a 5xx, and every answer must match its documented status,
content type and schema. The CI profile (50 examples per operation, derandomized) runs in ``make test``;
``make fuzz`` runs the long profile (``POINTS_FUZZ_PROFILE=long``: more examples, a random seed)."""

from __future__ import annotations

import os
from collections import Counter
from contextvars import ContextVar

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from points_service import create_app
from tests.conftest import test_settings as app_settings  # not collected as a test under this name
from tests.factories import auth_header
from tests.factories.fuzz import make_fuzz_world
from tests.fake_wechat import serve_fake_wechat, wechat_config

pytestmark = pytest.mark.fuzz

PROFILES = {
    "ci": settings(max_examples=50, derandomize=True, database=None, deadline=None,
                   suppress_health_check=list(HealthCheck)),
    "long": settings(max_examples=500, derandomize=False, database=None, deadline=None,
                     suppress_health_check=list(HealthCheck)),
}
PROFILE = PROFILES[os.environ.get("POINTS_FUZZ_PROFILE", "ci")]
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
WORLD_IDS = 16  # the seeded world's rows have ids below this
WORLD_YEAR = 2025  # the seeded world's settled year (tests.factories.annual.YEAR)
PICTURE: ContextVar[str] = ContextVar("picture", default="none.png")  # the world's stored picture name


def served_document() -> dict:
    return create_app(app_settings()).test_client().get("/api/openapi.json").get_json()


schema = schemathesis.openapi.from_dict(served_document())


@schema.hook
def map_path_parameters(context, path_parameters):
    """Half of the generated row ids (years, picture names) are folded into the world, so operations reach
    real rows too."""
    if not path_parameters:
        return path_parameters
    return {name: _fold(name, value) for name, value in path_parameters.items()}


def _fold(name: str, value):
    if name == "name" and isinstance(value, str) and len(value) % 2 == 0:
        return PICTURE.get()
    if not isinstance(value, int) or isinstance(value, bool) or value % 2:
        return value
    if name == "year":
        return WORLD_YEAR
    return value % WORLD_IDS + 1 if name.endswith("_id") and value > WORLD_IDS else value


@pytest.fixture
def world(app, tmp_path, httpserver):
    app.instance_path = str(tmp_path)  # uploaded pictures land here, not in the checkout
    serve_fake_wechat(httpserver)  # POST /auth/wechat reaches a code2session that refuses unknown codes
    app.config.update(wechat_config(httpserver))
    world = make_fuzz_world()
    PICTURE.set(world["picture"])
    return world


@pytest.fixture
def statuses(request):
    """The statuses each operation answered, kept in the test report (``--junitxml``) for the figures."""
    seen: Counter = Counter()
    yield seen
    request.node.user_properties.append(("statuses", dict(sorted(seen.items()))))


@pytest.mark.parametrize("who", ["member", "admin"])
@schema.parametrize()
@PROFILE
def test_every_operation_answers_as_documented_without_a_server_error(case, who, app, world, statuses):
    user = world["users"]["alice" if who == "member" else "admin"]
    response = case.call_and_validate(app=app, headers=auth_header(user), checks=CHECKS)
    statuses[response.status_code] += 1
