"""Running calls concurrently against the real database (PostgreSQL-only tests)."""

from __future__ import annotations

import contextlib
import threading
from concurrent.futures import ThreadPoolExecutor

from points_service.db import db


def hammer(app, calls: list, workers: int = 40) -> list:
    """Run each call in its own app context (own session and connection), all released at once."""
    barrier = threading.Barrier(min(workers, len(calls)))

    def run(call):
        with app.app_context():
            with contextlib.suppress(threading.BrokenBarrierError):
                barrier.wait(timeout=30)
            try:
                return call()
            finally:
                db.session.remove()

    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(run, calls))
