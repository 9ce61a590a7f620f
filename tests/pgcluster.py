"""A PostgreSQL primary and a hot standby of its own, made on this machine for the read-replica tests:
``initdb`` into a temporary directory (wal_level=replica, replication allowed from 127.0.0.1 by initdb's
trust lines), ``pg_basebackup -R`` for the standby, both started on free loopback ports. The system cluster
is never touched. PostgreSQL refuses to run as root, so as root the binaries run as the ``postgres`` user."""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa

from tests.crash.service import free_port


class ClusterUnavailable(RuntimeError):
    pass


def _bin_dir() -> Path:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    if initdb:
        return Path(initdb).parent
    raise ClusterUnavailable("PostgreSQL server binaries (initdb, pg_ctl, pg_basebackup) are not installed")


@dataclass
class StreamingPair:
    root: Path
    bin_dir: Path
    primary_port: int
    standby_port: int

    def url(self, port: int, database: str = "postgres") -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{port}/{database}"

    @property
    def primary_url(self) -> str:
        return self.url(self.primary_port)

    @property
    def standby_url(self) -> str:
        return self.url(self.standby_port)

    def run(self, *command: str) -> None:
        _as_postgres([str(self.bin_dir / command[0]), *command[1:]])

    def stop_standby(self) -> None:
        self.run("pg_ctl", "-D", str(self.root / "standby"), "-m", "fast", "-w", "stop")

    def start_standby(self) -> None:
        self.run("pg_ctl", "-D", str(self.root / "standby"), "-l", str(self.root / "standby.log"), "-w", "start")

    def wait_replayed(self, timeout: float = 30) -> float:
        """Wait until the standby has replayed everything the primary wrote; returns the seconds it took.

        A marker row is written on the primary and awaited on the standby: its WAL comes after everything
        written before. (Comparing ``pg_current_wal_lsn()`` with ``pg_last_wal_replay_lsn()`` could wait forever
        on an idle primary whose write position had moved past the last record the standby replays.)"""
        started, token = time.monotonic(), uuid.uuid4().hex
        primary = sa.create_engine(self.primary_url)
        standby = sa.create_engine(self.standby_url, isolation_level="AUTOCOMMIT")
        try:
            with primary.begin() as connection:
                connection.execute(sa.text("CREATE TABLE IF NOT EXISTS replay_marker (token text)"))
                connection.execute(sa.text("INSERT INTO replay_marker VALUES (:token)"), {"token": token})
            with standby.connect() as connection:
                while not _marker_seen(connection, token):
                    if time.monotonic() - started > timeout:
                        raise TimeoutError("the standby did not catch up")
                    time.sleep(0.005)
        finally:
            primary.dispose()
            standby.dispose()
        return time.monotonic() - started

    def stop(self) -> None:
        for name in ("standby", "primary"):
            if (self.root / name / "postmaster.pid").exists():
                subprocess.run(_sudo([str(self.bin_dir / "pg_ctl"), "-D", str(self.root / name), "-m", "immediate",
                                      "stop"]), capture_output=True)
        shutil.rmtree(self.root, ignore_errors=True)


def _marker_seen(connection, token: str) -> bool:
    try:
        return bool(connection.scalar(sa.text("SELECT count(*) FROM replay_marker WHERE token = :token"),
                                      {"token": token}))
    except sa.exc.ProgrammingError:  # the marker table itself is not replayed yet
        return False


def _sudo(command: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *command] if os.geteuid() == 0 else command


def _as_postgres(command: list[str]) -> None:
    finished = subprocess.run(_sudo(command), capture_output=True, text=True, timeout=120)
    if finished.returncode != 0:
        raise ClusterUnavailable(f"{Path(command[0]).name} failed: {(finished.stderr or finished.stdout)[-1500:]}")


def start_streaming_pair() -> StreamingPair:
    bin_dir = _bin_dir()
    root = Path(tempfile.mkdtemp(prefix="points-replica-"))
    if os.geteuid() == 0:
        shutil.chown(root, "postgres", "postgres")
    pair = StreamingPair(root, bin_dir, free_port(), free_port())
    try:
        primary = root / "primary"
        pair.run("initdb", "-D", str(primary), "-U", "postgres", "--auth=trust", "--no-sync", "-E", "UTF8")
        settings = (f"port = {pair.primary_port}\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = '{root}'\n"
                    "wal_level = replica\nmax_wal_senders = 4\nhot_standby = on\nfsync = off\n"
                    "shared_buffers = 32MB\n")
        _append_as_postgres(primary / "postgresql.conf", settings)
        pair.run("pg_ctl", "-D", str(primary), "-l", str(root / "primary.log"), "-w", "start")
        pair.run("pg_basebackup", "-h", "127.0.0.1", "-p", str(pair.primary_port), "-U", "postgres",
                 "-D", str(root / "standby"), "-R", "-X", "stream")
        _append_as_postgres(root / "standby" / "postgresql.conf", f"port = {pair.standby_port}\n")
        pair.start_standby()
    except BaseException:
        pair.stop()
        raise
    return pair


def _append_as_postgres(path: Path, text: str) -> None:
    with open(path, "a") as conf:  # root may write postgres's files; the server only reads them
        conf.write(text)
