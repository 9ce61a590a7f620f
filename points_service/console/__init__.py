"""The console: server-rendered pages for secretaries, community admins, HR and admins.

Jinja templates (``templates/console``) with light interactivity from vendored htmx; charts with vendored
ECharts. Every page calls the same domain use cases as the API (which authorize with ``domain/access``), so
the console holds no rule of its own.

How it is put together (to add a page: a view module, a ``SECTIONS`` entry, a ``nav.NAV`` entry):

- ``site.console`` is the parent blueprint at ``/console``: it signs users in (session cookie), turns the
  session into the domain's ``Principal``, checks CSRF on every unsafe request and renders error pages.
  Every page requires a signed-in user unless its endpoint is listed in ``site.PUBLIC_ENDPOINTS``.
- ``views/*`` hold one child blueprint per section; ``SECTIONS`` lists them (a table of contents).
- ``nav.NAV`` is the navigation as data: label, endpoint, who sees it, which badge count it shows.
"""

from __future__ import annotations

from flask import Flask, redirect, url_for

from points_service.console.site import CookieSessions, console, csrf
from points_service.console.views import (
    activities,
    admin_policy,
    admin_roster,
    admin_users,
    approvals,
    boards,
    home,
    hr,
    market,
    notifications,
    people,
    reports,
    selections,
)

SECTIONS = [home.blp, approvals.blp, reports.blp, activities.blp, people.blp, boards.blp, selections.blp, hr.blp,
            admin_roster.blp, admin_policy.blp, admin_users.blp, market.blp,
            notifications.blp]

for _section in SECTIONS:  # once, at import: a blueprint cannot gain children after its first registration
    console.register_blueprint(_section)


def register_console(app: Flask) -> None:
    app.session_interface = CookieSessions()
    csrf.init_app(app)  # with WTF_CSRF_CHECK_DEFAULT off: only the console's blueprint checks tokens
    app.register_blueprint(console)
    app.add_url_rule("/", "console_root", lambda: redirect(url_for("console.home.index")))
