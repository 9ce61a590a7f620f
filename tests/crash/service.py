"""The crash tests' machinery: a PostgreSQL schema of their own, the service under gunicorn in its own process
group, and SIGKILL of one worker or of the whole service (by process id, never by name)."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from urllib.parse import quote

import requests
import sqlalchemy as sa

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def schema_url(base_url: str, schema: str, application: str = "points-crash") -> str:
    """The database URL whose connections work in ``schema`` (libpq ``options``), usable by any process."""
    options = quote(f"-csearch_path={schema} -capplication_name={application}")
    return f"{base_url}{'&' if '?' in base_url else '?'}options={options}"


@contextlib.contextmanager
def crash_schema(base_url: str, name: str):
    """A fresh schema built by ``create_all`` (append-only triggers included); dropped afterwards."""
    engine = sa.create_engine(base_url)
    with engine.begin() as connection:
        connection.execute(sa.text(f"DROP SCHEMA IF EXISTS {name} CASCADE"))
        connection.execute(sa.text(f"CREATE SCHEMA {name}"))
    url = schema_url(base_url, name)
    try:
        yield url
    finally:
        with engine.begin() as connection:
            connection.execute(sa.text(f"DROP SCHEMA IF EXISTS {name} CASCADE"))
        engine.dispose()


def service_env(url: str, **extra: str) -> dict:
    env = {key: value for key, value in os.environ.items() if not key.startswith("POINTS_")}
    env.update(POINTS_ENV="testing", POINTS_TEST_DATABASE_URL=url, FLASK_APP="wsgi.py", **extra)
    return env


class Service:
    """``gunicorn wsgi:app`` with gthread workers on a free loopback port, in its own session."""

    def __init__(self, env: dict, log_path: Path, workers: int = 2, threads: int = 4) -> None:
        self.env, self.log_path, self.workers, self.threads = env, log_path, workers, threads
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen | None = None
        self.up = threading.Event()  # clients wait on it while the service is down between a kill and a restart

    def start(self) -> None:
        if self.process is not None and self.process.poll() is None:
            raise RuntimeError("the service is still running: kill it first (a second one would be orphaned)")
        command = [str(BIN / "gunicorn"), "-w", str(self.workers), "--threads", str(self.threads), "-k", "gthread",
                   "-b", f"127.0.0.1:{self.port}", "--timeout", "60", "wsgi:app"]
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(command, cwd=ROOT, env=self.env, stdout=log, stderr=log,
                                            start_new_session=True)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"gunicorn exited with {self.process.returncode}; see {self.log_path}")
            with contextlib.suppress(requests.RequestException):
                if requests.get(f"{self.base}/readyz", timeout=2).status_code == 200:
                    self.up.set()
                    return
            time.sleep(0.2)
        raise RuntimeError(f"gunicorn did not become ready; see {self.log_path}")

    def worker_pids(self) -> list[int]:
        children = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children")
        with contextlib.suppress(OSError):
            return [int(pid) for pid in children.read_text().split()]
        return []

    def kill_worker(self, pick) -> int | None:
        """SIGKILL one worker (gunicorn's master starts a new one)."""
        pids = self.worker_pids()
        if not pids:
            return None
        pid = pick(pids)
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        return pid

    def kill_all(self) -> None:
        """SIGKILL the master and its workers at once (their process group is the session we started)."""
        self.up.clear()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=30)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.kill_all()
